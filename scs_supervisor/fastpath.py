"""The fast path of a live change: the sync itself tells the running worker.

When ``scs.sync`` reconfigures a group in place (only its queues or autoscale bounds changed),
the worker still runs with the old ones.  The sync hands the difference to :class:`FastPath`,
whose one thread sends ``add_consumer`` (with the Queue row's full declaration),
``cancel_consumer`` and ``autoscale`` to that worker at once, under the same deadlines as the
supervisor loop, then asks it (``active_queues``) whether it consumes exactly its queues.  It is
a head start, not a guarantee: a failure is logged and never fails the sync, and unless the
check came back right the loop is woken to observe the worker and repair what is still wrong.
No broker call runs in supervisord's main loop: it only hands work to the fast-path thread.
"""

from __future__ import annotations

import dataclasses
import queue
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable

from scs_supervisor.control import Controllers
from scs_supervisor.reconcile import DesiredNode, QueueDecl
from scs_supervisor.syncplan import LiveDiff

#: A report line: (level, message), logged by supervisord's main loop.
Report = list[tuple[str, str]]
#: Pauses (s) before asking again a worker that acknowledged a change but does not show it
#: yet: a worker declares a new queue in a few milliseconds, and one check costs about one.
RECHECKS = (0.001, 0.002, 0.004, 0.008)


@dataclasses.dataclass(frozen=True)
class LiveChange:
    """Remote-control commands for one running worker."""

    node: str
    nodename: str
    broker_url: str
    #: Every queue the worker should consume once the commands are carried out.
    queues: tuple[str, ...] = ()
    add: tuple[QueueDecl, ...] = ()
    cancel: tuple[str, ...] = ()
    #: New ``(max, min)`` autoscale bounds, or None.
    autoscale: tuple[int, int] | None = None

    def __bool__(self) -> bool:
        return bool(self.add or self.cancel or self.autoscale)


@dataclasses.dataclass(frozen=True)
class Observation:
    """A worker's answer to the fast path's ``active_queues`` check."""

    asked_at: float  # time.monotonic() when the check was sent
    queues: tuple[str, ...] | None  # None: no answer


def live_change(node: DesiredNode, diff: LiveDiff) -> LiveChange:
    """The commands that carry ``diff`` to ``node``'s worker, each queue as its row declares it."""
    declared = {q.name: q for q in node.queues}
    return LiveChange(node=node.name, nodename=node.nodename, broker_url=node.broker_url,
                      queues=tuple(declared),
                      add=tuple(declared.get(name, QueueDecl(name)) for name in diff.add),
                      cancel=diff.cancel, autoscale=diff.autoscale)


