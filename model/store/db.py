"""Database access: one cached engine per URL, a transactional session scope, migrations.

SQLite (the local default) and PostgreSQL are both supported. A PostgreSQL URL may carry the schema
in its query string (``?options=-csearch_path%3Dmy_schema``); engines and migrations honour it.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import date, datetime
from pathlib import Path
from typing import Any

import orjson
import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from model.settings import get_settings

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
SQLITE_BUSY_TIMEOUT_MS = 30_000
# Any constant shared by every mathsight process; serializes concurrent `migrate` calls on PostgreSQL.
_MIGRATION_LOCK_ID = 0x6D617468

# The INSERT constructs with ON CONFLICT (upserts) of the supported databases.
UPSERT_INSERTS: dict[str, Callable[..., Any]] = {"postgresql": postgresql.insert, "sqlite": sqlite.insert}

_engines: dict[str, Engine] = {}
_engines_lock = threading.Lock()
# Alembic keeps the running migration in module globals: one upgrade at a time per process.
_migrate_lock = threading.Lock()


def get_engine(url: str | None = None) -> Engine:
    """The engine for ``url`` (default: the configured ``database_url``), created once per URL."""
    url = url or get_settings().database_url
    with _engines_lock:
        engine = _engines.get(url)
        if engine is None:
            engine = _engines[url] = _create_engine(url)
        return engine


def dispose_engines() -> None:
    """Close the pools of all cached engines and forget them."""
    with _engines_lock:
        engines = list(_engines.values())
        _engines.clear()
    for engine in engines:
        engine.dispose()


def _create_engine(url: str) -> Engine:
    parsed = sa.make_url(url)
    if parsed.get_backend_name() == "sqlite":
        database = parsed.database or ""
        if database and database != ":memory:" and not database.startswith("file:"):
            Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)
        engine = sa.create_engine(parsed, json_serializer=json_dumps)
        sa.event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    return sa.create_engine(parsed, pool_pre_ping=True, json_serializer=json_dumps)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA journal_mode = WAL")
        cursor.execute("PRAGMA synchronous = NORMAL")
        cursor.execute("PRAGMA foreign_keys = ON")
    finally:
        cursor.close()


def _jsonable(value: Any) -> Any:
    """Plain JSON values from what training and the service produce (numpy scalars and arrays,
    NaN, dates, paths); non-finite floats become null since PostgreSQL's JSON refuses NaN."""
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_jsonable(v) for v in value]
    if isinstance(value, float):
        return float(value) if math.isfinite(value) else None
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Path):
        return str(value)
    if hasattr(value, "tolist") and not isinstance(value, str | bytes):
        return _jsonable(value.tolist())
    return value


def json_dumps(value: Any) -> str:
    """JSON text of a stored value (orjson: compact UTF-8, NaN as null); the engines' JSON serializer."""
    try:  # fast path: the prediction log's inputs are already plain values
        return orjson.dumps(value, option=orjson.OPT_SERIALIZE_NUMPY).decode()
    except TypeError:
        return orjson.dumps(_jsonable(value)).decode()


@contextmanager
def session_scope(engine: Engine | None = None) -> Iterator[Session]:
    """A session committed on success and rolled back on error; objects stay usable after it."""
    session = Session(engine or get_engine(), expire_on_commit=False)
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


def alembic_config(connection: sa.Connection | None = None) -> Config:
    """An Alembic config for the migrations inside the package, independent of the working dir."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR).replace("%", "%%"))
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def _engine_for(url_or_engine: str | Engine | None) -> Engine:
    if isinstance(url_or_engine, Engine):
        return url_or_engine
    return get_engine(url_or_engine)


def migrate(url_or_engine: str | Engine | None = None) -> str:
    """Upgrade the database to the newest migration (a no-op when already there); returns the revision."""
    engine = _engine_for(url_or_engine)
    with _migrate_lock, engine.begin() as connection:
        # Serialize with other processes migrating the same database; on SQLite this also makes
        # the DDL one transaction, so a failed upgrade leaves nothing half-done.
        if connection.dialect.name == "postgresql":
            connection.execute(sa.text("SELECT pg_advisory_xact_lock(:id)"), {"id": _MIGRATION_LOCK_ID})
        elif connection.dialect.name == "sqlite":
            connection.exec_driver_sql("BEGIN IMMEDIATE")
        command.upgrade(alembic_config(connection), "head")
    revision = current_revision(engine)
    assert revision is not None
    return revision


def current_revision(url_or_engine: str | Engine | None = None) -> str | None:
    """The migration revision the database is at, or None when it was never migrated."""
    with _engine_for(url_or_engine).connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def head_revision() -> str:
    """The newest migration revision shipped with the code."""
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head is not None
    return head
