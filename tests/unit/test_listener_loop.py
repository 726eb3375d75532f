"""One cycle of the supervisor loop with fake supervisord, database and broker client."""

from __future__ import annotations

import types

from scs_supervisor.control import Controllers
from scs_supervisor.listener import Loop
from scs_supervisor.reconcile import DesiredNode, QueueDecl
from scs_supervisor.settings import Settings

URL = 'memory://'  # probe_broker connects to kombu's in-memory transport at once


def node(*queues, name='w1'):
    return DesiredNode(name, f'{name}@host', URL,
                       tuple(QueueDecl(q, q, 'direct', q) for q in queues), 1, 4, 'prefork')


class FakeStore:
    """The database at ``revision_now``; ``nodes[revision]`` is w1's desired state then, and
    ``others`` other nodes (which have no process)."""

    def __init__(self, nodes):
        self.nodes, self.revision_now, self.others = nodes, min(nodes), []

    def revision(self):
        return self.revision_now

    def desired_nodes(self, agent):
        return [self.nodes[self.revision_now], *self.others]

    def record_status(self, agent, statuses, observed):
        pass


class FakeControl:
    """A worker consuming ``queues``; ``during_observe`` runs when the loop looks."""

    def __init__(self, queues, during_observe=None):
        self.queues, self.during_observe, self.sent = list(queues), during_observe, []

    def ping(self, names):
        return set(names)

    def active_queues(self, names):
        if self.during_observe is not None:
            self.during_observe(self)
            self.during_observe = None
        return {name: list(self.queues) for name in names}

    def autoscalers(self, names):
        return {name: {'max': 4, 'min': 1} for name in names}

    def add_consumer(self, nodename, queue, *declaration):
        self.sent.append(('add_consumer', queue))
        self.queues.append(queue)

    def cancel_consumer(self, nodename, queue):
        self.sent.append(('cancel_consumer', queue))
        self.queues.remove(queue)

    def reset(self):
        pass


def make_loop(tmp_path, store, control):
    rpc = types.SimpleNamespace(
        scs=types.SimpleNamespace(sync=lambda: {}),
        supervisor=types.SimpleNamespace(getAllProcessInfo=lambda: [
            {'group': 'scs-w1', 'statename': 'RUNNING', 'pid': 10, 'start': 1}]))
    loop = Loop(Settings.load({}, {'home': str(tmp_path)}), store, rpc)
    loop.controllers = Controllers(1.0, lambda url, timeout: control)
    return loop


def test_a_queue_the_fast_path_just_added_is_not_cancelled_by_a_stale_cycle(tmp_path):
    store = FakeStore({1: node('a'), 2: node('a', 'b')})

    def fast_path(control):  # while the cycle runs: a user adds b, the sync tells the worker
        store.revision_now = 2
        control.queues.append('b')

    control = FakeControl(['a'], during_observe=fast_path)
    loop = make_loop(tmp_path, store, control)
    loop.cycle()
    assert control.sent == [] and control.queues == ['a', 'b']
    assert loop._wake.is_set()  # runs again at once, with the new desired state
    loop.cycle()
    assert control.sent == [] and control.queues == ['a', 'b']


def test_a_queue_the_fast_path_just_cancelled_is_not_added_back(tmp_path):
    store = FakeStore({1: node('a', 'b'), 2: node('a')})

    def fast_path(control):
        store.revision_now = 2
        control.queues.remove('b')

    control = FakeControl(['a', 'b'], during_observe=fast_path)
    loop = make_loop(tmp_path, store, control)
    loop.cycle()
    loop.cycle()
    assert control.sent == [] and control.queues == ['a']


def test_drift_is_repaired_when_only_other_nodes_changed_meanwhile(tmp_path):
    store = FakeStore({1: node('a'), 2: node('a')})

    def someone_adds_a_node(control):
        store.revision_now = 2
        store.others = [node('z', name='w2')]

    control = FakeControl(['a', 'intruder'], during_observe=someone_adds_a_node)
    make_loop(tmp_path, store, control).cycle()
    assert control.sent == [('cancel_consumer', 'intruder')]


def test_drift_is_still_repaired_when_the_database_did_not_move(tmp_path):
    control = FakeControl(['a', 'intruder'])
    loop = make_loop(tmp_path, FakeStore({1: node('a', 'b')}), control)
    loop.cycle()
    assert control.sent == [('add_consumer', 'b'), ('cancel_consumer', 'intruder')]
    assert not loop._wake.is_set()


def test_supervisords_tick_starts_a_cycle_only_when_one_is_due(tmp_path):
    now = [100.0]
    loop = Loop(Settings.load({}, {'home': str(tmp_path), 'tick_interval': '60'}),
                FakeStore({1: node('a')}), None, clock=lambda: now[0])
    loop.tick()
    assert loop._wake.is_set()  # no cycle yet
    loop._wake.clear()
    loop.last_began = now[0]
    now[0] += 5
    loop.tick()  # TICK_5 after 5 s: not due under a 60 s interval
    assert not loop._wake.is_set()
    now[0] += 55
    loop.tick()
    assert loop._wake.is_set()
