"""The ``scs`` XML-RPC namespace inside supervisord (``[rpcinterface:scs]``).

Configure it with::

    [rpcinterface:scs]
    supervisor.rpcinterface_factory = scs_supervisor.rpcinterface:make_scs_rpcinterface
    ; optional, else SCS_* environment variables, else defaults:
    home = /var/lib/scs

Methods never block supervisord: database work runs in a thread and the answer comes back
through a deferred callback (see :mod:`.applier`).
"""

from __future__ import annotations

import os
import time
import types

from supervisor import events
from supervisor.http import NOT_DONE_YET
from supervisor.states import SupervisorStates, getProcessStateDescription
from supervisor.xmlrpc import Faults as SupervisorFaults
from supervisor.xmlrpc import RPCError

from scs_supervisor import programs, validation
from scs_supervisor.applier import Applier, ApplyError, Background
from scs_supervisor.nodeview import with_process
from scs_supervisor.operations import Operations
from scs_supervisor.settings import Settings
from scs_supervisor.store import NotFound, Unavailable, upgrade

API_VERSION = '1.0'
#: How often supervisord polls a pending answer, in seconds, while its loop turns: the loop
#: only turns on events, and the waker makes one when our threads finish (see Waker.linger).
POLL_DELAY = 0.001


class Faults:
    """Fault codes of the ``scs`` namespace: 1100-1199, far from supervisor's (1-99)."""

    DATABASE_UNAVAILABLE = 1101
    NODE_NOT_FOUND = 1102
    INVALID = 1103
    REREAD_FAILED = 1104
    RENDER_FAILED = 1105
    INTERNAL = 1106
    OPERATION_NOT_FOUND = 1107


def fault_name(code: int) -> str:
    for name, value in vars(Faults).items():
        if value == code:
            return name
    return 'UNKNOWN'


class ScsFault(RPCError):
    """An RPCError whose text names our own fault (supervisor's lookup only knows its own)."""

    def __init__(self, code: int, extra: str):
        super().__init__(code, extra)
        self.text = f'{fault_name(code)}: {extra}'


APPLY_FAULTS = {
    'database': Faults.DATABASE_UNAVAILABLE,
    'reread': Faults.REREAD_FAILED,
    'render': Faults.RENDER_FAILED,
    'internal': Faults.INTERNAL,
}


