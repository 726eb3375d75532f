"""The remote-control client against real workers and brokers: answers, silence, concurrent
callers, a broker that goes away and one that stalls under an open connection."""

from __future__ import annotations

import os
import socket
import subprocess
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from scs_supervisor.control import Controller, DeadlineExceeded
from tests.integration.conftest import BIN, BROKERS, HOST, unique, wait_for


def start_worker(broker: str, name: str, queue: str, cwd) -> subprocess.Popen:
    argv = [str(BIN / 'celery'), '-A', 'scs_supervisor.example', 'worker', '-n', f'{name}@%h',
            '-Q', queue, '-P', 'prefork', '--autoscale=2,1', '--without-mingle',
            '--without-gossip', '-l', 'WARNING']
    return subprocess.Popen(argv, env={**os.environ, 'CELERY_BROKER_URL': broker}, cwd=cwd,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


@pytest.fixture
def worker(tmp_path):
    """start(broker) -> (nodename, queue) of a bare worker, stopped after the test."""
    started = []

    def start(broker):
        name, queue = unique('ctl'), unique('q')
        started.append(start_worker(broker, name, queue, tmp_path))
        return f'{name}@{HOST}', queue

    yield start
    for process in started:
        process.terminate()
        process.wait(60)


def finishes(fn, within: float):
    """fn()'s result or exception, failing the test if it is still running after ``within`` s:
    what matters here is that a call returns at all."""
    box = {}

    def run():
        try:
            box['result'] = fn()
        except Exception as exc:  # handed to the test
            box['error'] = exc

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(within)
    assert not thread.is_alive(), f'the call still hangs after {within}s'
    return box


@pytest.mark.parametrize('broker', ['rabbitmq', 'redis'])
def test_commands_and_broadcasts_reach_a_real_worker(worker, broker):
    url = BROKERS[broker]
    nodename, queue = worker(url)
    control = Controller(url, timeout=1.0)
    try:
        wait_for(lambda: control.ping([nodename]) == {nodename}, 60, 0.2,
                 message=f'{nodename} answering')
        assert control.active_queues([nodename]) == {nodename: [queue]}

        extra = unique('q')
        assert control.add_consumer(nodename, extra, extra, 'direct', extra, {}) == (
            f'add consumer {extra}')
        wait_for(lambda: set(control.active_queues([nodename])[nodename]) == {queue, extra},
                 10, 0.01, message='the added queue consumed')
        assert control.cancel_consumer(nodename, extra) == f'no longer consuming from {extra}'
        wait_for(lambda: control.active_queues([nodename])[nodename] == [queue], 10, 0.01,
                 message='the cancelled queue gone')
        control.autoscale(nodename, 3, 1)
        scaler = control.autoscalers([nodename])[nodename]
        assert (scaler['max'], scaler['min']) == (3, 1)

        # A node that does not exist: the others' answers after the reply window, no error.
        assert control.ping([nodename, f'{unique("nobody")}@{HOST}']) == {nodename}
        with pytest.raises(DeadlineExceeded, match='no reply'):
            control.cancel_consumer(f'{unique("nobody")}@{HOST}', queue)

        # Callers in several threads share the client, each with its own answer.
        with ThreadPoolExecutor(8) as pool:
            answers = list(pool.map(lambda _: control.active_queues([nodename]), range(32)))
        assert answers == [{nodename: [queue]}] * 32

        control.reset()
        assert control.ping([nodename]) == {nodename}
    finally:
        control.reset()


def test_a_broker_that_goes_away_fails_calls_then_serves_them_again(worker, private_redis):
    url, start_broker, stop_broker = private_redis
    nodename, _ = worker(url)
    control = Controller(url, timeout=1.0)
    try:
        wait_for(lambda: control.ping([nodename]) == {nodename}, 60, 0.2,
                 message=f'{nodename} answering')
        stop_broker()
        outcome = finishes(lambda: control.ping([nodename]), 10)
        assert 'error' in outcome or outcome['result'] == set()
        outcome = finishes(lambda: control.ping([nodename]), 10)
        assert 'error' in outcome, outcome  # a fresh connection is refused
        start_broker()
        # The worker reconnects with back-off; the client connects afresh on the next call.
        wait_for(lambda: finishes(lambda: control.ping([nodename]), 10).get('result')
                 == {nodename}, 90, 0.5, message='answers after the broker came back')
    finally:
        control.reset()


class StallingProxy:
    """A TCP proxy in front of a broker that can stop forwarding while keeping every
    connection open: the broker "hangs" under the client's open connections."""

    def __init__(self, upstream: tuple[str, int]):
        self.upstream = upstream
        self.stalled = threading.Event()
        self.listener = socket.create_server(('127.0.0.1', 0))
        self.port = self.listener.getsockname()[1]
        self.sockets: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            server = socket.create_connection(self.upstream)
            self.sockets += [client, server]
            for src, dst in ((client, server), (server, client)):
                threading.Thread(target=self._pump, args=(src, dst), daemon=True).start()

    def _pump(self, src, dst):
        try:
            while data := src.recv(65536):
                while self.stalled.is_set():
                    time.sleep(0.01)
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (src, dst):
                sock.close()

    def close(self):
        self.listener.close()
        for sock in self.sockets:
            sock.close()


def test_a_stalled_broker_never_hangs_a_call(worker):
    nodename, queue = worker(BROKERS['rabbitmq'])  # the worker talks to RabbitMQ directly
    proxy = StallingProxy(('127.0.0.1', 5672))
    control = Controller(f'amqp://guest:guest@127.0.0.1:{proxy.port}//', timeout=1.0)
    try:
        wait_for(lambda: control.ping([nodename]) == {nodename}, 60, 0.2,
                 message=f'{nodename} answering through the proxy')
        proxy.stalled.set()
        for call in (lambda: control.ping([nodename]),
                     lambda: control.active_queues([nodename]),
                     lambda: control.add_consumer(nodename, queue, queue, 'direct', queue, {})):
            outcome = finishes(call, 10)
            assert 'error' in outcome or not outcome['result'], outcome
        proxy.stalled.clear()
        wait_for(lambda: finishes(lambda: control.ping([nodename]), 10).get('result')
                 == {nodename}, 60, 0.2, message='answers once the broker moves again')
    finally:
        control.reset()
        proxy.close()
