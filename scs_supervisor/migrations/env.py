"""Alembic environment: runs against the connection :func:`scs_supervisor.store.upgrade` passes."""

from alembic import context
from sqlalchemy import create_engine

from scs_supervisor.models import Base

config = context.config
target_metadata = Base.metadata


def run_migrations_online() -> None:
    connection = config.attributes.get('connection')
    if connection is None:  # plain `alembic -x url=... upgrade head`
        url = context.get_x_argument(as_dictionary=True)['url']
        with create_engine(url).begin() as connection:
            context.configure(connection=connection, target_metadata=target_metadata,
                              render_as_batch=True)
            context.run_migrations()
        return
    context.configure(connection=connection, target_metadata=target_metadata,
                      render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()


run_migrations_online()