def xmlrpc_safe(value):
    """XML-RPC has no None: use empty strings."""
    if value is None:
        return ''
    if isinstance(value, dict):
        return {str(k): xmlrpc_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [xmlrpc_safe(v) for v in value]
    return value


def deferred(poll):
    """Wrap ``poll`` (returns NOT_DONE_YET until done) as supervisord's deferred callback."""
    def callback():
        return poll()
    callback.delay = POLL_DELAY
    assert isinstance(callback, types.FunctionType)
    return callback


class ScsNamespaceRPCInterface:
    """Apply the database's nodes to supervisord and report their state."""

    def __init__(self, supervisord, applier: Applier):
        self.supervisord = supervisord
        self.applier = applier

    def _update(self, name: str) -> None:
        if self.supervisord.options.mood < SupervisorStates.RUNNING:
            raise RPCError(SupervisorFaults.SHUTDOWN_STATE)

    def getAPIVersion(self):
        """Return the version of the scs RPC API.

        @return string version
        """
        self._update('getAPIVersion')
        return API_VERSION

    def sync(self):
        """Render this agent's nodes from the database and apply them to supervisord.

        Adds new groups, stops and removes deleted or disabled ones, and stops, removes and
        re-adds changed ones; a change of queues or autoscale bounds only is given to the
        running group in place and sent to its worker by remote control, without waiting for
        it.  Touches only scs-<name> groups.  One sync applies at a time.  When another sync
        (the loop's, say) applied the current revision under 2 s before, the answer is what that one
        did.

        @return struct result  {added: [names], changed: [names], removed: [names],
                                reconfigured: [names], errors: {}}
        """
        self._update('sync')
        applier = self.applier
        job = applier.submit()

        def poll():
            applier.poll()
            if not job.done:
                return NOT_DONE_YET
            if job.error is not None:
                raise ScsFault(APPLY_FAULTS[job.error.kind], str(job.error))
            return xmlrpc_safe(job.result)

        return deferred(poll)

    def listNodes(self):
        """Desired state of this agent's nodes with supervisord's state and pid of each.

        @return array nodes  list of structs
        """
        self._update('listNodes')
        agent = self.applier.settings.agent_id
        return self._read(lambda store: store.list_nodes(agent),
                          lambda nodes: [self._with_state(n) for n in nodes])

    def getNode(self, name):
        """Desired state of one node with supervisord's state and pid.

        @param string name  the node name
        @return struct node
        """
        self._update('getNode')
        try:
            validation.check_node_name(name)
        except validation.ValidationError as exc:
            raise ScsFault(Faults.INVALID, str(exc)) from None
        return self._read(lambda store: store.get_node(name), self._with_state)

    def startOperation(self, names, timeout):
        """Start watching nodes until each is RUNNING and consuming exactly its queues.

        @param array names     node names; empty for every enabled node of this agent
        @param int timeout     seconds before the operation gives up
        @return string id      the operation id, for getOperation and waitOperation
        """
        self._update('startOperation')
        return self._start_operation(names, timeout).id

    def watch(self, names, timeout):
        """Start an operation (see startOperation) and wait until it is over: one request
        where startOperation and waitOperation take two.

        @param array names     node names; empty for every enabled node of this agent
        @param int timeout     seconds before the operation gives up
        @return struct operation
        """
        self._update('watch')
        return self._wait(self._start_operation(names, timeout))

    def _start_operation(self, names, timeout):
        try:
            names = [validation.check_node_name(n) for n in names]
            timeout = validation.check_timeout(timeout)
        except validation.ValidationError as exc:
            raise ScsFault(Faults.INVALID, str(exc)) from None
        return self.applier.operations.start(names or None, timeout)

    def getOperation(self, id):
        """The state of an operation: pending, done, failed or timeout, and what it saw.

        @param string id       an operation id from startOperation
        @return struct operation
        """
        self._update('getOperation')
        return xmlrpc_safe(self._operation(id).as_dict())

    def waitOperation(self, id):
        """Wait until an operation is over and return it (see getOperation).

        @param string id       an operation id from startOperation
        @return struct operation
        """
        self._update('waitOperation')
        return self._wait(self._operation(id))

    @staticmethod
    def _wait(op):
        return deferred(lambda: xmlrpc_safe(op.as_dict()) if op.done else NOT_DONE_YET)

    def _operation(self, op_id):
        op = self.applier.operations.get(str(op_id))
        if op is None:
            raise ScsFault(Faults.OPERATION_NOT_FOUND, f'no operation {op_id}')
        return op

    def getStatus(self):
        """The supervisor loop's view of this agent: brokers, pauses, last tick.

        @return struct status
        """
        self._update('getStatus')
        agent = self.applier.settings.agent_id
        return self._read(lambda store: store.agent_status(agent),
                          lambda status: {'agent': agent, **status})

    # -- helpers ---------------------------------------------------------------------------------

    def _read(self, query, finish):
        """Run ``query(store)`` in a thread; answer ``finish(result)`` from the main loop."""
        job = Background(lambda: query(self.applier.store), self.applier.waker)

        def poll():
            if not job.done:
                return NOT_DONE_YET
            if isinstance(job.error, Unavailable):
                raise ScsFault(Faults.DATABASE_UNAVAILABLE, str(job.error))
            if isinstance(job.error, NotFound):
                raise ScsFault(Faults.NODE_NOT_FOUND, str(job.error))
            if job.error is not None:
                raise ScsFault(Faults.INTERNAL, f'{type(job.error).__name__}: {job.error}')
            return xmlrpc_safe(finish(job.result))

        return deferred(poll)

    def _with_state(self, node: dict) -> dict:
        """Add what supervisord knows of the node's process."""
        process = node_process(self.supervisord, node['name'])
        info = None if process is None else {
            'statename': getProcessStateDescription(process.get_state()),
            'pid': process.pid, 'start': process.laststart}
        return with_process(node, info, self.applier.render_errors.get(node['name'], ''),
                            os.uname().nodename, time.time())

    def getRenderErrors(self):
        """Nodes whose program could not be rendered, and why (they keep their last program).

        @return struct errors  node name -> message
        """
        self._update('getRenderErrors')
        return dict(self.applier.render_errors)


#: One applier per supervisord object (the factory runs once per HTTP server and again on
#: every reload, which builds a new supervisord object).
_APPLIERS: dict[int, Applier] = {}


def make_scs_rpcinterface(supervisord, **config):
    """Factory named in ``[rpcinterface:scs]``; extra keys are settings (see settings.py)."""
    key = id(supervisord)
    applier = _APPLIERS.get(key)
    if applier is None or applier.supervisord is not supervisord:
        for old in _APPLIERS.values():
            old.close()
        _APPLIERS.clear()
        applier = _APPLIERS[key] = start_applier(supervisord, Settings.load(os.environ, config))
    return ScsNamespaceRPCInterface(supervisord, applier)


def start_applier(supervisord, settings: Settings) -> Applier:
    """Migrate the schema and bring the managed groups in line with the database.

    Runs while supervisord starts, before it spawns any process, so groups can be replaced
    directly.  A database outage here only logs: workers come up from the last rendered files.
    """
    logger = supervisord.options.logger
    applier = Applier(supervisord, settings)
    settings.logs_dir.mkdir(parents=True, exist_ok=True)
    try:
        upgrade(applier.store.engine)
        job = applier.sync_now()
        if job.error is not None:
            raise job.error
        logger.info(f'scs: start-up sync {job.result}')
    except (ApplyError, Unavailable, OSError) as exc:
        logger.warn(f'scs: start-up sync skipped, running the last rendered programs: {exc}')
    except Exception as exc:
        # The schema upgrade can fail in many driver-specific ways; never keep supervisord down.
        logger.error(f'scs: start-up sync failed: {type(exc).__name__}: {exc}')
    finally:
        # No database connection may cross supervisord's daemonizing fork.
        applier.store.engine.dispose()
    applier.start_waker()
    applier.operations = Operations(
        applier.store, settings.agent_id, lambda name: process_state(supervisord, name),
        applier.controllers, on_finish=lambda op: applier.waker.wake(),
        fast_path=applier.fast_path, last_snapshot=lambda: applier.snapshot)
    events.subscribe(events.TickEvent, lambda event: applier.poll())
    events.subscribe(events.SupervisorStoppingEvent, lambda event: stop_all_nodes(supervisord))
    return applier


def stop_all_nodes(supervisord) -> None:
    """On shutdown, ask every node to stop at once.

    supervisord stops groups one after another, so a hundred workers would take a hundred
    warm shutdowns in a row; in parallel they take as long as the slowest.
    """
    for name, group in supervisord.process_groups.items():
        if programs.is_managed_group(name):
            group.stop_all()


def node_process(supervisord, node: str):
    """The supervisord process of a node, or None when its group is not loaded."""
    group = supervisord.process_groups.get(programs.group_name(node))
    return next(iter(group.processes.values()), None) if group else None


def process_state(supervisord, node: str) -> tuple[str, str, float]:
    """supervisord's state of a node's process, its spawn error, if any, and when it was last
    spawned (read-only)."""
    process = node_process(supervisord, node)
    if process is None:
        return 'ABSENT', '', 0.0
    return (getProcessStateDescription(process.get_state()), process.spawnerr or '',
            process.laststart or 0.0)
