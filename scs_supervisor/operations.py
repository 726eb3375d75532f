"""Operations a caller can wait for, or check on later by id.

An operation watches some nodes until each runs (STARTING or RUNNING in supervisord) and
consumes exactly its database queues (asked of the worker itself, one broadcast per broker per
poll), until one of them fails (FATAL), or until its timeout.  Operations live in
supervisord, so any client (supervisorctl, the HTTP API) can start one and ask about it later.

A sync's fast path (:mod:`.fastpath`) tells reconfigured workers of their new queues and then
asks them what they consume.  An operation waits for that first, and when the fast path asked
a node after the operation began, its answer is the operation's first poll of that node: the
worker was asked the same question, at a time the operation would have asked it.
"""

from __future__ import annotations

import dataclasses
import threading
import time
import uuid
from collections import OrderedDict

from scs_supervisor.control import Controllers
from scs_supervisor.fastpath import FastPath
from scs_supervisor.reconcile import DesiredNode
from scs_supervisor.store import Store, StoreError

#: How many finished operations are remembered.
KEEP = 500
#: Seconds between polls, from the first retry (a live change takes milliseconds) up to the
#: steady pace, and the reply window of each poll: replies from a local broker come in
#: milliseconds, and a worker still starting does not answer at all.
POLL_FIRST, POLL = 0.005, 0.02
POLL_TIMEOUT = 0.3
#: Spawns of one node an operation sees before it calls the node crash-looping.
SPAWN_LIMIT = 3
#: A worker that consumes is up, even before supervisord's startsecs have passed.
ALIVE = ('STARTING', 'RUNNING')


@dataclasses.dataclass
class Operation:
    id: str
    nodes: list[str]
    timeout: float
    status: str = 'pending'  # pending, done, failed, timeout
    detail: str = ''
    created: float = dataclasses.field(default_factory=time.time)
    finished: float | None = None
    observed: dict = dataclasses.field(default_factory=dict)
    spawns: dict = dataclasses.field(default_factory=dict)  # node -> spawn times seen

    @property
    def done(self) -> bool:
        return self.status != 'pending'

    def as_dict(self) -> dict:
        return {'id': self.id, 'nodes': self.nodes, 'status': self.status,
                'detail': self.detail, 'created': self.created, 'finished': self.finished,
                'timeout': self.timeout, 'observed': self.observed}