class FastPath:
    """One thread that sends live changes in the order the syncs submitted them, then checks
    with one ``active_queues`` broadcast per broker that each worker consumes its queues.

    One thread keeps a queue added by one sync and removed by the next from crossing on the
    way.  ``controllers`` are the process's remote-control clients, which it does not own.
    """

    def __init__(self, controllers: Controllers, clock=time.monotonic):
        self._controllers = controllers
        self._clock = clock
        self._jobs: queue.SimpleQueue = queue.SimpleQueue()
        self._pending: Counter[str] = Counter()
        self._observed: dict[str, Observation] = {}
        self._connecting: set[str] = set()
        self._changed = threading.Condition()
        self._thread: threading.Thread | None = None

    def submit(self, changes: list[LiveChange], done: Callable[[Report, bool], None]) -> None:
        """Send and check ``changes`` from the fast-path thread, then call ``done(report,
        verified)`` there (``verified``: every worker acknowledged every command and answered
        the check consuming exactly its queues).

        Never blocks: safe to call from supervisord's main loop.
        """
        with self._changed:
            self._pending.update(change.node for change in changes)
        self._start()
        self._jobs.put((changes, done))

    def _start(self) -> None:
        # Started on first use: supervisord forks to daemonize after the factory ran.
        if self._thread is None or not self._thread.is_alive():
            self._thread = threading.Thread(target=self._run, name='scs-fast-path',
                                            daemon=True)
            self._thread.start()

    def connect(self, urls: Iterable[str]) -> None:
        """Connect to the brokers of ``urls`` not connected yet, from the fast-path thread, so
        that the first live change does not pay for it.  Never blocks."""
        new = [url for url in set(urls) if url not in self._controllers
               and url not in self._connecting]
        if new:
            self._connecting.update(new)
            self._start()
            self._jobs.put((new, None))

    def settle(self, nodes: Iterable[str], timeout: float) -> bool:
        """Wait until no change to ``nodes`` is waiting, being sent or being checked; False on
        timeout."""
        nodes = list(nodes)
        with self._changed:
            return self._changed.wait_for(
                lambda: not any(self._pending[n] for n in nodes), max(timeout, 0))

    def observed(self, node: str, since: float) -> tuple[str, ...] | None:
        """The queues ``node``'s worker answered to a check sent at or after ``since``
        (``time.monotonic()``), or None."""
        with self._changed:
            seen = self._observed.get(node)
        return seen.queues if seen is not None and seen.asked_at >= since else None

    def close(self) -> None:
        self._jobs.put(None)

    def _run(self) -> None:
        while (job := self._jobs.get()) is not None:
            changes, done = job
            if done is None:  # connect: changes are broker URLs
                for url in changes:
                    try:
                        self._controllers(url).connect()
                    except Exception:  # noqa: S110  (the first command will tell)
                        pass
                continue
            try:
                report, verified = self.apply(changes)
            except Exception as exc:  # our bug: report it, keep the thread alive
                report, verified = [('error', f'scs: fast path: {type(exc).__name__}: '
                                              f'{exc}')], False
            finally:
                with self._changed:
                    self._pending.subtract(change.node for change in changes)
                    self._pending = +self._pending  # drop the zeros
                    self._changed.notify_all()
            try:
                done(report, verified)
            except Exception:  # noqa: S110  (done only hands the report to the main loop)
                pass

    def apply(self, changes: list[LiveChange]) -> tuple[Report, bool]:
        """Send every change, then check the workers that acknowledged theirs."""
        report: Report = []
        acknowledged: dict[str, list[LiveChange]] = {}
        for change in changes:
            try:
                lines, ok = self.send(change)
            except Exception as exc:  # our bug: report it, go on with the others
                lines, ok = [('error', f'scs: fast path {change.node}: '
                                       f'{type(exc).__name__}: {exc}')], False
            report += lines
            if ok:
                acknowledged.setdefault(change.broker_url, []).append(change)
        verified = sum(map(len, acknowledged.values())) == len(changes)
        for url, group in acknowledged.items():
            lines, ok = self.check(url, group)
            report += lines
            verified = verified and ok
        return report, verified

    def check(self, url: str, group: list[LiveChange]) -> tuple[Report, bool]:
        """Ask the workers of ``group`` (one broker) what they consume; ask those not there
        yet again after each pause of :data:`RECHECKS`, since ``ok`` only means the worker
        scheduled the change (it declares and consumes the queue at its loop's next turn)."""
        report: Report = []
        waiting, wrong = list(group), []
        for pause in (0.0, *RECHECKS):
            time.sleep(pause)
            asked_at = self._clock()
            try:
                answers = self._controllers(url).active_queues(c.nodename for c in waiting)
            except Exception as exc:
                names = ', '.join(c.node for c in waiting)
                report.append(('warn', f'scs: fast path: checking {names} failed: '
                                       f'{type(exc).__name__}: {exc}; left to the loop'))
                return report, False
            again = []
            for change in waiting:
                got = answers.get(change.nodename)
                with self._changed:
                    self._observed[change.node] = Observation(
                        asked_at, tuple(got) if got is not None else None)
                if got is not None and set(got) == set(change.queues):
                    report.append(('info', f'scs: fast path {change.node}: consuming '
                                           f'{",".join(change.queues)}'))
                elif got is not None:
                    again.append(change)  # answered, not there yet: ask again
                else:
                    wrong.append((change, got))
            waiting = again
            if not waiting:
                break
        wrong += [(change, self.observed(change.node, 0)) for change in waiting]
        for change, got in wrong:
            seen = ','.join(got) if got is not None else '(no answer)'
            report.append(('warn', f'scs: fast path {change.node}: consuming {seen}, not '
                                   f'{",".join(change.queues)}; left to the loop'))
        return report, not wrong

    def send(self, change: LiveChange) -> tuple[Report, bool]:
        """Send one worker its commands; stop at the first that fails (the loop repairs).

        Returns the report and whether every command was acknowledged.
        """
        control = self._controllers(change.broker_url)
        commands: list[tuple[str, Callable[[], str]]] = []
        for q in change.add:
            commands.append((f'add_consumer {q.name}', lambda q=q: control.add_consumer(
                change.nodename, q.name, q.exchange, q.exchange_type, q.routing_key,
                dict(q.options))))
        for name in change.cancel:
            commands.append((f'cancel_consumer {name}',
                             lambda name=name: control.cancel_consumer(change.nodename, name)))
        if change.autoscale is not None:
            high, low = change.autoscale
            commands.append((f'autoscale {high},{low}',
                             lambda: control.autoscale(change.nodename, high, low)))
        report: Report = []
        for what, command in commands:
            try:
                answer = command()
            except Exception as exc:
                report.append(('warn', f'scs: fast path {change.node}: {what} failed: '
                                       f'{type(exc).__name__}: {exc}; left to the loop'))
                return report, False
            report.append(('info', f'scs: fast path {change.node}: {what}: {answer}'))
        return report, True
