"""Real final grades recorded after the fact, and teachers' feedback on their predictions.

Outcomes are stored under the pseudonymous ``student_key`` (never the raw student id) so monitoring
can set them beside the predictions made for the same student. A user records outcomes only for
students they predicted themselves (a logged, successful prediction of theirs with that student
key), admins included; any other id is refused by name and nothing of it is stored. Bad input raises
:class:`~model.errors.InvalidInput` (one value) or is reported per row (a CSV), with the same
wording as the class-file validator: the row, the column, the value and what is allowed. Every
function works in the caller's ``Session`` (the front commits it).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.orm import Session

from model.errors import BatchRejected, InvalidInput, Problem, UserError
from model.i18n import N_, tr
from model.schema.fields import FIELDS, ID_COLUMN, TARGET
from model.schema.reading import read_batch
from model.schema.validation import cell_message, field_message
from model.schema.values import parse_cell
from model.serving.predlog.writer import student_keys
from model.serving.students import NotYourStudent, own_student_key, own_student_keys
from model.settings import Settings
from model.store.tables import FEEDBACK_CATEGORIES, Feedback, Outcome, PredictionLog

MAX_REASON = 500
FEEDBACK_LABELS = {  # English, marked: a front shows tr(FEEDBACK_LABELS[category])
    "useful": N_("Useful"),
    "not_useful": N_("Not useful"),
    "wrongly_flagged": N_("Wrongly flagged"),
    "already_handled": N_("Already handled"),
    "not_applicable": N_("Not applicable"),
}
_FEEDBACK_GIVEN = {
    "useful": N_("prediction {prediction} already has your feedback: useful"),
    "not_useful": N_("prediction {prediction} already has your feedback: not useful"),
    "wrongly_flagged": N_("prediction {prediction} already has your feedback: wrongly flagged"),
    "already_handled": N_("prediction {prediction} already has your feedback: already handled"),
    "not_applicable": N_("prediction {prediction} already has your feedback: not applicable"),
}
assert tuple(FEEDBACK_LABELS) == FEEDBACK_CATEGORIES


class PredictionNotFound(UserError, LookupError):
    """No prediction with that id belongs to the user (missing and someone else's look the same)."""

    def __init__(self, prediction_id: int) -> None:
        super().__init__(tr("prediction {prediction} is not one of your predictions", prediction=prediction_id))
        self.prediction_id = prediction_id


@dataclass
class OutcomeImport:
    """The result of an outcomes CSV: how many grades were stored and what was wrong with the rest."""

    stored: int
    n_rows: int
    problems: list[Problem] = field(default_factory=list)

    @property
    def rejected_rows(self) -> list[int]:
        """Sorted row numbers that were not stored."""
        return sorted({p.row for p in self.problems if p.row is not None})


def template_csv(sep: str = ",") -> str:
    """The outcomes CSV template: a header ``student_id,G3`` and one example row."""
    return f"{ID_COLUMN}{sep}{TARGET}\nS001{sep}12\n"


def _grade_problem(raw: Any, row: int | None) -> tuple[int | None, Problem | None]:
    """The final grade as an int, or the problem with it (of a file's ``row``, or of a form's field)."""
    spec = FIELDS[TARGET]
    value, reason = parse_cell(spec, raw)
    if value is None and reason is None:
        reason = tr("missing value; allowed: {allowed}", allowed=spec.allowed_text)
    if reason is None:
        return int(value), None
    text = None if raw is None else str(raw)
    message = field_message(TARGET, reason) if row is None else cell_message(row, TARGET, reason)
    return None, Problem(row, TARGET, text, message, spec.allowed_text)


def record_outcome(session: Session, settings: Settings, student_id: str, g3: Any, user_id: int) -> int:
    """Store a student's real final grade (0-20) recorded by ``user_id``; returns the new outcome id.

    Raises ``InvalidInput`` naming the field when the id is blank, when the user has no prediction
    of their own for that student id, or when the grade is not a whole number from 0 to 20.
    """
    key, id_problem = None, None
    try:
        key = own_student_key(session, settings, user_id, student_id)
    except NotYourStudent as error:
        id_problem = error.problem
    grade, grade_problem = _grade_problem(g3, None)
    problems = [p for p in (id_problem, grade_problem) if p is not None]
    if problems:
        raise InvalidInput(problems)
    return session.execute(
        sa.insert(Outcome).values(student_key=key, g3=grade, recorded_by=user_id).returning(Outcome.id)
    ).scalar_one()


def _outcome_columns(frame: pd.DataFrame) -> dict[str, Any]:
    """The user's labels of the ``student_id`` and ``G3`` columns (case ignored); rejects a file without them."""
    labels = {str(label).strip().casefold(): label for label in frame.columns}
    found = {name: labels.get(name.casefold()) for name in (ID_COLUMN, TARGET)}
    missing = [name for name, label in found.items() if label is None]
    if missing:
        names, expected = ", ".join(missing), f"{ID_COLUMN},{TARGET}"
        raise BatchRejected(
            tr("missing required columns: {names} (expected {expected})", names=names, expected=expected)
        )
    return found


def record_outcomes_csv(
    session: Session, settings: Settings, data: bytes | str | Path | IO[Any], user_id: int
) -> OutcomeImport:
    """Store the final grades of a CSV with columns ``student_id`` and ``G3`` (';' or ','), recorded by ``user_id``.

    Every valid row is stored (one insert); each bad cell, and each student id the user has no
    prediction of their own for, is reported as a :class:`Problem` whose ``row`` is the spreadsheet
    row (header = row 1). Raises ``BatchRejected`` for an unreadable file or one without those columns.
    """
    frame = read_batch(data)
    if frame.empty:
        raise BatchRejected(tr("the file has a header but no data rows"))
    columns = _outcome_columns(frame)
    ids, grades = frame[columns[ID_COLUMN]], frame[columns[TARGET]]
    keys = student_keys([None if raw is None else str(raw) for raw in ids], settings)
    own = own_student_keys(session, user_id, keys)
    rows, problems = [], []
    for row, student_id, raw_grade, key in zip(frame.index, ids, grades, keys, strict=True):
        id_problem = None if key in own else NotYourStudent(student_id, row=int(row)).problem
        grade, grade_problem = _grade_problem(raw_grade, int(row))
        found = [p for p in (id_problem, grade_problem) if p is not None]
        problems.extend(found)
        if not found:
            rows.append({"student_key": key, "g3": grade, "recorded_by": user_id})
    if rows:
        session.execute(sa.insert(Outcome), rows)
    return OutcomeImport(stored=len(rows), n_rows=len(frame), problems=problems)


def _clean_reason(reason: str | None) -> str | None:
    text = (reason or "").strip()
    if len(text) > MAX_REASON:
        message = tr(
            'field "reason": {count} characters; at most {limit} are allowed', count=len(text), limit=MAX_REASON
        )
        allowed = tr("0-{limit} characters", limit=MAX_REASON)
        raise InvalidInput([Problem(None, "reason", text[:60], message, allowed)])
    return text or None


def _check_category(category: str) -> str:
    if category not in FEEDBACK_CATEGORIES:
        allowed = ", ".join(FEEDBACK_CATEGORIES)
        message = tr('field "category": "{category}" is not a feedback category; allowed: {allowed}',
                     category=category, allowed=allowed)  # fmt: skip
        raise InvalidInput([Problem(None, "category", str(category)[:60], message, allowed)])
    return category


def record_feedback(
    session: Session, prediction_id: int, user_id: int, category: str, reason: str | None = None
) -> int:
    """Record the user's verdict on one of their own predictions, and optionally why; returns the feedback id.

    ``category`` is one of ``FEEDBACK_CATEGORIES``. Raises ``InvalidInput`` for an unknown category
    (naming the allowed ones), an over-long reason (at most 500 characters) or a prediction this user
    already gave feedback on, and ``PredictionNotFound`` when the prediction is not the user's own
    (someone else's or missing).
    """
    category, text = _check_category(category), _clean_reason(reason)
    owner = session.execute(
        sa.select(PredictionLog.user_id).where(PredictionLog.id == prediction_id, PredictionLog.status == "ok")
    ).first()
    if owner is None or owner.user_id != user_id:
        raise PredictionNotFound(prediction_id)
    already = session.execute(
        sa.select(Feedback.category).where(Feedback.prediction_id == prediction_id, Feedback.user_id == user_id)
    ).first()
    if already is not None:
        message = tr(_FEEDBACK_GIVEN[already.category], prediction=prediction_id)
        raise InvalidInput([Problem(None, "prediction_id", str(prediction_id), message, None)])
    values = {"prediction_id": prediction_id, "user_id": user_id, "category": category, "reason": text}
    return session.execute(sa.insert(Feedback).values(**values).returning(Feedback.id)).scalar_one()
