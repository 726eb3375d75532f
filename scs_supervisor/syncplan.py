"""Which supervisord groups a sync touches: the diff of a reread, restricted to scs's own groups.

Pure: names in, plan out.  Hand-written programs never appear in a plan, whatever the reread says
about them.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable

from scs_supervisor.programs import GROUP_PREFIX, is_managed_group


@dataclasses.dataclass(frozen=True)
class SyncPlan:
    """Groups to add, to stop-remove-add (changed) and to stop-remove."""

    add: tuple[str, ...] = ()
    change: tuple[str, ...] = ()
    remove: tuple[str, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.add or self.change or self.remove)

    def as_result(self) -> dict[str, list[str]]:
        """Node names per action, as ``scs.sync()`` reports them."""
        def nodes(groups):
            return sorted(g[len(GROUP_PREFIX):] for g in groups)
        return {'added': nodes(self.add), 'changed': nodes(self.change),
                'removed': nodes(self.remove)}


def plan_sync(added: Iterable[str], changed: Iterable[str], removed: Iterable[str]) -> SyncPlan:
    """Keep only the managed groups of a reread's ``(added, changed, removed)`` names."""
    def managed(names):
        return tuple(sorted(n for n in names if is_managed_group(n)))
    return SyncPlan(add=managed(added), change=managed(changed), remove=managed(removed))
