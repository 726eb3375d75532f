"""Sessions and queries: the one place that speaks SQL.

Every change validates first (:mod:`.validation`), then writes in one transaction and bumps the
revision counter, so a poller can tell that something changed without reading every node.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import socket
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path

from kombu.utils.url import maybe_sanitize_url
from sqlalchemy import bindparam, create_engine, event, func, select, text, update
from sqlalchemy.engine import Engine, Row, make_url
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.exc import InterfaceError as SAInterfaceError
from sqlalchemy.orm import Session, joinedload, sessionmaker

from scs_supervisor import validation as v
from scs_supervisor.models import (
    AgentStatus,
    Broker,
    Node,
    NodeQueue,
    NodeStatus,
    Queue,
    Revision,
)
from scs_supervisor.programs import ProgramSpec
from scs_supervisor.reconcile import DesiredNode, QueueDecl

MIGRATIONS = Path(__file__).with_name('migrations')
#: A broker URL with its password masked; a node list asks for the same few URLs many times.
masked_url = functools.lru_cache(maxsize=256)(maybe_sanitize_url)

#: What ``scs show`` reports of the loop's observations when it has none yet.
OBSERVED_DEFAULTS = {'last_pong': None, 'consuming': None, 'autoscaler': None, 'restarts': 0,
                     'missed_pings': 0, 'last_error': '', 'failed': '', 'observed_at': None}

# The statements of the change and sync paths, built once: building one costs about as much as
# running it on SQLite, and a statement built once computes its compiled-cache key once.
REVISION = select(Revision.value).where(Revision.id == 1)
BUMP = (update(Revision.__table__).where(Revision.__table__.c.id == 1)
        .values(value=Revision.__table__.c.value + 1))
#: A node with its broker and its queues in order: everything :meth:`Store._node_dict` reads.
NODE = (select(Node).options(joinedload(Node.subscriptions))
        .where(Node.name == bindparam('name')))
QUEUES = select(Queue).where(Queue.name.in_(bindparam('names', expanding=True)))
#: The enabled nodes of an agent as plain rows, one per queue in order (a node without queues
#: gives one row of NULL queue columns): rows cost far less to read than ORM objects.
ENABLED = (select(Node.id, Node.name, Node.app, Node.min_concurrency, Node.max_concurrency,
                  Node.pool, Node.loglevel, Node.directory, Node.env,
                  Broker.url.label('broker_url'), Queue.name.label('queue'), Queue.exchange,
                  Queue.exchange_type, Queue.routing_key, Queue.options)
           .outerjoin(Node.broker).outerjoin(Node.subscriptions).outerjoin(NodeQueue.queue)
           .where(Node.agent == bindparam('agent'), Node.enabled)
           .order_by(Node.name, NodeQueue.position))
AGENT_OBSERVED = select(AgentStatus.observed).where(AgentStatus.agent == bindparam('agent'))


@dataclasses.dataclass(frozen=True)
class SyncSnapshot:
    """One consistent read for a sync (see :meth:`Store.sync_snapshot`)."""

    revision: int
    specs: list[ProgramSpec]
    #: The same nodes as :meth:`Store.desired_nodes` gives them, by name.
    desired: dict[str, DesiredNode]
    #: Broker URLs (masked) the supervisor loop last found down.
    brokers_down: frozenset[str] = frozenset()


class StoreError(Exception):
    """Base of the errors the store reports to callers."""


class NotFound(StoreError):
    """No row with that name."""


class Conflict(StoreError):
    """The name is taken, or the row is in use."""


class Unavailable(StoreError):
    """The database cannot be reached."""


def make_engine(url: str) -> Engine:
    """An engine with short connect timeouts; SQLite in WAL mode with a busy timeout.

    SQLite runs with ``synchronous=NORMAL``: in WAL mode a commit then skips the fsync (only
    checkpoints sync).  The database cannot be corrupted that way, but a power failure or an OS
    crash may lose the last commits; a crash of the process alone loses nothing.
    """
    sa_url = make_url(url)
    if sa_url.get_backend_name() == 'sqlite':
        if sa_url.database and sa_url.database != ':memory:':
            Path(sa_url.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(sa_url, connect_args={'timeout': 10})

        @event.listens_for(engine, 'connect')
        def _sqlite_pragmas(dbapi_connection, _record):
            cursor = dbapi_connection.cursor()
            cursor.execute('PRAGMA journal_mode=WAL')
            cursor.execute('PRAGMA synchronous=NORMAL')
            cursor.execute('PRAGMA foreign_keys=ON')
            cursor.close()

        return engine
    connect_args = {'connect_timeout': 5} if sa_url.get_backend_name() == 'postgresql' else {}
    return create_engine(sa_url, pool_pre_ping=True, connect_args=connect_args)


def upgrade(engine: Engine) -> None:
    """Bring the schema to the newest Alembic revision (serialised across agents on PostgreSQL)."""
    from alembic import command
    from alembic.config import Config

    config = Config()
    config.set_main_option('script_location', str(MIGRATIONS))
    try:
        with engine.begin() as connection:
            if engine.dialect.name == 'postgresql':
                connection.execute(text('SELECT pg_advisory_xact_lock(7405321)'))
            config.attributes['connection'] = connection
            command.upgrade(config, 'head')
    except OUTAGES as exc:
        raise unavailable(exc) from exc


#: Driver errors that mean "the database cannot be reached", not "the query is wrong".
OUTAGES = (OperationalError, SAInterfaceError)


def unavailable(exc: Exception) -> Unavailable:
    """An :class:`Unavailable` with the driver's first line (never the URL or password)."""
    return Unavailable(f'database unavailable: {getattr(exc, "orig", None) or exc}'
                       .splitlines()[0])


