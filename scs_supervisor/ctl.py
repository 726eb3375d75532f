"""``supervisorctl scs ...``: manage nodes from the shell (``[ctlplugin:scs]``).

Each change writes the database, then asks supervisord to apply it (``scs.sync``) and prints
what changed.  Bad input prints one line on stderr, exits non-zero and changes nothing.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import time
from xmlrpc.client import Fault

from supervisor.supervisorctl import ControllerPluginBase, LSBInitExitStatuses

from scs_supervisor import validation
from scs_supervisor.rpcclient import from_rpc, restart_node
from scs_supervisor.settings import Settings
from scs_supervisor.store import Conflict, NotFound, Store, StoreError

SHOW_FIELDS = ('name', 'nodename', 'state', 'pid', 'uptime', 'enabled', 'queues',
               'consuming', 'min_concurrency', 'max_concurrency', 'autoscaler', 'pool', 'app',
               'broker', 'broker_url', 'loglevel', 'directory', 'env', 'agent', 'last_pong',
               'missed_pings', 'restarts', 'failed', 'last_error', 'render_error',
               'created_at', 'updated_at', 'observed_at')


class UsageError(Exception):
    """The command line is wrong."""


class Parser(argparse.ArgumentParser):
    """argparse that raises instead of printing and exiting (we run inside supervisorctl)."""

    def error(self, message):
        raise UsageError(message)

    def exit(self, status=0, message=None):
        if message:
            raise UsageError(message.strip())
        raise UsageError('')


def env_pair(text: str) -> tuple[str, str]:
    key, sep, value = text.partition('=')
    if not sep:
        raise argparse.ArgumentTypeError(f'--env takes KEY=VALUE, got {text!r}')
    return key, value


def build_parser() -> Parser:
    parser = Parser(prog='scs', add_help=False)
    sub = parser.add_subparsers(dest='command', required=True, parser_class=Parser)

    for name in ('list', 'show'):
        p = sub.add_parser(name, add_help=False)
        if name == 'show':
            p.add_argument('name')
        p.add_argument('--json', action='store_true')

    for name in ('create', 'set'):
        p = sub.add_parser(name, add_help=False)
        p.add_argument('name')
        p.add_argument('--queues', help='comma-separated queue names')
        p.add_argument('--min', dest='min_concurrency')
        p.add_argument('--max', dest='max_concurrency')
        p.add_argument('--pool')
        p.add_argument('--app')
        p.add_argument('--broker', help='a broker name or URL')
        p.add_argument('--loglevel')
        p.add_argument('--directory')
        p.add_argument('--env', action='append', type=env_pair, metavar='KEY=VALUE')
        waiting(p)

    for name in ('add-queue', 'remove-queue'):
        p = sub.add_parser(name, add_help=False)
        p.add_argument('name')
        p.add_argument('queue')
        waiting(p)

    for name in ('disable', 'enable', 'delete', 'restart'):
        p = sub.add_parser(name, add_help=False)
        p.add_argument('name')
        if name in ('enable', 'restart'):
            waiting(p)

    for name in ('queues', 'brokers'):
        sub.add_parser(name, add_help=False).add_argument('--json', action='store_true')
    for name in ('queue-create', 'queue-set'):
        p = sub.add_parser(name, add_help=False)
        p.add_argument('name')
        p.add_argument('--exchange')
        p.add_argument('--exchange-type', dest='exchange_type')
        p.add_argument('--routing-key', dest='routing_key')
        p.add_argument('--options', type=json_object, help='a JSON object')
    p = sub.add_parser('queue-delete', add_help=False)
    p.add_argument('name')
    p.add_argument('--force', action='store_true')
    p = sub.add_parser('broker-create', add_help=False)
    p.add_argument('name')
    p.add_argument('url', help='the URL, or - to read it from standard input')
    p = sub.add_parser('broker-set', add_help=False)
    p.add_argument('name')
    p.add_argument('--url', help='the URL, or - to read it from standard input')
    p.add_argument('--rename', dest='new_name')
    sub.add_parser('broker-delete', add_help=False).add_argument('name')
    waiting(sub.add_parser('sync', add_help=False))
    p = sub.add_parser('operation', add_help=False)
    p.add_argument('id')
    p.add_argument('--wait', action='store_true')
    p.add_argument('--json', action='store_true')
    sub.add_parser('status', add_help=False).add_argument('--json', action='store_true')
    return parser


def json_object(text: str) -> dict:
    try:
        value = json.loads(text)
    except ValueError:
        raise argparse.ArgumentTypeError('--options takes a JSON object') from None
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError('--options takes a JSON object')
    return value


def read_url(value: str | None) -> str | None:
    """A broker URL given as ``-`` is read from standard input (keeping it out of argv)."""
    if value != '-':
        return value
    return sys.stdin.readline().strip()


def waiting(parser) -> None:
    """--wait / --async: follow the change until the nodes run and consume their queues."""
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument('--wait', action='store_true')
    mode.add_argument('--async', dest='async_', action='store_true')
    parser.add_argument('--timeout', default='120')


def field_changes(args) -> dict:
    """The node fields given on a create/set command line."""
    changes = {}
    for field in ('queues', 'min_concurrency', 'max_concurrency', 'pool', 'app', 'broker',
                  'loglevel', 'directory'):
        value = getattr(args, field)
        if value is not None:
            changes[field] = value
    if args.env:
        changes['env'] = dict(args.env)
    return changes


def format_status(status: dict) -> str:
    """The agent as ``scs status`` shows it."""
    now = time.time()
    tick = status.get('last_tick') or {}
    lines = [f'agent:      {status.get("agent")}']
    if not tick:
        return '\n'.join(lines + ['loop:       no tick recorded yet (is scs_listener running?)'])
    lines.append(f'last tick:  {ago(tick.get("at"), now)}, took {tick.get("duration")}s, '
                 f'{tick.get("round_trips")} broker round trips, #{tick.get("count")}')
    database = status.get('database_error') or 'ok'
    lines.append(f'database:   {database}')
    for url, broker in sorted((status.get('brokers') or {}).items()):
        state = 'up' if broker.get('up') else 'DOWN'
        extra = []
        if broker.get('revived_at'):
            extra.append(f'revived {ago(broker["revived_at"], now)}')
        if broker.get('paused'):
            extra.append('repairs paused')
        if broker.get('last_error'):
            extra.append(broker['last_error'])
        lines.append(f'broker:     {url} {state}' + (f' ({"; ".join(extra)})' if extra else ''))
    return '\n'.join(lines)


def format_table(nodes: list[dict]) -> str:
    rows = [('NAME', 'STATE', 'PID', 'CONCURRENCY', 'POOL', 'QUEUES')]
    for n in nodes:
        rows.append((n['name'], n['state'], str(n['pid'] or '-'),
                     f'{n["min_concurrency"]}-{n["max_concurrency"]}', n['pool'],
                     ','.join(n['queues'])))
    return columns(rows)


def format_queues(queues: list[dict]) -> str:
    rows = [('NAME', 'EXCHANGE', 'TYPE', 'ROUTING KEY', 'NODES')]
    rows += [(q['name'], q['exchange'] or "''", q['exchange_type'], q['routing_key'] or "''",
              ','.join(q['nodes']) or '-') for q in queues]
    return columns(rows)


def format_brokers(brokers: list[dict]) -> str:
    return columns([('NAME', 'URL', 'NODES')] + [(b['name'], b['url'], ','.join(b['nodes']) or '-')
                                                 for b in brokers])


def columns(rows: list[tuple[str, ...]]) -> str:
    """Rows as aligned columns; the last column is not padded."""
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]) - 1)]
    return '\n'.join('  '.join(c.ljust(w) for c, w in zip(r, widths, strict=False)) + '  '
                     + r[-1] for r in rows)


def ago(epoch, now: float | None = None) -> str:
    if not epoch:
        return 'never'
    return f'{(now or time.time()) - float(epoch):.1f}s ago'


def format_node(node: dict) -> str:
    lines = []
    for field in SHOW_FIELDS:
        value = node.get(field)
        if field == 'last_pong':
            value = ago(value)
        elif field == 'autoscaler' and isinstance(value, dict):
            value = (f'current {value.get("current", "?")}, min {value.get("min")}, '
                     f'max {value.get("max")}')
        elif isinstance(value, list):
            value = ','.join(value)
        elif isinstance(value, dict):
            value = ' '.join(f'{k}={v}' for k, v in value.items())
        lines.append(f'{field + ":":18}{"" if value is None else value}')
    return '\n'.join(lines)


class ScsControllerPlugin(ControllerPluginBase):
    """The ``scs`` command of supervisorctl."""

    name = 'scs'

    def __init__(self, controller, **config):
        super().__init__(controller)
        self.settings = Settings.load(section=config)
        self._store: Store | None = None

    @property
    def store(self) -> Store:
        if self._store is None:
            self._store = Store.from_settings(self.settings)
        return self._store

    def help_scs(self):
        self.ctl.output(
            'scs list [--json]                        nodes of this agent and their state\n'
            'scs show NAME [--json]                   one node\n'
            'scs create NAME [--queues q1,q2] [--min N] [--max N] [--pool P] [--app APP]\n'
            '           [--broker NAME|URL] [--loglevel L] [--directory DIR] [--env K=V ...]\n'
            'scs set NAME [same options]              change a node\n'
            'scs add-queue NAME QUEUE | remove-queue NAME QUEUE\n'
            'scs disable NAME | enable NAME | restart NAME | delete NAME\n'
            'scs queues [--json]                      declared queues and their nodes\n'
            'scs queue-create NAME [--exchange E] [--exchange-type T] [--routing-key K]\n'
            '           [--options JSON]              (queue-set NAME: the same options)\n'
            'scs queue-delete NAME [--force]          --force takes it off its nodes too\n'
            'scs brokers [--json]                     brokers (passwords masked)\n'
            'scs broker-create NAME URL|-             - reads the URL from standard input\n'
            'scs broker-set NAME [--url URL|-] [--rename NEW] | broker-delete NAME\n'
            'scs sync                                 apply the database to supervisord\n'
            '  create, set, add-queue, remove-queue, enable, restart and sync take --wait (until\n'
            '  the nodes run and consume exactly their queues) or --async, and --timeout N\n'
            'scs operation ID [--wait] [--json]       an operation started with --async\n'
            'scs status [--json]                      brokers, pauses and the last loop tick')

    def do_scs(self, arg):
        """Manage Celery nodes: scs list|show|create|set|add-queue|remove-queue|disable|
        enable|delete|sync (see: help scs)."""
        try:
            args = build_parser().parse_args(shlex.split(arg))
            getattr(self, 'cmd_' + args.command.replace('-', '_'))(args)
        except (UsageError, ValueError) as exc:
            self.fail(f'scs: {exc}' if str(exc) else 'scs: bad command line (see: help scs)')
        except NotFound as exc:
            self.fail(f'scs: {exc}')
        except Conflict as exc:
            self.fail(f'scs: {exc}')
        except StoreError as exc:
            self.fail(f'scs: {exc}')
        except Fault as exc:
            self.fail(f'scs: {exc.faultString}')
        except OSError as exc:
            self.fail(f'scs: cannot reach supervisord: {exc}')

    def fail(self, message: str) -> None:
        print(message.splitlines()[0] if message else 'scs: failed', file=sys.stderr)
        self.ctl.exitstatus = LSBInitExitStatuses.GENERIC

    # -- commands ------------------------------------------------------------------------------

    @property
    def rpc(self):
        return self.ctl.get_server_proxy('scs')

    def cmd_list(self, args):
        nodes = [from_rpc(n) for n in self.rpc.listNodes()]
        self.ctl.output(json.dumps(nodes, indent=2) if args.json else format_table(nodes))

    def cmd_show(self, args):
        node = from_rpc(self.rpc.getNode(validation.check_node_name(args.name)))
        self.ctl.output(json.dumps(node, indent=2) if args.json else format_node(node))

    def cmd_create(self, args):
        timeout = check_timeout(args)
        self.store.create_node(self.settings.agent_id, args.name, field_changes(args))
        self.apply(f'created node {args.name}', args, [args.name], timeout)

    def cmd_set(self, args):
        timeout = check_timeout(args)
        changes = field_changes(args)
        if not changes:
            raise UsageError('set: give at least one option to change')
        self.store.update_node(validation.check_node_name(args.name), changes)
        self.apply(f'updated node {args.name}', args, [args.name], timeout)

    def cmd_add_queue(self, args):
        timeout = check_timeout(args)
        self.store.add_queue(validation.check_node_name(args.name), args.queue)
        self.apply(f'node {args.name} now consumes {args.queue}', args, [args.name], timeout)

    def cmd_remove_queue(self, args):
        timeout = check_timeout(args)
        self.store.remove_queue(validation.check_node_name(args.name), args.queue)
        self.apply(f'node {args.name} no longer consumes {args.queue}', args, [args.name],
                   timeout)

    def cmd_disable(self, args):
        self.store.update_node(validation.check_node_name(args.name), {'enabled': False})
        self.apply(f'disabled node {args.name}')

    def cmd_enable(self, args):
        timeout = check_timeout(args)
        self.store.update_node(validation.check_node_name(args.name), {'enabled': True})
        self.apply(f'enabled node {args.name}', args, [args.name], timeout)

    def cmd_delete(self, args):
        self.store.delete_node(validation.check_node_name(args.name))
        self.apply(f'deleted node {args.name}')

    def cmd_restart(self, args):
        timeout = check_timeout(args)
        name = self.store.enabled_node(validation.check_node_name(args.name))['name']
        restart_node(self.ctl.get_server_proxy('supervisor'), name)
        self.ctl.output(f'restarted node {name}')
        self.follow(args, [name], timeout)

    def cmd_queues(self, args):
        queues = self.store.list_queues()
        self.ctl.output(json.dumps(queues, indent=2) if args.json else format_queues(queues))

    def cmd_queue_create(self, args):
        self.store.create_queue(args.name, queue_changes(args))
        self.ctl.output(f'created queue {args.name}')

    def cmd_queue_set(self, args):
        changes = queue_changes(args)
        if not changes:
            raise UsageError('queue-set: give at least one option to change')
        self.store.update_queue(args.name, changes)
        self.ctl.output(f'updated queue {args.name}')

    def cmd_queue_delete(self, args):
        nodes = self.store.delete_queue(args.name, force=args.force)
        if nodes:
            self.apply(f'deleted queue {args.name}, taken off {", ".join(nodes)}')
        else:
            self.ctl.output(f'deleted queue {args.name}')

    def cmd_brokers(self, args):
        brokers = self.store.list_brokers()
        self.ctl.output(json.dumps(brokers, indent=2) if args.json else format_brokers(brokers))

    def cmd_broker_create(self, args):
        self.store.create_broker(args.name, read_url(args.url))
        self.ctl.output(f'created broker {args.name}')

    def cmd_broker_set(self, args):
        changes = {}
        if args.url is not None:
            changes['url'] = read_url(args.url)
        if args.new_name is not None:
            changes['name'] = args.new_name
        if not changes:
            raise UsageError('broker-set: give --url or --rename')
        broker = self.store.update_broker(args.name, changes)
        if broker['nodes']:
            self.apply(f'updated broker {args.name}')
        else:
            self.ctl.output(f'updated broker {args.name}')

    def cmd_broker_delete(self, args):
        self.store.delete_broker(args.name)
        self.ctl.output(f'deleted broker {args.name}')

    def cmd_status(self, args):
        status = self.rpc.getStatus()
        self.ctl.output(json.dumps(status, indent=2) if args.json else format_status(status))

    def cmd_sync(self, args):
        self.apply('synced', args, [], check_timeout(args))

    def cmd_operation(self, args):
        op = self.rpc.waitOperation(args.id) if args.wait else self.rpc.getOperation(args.id)
        self.report_operation(op, args.json)

    def report_operation(self, op: dict, as_json: bool = False) -> None:
        if as_json:
            self.ctl.output(json.dumps(op, indent=2))
        else:
            self.ctl.output(f'operation {op["id"]}: {op["status"]}'
                            + (f': {op["detail"]}' if op['detail'] else ''))
        if op['status'] not in ('done', 'pending'):
            self.ctl.exitstatus = LSBInitExitStatuses.GENERIC

    def apply(self, done: str, args=None, names=None, timeout=120) -> None:
        """Ask supervisord to apply the database; print what changed; maybe wait."""
        try:
            result = self.rpc.sync()
        except (Fault, OSError) as exc:
            detail = exc.faultString if isinstance(exc, Fault) else str(exc)
            self.fail(f'scs: {done} in the database, but supervisord did not apply it: {detail}')
            return
        parts = [f'{key}: {", ".join(result[key])}' for key in
                 ('added', 'changed', 'removed', 'reconfigured') if result.get(key)]
        self.ctl.output(f'{done}; ' + ('; '.join(parts) if parts else 'nothing to apply'))
        for name, error in sorted(result.get('errors', {}).items()):
            self.fail(f'scs: node {name} kept its previous program: {error}')
        self.follow(args, names, timeout)

    def follow(self, args, names, timeout) -> None:
        """--wait or --async: start an operation over ``names`` and wait for it, or not."""
        if args is not None and args.async_:
            op_id = self.rpc.startOperation(names, timeout)
            self.ctl.output(f'operation {op_id}: pending (supervisorctl scs operation '
                            f'{op_id} [--wait])')
        elif args is not None and args.wait:
            self.report_operation(self.rpc.watch(names, timeout))


def queue_changes(args) -> dict:
    """The queue fields given on a queue-create/queue-set command line."""
    return {field: getattr(args, field) for field in validation.QUEUE_DEFAULTS
            if getattr(args, field) is not None}


def check_timeout(args) -> int:
    if getattr(args, 'wait', False) or getattr(args, 'async_', False):
        return validation.check_timeout(args.timeout)
    return 120


def make_scs_controllerplugin(controller, **config):
    """Factory named in ``[ctlplugin:scs]``; extra keys are settings (see settings.py)."""
    return ScsControllerPlugin(controller, **config)
