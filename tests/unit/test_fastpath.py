"""The fast path: live changes sent in order, a failure reported and never raised."""

from __future__ import annotations

import threading

from scs_supervisor.control import DeadlineExceeded
from scs_supervisor.fastpath import FastPath, LiveChange, live_change
from scs_supervisor.reconcile import DesiredNode, QueueDecl
from scs_supervisor.syncplan import LiveDiff

DECL = QueueDecl('b', 'bx', 'topic', 'b.#', (('queue_durable', False),))


class FakeControl:
    def __init__(self, sent, fail=()):
        self.sent, self.fail = sent, fail

    def _answer(self, *call):
        if call[0] in self.fail:
            raise DeadlineExceeded(f'{call[0]}: no reply from {call[1]}')
        self.sent.append(call)
        return 'ok'

    def add_consumer(self, nodename, queue, exchange, exchange_type, routing_key, options):
        return self._answer('add_consumer', nodename, queue, exchange, exchange_type,
                            routing_key, options)

    def cancel_consumer(self, nodename, queue):
        return self._answer('cancel_consumer', nodename, queue)

    def autoscale(self, nodename, high, low):
        return self._answer('autoscale', nodename, high, low)

    def reset(self):
        pass


def send(change, fail=()):
    sent, reports = [], []
    finished = threading.Event()
    fast_path = FastPath(2.0, lambda url, timeout: FakeControl(sent, fail))

    def done(report, sent):
        reports.append((report, sent))
        finished.set()

    fast_path.submit([change], done)
    assert finished.wait(10)
    assert fast_path.settle([change.node], 0)
    fast_path.close()
    return sent, reports[0]


def test_live_change_declares_each_queue_as_its_row_does():
    node = DesiredNode('w1', 'w1@h', 'amqp://h//', (QueueDecl('a'), DECL), 1, 4, 'prefork')
    change = live_change(node, LiveDiff(add=('b',), cancel=('x',), autoscale=(8, 2)))
    assert change == LiveChange('w1', 'w1@h', 'amqp://h//', add=(DECL,), cancel=('x',),
                                autoscale=(8, 2))
    assert not live_change(node, LiveDiff())


def test_adds_then_cancels_then_autoscales():
    change = LiveChange('w1', 'w1@h', 'amqp://h//', add=(DECL,), cancel=('x',),
                        autoscale=(8, 2))
    sent, (report, acknowledged) = send(change)
    assert acknowledged
    assert sent == [('add_consumer', 'w1@h', 'b', 'bx', 'topic', 'b.#', {'queue_durable': False}),
                    ('cancel_consumer', 'w1@h', 'x'), ('autoscale', 'w1@h', 8, 2)]
    assert [level for level, _ in report] == ['info'] * 3


def test_a_failure_stops_that_worker_and_is_reported_not_raised():
    change = LiveChange('w1', 'w1@h', 'amqp://h//', add=(DECL,), cancel=('x',))
    sent, (report, acknowledged) = send(change, fail=('add_consumer',))
    assert sent == [] and not acknowledged
    [(level, line)] = report
    assert level == 'warn' and 'add_consumer b failed: DeadlineExceeded' in line
