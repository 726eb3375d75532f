"""What the supervisor loop observes: per node and per agent.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-04
"""

import sqlalchemy as sa
from alembic import op

revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'scs_node_status',
        sa.Column('name', sa.String(63), primary_key=True),
        sa.Column('agent', sa.String(255), nullable=False),
        sa.Column('observed', sa.JSON(), nullable=False),
        sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        'scs_agent_status',
        sa.Column('agent', sa.String(255), primary_key=True),
        sa.Column('observed', sa.JSON(), nullable=False),
        sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table('scs_agent_status')
    op.drop_table('scs_node_status')
