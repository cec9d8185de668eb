"""The local spool: prediction log rows wait here, as JSON lines, while the database is unreachable.

``append`` writes a request's rows with one ``write`` to an append-only file (mode 0600) and
fsyncs it, under a lock shared by threads and processes, so a returned prediction's log rows survive
a crash. ``replay_spool`` moves the file aside (new rows start a fresh one), inserts its rows in
batches with ``insert.insert_rows`` (rows carry idempotency keys, so a batch replayed twice is
stored once) and removes it. A replay runs after every successful log write that finds rows waiting,
and by ``python -m model spool replay``. Rows hold what the log holds: student keys (never ids) and
inputs, encrypted when a data key is set. Every function works on the spool directory it is given
(:func:`spool_dir` of the caller's settings).
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy.engine import Engine

from model.serving.predlog.insert import DB_UNAVAILABLE, insert_rows
from model.settings import Settings

SPOOL_FILE = "prediction_log.jsonl"
CLAIMED_GLOB = "prediction_log.*.claimed.jsonl"
BATCH_ROWS = 5_000

logger = logging.getLogger("mathsight.spool")
_thread_lock = threading.Lock()
_outage_reported = False


@dataclass(frozen=True)
class ReplayResult:
    """What a replay did: rows read from the spool, newly inserted, already stored, unreadable lines."""

    read: int = 0
    inserted: int = 0
    duplicates: int = 0
    unreadable: int = 0
    busy: bool = False


def spool_dir(settings: Settings) -> Path:
    """The spool directory of ``settings`` (``MATHSIGHT_SPOOL_DIR``, default ``<home>/spool``)."""
    path = settings.spool_dir
    assert path is not None
    return Path(path)


@contextmanager
def _file_lock(directory: Path, name: str, blocking: bool = True) -> Iterator[bool]:
    """An exclusive ``flock`` on ``directory/name``; yields False when ``blocking`` is off and it is held."""
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    fd = os.open(directory / name, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | (0 if blocking else fcntl.LOCK_NB))
        except BlockingIOError:
            yield False
            return
        yield True
    finally:
        os.close(fd)


def _encode(value: Any) -> Any:
    if isinstance(value, datetime):
        return {"$datetime": value.isoformat()}
    return value.item() if hasattr(value, "item") else str(value)


def _decode(obj: dict[str, Any]) -> Any:
    if set(obj) == {"$datetime"}:
        return datetime.fromisoformat(obj["$datetime"])
    return obj


def append(directory: Path, rows: Sequence[dict[str, Any]], reason: str = "") -> Path:
    """Append prepared log rows to the spool file in ``directory``, durably (fsync); returns the file's path."""
    payload = "".join(json.dumps(row, default=_encode, ensure_ascii=False) + "\n" for row in rows).encode("utf-8")
    path = directory / SPOOL_FILE
    with _thread_lock, _file_lock(directory, ".append.lock"):
        created = not path.exists()
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            view = memoryview(payload)
            while view:
                view = view[os.write(fd, view) :]
            os.fsync(fd)
        finally:
            os.close(fd)
        if created:
            _fsync_dir(path.parent)
    global _outage_reported
    level = logging.DEBUG if _outage_reported else logging.WARNING  # one warning per outage, not per request
    _outage_reported = True
    logger.log(level, "database unavailable (%s): %d prediction log rows spooled for replay", reason, len(rows))
    return path


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def pending_files(directory: Path) -> list[Path]:
    """Spool files waiting for replay, oldest first (claimed ones from an interrupted replay included)."""
    if not directory.is_dir():
        return []
    live = directory / SPOOL_FILE
    return sorted(directory.glob(CLAIMED_GLOB)) + ([live] if live.exists() else [])


def pending_rows(directory: Path) -> int:
    """How many rows wait in the spool (lines counted)."""
    total = 0
    for path in pending_files(directory):
        with path.open("rb") as handle:
            total += sum(1 for _ in handle)
    return total


def _claim(directory: Path) -> list[Path]:
    """Move the live spool file aside so appends start a new one; all claimed files, oldest first."""
    live = directory / SPOOL_FILE
    with _thread_lock, _file_lock(directory, ".append.lock"):
        if live.exists():
            live.rename(directory / f"prediction_log.{time.time_ns():020d}.{os.getpid()}.claimed.jsonl")
    return sorted(directory.glob(CLAIMED_GLOB))


def _read(path: Path) -> tuple[list[dict[str, Any]], int]:
    """The rows of a spool file and the number of unreadable lines (e.g. torn by a crash mid-write)."""
    rows, unreadable = [], 0
    with path.open("r", encoding="utf-8", errors="replace") as handle:
        for number, line in enumerate(handle, start=1):
            try:
                rows.append(json.loads(line, object_hook=_decode))
            except json.JSONDecodeError:
                unreadable += 1
                logger.error("spool file %s line %d is not a complete JSON row; kept for inspection", path, number)
    return rows, unreadable


def replay_spool(engine: Engine, directory: Path, batch_rows: int = BATCH_ROWS) -> ReplayResult:
    """Insert every row spooled in ``directory`` not yet in the log, exactly once; one transaction per batch.

    Returns ``busy=True`` without doing anything when another replay is running. Raises the
    database error when the database is still unreachable (the spool is left as it was).
    """
    with _file_lock(directory, ".replay.lock", blocking=False) as acquired:
        if not acquired:
            return ReplayResult(busy=True)
        read = inserted = unreadable = 0
        for path in _claim(directory):
            rows, bad = _read(path)
            for start in range(0, len(rows), batch_rows):
                inserted += insert_rows(engine, rows[start : start + batch_rows])
            read, unreadable = read + len(rows), unreadable + bad
            if bad:
                path.rename(path.with_suffix(".unreadable"))
            else:
                path.unlink()
    global _outage_reported
    _outage_reported = False
    if read:
        logger.info("spool replayed: %d rows read, %d inserted, %d already logged", read, inserted, read - inserted)
    return ReplayResult(read, inserted, read - inserted, unreadable)


def replay_pending(engine: Engine, directory: Path) -> ReplayResult | None:
    """Replay the spool in ``directory`` if rows wait in it; a database still failing is logged, not raised."""
    if not pending_files(directory):
        return None
    try:
        return replay_spool(engine, directory)
    except DB_UNAVAILABLE as error:
        logger.warning("spool replay postponed: database unavailable (%s)", type(error).__name__)
        return None
