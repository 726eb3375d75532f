"""``scs-listener``: the supervisor loop, run by supervisord as ``[eventlistener:scs]``.

The main thread speaks supervisord's event-listener protocol and nothing else: it reads each
event, notes what matters, and answers ``OK`` at once.  A worker thread runs the loop: every
``tick_interval`` seconds, and at once when a node enters RUNNING or a sync's live change was
not seen through, it applies database changes (``scs.sync``), observes every node (one ping, one
``active_queues`` and one ``stats`` broadcast per broker), asks :mod:`.reconcile` what to
repair and does it.  stdout carries only the protocol; logs go to stderr.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
import time
import traceback
from collections import Counter
from xmlrpc.client import Fault

from kombu.utils.url import maybe_sanitize_url

from scs_supervisor.control import BrokerUnavailable, Controllers, probe_broker
from scs_supervisor.programs import GROUP_PREFIX, is_managed_group
from scs_supervisor.reconcile import (
    REMOTE_KINDS,
    Action,
    DesiredNode,
    Observed,
    Policy,
    Reconciler,
    current_actions,
)
from scs_supervisor.settings import Settings
from scs_supervisor.store import Store, StoreError
from scs_supervisor.validation import AUTOSCALE_POOLS

log = logging.getLogger('scs.listener')
#: Seconds a successful broker probe stays good for.
PROBE_REUSE = 1.0


class ProtocolError(Exception):
    """supervisord sent something that is not an event envelope."""


def parse_tokens(line: str) -> dict[str, str]:
    """``key:value key:value`` (values may hold colons) -> dict."""
    pairs = {}
    for token in line.split():
        key, sep, value = token.partition(':')
        if not sep:
            raise ProtocolError(f'bad token {token!r}')
        pairs[key] = value
    return pairs


class Loop:
    """Observes and repairs this agent's nodes; one cycle at a time, in its own thread."""

    def __init__(self, settings: Settings, store: Store, rpc, policy: Policy | None = None,
                 clock=time.monotonic, wall=time.time):
        self.settings, self.store, self.rpc = settings, store, rpc
        self.reconciler = Reconciler(policy or policy_from(settings))
        self.clock, self.wall = clock, wall
        self.desired: list[DesiredNode] = []
        self.revision: int | None = None
        self.applied_revision: int | None = None
        self.probed: dict[str, float] = {}
        self.controllers = Controllers(settings.control_timeout)
        self.exits: Counter = Counter()
        #: Actions carried out since the listener started, by kind (for /metrics).
        self.repairs: Counter = Counter()
        self.database_error = ''
        self.last_tick = {'duration': None, 'at': None, 'count': 0, 'round_trips': 0}
        self.last_began: float | None = None
        self._lock = threading.Lock()
        self._wake = threading.Event()

    # -- called from the protocol thread -------------------------------------------------------

    def trigger(self) -> None:
        self._wake.set()

    def tick(self) -> None:
        """supervisord's TICK: a backstop for the loop's own timer, so it starts a cycle only
        when one is due (a longer ``tick_interval`` stays longer)."""
        if self.last_began is None or self.clock() - self.last_began >= self.settings.tick_interval:
            self._wake.set()

    def applied(self, revision: int, wake: bool = True) -> None:
        """supervisord has just applied ``revision``: no need to ask it to sync again.

        ``wake``: run a cycle now (else at the next tick).
        """
        self.applied_revision = revision
        if wake:
            self._wake.set()

    def note_exit(self, node: str) -> None:
        with self._lock:
            self.exits[node] += 1
        self._wake.set()

    # -- the loop ------------------------------------------------------------------------------

    def run_forever(self, stop: threading.Event) -> None:
        while not stop.is_set():
            self._wake.wait(self.settings.tick_interval)
            self._wake.clear()
            try:
                self.cycle()
            except Exception:  # never let one bad tick end the loop
                log.error('tick failed:\n%s', traceback.format_exc())

    def cycle(self) -> None:
        began = self.last_began = self.clock()
        self.round_trips = 0
        self._refresh_desired()
        observed = self._observe_supervisord()
        with self._lock:
            exits, self.exits = self.exits, Counter()
        for name, count in exits.items():
            if name in observed:
                observed[name].exits = count
        by_broker: dict[str, list[DesiredNode]] = {}
        for node in self.desired:
            by_broker.setdefault(node.broker_url, []).append(node)
        for url, nodes in by_broker.items():
            self._observe_broker(url, nodes, observed)
        now = self.clock()
        self.reconciler.pings_seen(self.desired, observed, now)
        actions = self.reconciler.decide(self.desired, observed, now)
        self._carry_out(self._current(actions), observed)
        self.last_tick = {'duration': round(self.clock() - began, 4), 'at': self.wall(),
                          'count': self.last_tick['count'] + 1,
                          'round_trips': self.round_trips}
        self._record(observed)

    def _refresh_desired(self) -> None:
        """Apply database changes made by anyone, then reload the desired state."""
        try:
            revision = self.store.revision()
            if revision != self.revision:
                if revision != self.applied_revision:
                    result = self.rpc.scs.sync()
                    if any(result.get(k) for k in ('added', 'changed', 'removed')):
                        log.info('applied database revision %s: %s', revision, result)
                self.desired = self.store.desired_nodes(self.settings.agent_id)
                self.reconciler.forget({n.name for n in self.desired})
                self.revision = revision
            self.database_error = ''
        except StoreError as exc:  # keep the last desired state; stop and delete nothing
            self.database_error = str(exc)
            log.warning('database: %s; keeping the last known nodes', exc)
        except Fault as exc:
            self.database_error = exc.faultString
            log.warning('sync failed: %s', exc.faultString)

    def _current(self, actions: list[Action]) -> list[Action]:
        """Hold back remote-control actions for nodes changed in the database since the desired
        state was loaded (a sync may just have applied the change by its fast path, which this
        cycle's observations would undo); then run again at once, with the new desired state."""
        if not any(a.kind in REMOTE_KINDS for a in actions):
            return actions
        try:
            if self.store.revision() == self.revision:
                return actions
            fresh = {n.name: n for n in self.store.desired_nodes(self.settings.agent_id)}
        except StoreError:  # nobody can change the desired state while the database is away
            return actions
        kept = current_actions(actions, {n.name: n for n in self.desired}, fresh)
        if len(kept) < len(actions):
            log.info('desired state changed during this cycle: its queue and autoscale repairs '
                     'wait for the next one')
            self._wake.set()
        return kept

    def _observe_supervisord(self) -> dict[str, Observed]:
        infos = {i['group']: i for i in self.rpc.supervisor.getAllProcessInfo()}
        observed = {}
        for node in self.desired:
            info = infos.get(node.group)
            observed[node.name] = (Observed(state=info['statename'], pid=info['pid'],
                                            started=info['start'] > 0)
                                   if info else Observed())
        return observed

    def _observe_broker(self, url: str, nodes: list[DesiredNode],
                        observed: dict[str, Observed]) -> None:
        now = self.clock()
        try:
            # A cycle woken by an event right after a tick trusts that tick's probe.
            if now - self.probed.get(url, -PROBE_REUSE) >= PROBE_REUSE:
                probe_broker(url, self.settings.control_timeout)
                self.probed[url] = now
                self.round_trips += 1
        except BrokerUnavailable as exc:
            self.probed.pop(url, None)
            self.reconciler.broker_seen(url, False, now, str(exc))
            self.controllers.drop(url)
            return
        self.reconciler.broker_seen(url, True, now)
        running = [n for n in nodes if observed[n.name].state == 'RUNNING']
        if not running:
            return
        control = self.controllers(url)
        names = {n.nodename: n for n in running}
        try:
            pongs = control.ping(names)
            queues = control.active_queues(names)
            scaled = [n.nodename for n in running if n.pool in AUTOSCALE_POOLS]
            autoscalers = control.autoscalers(scaled)
            self.round_trips += 3 if scaled else 2
        except Exception as exc:
            self.reconciler.broker(url).last_error = f'{type(exc).__name__}: {exc}'
            log.warning('broker %s: %s', maybe_sanitize_url(url), exc)
            return
        for nodename, node in names.items():
            seen = observed[node.name]
            seen.pong = nodename in pongs
            seen.queues = queues.get(nodename)
            seen.autoscaler = autoscalers.get(nodename)

    def _carry_out(self, actions: list[Action], observed: dict[str, Observed]) -> None:
        nodes = {n.name: n for n in self.desired}
        verify: dict[str, list[DesiredNode]] = {}
        for action in actions:
            node = nodes[action.node]
            memory = self.reconciler.node(node.name)
            try:
                self._do(action, node, observed[node.name])
                self.repairs[action.kind] += 1
                log.info('%s %s: %s', action.kind, node.name, action.reason)
                if action.kind in ('add_consumer', 'cancel_consumer'):
                    verify.setdefault(node.broker_url, []).append(node)
            except Exception as exc:
                memory.last_error = f'{action.kind}: {type(exc).__name__}: {exc}'[:500]
                log.warning('%s %s failed: %s', action.kind, node.name, exc)
        # "ok" only means the worker scheduled the change: check what it consumes now.
        for url, changed in verify.items():
            try:
                queues = self.controllers(url).active_queues(n.nodename for n in changed)
                self.round_trips += 1
            except Exception as exc:
                log.warning('verifying queues failed: %s', exc)
                continue
            for node in changed:
                observed[node.name].queues = queues.get(node.nodename)

    def _do(self, action: Action, node: DesiredNode, seen: Observed) -> None:
        process = f'{node.group}:{node.group}'
        if action.kind == 'start':
            try:
                self.rpc.supervisor.startProcess(process, False)
            except Fault as fault:
                if 'ALREADY_STARTED' not in fault.faultString:
                    raise
        elif action.kind == 'kill':
            # An unresponsive worker may ignore TERM (or be stopped): kill its whole process
            # group; supervisord's autorestart starts a fresh one.
            os.killpg(seen.pid, signal.SIGKILL)
        elif action.kind == 'hold':
            self.rpc.supervisor.stopProcess(process, False)
        else:
            control = self.controllers(node.broker_url)
            if action.kind == 'add_consumer':
                q = action.queue
                control.add_consumer(node.nodename, q.name, q.exchange, q.exchange_type,
                                     q.routing_key, dict(q.options))
            elif action.kind == 'cancel_consumer':
                control.cancel_consumer(node.nodename, action.queue.name)
            elif action.kind == 'autoscale':
                control.autoscale(node.nodename, node.max_concurrency, node.min_concurrency)

    def _record(self, observed: dict[str, Observed]) -> None:
        now = self.clock()
        statuses = {}
        for node in self.desired:
            seen, memory = observed[node.name], self.reconciler.node(node.name)
            statuses[node.name] = {
                'last_pong': (self.wall() - (now - memory.last_pong)
                              if memory.last_pong is not None else None),
                'consuming': seen.queues, 'autoscaler': seen.autoscaler,
                'restarts': memory.restart_count, 'missed_pings': memory.missed_pings,
                'last_error': memory.last_error, 'failed': memory.failed_reason,
            }
        brokers = {}
        for url, memory in self.reconciler.brokers.items():
            brokers[maybe_sanitize_url(url)] = {
                'up': memory.up, 'last_error': memory.last_error,
                'revived_at': (self.wall() - (now - memory.revived_at)
                               if memory.revived_at is not None else None),
                'paused': (not memory.up) or memory.in_grace(now, self.reconciler.policy),
            }
        agent = {'brokers': brokers, 'last_tick': self.last_tick, 'repairs': dict(self.repairs),
                 'database_error': self.database_error, 'listener_pid': os.getpid()}
        try:
            self.store.record_status(self.settings.agent_id, statuses, agent)
        except StoreError as exc:
            log.warning('could not record status: %s', exc)


