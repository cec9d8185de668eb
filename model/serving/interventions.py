"""Interventions: what a teacher does for one of their students, and when to look again.

An intervention has a type, a start and a review date, a status and an optional short note (no
names: it is encrypted under the data key when one is set, like the student ids of
:mod:`model.serving.students`). Every read and write names the teacher: another teacher's
intervention, like another teacher's student, is not found. Bad input is checked in full before
anything is written and raised as one :class:`~model.errors.InvalidInput` naming each field; every
creation and change is audited (without the note or the student id). Functions work in the caller's
``Session``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.orm import Session

from model import i18n
from model.errors import InvalidInput, Problem, UserError
from model.i18n import N_, tr
from model.schema.fields import ID_COLUMN
from model.serving.downloads import to_csv_bytes
from model.serving.students import NotYourStudent, check_own_key, own_student_key, student_ids
from model.settings import Settings
from model.store import crypto
from model.store.audit import audit
from model.store.tables import INTERVENTION_KINDS, INTERVENTION_STATUSES, Intervention, utcnow

MAX_NOTE = 280
PURPOSE = "note"
KIND_LABELS = {  # English, marked: a front shows tr(KIND_LABELS[kind]) (and tr(STATUS_LABELS[status]))
    "tutoring": N_("Tutoring"),
    "study_plan": N_("Study plan"),
    "guardian_meeting": N_("Parent/guardian meeting"),
    "attendance_plan": N_("Attendance plan"),
    "support_referral": N_("Referral to school support"),
    "other": N_("Other"),
}
STATUS_LABELS = {"planned": N_("Planned"), "active": N_("Active"), "done": N_("Done"), "stopped": N_("Stopped")}
OPEN_STATUSES = ("planned", "active")
COLUMNS = ("intervention_id", ID_COLUMN, "student_key", "kind", "status", "start_date", "review_date", "note",
           "created_at", "updated_at")  # fmt: skip
EDITABLE = ("kind", "status", "start_date", "review_date", "note")


class InterventionNotFound(UserError, LookupError):
    """No intervention with that id is the user's (someone else's and missing look the same)."""

    def __init__(self, intervention_id: int) -> None:
        super().__init__(
            tr("intervention {intervention} is not one of your interventions", intervention=intervention_id)
        )
        self.intervention_id = intervention_id


@dataclass(frozen=True)
class Plan:
    """The checked fields of an intervention (note: the text to store, None for none)."""

    kind: str
    status: str
    start_date: date
    review_date: date
    note: str | None


def _one_of(field: str, value: Any, allowed: tuple[str, ...], problems: list[Problem]) -> str:
    text = "" if value is None else str(value).strip()
    if text not in allowed:
        shown = ", ".join(allowed)
        message = tr('field "{field}": {value} is not one of {allowed}', field=field, value=repr(text), allowed=shown)
        problems.append(Problem(None, field, text or None, message, shown))
    return text


def _date(field: str, value: Any, problems: list[Problem]) -> date | None:
    if isinstance(value, date):
        return value
    text = "" if value is None else str(value).strip()
    try:
        return date.fromisoformat(text)
    except ValueError:
        message = tr('field "{field}": {value} is not a date', field=field, value=repr(text))
        problems.append(Problem(None, field, text or None, message, "YYYY-MM-DD"))
        return None


def _note(value: Any, problems: list[Problem]) -> str | None:
    text = "" if value is None else str(value).strip()
    if len(text) > MAX_NOTE:
        message = tr('field "note": {count} characters; at most {limit} are allowed', count=len(text), limit=MAX_NOTE)
        allowed = tr("0-{limit} characters, no names", limit=MAX_NOTE)
        problems.append(Problem(None, "note", text[:40], message, allowed))
    return text or None


def check_plan(fields: dict[str, Any], problems: list[Problem]) -> Plan | None:
    """The checked fields (``kind``, ``status``, ``start_date``, ``review_date``, ``note``), problems added."""
    before = len(problems)
    kind = _one_of("kind", fields.get("kind"), INTERVENTION_KINDS, problems)
    status = _one_of("status", fields.get("status"), INTERVENTION_STATUSES, problems)
    start = _date("start_date", fields.get("start_date"), problems)
    review = _date("review_date", fields.get("review_date"), problems)
    if start is not None and review is not None and review < start:
        message = tr('field "review_date": {review} is before the start date {start}',
                     review=i18n.date(review), start=i18n.date(start))  # fmt: skip
        allowed = tr("{start} or later", start=i18n.date(start))
        problems.append(Problem(None, "review_date", review.isoformat(), message, allowed))
    note = _note(fields.get("note"), problems)
    if len(problems) > before or start is None or review is None:
        return None
    return Plan(kind, status, start, review, note)


def _stored_note(settings: Settings, note: str | None) -> tuple[str | None, str | None]:
    if note is None:
        return None, None
    return crypto.keyring(settings).encrypt_text(note, PURPOSE)


def record_intervention(
    session: Session,
    settings: Settings,
    user_id: int,
    actor: str,
    *,
    student_id: str | None = None,
    student_key: str | None = None,
    kind: str,
    start_date: Any,
    review_date: Any,
    status: str = "planned",
    note: str | None = None,
) -> int:
    """Record an intervention for one of the user's students (known by the id typed, or by the student key
    of the student's page); returns its id.

    Raises ``InvalidInput`` naming every bad field (an unknown student, including another teacher's,
    is one of them); nothing is written then."""
    problems: list[Problem] = []
    key: str | None = student_key
    if key is not None:
        check_own_key(session, user_id, key)
    else:
        try:
            key = own_student_key(session, settings, user_id, student_id)
        except NotYourStudent as error:
            problems.append(error.problem)
    plan = check_plan({"kind": kind, "status": status, "start_date": start_date, "review_date": review_date,
                       "note": note}, problems)  # fmt: skip
    if problems or plan is None or key is None:
        raise InvalidInput(problems)
    stored, key_id = _stored_note(settings, plan.note)
    now = utcnow()
    row = Intervention(user_id=user_id, student_key=key, kind=plan.kind, status=plan.status,
                       start_date=plan.start_date, review_date=plan.review_date, note=stored, note_key_id=key_id,
                       created_at=now, updated_at=now)  # fmt: skip
    session.add(row)
    session.flush()
    audit(session, "intervention_created", actor, user_id, intervention_id=row.id, kind=plan.kind, status=plan.status)
    return row.id


def _own(session: Session, user_id: int, intervention_id: int) -> Intervention:
    row = session.get(Intervention, intervention_id)
    if row is None or row.user_id != user_id:
        raise InterventionNotFound(intervention_id)
    return row


def update_intervention(
    session: Session, settings: Settings, user_id: int, actor: str, intervention_id: int, **changes: Any
) -> None:
    """Change fields (of :data:`EDITABLE`) of one of the user's interventions; checked as at creation."""
    unknown = sorted(set(changes) - set(EDITABLE))
    if unknown:
        raise ValueError(f"not editable: {', '.join(unknown)}")
    row = _own(session, user_id, intervention_id)
    current = {"kind": row.kind, "status": row.status, "start_date": row.start_date, "review_date": row.review_date,
               "note": _read_note(settings, row)}  # fmt: skip
    problems: list[Problem] = []
    plan = check_plan(current | changes, problems)
    if problems or plan is None:
        raise InvalidInput(problems)
    row.kind, row.status, row.start_date, row.review_date = plan.kind, plan.status, plan.start_date, plan.review_date
    if "note" in changes:
        row.note, row.note_key_id = _stored_note(settings, plan.note)
    row.updated_at = utcnow()
    session.flush()
    audit(session, "intervention_updated", actor, user_id, intervention_id=row.id, fields=sorted(changes),
          status=plan.status)  # fmt: skip


