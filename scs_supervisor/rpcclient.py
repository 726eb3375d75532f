"""A client of the ``scs`` XML-RPC namespace over supervisord's socket (HTTP API, tests)."""

from __future__ import annotations

import xmlrpc.client

from supervisor.xmlrpc import SupervisorTransport

NULLABLE = ('app', 'broker', 'directory')


def from_rpc(node: dict) -> dict:
    """XML-RPC carries no None: turn empty optional fields back into null."""
    return {k: (None if k in NULLABLE and v == '' else v) for k, v in node.items()}


class SupervisorClient:
    """A fresh proxy per call: the WSGI server answers from several threads."""

    def __init__(self, serverurl: str):
        self.serverurl = serverurl

    def scs(self):
        transport = SupervisorTransport(None, None, self.serverurl)
        return xmlrpc.client.ServerProxy('http://127.0.0.1', transport).scs

    def sync(self) -> dict:
        return self.scs().sync()

    def list_nodes(self) -> list[dict]:
        return [from_rpc(n) for n in self.scs().listNodes()]

    def get_node(self, name: str) -> dict:
        return from_rpc(self.scs().getNode(name))

    def start_operation(self, names: list[str], timeout: int) -> str:
        return self.scs().startOperation(names, timeout)

    def wait_operation(self, op_id: str) -> dict:
        return self.scs().waitOperation(op_id)

    def get_operation(self, op_id: str) -> dict:
        return self.scs().getOperation(op_id)

    def ping(self) -> str:
        return self.scs().getAPIVersion()
