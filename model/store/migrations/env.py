"""Alembic environment for mathsight.

`model.store.db.migrate` hands over an open connection in ``config.attributes["connection"]`` (so a
PostgreSQL ``search_path`` in the URL applies, and the upgrade runs in the caller's transaction).
From the command line (``alembic upgrade head`` at the project root) the URL is
``sqlalchemy.url`` when given with ``-x``/the ini file, else the configured ``DATABASE_URL``.
"""

from __future__ import annotations

from logging.config import fileConfig

import sqlalchemy as sa
from alembic import context

from model.store.tables import Base

config = context.config
target_metadata = Base.metadata

if config.config_file_name is not None and config.get_section("loggers") is not None:
    fileConfig(config.config_file_name, disable_existing_loggers=False)


def _configure(connection: sa.Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        compare_type=True,
        render_as_batch=connection.dialect.name == "sqlite",
    )


def run_migrations_offline() -> None:
    """Emit SQL to stdout instead of running it (``alembic upgrade head --sql``)."""
    context.configure(
        url=_url(),
        target_metadata=target_metadata,
        literal_binds=True,
        dialect_opts={"paramstyle": "named"},
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _configure(connection)
        with context.begin_transaction():
            context.run_migrations()
        return
    from model.store.db import get_engine

    with get_engine(_url()).connect() as connection:
        _configure(connection)
        with context.begin_transaction():
            context.run_migrations()


def _url() -> str:
    url = config.get_main_option("sqlalchemy.url")
    if url:
        return url
    from model.settings import get_settings

    return get_settings().database_url


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
