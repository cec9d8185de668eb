"""What recent traffic looks like: value counts of the inputs of a window's most recent predicted rows.

The sample is bounded: only the window's newest ``max_rows`` predicted rows are read, so the cost
stays flat however long the window. Plain inputs are counted by SQL (GROUP BY the value extracted
from the JSON ``inputs``). Inputs encrypted at rest (``MATHSIGHT_DATA_KEY``) cannot be read by SQL:
the same bounded sample is fetched, decrypted and counted here instead.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Session

from model.monitoring.queries import LOG, Window, is_postgresql
from model.schema.fields import CATEGORICAL
from model.settings import Settings
from model.store import crypto

MAX_ROWS = 20_000
Counts = dict[str, dict[Any, int]]


def _recent_rows(window: Window, setup: str | None, max_rows: int, document: Any = LOG.inputs) -> sa.Select[Any]:
    """The stored inputs (as ``document``) of the window's newest ``max_rows`` predicted rows."""
    conditions = [LOG.status == "ok", LOG.inputs.is_not(None)]
    if setup is not None:
        conditions.append(LOG.setup == setup)
    query = sa.select(document.label("doc")).where(window.where(*conditions))
    return query.order_by(LOG.created_at.desc()).limit(max_rows)


def recent_inputs(
    session: Session, settings: Settings, window: Window, setup: str | None = None, max_rows: int = MAX_ROWS
) -> list[dict[str, Any]]:
    """The decrypted inputs of the window's newest ``max_rows`` predicted rows (plain rows as they are)."""
    ring = crypto.keyring(settings)
    stored = session.execute(_recent_rows(window, setup, max_rows)).scalars()
    return [ring.decrypt_inputs(inputs) or {} for inputs in stored]


def value_counts(inputs: Iterable[Mapping[str, Any]], attributes: Sequence[str]) -> Counts:
    """Attribute -> {value: rows} over decrypted inputs (missing values left out)."""
    counters: dict[str, Counter[Any]] = {name: Counter() for name in attributes}
    for record in inputs:
        for name in attributes:
            value = record.get(name)
            if value is not None:
                counters[name][value] += 1
    return {name: dict(counter) for name, counter in counters.items()}


def _sql_counts(
    session: Session, window: Window, attributes: Sequence[str], setup: str | None, max_rows: int
) -> Counts:
    """One query: each JSON document of the sample parsed once, then GROUP BY each attribute's value.

    PostgreSQL's ``json`` is re-parsed by every ``->>``, so the documents are cast to ``jsonb`` first;
    SQLite reuses its parse of the same document for consecutive ``json_extract`` calls.
    """
    document = sa.cast(LOG.inputs, JSONB) if is_postgresql(session) else LOG.inputs
    rows = _recent_rows(window, setup, max_rows, document).subquery("rows")
    recent = sa.select(
        *((rows.c.doc[n].as_string() if n in CATEGORICAL else rows.c.doc[n].as_integer()).label(n) for n in attributes)
    ).cte("recent")
    parts = []
    for name in attributes:
        text = recent.c[name] if name in CATEGORICAL else sa.cast(sa.null(), sa.String)
        number = sa.cast(sa.null(), sa.Integer) if name in CATEGORICAL else recent.c[name]
        parts.append(
            sa.select(
                sa.literal(name, sa.String).label("attribute"),
                text.label("text_value"),
                number.label("int_value"),
                sa.func.count().label("n"),
            ).group_by(recent.c[name])
        )
    counts: Counts = {name: {} for name in attributes}
    for attribute, text, number, n in session.execute(sa.union_all(*parts)):
        if attribute in CATEGORICAL and text is not None:
            counts[attribute][text] = int(n)
        elif attribute not in CATEGORICAL and number is not None:
            counts[attribute][int(number)] = int(n)
    return counts


def recent_counts(
    session: Session,
    settings: Settings,
    window: Window,
    attributes: Sequence[str],
    setup: str | None = None,
    max_rows: int = MAX_ROWS,
) -> Counts:
    """Attribute -> {value: rows} over the window's newest ``max_rows`` predicted rows (of ``setup``)."""
    if crypto.keyring(settings).encrypts:
        return value_counts(recent_inputs(session, settings, window, setup, max_rows), attributes)
    return _sql_counts(session, window, attributes, setup, max_rows)
