"""A database that goes away or hangs never stops a worker nor freezes supervisord."""

from __future__ import annotations

import socket
import threading
import time
import xmlrpc.client

import pytest
from sqlalchemy import create_engine, text

from scs_supervisor.rpcinterface import Faults
from tests.integration.conftest import pid_alive


def set_connections(url: str, allowed: bool) -> None:
    """Open or close a PostgreSQL database to new connections (and drop the current ones)."""
    name = url.rsplit('/', 1)[1]
    admin = create_engine('postgresql+psycopg://postgres@127.0.0.1:5432/test',
                          isolation_level='AUTOCOMMIT')
    with admin.connect() as connection:
        connection.execute(text(f'ALTER DATABASE {name} ALLOW_CONNECTIONS {str(allowed)}'))
        if not allowed:
            connection.execute(text('SELECT pg_terminate_backend(pid) FROM pg_stat_activity '
                                    'WHERE datname = :name'), {'name': name})
    admin.dispose()


def test_database_outage_is_a_fault_and_stops_nothing(make_agent, postgres_url):
    agent = make_agent(None, postgres_url).start()
    agent.scs('create', 'n1', '--queues', 'a', '--pool', 'solo', '--max', '1')
    pid = agent.wait_running('n1')['n1']
    files = agent.program_files()

    set_connections(postgres_url, False)
    try:
        with pytest.raises(xmlrpc.client.Fault) as info:
            agent.rpc().scs.sync()
        assert info.value.faultCode == Faults.DATABASE_UNAVAILABLE
        assert info.value.faultString.startswith('DATABASE_UNAVAILABLE: database unavailable')
        done = agent.ctl('scs', 'sync')
        assert done.returncode != 0 and 'database unavailable' in done.stderr
        assert agent.rpc().supervisor.getProcessInfo('scs-n1')['pid'] == pid
        assert pid_alive(pid) and agent.program_files() == files
    finally:
        set_connections(postgres_url, True)

    # The database is back: syncs work again and the worker was never restarted.  (A sync
    # within 2 s of the create may repeat what that applied: "added: n1".)
    out = agent.scs('sync')
    assert out.startswith('synced; ') and 'changed' not in out and 'removed' not in out
    assert agent.node('n1')['pid'] == pid


@pytest.fixture
def hanging_database():
    """A TCP server that accepts connections and never answers, like a wedged database."""
    server = socket.socket()
    server.bind(('127.0.0.1', 0))
    server.listen(64)
    accepted, stop = [], threading.Event()

    def accept():
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                accepted.append(server.accept()[0])
            except TimeoutError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield f'postgresql+psycopg://scs:secret@127.0.0.1:{server.getsockname()[1]}/scs'
    stop.set()
    thread.join()
    for connection in accepted:
        connection.close()
    server.close()


def test_supervisord_keeps_answering_while_the_database_hangs(make_agent, hanging_database):
    agent = make_agent(None, hanging_database).start()
    outcome = {}

    def sync():
        try:
            agent.rpc().scs.sync()
        except xmlrpc.client.Fault as fault:
            outcome['fault'] = fault
        outcome['finished'] = time.monotonic()

    caller = threading.Thread(target=sync)
    caller.start()
    answered = []
    rpc = agent.rpc()
    while caller.is_alive():
        rpc.supervisor.getState()
        answered.append(time.monotonic())
        time.sleep(0.05)
    caller.join()
    # supervisord answered other clients while the sync waited on the database ...
    assert len([t for t in answered if t < outcome['finished']]) >= 10
    # ... and the sync ended with a clear fault, without the password.
    fault = outcome['fault']
    assert fault.faultCode == Faults.DATABASE_UNAVAILABLE
    assert 'secret' not in fault.faultString
    log = (agent.home / 'logs' / 'supervisord.log').read_text()
    assert 'start-up sync skipped' in log and 'secret' not in log
