"""Writing the prediction log: one bulk statement per request, pseudonymous student keys.

Every row gets an idempotency key (``"<request_id>:<i>"``) and inserts ignore a key already stored,
so a row is logged exactly once however often it is written. When the database is unreachable the
rows go to the local spool (:mod:`model.serving.predlog.spool`) and the prediction still returns; the next
successful write (or ``python -m model spool replay``) replays them. Inputs are encrypted with the
data key when one is set (:mod:`model.store.crypto`). The secret key, the spool directory and the
data key all come from the ``Settings`` the caller passes in.

Unlike the other data functions of :mod:`model.serving`, the writer takes an ``Engine``, not a
``Session``: it must notice that the database is unreachable and fall back to the spool, which a
session opened (and failing) in the caller's transaction could not do; each write is its own
transaction.
"""

from __future__ import annotations

import hmac
from collections import Counter
from collections.abc import Sequence
from typing import Any

from sqlalchemy.engine import Engine

from model.serving.predlog import spool
from model.serving.predlog.insert import DB_UNAVAILABLE, Columns, insert_columns
from model.settings import Settings
from model.store import crypto
from model.store.tables import utcnow


def student_key(student_id: str | None, settings: Settings) -> str | None:
    """HMAC-SHA256 of a student id under the secret key of ``settings``: stable, not reversible, never the id."""
    return student_keys([student_id], settings)[0]


def student_keys(student_ids: Sequence[str | None], settings: Settings) -> list[str | None]:
    """:func:`student_key` for many ids, reading the secret once."""
    key = settings.local_secret("secret_key").encode("utf-8")
    keys: list[str | None] = []
    for sid in student_ids:
        text = None if sid is None else str(sid).strip()
        keys.append(hmac.digest(key, text.encode("utf-8"), "sha256").hex()[:40] if text else None)
    return keys


LOG_FIELDS = (
    *("request_id", "user_id", "channel", "model_version_id", "setup", "student_key", "inputs"),
    *("predicted_g3", "lower", "upper", "p_pass", "p_no_grade", "band", "risk", "latency_ms", "status", "error_type"),
)


def write_log(engine: Engine, settings: Settings, rows: Sequence[dict[str, Any]]) -> None:
    """Insert ``rows`` (dicts of PredictionLog columns) into the prediction log in one statement.

    Columns a row leaves out are NULL, so accepted and rejected rows can share the statement. If the
    database is unreachable the rows are appended to the local spool instead; after a successful
    insert, rows spooled earlier are replayed.
    """
    if rows:
        write_log_columns(engine, settings, _columns_of(rows), len(rows))


def write_log_columns(engine: Engine, settings: Settings, columns: Columns, n: int) -> None:
    """:func:`write_log` for rows given column by column (a value that is not a list holds for all ``n``
    rows): a class of 100k students is logged without building 100k dicts."""
    if n == 0:
        return
    complete = prepare_columns(columns, n, settings)
    directory = spool.spool_dir(settings)
    try:
        insert_columns(engine, complete, n)
    except DB_UNAVAILABLE as error:
        spool.append(directory, _rows_of(complete, n), reason=type(error).__name__)
        return
    spool.replay_pending(engine, directory)


def prepare_columns(columns: Columns, n: int, settings: Settings) -> Columns:
    """Every log column, a creation time, idempotency keys (``<request_id>:<i>``) and encrypted inputs."""
    now = utcnow()
    complete: Columns = dict.fromkeys(LOG_FIELDS) | {"created_at": now} | dict(columns)
    if isinstance(complete["created_at"], list):
        complete["created_at"] = [now if at is None else at for at in complete["created_at"]]
    elif complete["created_at"] is None:
        complete["created_at"] = now
    given = complete.get("idempotency_key")
    if given is not None and not isinstance(given, list) and n > 1:
        raise ValueError("one idempotency key cannot stand for several log rows")
    if given is None or (isinstance(given, list) and None in given):
        request_ids = complete["request_id"]
        if isinstance(request_ids, list):
            seen: Counter[str] = Counter()
            keys = []
            for request_id in map(str, request_ids):
                keys.append(f"{request_id}:{seen[request_id]}")
                seen[request_id] += 1
        else:
            keys = [f"{request_ids}:{i}" for i in range(n)]
        complete["idempotency_key"] = keys if given is None else [g or k for g, k in zip(given, keys, strict=True)]
    ring = crypto.keyring(settings)
    if ring.current is not None and complete["inputs"] is not None:
        inputs = complete["inputs"] if isinstance(complete["inputs"], list) else [complete["inputs"]] * n
        complete["inputs"] = [ring.encrypt_inputs(value) for value in inputs]
    return complete


def prepare_rows(rows: Sequence[dict[str, Any]], settings: Settings) -> list[dict[str, Any]]:
    """Complete rows for insertion (as :func:`prepare_columns`), e.g. for the spool."""
    return _rows_of(prepare_columns(_columns_of(rows), len(rows), settings), len(rows)) if rows else []


def _columns_of(rows: Sequence[dict[str, Any]]) -> Columns:
    """Rows as columns: every key any row names, None where a row leaves it out."""
    keys = dict.fromkeys(key for row in rows for key in row)
    return {key: [row.get(key) for row in rows] for key in keys}


def _rows_of(columns: Columns, n: int) -> list[dict[str, Any]]:
    lists = {key: value if isinstance(value, list) else [value] * n for key, value in columns.items()}
    return [dict(zip(lists, values, strict=True)) for values in zip(*lists.values(), strict=True)]