class Operations:
    """Starts operations in threads and keeps the latest :data:`KEEP` of them."""

    def __init__(self, store: Store, agent_id: str, process_state, controllers: Controllers,
                 on_finish=None, fast_path: FastPath | None = None, last_snapshot=None):
        self.store, self.agent_id = store, agent_id
        # node name -> (statename, description, time of the last spawn)
        self.process_state = process_state
        self.on_finish = on_finish
        self.fast_path = fast_path
        #: last_snapshot(): the last sync's read of the database (a SyncSnapshot) or None.
        self.last_snapshot = last_snapshot
        self.controllers = controllers
        self._ops: OrderedDict[str, Operation] = OrderedDict()
        self._lock = threading.Lock()

    def start(self, names: list[str] | None, timeout: float) -> Operation:
        """Watch ``names`` (None: every enabled node of this agent)."""
        op = Operation(id=uuid.uuid4().hex, nodes=list(names or []), timeout=timeout)
        with self._lock:
            self._ops[op.id] = op
            while len(self._ops) > KEEP:
                self._ops.popitem(last=False)
        threading.Thread(target=self._run, args=(op, names is None, time.monotonic()),
                         daemon=True, name=f'scs-op-{op.id[:8]}').start()
        return op

    def get(self, op_id: str) -> Operation | None:
        with self._lock:
            return self._ops.get(op_id)

    def _finish(self, op: Operation, status: str, detail: str) -> None:
        op.status, op.detail, op.finished = status, detail, time.time()
        if self.on_finish is not None:
            self.on_finish(op)

    def _run(self, op: Operation, every_node: bool, began: float) -> None:
        deadline = began + op.timeout
        try:
            desired = self._desired()
        except StoreError as exc:
            return self._finish(op, 'failed', str(exc))
        if every_node:
            op.nodes = sorted(desired)
        missing = [n for n in op.nodes if n not in desired]
        if missing:
            return self._finish(op, 'failed', f'not enabled on agent {self.agent_id}: '
                                              f'{", ".join(missing)}')
        nodes = [desired[n] for n in op.nodes]
        if self.fast_path is not None:
            # Not before the worker was told: wait for the fast path to send and check.
            self.fast_path.settle(op.nodes, deadline - time.monotonic())
        pause, since = POLL_FIRST, began
        while True:
            try:
                verdict = self._check(op, nodes, since)
            except Exception as exc:  # the broker may be down: keep trying until the timeout
                verdict, op.detail = None, f'{type(exc).__name__}: {exc}'
            since = None
            if verdict is not None:
                return self._finish(op, *verdict)
            if time.monotonic() >= deadline:
                waiting = [n for n, o in op.observed.items() if not o.get('ok')]
                return self._finish(op, 'timeout', f'timed out after {op.timeout:g}s waiting '
                                                   f'for {", ".join(waiting) or "the nodes"}')
            time.sleep(pause)
            pause = min(pause * 2, POLL)

    def _answered(self, group: list[DesiredNode], since: float | None) -> dict | None:
        """The fast path's answers from every node of ``group`` since ``since``, or None."""
        if since is None or self.fast_path is None:
            return None
        answers = {n.nodename: self.fast_path.observed(n.name, since) for n in group}
        if any(queues is None for queues in answers.values()):
            return None
        return {name: list(queues) for name, queues in answers.items()}

    def _desired(self) -> dict[str, DesiredNode]:
        """This agent's enabled nodes: the last sync's read while the database has not moved
        since (one small query instead of reading every node)."""
        known = self.last_snapshot() if self.last_snapshot is not None else None
        if known is not None and self.store.revision() == known.revision:
            return known.desired
        return {n.name: n for n in self.store.desired_nodes(self.agent_id)}

    def _check(self, op: Operation, nodes: list[DesiredNode],
               since: float | None = None) -> tuple[str, str] | None:
        """('done' | 'failed', detail) once decided, else None.

        ``since``: answers the fast path got to checks sent at or after this time
        (``time.monotonic()``) may stand for this poll's broadcast.
        """
        by_broker: dict[str, list[DesiredNode]] = {}
        for node in nodes:
            state, description, spawned = self.process_state(node.name)
            op.observed[node.name] = {'state': state, 'consuming': None, 'ok': False}
            if state == 'FATAL':
                return 'failed', f'{node.name} is FATAL: {description}'
            # A worker that dies after startsecs never becomes FATAL: supervisord restarts it
            # for ever.  Count its spawns instead.
            spawns = op.spawns.setdefault(node.name, set())
            if spawned:
                spawns.add(spawned)
            if len(spawns) > SPAWN_LIMIT:
                return 'failed', (f'{node.name} keeps exiting: started {len(spawns)} times '
                                  f'during this operation ({state}{": " if description else ""}'
                                  f'{description})')
            if state in ALIVE:
                by_broker.setdefault(node.broker_url, []).append(node)
        for url, group in by_broker.items():
            queues = self._answered(group, since)
            if queues is None:
                queues = self.controllers(url).active_queues(
                    (n.nodename for n in group), min(POLL_TIMEOUT, self.controllers.timeout))
            for node in group:
                consuming = queues.get(node.nodename)
                wanted = {q.name for q in node.queues}
                op.observed[node.name].update(
                    consuming=consuming, ok=consuming is not None and set(consuming) == wanted)
        if all(o['ok'] for o in op.observed.values()):
            return 'done', 'every node is running and consuming exactly its queues'
        return None
