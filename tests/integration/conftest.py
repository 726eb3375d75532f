"""Real supervisord, real ``celery worker`` processes, real brokers and databases."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
import xmlrpc.client
from pathlib import Path

import pytest
from supervisor.xmlrpc import SupervisorTransport

BIN = Path(sys.executable).parent
HOST = socket.gethostname()
BROKERS = {
    'filesystem': None,  # the embedded default: scsfs:// under the agent's home
    'rabbitmq': 'amqp://guest:guest@127.0.0.1:5672//',
    'redis': 'redis://127.0.0.1:6379/5',
}


def wait_for(predicate, timeout=60.0, interval=0.1, message='condition'):
    """Poll ``predicate`` until it returns a truthy value; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    last_error = None
    while time.monotonic() < deadline:
        try:
            value = predicate()
            if value:
                return value
        except Exception as exc:  # the thing polled may not be up yet
            last_error = exc
        time.sleep(interval)
    raise AssertionError(f'timed out after {timeout}s waiting for {message}'
                         + (f' (last error: {last_error!r})' if last_error else ''))


def unique(prefix: str) -> str:
    return f'{prefix}{uuid.uuid4().hex[:8]}'


class Agent:
    """One ``scs-agent`` (supervisord with scs) in its own home directory."""

    def __init__(self, home: Path, broker_url: str | None, database_url: str | None = None,
                 env: dict | None = None, http: str | None = None):
        self.home = home
        self.http = http
        self.broker_url = broker_url
        self.database_url = database_url
        self.env = env or {}
        self.conf = home / 'supervisord.conf'
        self.process: subprocess.Popen | None = None

    @property
    def effective_broker(self) -> str:
        return self.broker_url or f'scsfs://localhost/{self.home}/broker'

    def start(self) -> Agent:
        argv = [str(BIN / 'scs-agent'), '--home', str(self.home), '--no-example']
        argv += ['--http', self.http] if self.http else ['--without-http']
        if self.broker_url:
            argv += ['--broker', self.broker_url]
        if self.database_url:
            argv += ['--db', self.database_url]
        self.home.mkdir(parents=True, exist_ok=True)
        log = open(self.home / 'agent.out', 'ab')
        self.process = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT,
                                        start_new_session=True, env={**os.environ, **self.env})
        log.close()
        wait_for(lambda: self.rpc().scs.getAPIVersion() == '1.0', 30,
                 message=f'supervisord to answer (see {self.home}/agent.out)')
        return self

    def stop(self) -> None:
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(60)
            except subprocess.TimeoutExpired:
                pass
        # Whatever is left of the session: supervisord and its workers (each of which runs in a
        # process group of its own, so killing supervisord's group is not enough).
        for pid in session_pids(self.process.pid):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.process.wait()
        self.process = None

    def rpc(self):
        transport = SupervisorTransport(None, None, f'unix://{self.home}/supervisor.sock')
        return xmlrpc.client.ServerProxy('http://127.0.0.1', transport)

    def ctl(self, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
        """``supervisorctl -c HOME/supervisord.conf ARGS`` as a user would type it."""
        return subprocess.run([str(BIN / 'supervisorctl'), '-c', str(self.conf), *args],
                              input=stdin, capture_output=True, text=True, timeout=120)

    def scs(self, *args: str) -> str:
        """``supervisorctl scs ARGS``; fails the test if it exits non-zero."""
        done = self.ctl('scs', *args)
        assert done.returncode == 0, (done.stdout, done.stderr)
        return done.stdout

    def node(self, name: str) -> dict:
        return json.loads(self.scs('show', name, '--json'))

    def wait_running(self, *names: str, timeout: float = 90) -> dict[str, int]:
        """Wait until every named node is RUNNING; return their pids."""
        def running():
            nodes = {n['name']: n for n in json.loads(self.scs('list', '--json'))}
            if all(nodes.get(name, {}).get('state') == 'RUNNING' for name in names):
                return {name: nodes[name]['pid'] for name in names}
            return None
        return wait_for(running, timeout, 0.2, message=f'{names} RUNNING')

    def status(self) -> dict:
        return json.loads(self.scs('status', '--json'))

    def listener_log(self) -> str:
        return (self.home / 'logs' / 'scs-listener.log').read_text()

    def program_files(self) -> dict[str, bytes]:
        return {p.name: p.read_bytes() for p in sorted((self.home / 'programs').glob('*.conf'))}


def celery_control(broker_url: str, *args: str, cwd: Path) -> None:
    """``celery control ARGS`` from a separate client; fails the test if it fails."""
    done = celery_client(broker_url, 'control', *args, cwd=cwd)
    assert done.returncode == 0, done.stdout + done.stderr


def celery_client(broker_url: str, *args: str, cwd: Path) -> subprocess.CompletedProcess:
    """The ``celery`` command run by a separate client process."""
    env = {**os.environ, 'CELERY_BROKER_URL': broker_url}
    return subprocess.run([str(BIN / 'celery'), *args], capture_output=True, text=True,
                          timeout=60, env=env, cwd=cwd)


def active_queues(broker_url: str, node: str, cwd: Path) -> set[str] | None:
    """The queues ``node`` consumes, as ``celery inspect active_queues`` reports them."""
    done = celery_client(broker_url, 'inspect', 'active_queues', '-j', '-t', '5',
                         '-d', f'{node}@{HOST}', cwd=cwd)
    if done.returncode != 0:
        return None
    replies = json.loads(done.stdout)
    return {q['name'] for q in replies[f'{node}@{HOST}']}


def session_pids(sid: int) -> list[int]:
    """Every process of session ``sid``."""
    pids = []
    for entry in os.listdir('/proc'):
        if entry.isdigit():
            try:
                if os.getsid(int(entry)) == sid:
                    pids.append(int(entry))
            except (ProcessLookupError, PermissionError):
                pass
    return pids


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.fixture
def make_agent(tmp_path):
    agents = []

    def make(broker_url=None, database_url=None, home=None, env=None, http=None):
        agent = Agent(home or tmp_path / f'agent{len(agents)}', broker_url, database_url, env,
                      http)
        agents.append(agent)
        return agent

    yield make
    for agent in agents:
        agent.stop()


@pytest.fixture
def postgres_url():
    """A fresh PostgreSQL database, dropped afterwards."""
    from sqlalchemy import create_engine, text

    name = unique('scs_test_')
    admin = create_engine('postgresql+psycopg://postgres@127.0.0.1:5432/test',
                          isolation_level='AUTOCOMMIT')
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE {name}'))
    yield f'postgresql+psycopg://postgres@127.0.0.1:5432/{name}'
    with admin.connect() as connection:
        connection.execute(text(f'DROP DATABASE IF EXISTS {name} WITH (FORCE)'))
    admin.dispose()


@pytest.fixture
def rabbitmq_vhost():
    """A RabbitMQ URL on a fresh virtual host (deleted afterwards): Celery node names and
    queues of this test cannot meet those of anything else using the shared server."""
    vhost = unique('scs-test-')
    subprocess.run(['rabbitmqctl', '-q', 'add_vhost', vhost], check=True, timeout=60)
    subprocess.run(['rabbitmqctl', '-q', 'set_permissions', '-p', vhost, 'guest', '.*', '.*',
                    '.*'], check=True, timeout=60)
    yield f'amqp://guest:guest@127.0.0.1:5672/{vhost}'
    subprocess.run(['rabbitmqctl', '-q', 'delete_vhost', vhost], timeout=60)


@pytest.fixture
def private_redis(tmp_path):
    """A redis-server of the test's own, which the test may stop and start again."""
    with socket.socket() as probe:
        probe.bind(('127.0.0.1', 0))
        port = probe.getsockname()[1]
    argv = ['redis-server', '--port', str(port), '--bind', '127.0.0.1', '--save', '',
            '--appendonly', 'no', '--dir', str(tmp_path)]
    server = {}

    def start():
        server['process'] = subprocess.Popen(argv, stdout=subprocess.DEVNULL)
        wait_for(lambda: socket.create_connection(('127.0.0.1', port), 1).close() or True,
                 10, message='private redis up')

    def stop():
        server['process'].terminate()
        server['process'].wait(10)

    start()
    yield f'redis://127.0.0.1:{port}/0', start, stop
    if server['process'].poll() is None:
        stop()
