"""The prediction log's SQL side: one driver-level ``executemany`` per write, idempotency keys honoured.

Kept apart from the writer so the spool can replay through it without importing the writer back."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Engine

from model.store.db import json_dumps
from model.store.tables import PredictionLog

# Errors meaning "the database cannot be reached right now": the rows are spooled, not lost.
DB_UNAVAILABLE = (sa.exc.OperationalError, sa.exc.InterfaceError, sa.exc.TimeoutError)

Columns = dict[str, Any]  # column name -> a list of n values, or one value for every row


def insert_rows(engine: Engine, rows: Sequence[dict[str, Any]]) -> int:
    """Insert prepared rows (e.g. replayed from the spool) in one statement, skipping idempotency keys
    already stored; returns how many were really inserted."""
    if not rows:
        return 0
    with engine.begin() as connection:
        return len(connection.execute(_statement(engine.dialect).returning(PredictionLog.id), list(rows)).all())


def _statement(dialect: sa.Dialect) -> sa.Insert:
    insert = {"postgresql": postgresql.insert, "sqlite": sqlite.insert}[dialect.name]
    return insert(PredictionLog).on_conflict_do_nothing(index_elements=["idempotency_key"])


def insert_columns(engine: Engine, columns: Columns, n: int) -> None:
    """One ``executemany`` of plain tuples at the driver: each column's bind conversion runs once per
    distinct value and the inputs are serialized by orjson, which for a 100k-row class saves seconds
    of per-row work in SQLAlchemy. Columns left out take their scalar default (as SQLAlchemy would)."""
    sql, names, positional = _compiled(engine.dialect, tuple(columns))
    values = {}
    for name in names:
        if name in columns:
            column = columns[name]
        else:
            default = PredictionLog.__table__.c[name].default
            if default is None or not default.is_scalar:
                raise ValueError(f"prediction log rows lack a value for {name}")
            column = default.arg
        values[name] = _driver_values(engine.dialect, name, column, n)
    if positional:
        parameters: list[Any] = list(zip(*values.values(), strict=True))
    else:
        parameters = [dict(zip(names, row, strict=True)) for row in zip(*values.values(), strict=True)]
    with engine.begin() as connection:
        connection.exec_driver_sql(sql, parameters)


_COMPILED: dict[tuple[Any, ...], tuple[str, list[str], bool]] = {}


def _compiled(dialect: sa.Dialect, keys: tuple[str, ...]) -> tuple[str, list[str], bool]:
    """The insert's SQL, its bind names in order and whether they are positional, compiled once per dialect
    and set of columns (compiling costs about as much as a one-student prediction's trees)."""
    key = (type(dialect), dialect.paramstyle, dialect.server_version_info, keys)
    found = _COMPILED.get(key)
    if found is None:
        # inline(): no RETURNING of the new ids (PostgreSQL would send back one per row for nothing)
        compiled = _statement(dialect).inline().compile(dialect=dialect, column_keys=list(keys))
        names = list(compiled.positiontup or ()) if compiled.positional else list(compiled.binds)
        found = _COMPILED.setdefault(key, (str(compiled), names, bool(compiled.positional)))
    return found


def _driver_values(dialect: sa.Dialect, key: str, value: Any, n: int) -> list[Any]:
    """A column's ``n`` values as the driver takes them (what SQLAlchemy's bind processing gives)."""
    column = PredictionLog.__table__.c[key]
    values = value if isinstance(value, list) else [value] * n
    if isinstance(column.type, sa.JSON):  # dicts: unhashable, so serialized one by one
        return [None if v is None else json_dumps(v) for v in values]
    process = column.type.dialect_impl(dialect).bind_processor(dialect)
    if process is None:
        return values
    done: dict[Any, Any] = {}
    return [done[v] if v in done else done.setdefault(v, process(v)) for v in values]
