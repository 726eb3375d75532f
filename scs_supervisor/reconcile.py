"""Desired + observed -> corrective actions, for the supervisor loop (no I/O here).

The loop observes (supervisord states, one ping, one ``active_queues`` and one ``stats``
broadcast per broker, a probe of each broker), hands the observations to a :class:`Reconciler`
and carries out the actions it returns.  The reconciler remembers what it needs across ticks:
missed pings, restart times, back-off, broker revival times.

Solo-pool nodes cannot answer a ping while a task runs, so they are restarted for silence only
after ``missed_pings_solo`` ticks (default 60, five minutes at 5 s ticks) instead of
``missed_pings``; raise it if your solo tasks run longer.
"""

from __future__ import annotations

import dataclasses
from collections import deque

from scs_supervisor.validation import AUTOSCALE_POOLS

#: States in which a node's process is not running.  EXITED is left to supervisord, whose
#: autorestart starts it again at once.
STOPPED_STATES = ('STOPPED', 'EXITED', 'FATAL')
START_STATES = ('STOPPED', 'FATAL')
#: Actions that carry the desired queues and autoscale bounds to a worker by remote control.
REMOTE_KINDS = ('add_consumer', 'cancel_consumer', 'autoscale')


@dataclasses.dataclass(frozen=True)
class QueueDecl:
    """A queue as ``add_consumer`` declares it."""

    name: str
    exchange: str | None = None
    exchange_type: str = 'direct'
    routing_key: str | None = None
    options: tuple[tuple[str, object], ...] = ()


@dataclasses.dataclass(frozen=True)
class DesiredNode:
    name: str
    nodename: str
    broker_url: str
    queues: tuple[QueueDecl, ...]
    min_concurrency: int
    max_concurrency: int
    pool: str

    @property
    def group(self) -> str:
        return f'scs-{self.name}'


@dataclasses.dataclass
class Observed:
    """What one tick saw of one node. ``None`` means "not known this tick"."""

    state: str = 'ABSENT'
    pid: int = 0
    pong: bool | None = None
    queues: list[str] | None = None
    autoscaler: dict | None = None
    exits: int = 0  # unexpected exits since the last tick (supervisord restarted it)
    started: bool = True  # False for a group just added, which supervisord starts itself


@dataclasses.dataclass(frozen=True)
class Policy:
    missed_pings: int = 3
    missed_pings_solo: int = 60
    wait_after_broker_revived: float = 35.0
    restart_limit: int = 1
    restart_window: float = 60.0
    failed_backoff: float = 300.0
    failed_backoff_max: float = 3600.0


@dataclasses.dataclass(frozen=True)
class Action:
    """``kind`` is start, kill (restart an unresponsive worker), hold (stop a worker that
    crashes too often), add_consumer, cancel_consumer or autoscale."""

    kind: str
    node: str
    queue: QueueDecl | None = None
    reason: str = ''


@dataclasses.dataclass
class NodeMemory:
    missed_pings: int = 0
    last_pong: float | None = None
    restarts: deque = dataclasses.field(default_factory=deque)
    restart_count: int = 0
    failed_reason: str = ''
    retry_at: float = 0.0
    backoff: float = 0.0
    last_error: str = ''
    killed: int = 0  # exits still to come from our own kills: not crashes


@dataclasses.dataclass
class BrokerMemory:
    up: bool | None = None
    down_since: float | None = None
    revived_at: float | None = None
    last_error: str = ''

    def in_grace(self, now: float, policy: Policy) -> bool:
        return (self.revived_at is not None
                and now - self.revived_at < policy.wait_after_broker_revived)


