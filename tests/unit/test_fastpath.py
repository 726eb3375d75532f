"""The fast path: live changes sent in order, checked, a failure reported and never raised."""

from __future__ import annotations

import threading

from scs_supervisor.control import Controllers, DeadlineExceeded
from scs_supervisor.fastpath import FastPath, LiveChange, live_change
from scs_supervisor.reconcile import DesiredNode, QueueDecl
from scs_supervisor.syncplan import LiveDiff

DECL = QueueDecl('b', 'bx', 'topic', 'b.#', (('queue_durable', False),))


class FakeControl:
    """A worker consuming ``consuming``; commands named in ``fail`` get no answer."""

    def __init__(self, sent, consuming, fail=()):
        self.sent, self.consuming, self.fail = sent, consuming, fail

    def _answer(self, *call):
        if call[0] in self.fail:
            raise DeadlineExceeded(f'{call[0]}: no reply from {call[1]}')
        self.sent.append(call)
        return 'ok'

    def add_consumer(self, nodename, queue, exchange, exchange_type, routing_key, options):
        self.consuming.append(queue)
        return self._answer('add_consumer', nodename, queue, exchange, exchange_type,
                            routing_key, options)

    def cancel_consumer(self, nodename, queue):
        self.consuming.remove(queue)
        return self._answer('cancel_consumer', nodename, queue)

    def autoscale(self, nodename, high, low):
        return self._answer('autoscale', nodename, high, low)

    def active_queues(self, nodenames, timeout=None):
        return {name: list(self.consuming) for name in nodenames}

    def reset(self):
        pass


def send(change, consuming, fail=()):
    """Submit ``change`` to a fast path; return the commands sent, the report and whether the
    worker was seen consuming its queues, and the fast path."""
    sent, reports = [], []
    finished = threading.Event()
    now = [10.0]
    fast_path = FastPath(Controllers(2.0, lambda url, timeout: FakeControl(sent, consuming,
                                                                           fail)),
                         clock=lambda: now[0])

    def done(report, verified):
        reports.append((report, verified))
        finished.set()

    fast_path.submit([change], done)
    assert finished.wait(10)
    assert fast_path.settle([change.node], 0)
    fast_path.close()
    return sent, reports[0], fast_path


def test_live_change_declares_each_queue_as_its_row_does():
    node = DesiredNode('w1', 'w1@h', 'amqp://h//', (QueueDecl('a'), DECL), 1, 4, 'prefork')
    change = live_change(node, LiveDiff(add=('b',), cancel=('x',), autoscale=(8, 2)))
    assert change == LiveChange('w1', 'w1@h', 'amqp://h//', queues=('a', 'b'), add=(DECL,),
                                cancel=('x',), autoscale=(8, 2))
    assert not live_change(node, LiveDiff())


def test_adds_then_cancels_then_autoscales_then_checks():
    change = LiveChange('w1', 'w1@h', 'amqp://h//', queues=('a', 'b'), add=(DECL,),
                        cancel=('x',), autoscale=(8, 2))
    sent, (report, verified), fast_path = send(change, ['a', 'x'])
    assert sent == [('add_consumer', 'w1@h', 'b', 'bx', 'topic', 'b.#', {'queue_durable': False}),
                    ('cancel_consumer', 'w1@h', 'x'), ('autoscale', 'w1@h', 8, 2)]
    assert verified and [level for level, _ in report] == ['info'] * 4
    # What the worker answered stands for a poll sent at the same time or later.
    assert fast_path.observed('w1', since=10.0) == ('a', 'b')
    assert fast_path.observed('w1', since=10.5) is None


def test_a_failure_stops_that_worker_and_is_reported_not_raised():
    change = LiveChange('w1', 'w1@h', 'amqp://h//', queues=('a', 'b'), add=(DECL,),
                        cancel=('x',))
    sent, (report, verified), fast_path = send(change, ['a', 'x'], fail=('add_consumer',))
    assert sent == [] and not verified
    [(level, line)] = report
    assert level == 'warn' and 'add_consumer b failed: DeadlineExceeded' in line
    assert fast_path.observed('w1', since=0) is None  # not checked


def test_a_worker_not_seen_consuming_its_queues_is_left_to_the_loop():
    change = LiveChange('w1', 'w1@h', 'amqp://h//', queues=('a', 'b'), cancel=('x',))
    # The fake worker acknowledges but still consumes b only after a later add.
    sent, (report, verified), _ = send(change, ['a', 'x'])
    assert not verified
    assert report[-1] == ('warn', 'scs: fast path w1: consuming a, not a,b; left to the loop')


def test_brokers_are_connected_once_ahead_of_the_first_change():
    connected, finished = [], threading.Event()

    class Connecting(FakeControl):
        def connect(self):
            connected.append(self.url)

    def make(url, timeout):
        control = Connecting([], [])
        control.url = url
        return control

    fast_path = FastPath(Controllers(2.0, make))
    fast_path.connect(['amqp://a//', 'amqp://a//', 'redis://b/0'])
    fast_path.connect(['amqp://a//'])
    fast_path.submit([], lambda report, verified: finished.set())
    assert finished.wait(10)
    fast_path.close()
    assert sorted(connected) == ['amqp://a//', 'redis://b/0']


def test_a_worker_that_shows_the_change_a_moment_later_is_asked_once_more():
    class Lagging(FakeControl):
        asked = 0

        def active_queues(self, nodenames, timeout=None):
            Lagging.asked += 1
            queues = ['a'] if Lagging.asked == 1 else self.consuming
            return {name: list(queues) for name in nodenames}

    finished, reports = threading.Event(), []
    fast_path = FastPath(Controllers(2.0, lambda url, timeout: Lagging([], ['a'])))
    change = LiveChange('w1', 'w1@h', 'amqp://h//', queues=('a', 'b'), add=(DECL,))
    fast_path.submit([change], lambda report, verified: (reports.append(verified),
                                                         finished.set()))
    assert finished.wait(10)
    fast_path.close()
    assert reports == [True] and Lagging.asked == 2
