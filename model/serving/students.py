"""Students a teacher can recognise: the id the teacher typed, kept for that teacher only.

The log and the outcomes know a student by the HMAC ``student_key``; beside it, one ``student_ref``
row per (teacher, student key) keeps the id as the teacher typed it, encrypted under the data key
(AES-256-GCM, :mod:`model.store.crypto`) when one is set, in clear otherwise (with the one-time
warning of :func:`model.store.crypto.keyring`). Only the teacher who typed an id ever reads it back;
admins get counts (:func:`ref_counts`). Ids never reach a log message.

:func:`remember_students` takes the ``Engine`` like the prediction-log writer it follows: the
prediction must not fail because the ids could not be written (the database being down, the rows go
to the spool without ids, and the ids are written again with the teacher's next prediction of them).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from model.errors import Problem, UserError
from model.schema.fields import ID_COLUMN
from model.serving.predlog.insert import DB_UNAVAILABLE
from model.serving.predlog.writer import student_key
from model.settings import Settings
from model.store import crypto
from model.store.tables import PredictionLog, StudentRef, utcnow

PURPOSE = "student_ref"
IN_LIST = 1_000  # keys per IN list: bounded statements on both databases


class UnknownStudent(UserError, LookupError):
    """The student id names none of the user's own predictions (someone else's and missing look the same)."""

    def __init__(self, student_id: str | None, field: str = ID_COLUMN) -> None:
        shown = (student_id or "").strip()
        message = f'field "{field}": no prediction of yours has the student id {shown!r}' if shown else (
            f'field "{field}": missing value; type the student id you predicted for'
        )  # fmt: skip
        super().__init__(message, [Problem(None, field, shown or None, message, "the id of one of your students")])
        self.student_id = shown


def _insert_new(engine: Engine) -> sa.Insert:
    """One INSERT of many rows that skips a (teacher, key) pair already stored (a concurrent upload's too)."""
    insert = {"postgresql": postgresql.insert, "sqlite": sqlite.insert}[engine.dialect.name](StudentRef)
    return insert.on_conflict_do_nothing(index_elements=["user_id", "student_key"])


def _stored_keys(connection: sa.Connection, user_id: int, keys: Sequence[str]) -> set[str]:
    """Which of ``keys`` ``user_id`` already has an id stored for, in one query: an IN list for a class,
    all of the teacher's keys for a batch larger than one IN list (a teacher's caseload, read once)."""
    query = sa.select(StudentRef.student_key).where(StudentRef.user_id == user_id)
    if len(keys) <= IN_LIST:
        query = query.where(StudentRef.student_key.in_(keys))
    return set(connection.execute(query).scalars()) & set(keys)


def remember_students(
    engine: Engine, settings: Settings, user_id: int | None, student_ids: Sequence[object], keys: Sequence[str | None]
) -> int:
    """Store the id typed for each student key of ``user_id`` not stored yet; returns how many were new.

    The key is the HMAC of the id, so a stored row already holds this very id: it is left as it is
    (neither re-encrypted nor rewritten; rotation re-encrypts under a new data key). Only the new
    ids are encrypted, and written in one statement. Rows without an id or without a user are
    skipped; an unreachable database writes nothing (the prediction stands)."""
    if user_id is None:
        return 0
    latest: dict[str, str] = {}
    for raw, key in zip(student_ids, keys, strict=True):
        if key is not None and raw is not None:
            latest[key] = str(raw).strip()
    if not latest:
        return 0
    ring = crypto.keyring(settings)
    now = utcnow()
    try:
        with engine.begin() as connection:
            stored = _stored_keys(connection, user_id, list(latest))
            rows = []
            for key, text in latest.items():
                if key not in stored:
                    ref, key_id = ring.encrypt_text(text, PURPOSE)
                    rows.append({"user_id": user_id, "student_key": key, "ref": ref, "ref_key_id": key_id,
                                 "updated_at": now})  # fmt: skip
            if rows:
                connection.execute(_insert_new(engine), rows)
    except DB_UNAVAILABLE:
        return 0
    return len(rows)


def student_ids(session: Session, settings: Settings, user_id: int, keys: Iterable[str | None]) -> dict[str, str]:
    """Student key -> the id ``user_id`` typed, for the keys that teacher has one for (only theirs)."""
    wanted = sorted({key for key in keys if key is not None})
    if not wanted:
        return {}
    ring = crypto.keyring(settings)
    found: dict[str, str] = {}
    for start in range(0, len(wanted), IN_LIST):  # bounded IN lists
        query = sa.select(StudentRef.student_key, StudentRef.ref, StudentRef.ref_key_id).where(
            StudentRef.user_id == user_id, StudentRef.student_key.in_(wanted[start : start + IN_LIST])
        )
        for row in session.execute(query):
            found[row.student_key] = ring.decrypt_text(row.ref, row.ref_key_id, PURPOSE)
    return found


class StudentNotFound(UserError, LookupError):
    """No prediction of the user's has that student key (another teacher's student, or none)."""

    def __init__(self) -> None:
        super().__init__("this student is not one of yours: open one from Needs attention or My students")


def own_student_key(session: Session, settings: Settings, user_id: int, student_id: str | None) -> str:
    """The key of ``student_id`` when ``user_id`` has a prediction of that student; else `UnknownStudent`."""
    key = student_key(student_id, settings)
    if key is None or not is_own_student(session, user_id, key):
        raise UnknownStudent(student_id)
    return key


def is_own_student(session: Session, user_id: int, key: str) -> bool:
    """Whether ``user_id`` has a prediction of the student with ``key``."""
    found = session.execute(
        sa.select(PredictionLog.id)
        .where(PredictionLog.user_id == user_id, PredictionLog.status == "ok", PredictionLog.student_key == key)
        .limit(1)
    ).first()
    return found is not None


def ref_counts(session: Session) -> dict[int, int]:
    """For admins: user id -> how many student ids that teacher has stored (counts, never the ids)."""
    query = sa.select(StudentRef.user_id, sa.func.count()).group_by(StudentRef.user_id)
    return {int(user_id): int(count) for user_id, count in session.execute(query)}
