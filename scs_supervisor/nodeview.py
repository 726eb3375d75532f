"""A node as users see it: its database fields plus what supervisord says of its process.

Pure: the same merge serves ``scs.getNode`` inside supervisord and the HTTP API's node list,
which reads the database itself and takes process states from ``getAllProcessInfo``.
"""

from __future__ import annotations

from scs_supervisor import programs


def with_process(node: dict, process: dict | None, render_error: str, host: str,
                 now: float) -> dict:
    """``node`` plus ``nodename``, ``state``, ``pid``, ``uptime`` and ``render_error``.

    ``process`` holds supervisord's ``statename``, ``pid`` and ``start`` (epoch seconds), or is
    None when the node's group is not loaded (disabled, or not applied yet).
    """
    if process is None:
        state, pid, uptime = 'ABSENT' if node['enabled'] else 'DISABLED', 0, 0
    else:
        state, pid = process['statename'], process['pid'] or 0
        uptime = int(now - process['start']) if pid and process['start'] else 0
    return {**node, 'nodename': f'{node["name"]}@{host}', 'state': state, 'pid': pid,
            'uptime': uptime, 'render_error': render_error}


def processes_by_node(infos: list[dict]) -> dict[str, dict]:
    """``getAllProcessInfo`` entries of scs-managed groups, by node name."""
    return {programs.node_name(info['group']): info for info in infos
            if programs.is_managed_group(info['group'])}
