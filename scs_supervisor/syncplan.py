"""Which supervisord groups a sync touches: the diff of a reread, restricted to scs's own groups.

Pure: names in, plan out.  Hand-written programs never appear in a plan, whatever the reread says
about them.
"""

from __future__ import annotations

import dataclasses
import shlex
from collections.abc import Iterable

from scs_supervisor.programs import GROUP_PREFIX, is_managed_group


@dataclasses.dataclass(frozen=True)
class SyncPlan:
    """Groups to add, to stop-remove-add (changed) and to stop-remove."""

    add: tuple[str, ...] = ()
    change: tuple[str, ...] = ()
    remove: tuple[str, ...] = ()
    #: Changed groups whose running worker can take the change live (queues, autoscale).
    live: tuple[str, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.add or self.change or self.remove or self.live)

    def as_result(self) -> dict[str, list[str]]:
        """Node names per action, as ``scs.sync()`` reports them."""
        def nodes(groups):
            return sorted(g[len(GROUP_PREFIX):] for g in groups)
        return {'added': nodes(self.add), 'changed': nodes(self.change),
                'removed': nodes(self.remove), 'reconfigured': nodes(self.live)}


def plan_sync(added: Iterable[str], changed: Iterable[str], removed: Iterable[str],
              live: Iterable[str] = ()) -> SyncPlan:
    """Keep only the managed groups of a reread's ``(added, changed, removed)`` names.

    ``live`` names the changed groups that differ only in what a running worker can change
    by remote control; they are reconfigured instead of restarted.
    """
    def managed(names):
        return tuple(sorted(n for n in names if is_managed_group(n)))
    live = set(live)
    return SyncPlan(add=managed(added), change=managed(set(changed) - live),
                    remove=managed(removed), live=managed(set(changed) & live))


def live_arguments(argv: list[str]) -> list[str]:
    """``argv`` with the values remote control can change (queues, autoscale) blanked."""
    out, skip = [], False
    for arg in argv:
        if skip:
            out.append('<queues>')
            skip = False
        elif arg == '-Q':
            out.append(arg)
            skip = True
        elif arg.startswith('--autoscale='):
            out.append('--autoscale=<live>')
        else:
            out.append(arg)
    return out


def is_live_change(old_command: str, new_command: str) -> bool:
    """True when two worker commands differ only in queues or autoscale bounds."""
    return live_arguments(shlex.split(old_command)) == live_arguments(shlex.split(new_command))


@dataclasses.dataclass(frozen=True)
class LiveDiff:
    """What remote control must change in a worker reconfigured in place."""

    add: tuple[str, ...] = ()
    cancel: tuple[str, ...] = ()
    #: New ``(max, min)`` autoscale bounds, or None when they did not change.
    autoscale: tuple[int, int] | None = None

    def __bool__(self) -> bool:
        return bool(self.add or self.cancel or self.autoscale)


def live_diff(old_command: str, new_command: str) -> LiveDiff:
    """The queues to add and cancel and the new autoscale bounds between two worker commands
    (see :func:`is_live_change`): queues in ``new_command``'s order."""
    old, new = shlex.split(old_command), shlex.split(new_command)
    old_queues, new_queues = _queues(old), _queues(new)
    bounds = _autoscale(new)
    return LiveDiff(add=tuple(q for q in new_queues if q not in old_queues),
                    cancel=tuple(q for q in old_queues if q not in new_queues),
                    autoscale=bounds if bounds != _autoscale(old) else None)


def _queues(argv: list[str]) -> list[str]:
    for arg, value in zip(argv, argv[1:], strict=False):
        if arg == '-Q':
            return [q for q in value.split(',') if q]
    return []


def _autoscale(argv: list[str]) -> tuple[int, int] | None:
    for arg in argv:
        if arg.startswith('--autoscale='):
            high, _, low = arg[len('--autoscale='):].partition(',')
            if high.isdigit() and low.isdigit():
                return int(high), int(low)
    return None
