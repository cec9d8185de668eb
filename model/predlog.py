"""Writing the prediction log: one bulk statement per request, pseudonymous student keys."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from model.settings import get_settings
from model.tables import PredictionLog

CHANNELS = ("ui", "api", "cli")


def student_key(student_id: str | None) -> str | None:
    """HMAC-SHA256 of a student id under the server secret: stable, not reversible, never the id."""
    if student_id is None or str(student_id).strip() == "":
        return None
    key = get_settings().local_secret("secret_key").encode("utf-8")
    return hmac.new(key, str(student_id).strip().encode("utf-8"), hashlib.sha256).hexdigest()[:40]


LOG_FIELDS = (
    *("request_id", "user_id", "channel", "model_version_id", "setup", "student_key", "inputs"),
    *("predicted_g3", "lower", "upper", "p_pass", "band", "risk", "latency_ms", "status", "error_type"),
)


def write_log(engine: Engine, rows: Sequence[dict[str, Any]]) -> None:
    """Insert ``rows`` (dicts of PredictionLog columns) into the prediction log in one statement.

    Columns a row leaves out are NULL, so accepted and rejected rows can share the statement.
    """
    if not rows:
        return
    complete = [{name: row.get(name) for name in LOG_FIELDS} | row for row in rows]
    with engine.begin() as connection:
        connection.execute(sa.insert(PredictionLog), complete)
