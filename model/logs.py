"""Structured logging, configured in one place: JSON lines to a size-rotated file and to stderr.

Each prediction request writes one line (``event: "request"``) with its request id, channel, setups,
row counts, latency and status. Only those fields can be logged through :func:`log_request`, so no
student id, name or input value ever reaches the log; the request id links the line to the
prediction log in the database.

The core never configures logging itself: each front calls :func:`configure_logging` with its
``Settings`` when it starts (the API app, the dashboard process, each CLI command). Until then the
``mathsight`` loggers behave like any library's (their lines propagate to the root logger).
"""

from __future__ import annotations

import json
import logging
import sys
import threading
from collections.abc import Mapping
from datetime import UTC, datetime
from logging.handlers import RotatingFileHandler
from pathlib import Path
from typing import Any

from model.settings import Settings

LOGGER = "mathsight"
REQUEST_LOGGER = "mathsight.requests"
LOG_FILE = "mathsight.jsonl"
_FIELDS_ATTR = "mathsight_fields"
_lock = threading.Lock()


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time (UTC, ISO 8601), level, logger, message and structured fields."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            **getattr(record, _FIELDS_ATTR, {}),
        }
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, ensure_ascii=False, default=str)


class StderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever ``sys.stderr`` is at the time of the record (it may be replaced after setup)."""

    @property  # type: ignore[override]
    def stream(self) -> Any:
        return sys.stderr

    @stream.setter
    def stream(self, _value: Any) -> None:
        pass


def configure_logging(settings: Settings) -> Path:
    """Send the ``mathsight`` loggers to ``log_dir/mathsight.jsonl`` (rotated by size) and stderr.

    Calling it again replaces the handlers it installed before (e.g. after the settings changed).
    Returns the path of the log file (created with its first line).
    """
    assert settings.log_dir is not None
    path = Path(settings.log_dir) / LOG_FILE
    with _lock:
        path.parent.mkdir(parents=True, exist_ok=True)
        logger = logging.getLogger(LOGGER)
        for handler in list(logger.handlers):
            logger.removeHandler(handler)
            handler.close()
        formatter = JsonFormatter()
        rotating = RotatingFileHandler(
            path, maxBytes=settings.log_max_bytes, backupCount=settings.log_backups, encoding="utf-8", delay=True
        )
        for handler in (rotating, StderrHandler()):
            handler.setFormatter(formatter)
            logger.addHandler(handler)
        logger.setLevel(logging.INFO)
        logger.propagate = False
    return path


def log_request(
    *,
    request_id: str,
    channel: str,
    n_rows: int,
    latency_ms: float,
    status: str,
    setups: Mapping[str, int] | None = None,
    n_rejected: int = 0,
    error_type: str | None = None,
) -> None:
    """Write the one log line of a prediction request."""
    fields = {
        "event": "request",
        "request_id": request_id,
        "channel": channel,
        "setups": dict(setups or {}),
        "n_rows": int(n_rows),
        "n_rejected": int(n_rejected),
        "latency_ms": round(float(latency_ms), 3),
        "status": status,
        "error_type": error_type,
    }
    level = logging.ERROR if status == "error" else logging.INFO
    logging.getLogger(REQUEST_LOGGER).log(level, "prediction request", extra={_FIELDS_ATTR: fields})