class Store:
    """Desired state of nodes, queues and brokers, behind plain-data methods."""

    def __init__(self, engine: Engine, *, default_broker_url: str, concurrency_cap: int = 64):
        self.engine = engine
        self.default_broker_url = default_broker_url
        self.concurrency_cap = concurrency_cap
        self._sessions = sessionmaker(engine, expire_on_commit=False)

    @classmethod
    def from_settings(cls, settings) -> Store:
        return cls(make_engine(settings.database_url),
                   default_broker_url=settings.broker_url,
                   concurrency_cap=settings.concurrency_cap)

    @contextlib.contextmanager
    def session(self) -> Iterator[Session]:
        """A session in a transaction; database outages become :class:`Unavailable`."""
        try:
            with self._sessions() as session, session.begin():
                yield session
        except OUTAGES as exc:
            raise unavailable(exc) from exc

    # -- reading -----------------------------------------------------------------------------

    def revision(self) -> int:
        with self.session() as s:
            return s.scalar(REVISION) or 0

    def program_specs(self, agent: str) -> list[ProgramSpec]:
        """The enabled nodes of ``agent`` as plain data for the program generator."""
        with self.session() as s:
            return [self._spec(node, queues) for node, queues in self._enabled(s, agent)]

    def desired_nodes(self, agent: str) -> list[DesiredNode]:
        """The enabled nodes of ``agent`` as the supervisor loop compares them."""
        host = socket.gethostname()
        with self.session() as s:
            return [self._desired(node, queues, host) for node, queues in self._enabled(s, agent)]

    def sync_snapshot(self, agent: str) -> SyncSnapshot:
        """What a sync needs, in one transaction: the revision, then the enabled nodes of
        ``agent`` (as program specs and as desired state) and the brokers the loop last saw
        down."""
        host = socket.gethostname()
        with self.session() as s:
            if self.engine.dialect.name == 'postgresql':
                # One snapshot for every statement: under READ COMMITTED a change committed
                # between the two reads would come with the revision before it, and the sync
                # that applied it would not know it did (SQLite reads one snapshot anyway).
                s.connection(execution_options={'isolation_level': 'REPEATABLE READ'})
            revision = s.scalar(REVISION) or 0
            nodes = self._enabled(s, agent)
            observed = s.scalar(AGENT_OBSERVED, {'agent': agent})
            brokers = (observed.get('brokers') or {}) if observed is not None else {}
            return SyncSnapshot(
                revision=revision, specs=[self._spec(n, queues) for n, queues in nodes],
                desired={n.name: self._desired(n, queues, host) for n, queues in nodes},
                brokers_down=frozenset(url for url, seen in brokers.items()
                                       if isinstance(seen, dict) and seen.get('up') is False))

    def list_nodes(self, agent: str | None = None) -> list[dict]:
        with self.session() as s:
            query = select(Node).order_by(Node.name)
            if agent is not None:
                query = query.where(Node.agent == agent)
            nodes = s.scalars(query).all()
            statuses = {st.name: st for st in s.scalars(
                select(NodeStatus).where(NodeStatus.name.in_([n.name for n in nodes])))}
            return [self._node_dict(n, statuses.get(n.name)) for n in nodes]

    def versions(self, agent: str) -> tuple[int, str | None]:
        """The revision counter and the newest observation of ``agent``'s nodes: when neither
        moved, :meth:`list_nodes` would answer the same."""
        with self.session() as s:
            revision = s.scalar(REVISION) or 0
            observed = s.scalar(select(func.max(NodeStatus.updated_at))
                                .where(NodeStatus.agent == agent))
            return revision, observed.isoformat() if observed else None

    def get_node(self, name: str) -> dict:
        with self.session() as s:
            node = self._node(s, name)
            return self._node_dict(node, s.get(NodeStatus, name))

    def enabled_node(self, name: str) -> dict:
        """:meth:`get_node` of a node that must be enabled (to restart it, say)."""
        node = self.get_node(name)
        if not node['enabled']:
            raise Conflict(f'node {name} is disabled: enable it instead')
        return node

    # -- what the loop observed --------------------------------------------------------------

    def record_status(self, agent: str, nodes: Mapping[str, dict], observed: dict) -> None:
        """Store the loop's observations of some nodes and of the agent itself."""
        with self.session() as s:
            for name, values in nodes.items():
                s.merge(NodeStatus(name=name, agent=agent, observed=values))
            s.merge(AgentStatus(agent=agent, observed=observed))

    def agent_status(self, agent: str) -> dict:
        with self.session() as s:
            status = s.get(AgentStatus, agent)
            if status is None:
                return {}
            return {**status.observed, 'updated_at': status.updated_at.isoformat()}

    # -- changing nodes ----------------------------------------------------------------------

    def create_node(self, agent: str, name: str, fields: Mapping) -> dict:
        """Create a node of ``agent``; missing fields take :data:`~.validation.NODE_DEFAULTS`."""
        name = v.check_node_name(name)
        clean = v.check_node_fields({**v.NODE_DEFAULTS, **fields}, self.concurrency_cap)
        try:
            with self.session() as s:
                if s.scalar(select(Node.id).where(Node.name == name)) is not None:
                    raise Conflict(f'node {name} already exists')
                node = Node(name=name, agent=agent)
                self._apply(s, node, clean)
                s.add(node)
                self._bump(s)
                return self._node_dict(node)
        except IntegrityError:
            raise Conflict(f'node {name} already exists') from None

    def update_node(self, name: str, changes: Mapping) -> dict:
        """Change some fields of a node; the result is validated as a whole."""
        with self.session() as s:
            return self._update(s, self._node(s, name), changes)

    def add_queue(self, name: str, queue: str) -> dict:
        queue = v.check_queue_name(queue)
        with self.session() as s:
            node = self._node(s, name)
            return self._update(s, node, {'queues': [q.name for q in node.queues] + [queue]})

    def remove_queue(self, name: str, queue: str) -> dict:
        with self.session() as s:
            node = self._node(s, name)
            current = [q.name for q in node.queues]
            if queue not in current:
                raise NotFound(f'node {name} does not consume queue {queue}')
            return self._update(s, node, {'queues': [q for q in current if q != queue]})

    def delete_node(self, name: str) -> None:
        with self.session() as s:
            s.delete(self._node(s, name))
            self._bump(s)

    def set_autoscale(self, name: str, min_value, max_value) -> dict:
        return self.update_node(name, {'min_concurrency': min_value, 'max_concurrency': max_value})

    # -- queues ------------------------------------------------------------------------------

    def list_queues(self) -> list[dict]:
        with self.session() as s:
            users = self._queue_users(s)
            return [self._queue_dict(q, users.get(q.id, []))
                    for q in s.scalars(select(Queue).order_by(Queue.name))]

    def get_queue(self, name: str) -> dict:
        with self.session() as s:
            queue = self._named(s, Queue, name, 'queue')
            return self._queue_dict(queue, self._queue_users(s, queue.id).get(queue.id, []))

    def create_queue(self, name: str, fields: Mapping) -> dict:
        """Declare a queue; ``exchange`` and ``routing_key`` default to its name."""
        name = v.check_queue_name(name, 'name')
        clean = v.check_queue_fields({**v.QUEUE_DEFAULTS, **fields})
        try:
            with self.session() as s:
                if s.scalar(select(Queue.id).where(Queue.name == name)) is not None:
                    raise Conflict(f'queue {name} already exists')
                queue = Queue(name=name, **self._declaration(name, clean))
                s.add(queue)
                s.flush()
                return self._queue_dict(queue, [])
        except IntegrityError:
            raise Conflict(f'queue {name} already exists') from None

    def update_queue(self, name: str, changes: Mapping) -> dict:
        """Change a queue's declaration; workers take it when they next consume the queue."""
        with self.session() as s:
            queue = self._named(s, Queue, name, 'queue')
            current = {'exchange': queue.exchange, 'exchange_type': queue.exchange_type,
                       'routing_key': queue.routing_key, 'options': dict(queue.options or {})}
            clean = v.check_queue_fields({**current, **changes})
            for field, value in self._declaration(name, clean).items():
                setattr(queue, field, value)
            self._bump(s)
            users = self._queue_users(s, queue.id).get(queue.id, [])
            return self._queue_dict(queue, users)

    def delete_queue(self, name: str, force: bool = False) -> list[str]:
        """Delete a queue; one in use needs ``force``, which takes it off those nodes first.

        Returns the names of the nodes that consumed it.  A node would be left without queues:
        :class:`Conflict`, whatever ``force`` says.
        """
        with self.session() as s:
            queue = self._named(s, Queue, name, 'queue')
            users = self._queue_users(s, queue.id).get(queue.id, [])
            if users and not force:
                raise Conflict(f'queue {name} is consumed by {", ".join(users)}; '
                               f'use force to take it off those nodes')
            for node in s.scalars(select(Node).where(Node.name.in_(users))):
                remaining = [q for q in node.queues if q.name != name]
                if not remaining:
                    raise Conflict(f'node {node.name} consumes only {name}: give it another '
                                   f'queue first')
                node.set_queues(remaining)
            s.delete(queue)
            self._bump(s)
            return users

    # -- brokers -----------------------------------------------------------------------------

    def list_brokers(self) -> list[dict]:
        with self.session() as s:
            users = self._broker_users(s)
            return [self._broker_dict(b, users.get(b.id, []))
                    for b in s.scalars(select(Broker).order_by(Broker.name))]

    def get_broker(self, name: str) -> dict:
        with self.session() as s:
            broker = self._named(s, Broker, name, 'broker')
            return self._broker_dict(broker, self._broker_users(s).get(broker.id, []))

    def create_broker(self, name: str, url) -> dict:
        name = v.check_broker_name(name, 'name')
        url = v.check_broker_url(url, 'url')
        try:
            with self.session() as s:
                if s.scalar(select(Broker.id).where(Broker.name == name)) is not None:
                    raise Conflict(f'broker {name} already exists')
                if s.scalar(select(Broker.id).where(Broker.url == url)) is not None:
                    raise Conflict('a broker with that URL already exists')
                broker = Broker(name=name, url=url)
                s.add(broker)
                s.flush()
                return self._broker_dict(broker, [])
        except IntegrityError:
            raise Conflict(f'broker {name} already exists') from None

    def update_broker(self, name: str, changes: Mapping) -> dict:
        """Change a broker's URL (its nodes restart on the next sync) or its name."""
        unknown = sorted(set(changes) - {'name', 'url'})
        if unknown:
            raise v.ValidationError(unknown[0], 'unknown field (known: name, url)')
        try:
            with self.session() as s:
                broker = self._named(s, Broker, name, 'broker')
                if 'name' in changes:
                    broker.name = v.check_broker_name(changes['name'], 'name')
                if 'url' in changes:
                    broker.url = v.check_broker_url(changes['url'], 'url')
                self._bump(s)
                return self._broker_dict(broker, self._broker_users(s).get(broker.id, []))
        except IntegrityError:
            raise Conflict('another broker has that name or URL') from None

    def delete_broker(self, name: str) -> None:
        with self.session() as s:
            broker = self._named(s, Broker, name, 'broker')
            users = self._broker_users(s).get(broker.id, [])
            if users:
                raise Conflict(f'broker {name} is used by {", ".join(users)}; move them first')
            s.delete(broker)

    # -- helpers -----------------------------------------------------------------------------

    def _update(self, session: Session, node: Node, changes: Mapping) -> dict:
        clean = v.check_node_fields({**self._fields(node), **changes}, self.concurrency_cap)
        self._apply(session, node, clean)
        self._bump(session)
        return self._node_dict(node)

    @staticmethod
    def _enabled(session: Session, agent: str) -> list[tuple[Row, list[Row]]]:
        """The enabled nodes of ``agent`` by name, each with the rows of its queues in order."""
        nodes: dict[int, tuple[Row, list[Row]]] = {}
        for row in session.execute(ENABLED, {'agent': agent}):
            queues = nodes.setdefault(row.id, (row, []))[1]
            if row.queue is not None:
                queues.append(row)
        return list(nodes.values())

    @staticmethod
    def _named(session: Session, model, name: str, kind: str):
        row = session.scalar(select(model).where(model.name == name))
        if row is None:
            raise NotFound(f'no {kind} named {name}')
        return row

    @staticmethod
    def _queue_users(session: Session, queue_id: int | None = None) -> dict[int, list[str]]:
        query = select(NodeQueue.queue_id, Node.name).join(Node).order_by(Node.name)
        if queue_id is not None:
            query = query.where(NodeQueue.queue_id == queue_id)
        users: dict[int, list[str]] = {}
        for qid, node in session.execute(query):
            users.setdefault(qid, []).append(node)
        return users

    @staticmethod
    def _broker_users(session: Session) -> dict[int, list[str]]:
        users: dict[int, list[str]] = {}
        for bid, node in session.execute(select(Node.broker_id, Node.name)
                                         .where(Node.broker_id.is_not(None))
                                         .order_by(Node.name)):
            users.setdefault(bid, []).append(node)
        return users

    @staticmethod
    def _declaration(name: str, clean: Mapping) -> dict:
        return {'exchange': name if clean['exchange'] is None else clean['exchange'],
                'exchange_type': clean['exchange_type'],
                'routing_key': name if clean['routing_key'] is None else clean['routing_key'],
                'options': clean['options']}

    @staticmethod
    def _queue_dict(queue: Queue, nodes: list[str]) -> dict:
        return {'name': queue.name, 'exchange': queue.exchange,
                'exchange_type': queue.exchange_type, 'routing_key': queue.routing_key,
                'options': dict(queue.options or {}), 'nodes': nodes}

    @staticmethod
    def _broker_dict(broker: Broker, nodes: list[str]) -> dict:
        return {'name': broker.name, 'url': masked_url(broker.url), 'nodes': nodes}

    @staticmethod
    def _node(session: Session, name: str) -> Node:
        node = session.scalars(NODE, {'name': name}).unique().one_or_none()
        if node is None:
            raise NotFound(f'no node named {name}')
        return node

    @staticmethod
    def _bump(session: Session) -> None:
        """Flush the change first: every change locks its own rows before the shared revision
        row, so two changes never wait on each other in opposite orders."""
        session.flush()
        if session.execute(BUMP).rowcount == 0:
            session.add(Revision(id=1, value=1))

    def _apply(self, session: Session, node: Node, clean: Mapping) -> None:
        node.set_queues(self._queues(session, clean['queues'], node.queues))
        node.broker = self._broker(session, clean['broker'], node.broker)
        for field in ('min_concurrency', 'max_concurrency', 'pool', 'app', 'loglevel',
                      'directory', 'env', 'enabled'):
            setattr(node, field, clean[field])

    @staticmethod
    def _queues(session: Session, names: list[str], known: Iterable[Queue]) -> list[Queue]:
        """The Queue rows of ``names`` in that order: from ``known``, the others in one query,
        new ones created."""
        found = {q.name: q for q in known}
        missing = [name for name in names if name not in found]
        if missing:
            found.update((q.name, q) for q in session.scalars(QUEUES, {'names': missing}))
        for name in names:
            if name not in found:  # named by a node before it was declared: the defaults
                found[name] = Queue(name=name, **Store._declaration(
                    name, v.check_queue_fields(v.QUEUE_DEFAULTS)))
                session.add(found[name])
        return [found[name] for name in names]

    @staticmethod
    def _broker(session: Session, value: str | None, current: Broker | None) -> Broker | None:
        """A broker row by name, or by URL (found or created, named ``broker-<n>``); ``current``
        when ``value`` names it."""
        if value is None:
            return None
        if current is not None and value == current.name:
            return current
        if '://' not in value:
            broker = session.scalar(select(Broker).where(Broker.name == value))
            if broker is None:
                raise v.ValidationError('broker', f'no broker named {value}')
            return broker
        broker = session.scalar(select(Broker).where(Broker.url == value))
        if broker is None:
            taken = set(session.scalars(select(Broker.name)))
            number = len(taken) + 1
            while f'broker-{number}' in taken:
                number += 1
            broker = Broker(name=f'broker-{number}', url=value)
            session.add(broker)
        return broker

    @staticmethod
    def _fields(node: Node) -> dict:
        return {
            'queues': [q.name for q in node.queues],
            'min_concurrency': node.min_concurrency,
            'max_concurrency': node.max_concurrency,
            'pool': node.pool,
            'app': node.app,
            'broker': node.broker.name if node.broker else None,
            'loglevel': node.loglevel,
            'directory': node.directory,
            'env': dict(node.env or {}),
            'enabled': node.enabled,
        }

    def _desired(self, n: Row, queues: list[Row], host: str) -> DesiredNode:
        """A node of :meth:`_enabled` as the supervisor loop compares it."""
        return DesiredNode(
            name=n.name, nodename=f'{n.name}@{host}',
            broker_url=n.broker_url if n.broker_url is not None else self.default_broker_url,
            queues=tuple(QueueDecl(q.queue, q.exchange, q.exchange_type, q.routing_key,
                                   tuple(sorted((q.options or {}).items())))
                         for q in queues),
            min_concurrency=n.min_concurrency, max_concurrency=n.max_concurrency, pool=n.pool)

    def _spec(self, node: Row, queues: list[Row]) -> ProgramSpec:
        """A node of :meth:`_enabled` as the program generator takes it."""
        return ProgramSpec(
            name=node.name, queues=tuple(q.queue for q in queues),
            min_concurrency=node.min_concurrency, max_concurrency=node.max_concurrency,
            pool=node.pool, loglevel=node.loglevel, app=node.app,
            broker_url=(node.broker_url if node.broker_url is not None
                        else self.default_broker_url),
            directory=node.directory, env=tuple(sorted((node.env or {}).items())))

    def _node_dict(self, node: Node, status: NodeStatus | None = None) -> dict:
        """A node as the user sees it: desired state, broker URL masked, loop observations."""
        url = node.broker.url if node.broker else self.default_broker_url
        observed = dict(OBSERVED_DEFAULTS)
        if status is not None:
            observed.update({k: v for k, v in status.observed.items() if k in observed})
            observed['observed_at'] = status.updated_at.isoformat()
        return {
            **observed,
            'name': node.name,
            'agent': node.agent,
            **self._fields(node),
            'broker_url': masked_url(url),
            'created_at': node.created_at.isoformat() if node.created_at else None,
            'updated_at': node.updated_at.isoformat() if node.updated_at else None,
        }
