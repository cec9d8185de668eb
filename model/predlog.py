"""Writing the prediction log: one bulk statement per request, pseudonymous student keys.

Every row gets an idempotency key (``"<request_id>:<i>"``) and inserts ignore a key already stored,
so a row is logged exactly once however often it is written. When the database is unreachable the
rows go to the local spool (:mod:`model.spool`) and the prediction still returns; the next
successful write (or ``python -m model spool replay``) replays them. Inputs are encrypted with the
data key when one is set (:mod:`model.crypto`).
"""

from __future__ import annotations

import hashlib
import hmac
from collections import Counter
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Engine

from model import crypto
from model.settings import get_settings
from model.tables import PredictionLog, utcnow

CHANNELS = ("ui", "api", "cli")


def student_key(student_id: str | None) -> str | None:
    """HMAC-SHA256 of a student id under the server secret: stable, not reversible, never the id."""
    return student_keys([student_id])[0]


def student_keys(student_ids: Sequence[str | None]) -> list[str | None]:
    """:func:`student_key` for many ids, reading the secret once."""
    key = get_settings().local_secret("secret_key").encode("utf-8")
    return [
        None
        if sid is None or str(sid).strip() == ""
        else hmac.new(key, str(sid).strip().encode("utf-8"), hashlib.sha256).hexdigest()[:40]
        for sid in student_ids
    ]


LOG_FIELDS = (
    *("request_id", "user_id", "channel", "model_version_id", "setup", "student_key", "inputs"),
    *("predicted_g3", "lower", "upper", "p_pass", "band", "risk", "latency_ms", "status", "error_type"),
)


# Errors meaning "the database cannot be reached right now": the rows are spooled, not lost.
DB_UNAVAILABLE = (sa.exc.OperationalError, sa.exc.InterfaceError, sa.exc.TimeoutError)


def write_log(engine: Engine, rows: Sequence[dict[str, Any]]) -> None:
    """Insert ``rows`` (dicts of PredictionLog columns) into the prediction log in one statement.

    Columns a row leaves out are NULL, so accepted and rejected rows can share the statement. If the
    database is unreachable the rows are appended to the local spool instead; after a successful
    insert, rows spooled earlier are replayed.
    """
    if not rows:
        return
    from model import spool  # spool replays through insert_rows below

    complete = prepare_rows(rows)
    try:
        insert_rows(engine, complete)
    except DB_UNAVAILABLE as error:
        spool.append(complete, reason=type(error).__name__)
        return
    spool.replay_pending(engine)


def prepare_rows(rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Complete rows for insertion: every column, a creation time, an idempotency key, encrypted inputs."""
    now = utcnow()
    ring = crypto.keyring()
    seen: Counter[str] = Counter()
    complete = []
    for row in rows:
        full = {name: row.get(name) for name in LOG_FIELDS} | row
        full.setdefault("created_at", now)
        if full.get("idempotency_key") is None:
            request_id = str(full["request_id"])
            full["idempotency_key"] = f"{request_id}:{seen[request_id]}"
            seen[request_id] += 1
        full["inputs"] = ring.encrypt_inputs(full["inputs"])
        complete.append(full)
    return complete


def insert_rows(engine: Engine, rows: Sequence[dict[str, Any]], returning: bool = False) -> int | None:
    """Insert prepared rows in one statement, skipping idempotency keys already stored.

    With ``returning`` the number of rows really inserted is returned (else None).
    """
    insert = {"postgresql": postgresql.insert, "sqlite": sqlite.insert}[engine.dialect.name]
    statement = insert(PredictionLog).on_conflict_do_nothing(index_elements=["idempotency_key"])
    if returning:
        statement = statement.returning(PredictionLog.id)
    with engine.begin() as connection:
        result = connection.execute(statement, list(rows))
        return len(result.all()) if returning else None
