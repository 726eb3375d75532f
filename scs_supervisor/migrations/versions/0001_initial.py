"""Brokers, queues, nodes and the revision counter.

Revision ID: 0001
Revises:
Create Date: 2026-12-04
"""

import sqlalchemy as sa
from alembic import op

revision = '0001'
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'scs_broker',
        sa.Column('id', sa.Integer(), primary_key=True),
        sa.Column('name', sa.String(63), nullable=False, unique=True),
        sa.Column('url', sa.String(2048), nullable=False),
    )
    op.create_table(
        'scs_queue',
        sa.Column('id', sa.Integer(), primary_key=True),
        sa.Column('name', sa.String(200), nullable=False, unique=True),
        sa.Column('exchange', sa.String(200), nullable=True),
        sa.Column('exchange_type', sa.String(16), nullable=False),
        sa.Column('routing_key', sa.String(200), nullable=True),
        sa.Column('options', sa.JSON(), nullable=False),
    )
    op.create_table(
        'scs_node',
        sa.Column('id', sa.Integer(), primary_key=True),
        sa.Column('name', sa.String(63), nullable=False, unique=True),
        sa.Column('agent', sa.String(255), nullable=False, index=True),
        sa.Column('app', sa.String(200), nullable=True),
        sa.Column('broker_id', sa.Integer(), sa.ForeignKey('scs_broker.id'), nullable=True),
        sa.Column('min_concurrency', sa.Integer(), nullable=False),
        sa.Column('max_concurrency', sa.Integer(), nullable=False),
        sa.Column('pool', sa.String(16), nullable=False),
        sa.Column('loglevel', sa.String(16), nullable=False),
        sa.Column('directory', sa.String(1024), nullable=True),
        sa.Column('env', sa.JSON(), nullable=False),
        sa.Column('enabled', sa.Boolean(), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False,
                  server_default=sa.func.now()),
        sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False,
                  server_default=sa.func.now()),
    )
    op.create_table(
        'scs_node_queue',
        sa.Column('node_id', sa.Integer(), sa.ForeignKey('scs_node.id', ondelete='CASCADE'),
                  primary_key=True),
        sa.Column('queue_id', sa.Integer(), sa.ForeignKey('scs_queue.id', ondelete='CASCADE'),
                  primary_key=True),
        sa.Column('position', sa.Integer(), nullable=False),
        sa.UniqueConstraint('node_id', 'queue_id'),
    )
    revision_table = op.create_table(
        'scs_revision',
        sa.Column('id', sa.Integer(), primary_key=True),
        sa.Column('value', sa.Integer(), nullable=False),
    )
    op.bulk_insert(revision_table, [{'id': 1, 'value': 0}])


def downgrade() -> None:
    for table in ('scs_revision', 'scs_node_queue', 'scs_node', 'scs_queue', 'scs_broker'):
        op.drop_table(table)