def policy_from(settings: Settings) -> Policy:
    return Policy(missed_pings=settings.missed_pings,
                  wait_after_broker_revived=settings.wait_after_broker_revived,
                  restart_limit=settings.restart_limit,
                  restart_window=settings.restart_window)


class Listener:
    """supervisord's event-listener protocol (superlance style: streams injected)."""

    def __init__(self, loop: Loop, stdin=None, stdout=None):
        self.loop = loop
        self.stdin = stdin or sys.stdin
        self.stdout = stdout or sys.stdout

    def runforever(self, test: bool = False) -> None:
        while True:
            self.stdout.write('READY\n')
            self.stdout.flush()
            line = self.stdin.readline()
            if not line:
                return  # supervisord closed our stdin: it is going away
            headers = parse_tokens(line)
            if 'len' not in headers or 'eventname' not in headers:
                raise ProtocolError(f'not an event header: {line!r}')
            # len counts characters (supervisord builds the payload as str).
            payload = self.stdin.read(int(headers['len']))
            self.handle(headers['eventname'], payload)
            self.stdout.write('RESULT 2\nOK')
            self.stdout.flush()
            if test:
                return

    def handle(self, eventname: str, payload: str) -> None:
        if eventname.startswith('TICK_'):
            self.loop.tick()
        elif eventname == 'REMOTE_COMMUNICATION':
            header, _, data = payload.partition('\n')
            if header == 'type:scs':
                tokens = dict(token.partition(':')[::2] for token in data.split())
                revision = tokens.get('revision', '')
                if revision.isdigit():
                    # The sync's fast path told every worker concerned and saw it consume
                    # its queues: the next tick is soon enough to look again.
                    self.loop.applied(int(revision),
                                      wake=tokens.get('fastpath') != 'verified')
                else:
                    self.loop.trigger()
        elif eventname.startswith('PROCESS_STATE_'):
            info = parse_tokens(payload.partition('\n')[0])
            group = info.get('groupname', '')
            if not is_managed_group(group):
                return
            state = eventname[len('PROCESS_STATE_'):]
            if state == 'EXITED' and info.get('expected') == '0':
                self.loop.note_exit(group[len(GROUP_PREFIX):])
            elif state in ('RUNNING', 'FATAL'):
                self.loop.trigger()


def main() -> None:
    """Entry point of ``scs-listener`` (started by supervisord only)."""
    if 'SUPERVISOR_SERVER_URL' not in os.environ:
        print('scs-listener: must be run by supervisord as an [eventlistener:x]',
              file=sys.stderr)
        raise SystemExit(2)
    logging.basicConfig(stream=sys.stderr, level=logging.INFO,
                        format='%(asctime)s %(levelname)s %(name)s: %(message)s')
    sys.stdin.reconfigure(encoding='utf-8', newline='\n')
    sys.stdout.reconfigure(encoding='utf-8', newline='\n')
    from supervisor import childutils

    settings = Settings.load()
    store = Store.from_settings(settings)
    loop = Loop(settings, store, childutils.getRPCInterface(os.environ))
    stop = threading.Event()
    threading.Thread(target=loop.run_forever, args=(stop,), name='scs-loop',
                     daemon=True).start()
    loop.trigger()
    try:
        Listener(loop).runforever()
    except ProtocolError as exc:
        log.error('%s; exiting so that supervisord restarts me', exc)
        raise SystemExit(1) from None
    finally:
        stop.set()
