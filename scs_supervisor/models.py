"""The desired state: brokers, queues and nodes (one node = one Celery worker instance).

Schema changes go through Alembic revisions in ``migrations/versions``; never create tables by
hand outside of tests that check the revisions match these models.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import JSON, DateTime, ForeignKey, Integer, String, UniqueConstraint, func
from sqlalchemy.ext.associationproxy import AssociationProxy, association_proxy
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class Base(DeclarativeBase):
    """Declarative base of every scs table."""


class Broker(Base):
    """A named broker; nodes that name none use the agent's default broker."""

    __tablename__ = 'scs_broker'

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(63), unique=True)
    url: Mapped[str] = mapped_column(String(2048))


class Queue(Base):
    """A queue declaration: what ``add_consumer`` declares and what ``-Q`` names."""

    __tablename__ = 'scs_queue'

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    exchange: Mapped[str | None] = mapped_column(String(200))
    exchange_type: Mapped[str] = mapped_column(String(16), default='direct')
    routing_key: Mapped[str | None] = mapped_column(String(200))
    options: Mapped[dict] = mapped_column(JSON, default=dict)


class NodeQueue(Base):
    """A node's subscription to a queue, at a position in the node's ordered queue list."""

    __tablename__ = 'scs_node_queue'
    __table_args__ = (UniqueConstraint('node_id', 'queue_id'),)

    node_id: Mapped[int] = mapped_column(ForeignKey('scs_node.id', ondelete='CASCADE'),
                                         primary_key=True)
    queue_id: Mapped[int] = mapped_column(ForeignKey('scs_queue.id', ondelete='CASCADE'),
                                          primary_key=True)
    position: Mapped[int] = mapped_column(Integer, default=0)
    queue: Mapped[Queue] = relationship(lazy='joined')

    def __init__(self, queue: Queue, position: int = 0):
        super().__init__(queue=queue, position=position)


class Node(Base):
    """One Celery worker instance, run by supervisord as the program group ``scs-<name>``."""

    __tablename__ = 'scs_node'

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(63), unique=True)
    agent: Mapped[str] = mapped_column(String(255), index=True)
    app: Mapped[str | None] = mapped_column(String(200))
    broker_id: Mapped[int | None] = mapped_column(ForeignKey('scs_broker.id'))
    broker: Mapped[Broker | None] = relationship(lazy='joined')
    subscriptions: Mapped[list[NodeQueue]] = relationship(
        order_by=NodeQueue.position, cascade='all, delete-orphan', lazy='selectin')
    queues: AssociationProxy[list[Queue]] = association_proxy('subscriptions', 'queue')
    min_concurrency: Mapped[int] = mapped_column(default=1)
    max_concurrency: Mapped[int] = mapped_column(default=1)
    pool: Mapped[str] = mapped_column(String(16), default='prefork')
    loglevel: Mapped[str] = mapped_column(String(16), default='INFO')
    directory: Mapped[str | None] = mapped_column(String(1024))
    env: Mapped[dict] = mapped_column(JSON, default=dict)
    enabled: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow,
                                                    server_default=func.now())
    updated_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow,
                                                    onupdate=utcnow, server_default=func.now())

    def set_queues(self, queues: list[Queue]) -> None:
        """Replace the node's queues, keeping the given order.

        Rows of queues that stay are updated in place (a delete plus an insert of the same key
        would collide in one flush).
        """
        current = {sub.queue.name: sub for sub in self.subscriptions}
        wanted = []
        for position, queue in enumerate(queues):
            sub = current.get(queue.name) or NodeQueue(queue)
            sub.position = position
            wanted.append(sub)
        self.subscriptions = wanted


class Revision(Base):
    """A counter bumped by every change to the desired state: a cheap marker for pollers."""

    __tablename__ = 'scs_revision'

    id: Mapped[int] = mapped_column(primary_key=True)
    value: Mapped[int] = mapped_column(default=0)


class NodeStatus(Base):
    """What the supervisor loop last observed of a node (written by the node's agent)."""

    __tablename__ = 'scs_node_status'

    name: Mapped[str] = mapped_column(String(63), primary_key=True)
    agent: Mapped[str] = mapped_column(String(255))
    observed: Mapped[dict] = mapped_column(JSON, default=dict)
    updated_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow,
                                                    onupdate=utcnow)


class AgentStatus(Base):
    """The supervisor loop's own state: brokers up or down, pauses, tick duration."""

    __tablename__ = 'scs_agent_status'

    agent: Mapped[str] = mapped_column(String(255), primary_key=True)
    observed: Mapped[dict] = mapped_column(JSON, default=dict)
    updated_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow,
                                                    onupdate=utcnow)
