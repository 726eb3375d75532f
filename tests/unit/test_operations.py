"""Operations reuse the fast path's check only when it was asked after they began."""

from __future__ import annotations

import time

from scs_supervisor.control import Controllers
from scs_supervisor.operations import Operations
from scs_supervisor.reconcile import DesiredNode, QueueDecl

NODE = DesiredNode('w1', 'w1@host', 'memory://', (QueueDecl('a'), QueueDecl('b')), 1, 4,
                   'prefork')


class FakeStore:
    def revision(self):
        return 1

    def desired_nodes(self, agent):
        return [NODE]


class FakeFastPath:
    """The fast path asked w1 at ``asked_at`` and heard ``queues``."""

    def __init__(self, asked_at, queues):
        self.asked_at, self.queues, self.settled = asked_at, queues, []

    def settle(self, nodes, timeout):
        self.settled.append(list(nodes))
        return True

    def observed(self, node, since):
        return self.queues if node == 'w1' and self.asked_at >= since else None


def run(fast_path, timeout=0.6, process_state=lambda name: ('RUNNING', '', 1.0)):
    ops = Operations(FakeStore(), 'host', process_state, Controllers(0.05),
                     fast_path=fast_path)
    op = ops.start(['w1'], timeout)
    deadline = time.monotonic() + 10
    while not op.done and time.monotonic() < deadline:
        time.sleep(0.01)
    return op


def test_an_answer_to_the_fast_paths_check_after_the_start_is_the_first_poll():
    fast_path = FakeFastPath(asked_at=float('inf'), queues=('b', 'a'))
    op = run(fast_path)
    assert op.status == 'done' and op.observed['w1']['consuming'] == ['b', 'a']
    assert fast_path.settled == [['w1']]


def test_an_older_answer_is_not_used():
    # No worker answers on this broker: only the old answer would have made it done.
    op = run(FakeFastPath(asked_at=0.0, queues=('a', 'b')))
    assert op.status == 'timeout'


def test_a_worker_that_keeps_exiting_after_startsecs_fails_the_operation():
    # Such a worker is never FATAL: supervisord restarts it each time (a new spawn time).
    spawns = iter(range(1, 1000))
    op = run(FakeFastPath(asked_at=0.0, queues=()), timeout=5,
             process_state=lambda name: ('RUNNING', '', float(next(spawns))))
    assert op.status == 'failed' and 'w1 keeps exiting: started 4 times' in op.detail
