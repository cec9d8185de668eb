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

from model.errors import InvalidInput, Problem
from model.i18n import N_, tr
from model.schema.fields import ID_COLUMN
from model.schema.validation import cell_message, field_message
from model.serving.predlog.insert import DB_UNAVAILABLE
from model.serving.predlog.writer import student_key
from model.settings import Settings
from model.store import crypto
from model.store.tables import PredictionLog, StudentRef, utcnow

PURPOSE = "student_ref"
IN_LIST = 1_000  # keys per IN list: bounded statements on both databases
OWN_ALLOWED = N_("the id of a student you predicted")
ONLY_YOURS = N_("only students you predicted can be named here")


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


class NotYourStudent(InvalidInput, LookupError):
    """The student is none of the user's own: no successful prediction of theirs has that student (another
    teacher's student and one nobody predicted look the same).

    Named by the id typed (``field``, and ``row`` in a file: the message names them), or, for a page
    opened by a student key, by that key; a blank id is a missing value of ``field``. Its one
    :class:`~model.errors.Problem` also joins a larger report (every bad field of a form, every bad
    row of a file)."""

    def __init__(self, student_id: object = None, *, field: str = ID_COLUMN, row: int | None = None,
                 by_key: bool = False) -> None:  # fmt: skip
        shown = "" if student_id is None else str(student_id).strip()
        field = "student_key" if by_key else field
        if by_key:
            message = tr("this student is not one of yours: open one from Needs attention or My students")
        else:
            reason = (tr('no prediction of yours for student id "{student}"; {only_yours}', student=shown,
                         only_yours=tr(ONLY_YOURS)) if shown else tr("missing value"))  # fmt: skip
            message = field_message(field, reason) if row is None else cell_message(row, field, reason)
        super().__init__([Problem(row, field, None if student_id is None else shown, message, tr(OWN_ALLOWED))])
        self.student_id = shown

    @property
    def problem(self) -> Problem:
        return self.problems[0]


def own_student_keys(session: Session, user_id: int, keys: Iterable[str | None]) -> set[str]:
    """Those of ``keys`` that ``user_id`` has a successful prediction of: the one "is this my student" check
    (a few queries for a whole file)."""
    wanted = sorted({key for key in keys if key is not None})
    found: set[str] = set()
    for start in range(0, len(wanted), IN_LIST):
        query = (
            sa.select(PredictionLog.student_key)
            .distinct()
            .where(PredictionLog.user_id == user_id, PredictionLog.status == "ok",
                   PredictionLog.student_key.in_(wanted[start : start + IN_LIST]))
        )  # fmt: skip
        found.update(session.scalars(query))
    return found


def own_student_key(session: Session, settings: Settings, user_id: int, student_id: object,
                    field: str = ID_COLUMN) -> str:  # fmt: skip
    """The key of ``student_id`` when it is one of ``user_id``'s students; else :class:`NotYourStudent`."""
    key = student_key(None if student_id is None else str(student_id), settings)
    if key is None or not own_student_keys(session, user_id, [key]):
        raise NotYourStudent(student_id, field=field)
    return key


def check_own_key(session: Session, user_id: int, key: str) -> str:
    """``key`` when it is one of ``user_id``'s students (a page opened by key); else :class:`NotYourStudent`."""
    if not own_student_keys(session, user_id, [key]):
        raise NotYourStudent(by_key=True)
    return key


def ref_counts(session: Session) -> dict[int, int]:
    """For admins: user id -> how many student ids that teacher has stored (counts, never the ids)."""
    query = sa.select(StudentRef.user_id, sa.func.count()).group_by(StudentRef.user_id)
    return {int(user_id): int(count) for user_id, count in session.execute(query)}