def _read_note(settings: Settings, row: Any) -> str | None:
    if row.note is None:
        return None
    return crypto.keyring(settings).decrypt_text(row.note, row.note_key_id, PURPOSE)


def list_interventions(
    session: Session, settings: Settings, user_id: int, *, student_key: str | None = None
) -> pd.DataFrame:
    """The user's own interventions (optionally of one student), newest start first; columns :data:`COLUMNS`."""
    query = sa.select(Intervention).where(Intervention.user_id == user_id)
    if student_key is not None:
        query = query.where(Intervention.student_key == student_key)
    rows = list(session.scalars(query.order_by(Intervention.start_date.desc(), Intervention.id.desc())))
    ids = student_ids(session, settings, user_id, (row.student_key for row in rows))
    records = [
        (row.id, ids.get(row.student_key), row.student_key, row.kind, row.status, row.start_date, row.review_date,
         _read_note(settings, row), row.created_at, row.updated_at)
        for row in rows
    ]  # fmt: skip
    return pd.DataFrame(records, columns=list(COLUMNS))


def interventions_csv(session: Session, settings: Settings, user_id: int) -> bytes:
    """The user's interventions as spreadsheet-safe CSV (formulas escaped; types and statuses in words)."""
    frame = list_interventions(session, settings, user_id)
    frame["kind"] = frame["kind"].map(lambda kind: tr(KIND_LABELS[kind]))
    frame["status"] = frame["status"].map(lambda status: tr(STATUS_LABELS[status]))
    return to_csv_bytes(frame.drop(columns=["student_key"]))
