"""A client of the ``scs`` XML-RPC namespace over supervisord's socket (HTTP API, tests)."""

from __future__ import annotations

import xmlrpc.client

from supervisor.xmlrpc import Faults, SupervisorTransport

from scs_supervisor.programs import group_name
from scs_supervisor.store import Conflict

NULLABLE = ('app', 'broker', 'directory')


def from_rpc(node: dict) -> dict:
    """XML-RPC carries no None: turn empty optional fields back into null."""
    return {k: (None if k in NULLABLE and v == '' else v) for k, v in node.items()}


def restart_node(supervisor, name: str) -> None:
    """Stop a node's worker and start it again, through supervisord's own ``supervisor``
    namespace; :class:`~scs_supervisor.store.Conflict` when the node is not in supervisord."""
    group = group_name(name)
    try:
        supervisor.stopProcessGroup(group, True)
    except xmlrpc.client.Fault as fault:
        if fault.faultCode != Faults.BAD_NAME:
            raise
        raise Conflict(f'node {name} has no process in supervisord yet (see its render_error)'
                       ) from None
    try:
        supervisor.startProcessGroup(group, False)
    except xmlrpc.client.Fault as fault:
        if fault.faultCode != Faults.ALREADY_STARTED:  # the loop was quicker
            raise


class SupervisorClient:
    """A fresh proxy per call: the WSGI server answers from several threads."""

    def __init__(self, serverurl: str):
        self.serverurl = serverurl

    def proxy(self) -> xmlrpc.client.ServerProxy:
        transport = SupervisorTransport(None, None, self.serverurl)
        return xmlrpc.client.ServerProxy('http://127.0.0.1', transport)

    def scs(self):
        return self.proxy().scs

    def sync(self) -> dict:
        return self.scs().sync()

    def get_node(self, name: str) -> dict:
        return from_rpc(self.scs().getNode(name))

    def start_operation(self, names: list[str], timeout: int) -> str:
        return self.scs().startOperation(names, timeout)

    def watch(self, names: list[str], timeout: int) -> dict:
        """Start an operation and wait for it, in one request."""
        return self.scs().watch(names, timeout)

    def get_operation(self, op_id: str) -> dict:
        return self.scs().getOperation(op_id)

    def ping(self) -> str:
        return self.scs().getAPIVersion()

    def process_states(self) -> tuple[list[dict], dict[str, str]]:
        """Every process's state and the nodes that could not be rendered, in one round trip."""
        infos, errors = self.proxy().system.multicall([
            {'methodName': 'supervisor.getAllProcessInfo', 'params': []},
            {'methodName': 'scs.getRenderErrors', 'params': []}])
        for result in (infos, errors):
            if isinstance(result, dict) and 'faultCode' in result:
                raise xmlrpc.client.Fault(result['faultCode'], result['faultString'])
        return infos, errors

    def status(self) -> dict:
        """The supervisor loop's view of this agent (brokers, pauses, last tick)."""
        return self.scs().getStatus()

    def process_info(self, name: str) -> dict:
        return self.proxy().supervisor.getProcessInfo(name)

    def restart_node(self, name: str) -> None:
        restart_node(self.proxy().supervisor, name)