class Reconciler:
    """Remembers across ticks and decides what to repair."""

    def __init__(self, policy: Policy | None = None):
        self.policy = policy or Policy()
        self.nodes: dict[str, NodeMemory] = {}
        self.brokers: dict[str, BrokerMemory] = {}

    def node(self, name: str) -> NodeMemory:
        return self.nodes.setdefault(name, NodeMemory())

    def broker(self, url: str) -> BrokerMemory:
        return self.brokers.setdefault(url, BrokerMemory())

    # -- observing -----------------------------------------------------------------------------

    def broker_seen(self, url: str, up: bool, now: float, error: str = '') -> None:
        """Record a probe; a down -> up change starts the grace period."""
        memory = self.broker(url)
        if up and memory.up is False:
            memory.revived_at = now
        if not up and memory.up is not False:
            memory.down_since = now
        if up:
            memory.down_since = None
        memory.up, memory.last_error = up, error
        if not up:  # silence while the broker is away says nothing about the workers
            for node in self.nodes.values():
                node.missed_pings = 0

    def pings_seen(self, desired: list[DesiredNode], observed: dict[str, Observed],
                   now: float) -> None:
        """Count missed pings of RUNNING nodes whose broker is up and not in grace."""
        for node in desired:
            memory, seen = self.node(node.name), observed.get(node.name)
            if seen is None or seen.state != 'RUNNING' or seen.pong is None:
                memory.missed_pings = 0
                continue
            if seen.pong:
                memory.missed_pings, memory.last_pong = 0, now
                if memory.failed_reason and now >= memory.retry_at:
                    memory.failed_reason = ''
                continue
            broker = self.broker(node.broker_url)
            if broker.up and not broker.in_grace(now, self.policy):
                memory.missed_pings += 1

    def forget(self, names: set[str]) -> None:
        for name in set(self.nodes) - names:
            del self.nodes[name]

    # -- deciding ------------------------------------------------------------------------------

    def decide(self, desired: list[DesiredNode], observed: dict[str, Observed],
               now: float) -> list[Action]:
        """The repairs due now.  Restarts are recorded (and rate limited) as they are decided."""
        actions: list[Action] = []
        for node in desired:
            seen = observed.get(node.name) or Observed()
            memory = self.node(node.name)
            if seen.exits and not self._count_exits(memory, seen.exits, now):
                if seen.state not in STOPPED_STATES:
                    actions.append(Action('hold', node.name, reason=memory.failed_reason))
                continue
            if seen.state in START_STATES and seen.started:
                self._restart(actions, node, memory, now, 'start',
                              f'supervisord reports {seen.state}')
                continue
            if seen.state != 'RUNNING':
                continue
            broker = self.broker(node.broker_url)
            if not broker.up:
                continue  # paused: nothing broker-dependent while it is away
            threshold = (self.policy.missed_pings_solo if node.pool == 'solo'
                         else self.policy.missed_pings)
            if memory.missed_pings >= threshold and not broker.in_grace(now, self.policy):
                if self._restart(actions, node, memory, now, 'kill',
                                 f'missed {memory.missed_pings} pings'):
                    memory.missed_pings = 0
                continue
            actions += self._queue_repairs(node, seen)
            actions += self._autoscale_repair(node, seen)
        return actions

    def _restart(self, actions, node, memory: NodeMemory, now, kind, reason) -> bool:
        """Restart if the rate limit allows; else mark the node failed until its back-off."""
        if now < memory.retry_at or not self._within_limit(memory, now, reason):
            return False
        memory.restarts.append(now)
        memory.restart_count += 1
        if kind == 'kill':
            memory.killed += 1
        actions.append(Action(kind, node.name, reason=reason))
        return True

    def _count_exits(self, memory: NodeMemory, exits: int, now: float) -> bool:
        """supervisord restarted a crashed worker ``exits`` times: those count as restarts.

        The exit that follows our own kill of an unresponsive worker was counted when it was
        decided.
        """
        ours = min(exits, memory.killed)
        memory.killed -= ours
        for _ in range(exits - ours):
            if not self._within_limit(memory, now, 'exited unexpectedly'):
                return False
            memory.restarts.append(now)
            memory.restart_count += 1
        return True

    def _within_limit(self, memory: NodeMemory, now: float, reason: str) -> bool:
        policy = self.policy
        while memory.restarts and now - memory.restarts[0] >= policy.restart_window:
            memory.restarts.popleft()
        if not memory.restarts:
            memory.backoff = 0.0
        if len(memory.restarts) < policy.restart_limit:
            return True
        if now >= memory.retry_at:  # a new failure, not the same one seen again
            memory.backoff = min(max(memory.backoff * 2, policy.failed_backoff),
                                 policy.failed_backoff_max)
            memory.retry_at = now + memory.backoff
        memory.failed_reason = (f'restarted too often ({len(memory.restarts)} in '
                                f'{policy.restart_window:.0f}s; last: {reason}); '
                                f'next try in {memory.retry_at - now:.0f}s')
        return False

    @staticmethod
    def _queue_repairs(node: DesiredNode, seen: Observed) -> list[Action]:
        if seen.queues is None:
            return []
        wanted = {q.name: q for q in node.queues}
        actions = [Action('add_consumer', node.name, queue=q, reason='missing')
                   for name, q in wanted.items() if name not in seen.queues]
        actions += [Action('cancel_consumer', node.name, queue=QueueDecl(name), reason='extra')
                    for name in sorted(set(seen.queues) - set(wanted))]
        return actions

    @staticmethod
    def _autoscale_repair(node: DesiredNode, seen: Observed) -> list[Action]:
        if node.pool not in AUTOSCALE_POOLS or not seen.autoscaler:
            return []
        current = (seen.autoscaler.get('max'), seen.autoscaler.get('min'))
        if current == (node.max_concurrency, node.min_concurrency):
            return []
        return [Action('autoscale', node.name,
                       reason=f'max,min {current[0]},{current[1]} -> '
                              f'{node.max_concurrency},{node.min_concurrency}')]


def current_actions(actions: list[Action], loaded: dict[str, DesiredNode],
                    fresh: dict[str, DesiredNode]) -> list[Action]:
    """The actions still right to carry out, when they were decided from the desired state
    ``loaded`` and the database now holds ``fresh`` (both by node name).

    A sync applies a live change to a running worker itself (the fast path), so a worker seen
    consuming a queue that an outdated desired state does not list may be right, and
    cancelling it would undo the change.  Remote-control actions for a node whose desired state
    changed wait for a cycle with the new one; those for other nodes, and starts, kills and
    holds, go ahead.
    """
    return [a for a in actions
            if a.kind not in REMOTE_KINDS or loaded.get(a.node) == fresh.get(a.node)]
