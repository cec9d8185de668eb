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


class UnknownStudent(UserError, LookupError):
    """The student id names none of the user's own predictions (someone else's and missing look the same)."""

    def __init__(self, student_id: str | None, field: str = ID_COLUMN) -> None:
        shown = (student_id or "").strip()
        message = f'field "{field}": no prediction of yours has the student id {shown!r}' if shown else (
            f'field "{field}": missing value; type the student id you predicted for'
        )  # fmt: skip
        super().__init__(message, [Problem(None, field, shown or None, message, "the id of one of your students")])
        self.student_id = shown


def _upsert(engine: Engine) -> sa.Insert:
    insert = {"postgresql": postgresql.insert, "sqlite": sqlite.insert}[engine.dialect.name](StudentRef)
    return insert.on_conflict_do_update(
        index_elements=["user_id", "student_key"],
        set_={"ref": insert.excluded.ref, "ref_key_id": insert.excluded.ref_key_id,
              "updated_at": insert.excluded.updated_at},
    )  # fmt: skip


def remember_students(
    engine: Engine, settings: Settings, user_id: int | None, student_ids: Sequence[object], keys: Sequence[str | None]
) -> int:
    """Store (or refresh) the id typed for each student key of ``user_id``; returns how many were written.

    Rows without an id or without a user are skipped; an unreachable database writes nothing (the
    prediction stands)."""
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
    rows = []
    for key, text in latest.items():
        stored, key_id = ring.encrypt_text(text, PURPOSE)
        rows.append({"user_id": user_id, "student_key": key, "ref": stored, "ref_key_id": key_id, "updated_at": now})
    try:
        with engine.begin() as connection:
            connection.execute(_upsert(engine), rows)
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
    for start in range(0, len(wanted), 500):  # bounded IN lists
        query = sa.select(StudentRef.student_key, StudentRef.ref, StudentRef.ref_key_id).where(
            StudentRef.user_id == user_id, StudentRef.student_key.in_(wanted[start : start + 500])
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
