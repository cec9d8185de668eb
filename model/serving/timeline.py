"""One student's year as a teacher sees it: their predictions over time, interventions, the outcome.

Only the teacher's own predictions and interventions are read; another teacher's student (or an
unknown key) raises :class:`~model.serving.students.NotYourStudent`. The latest prediction's inputs
are handed back decrypted so the front can explain it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.orm import Session

from model.serving.interventions import list_interventions
from model.serving.students import NotYourStudent, student_ids
from model.settings import Settings
from model.store import crypto
from model.store.tables import Outcome, PredictionLog

PREDICTION_COLUMNS = ("prediction_id", "created_at", "setup", "model_version_id", "predicted_g3", "lower", "upper",
                      "p_pass", "p_no_grade", "band", "risk")  # fmt: skip


@dataclass(frozen=True)
class Timeline:
    """A student's predictions (oldest first), interventions, latest outcome and latest inputs."""

    student_key: str
    student_id: str | None
    predictions: pd.DataFrame
    interventions: pd.DataFrame
    outcome_g3: int | None
    outcome_at: datetime | None
    latest_inputs: dict[str, Any] | None


def student_timeline(session: Session, settings: Settings, user_id: int, key: str) -> Timeline:
    """The timeline of the student with ``key`` among ``user_id``'s own predictions."""
    log = PredictionLog
    query = (
        sa.select(log.id.label("prediction_id"), *(log.__table__.c[name] for name in PREDICTION_COLUMNS[1:]))
        .where(log.user_id == user_id, log.status == "ok", log.student_key == key)
        .order_by(log.created_at, log.id)
    )
    predictions = pd.DataFrame(session.execute(query).mappings().all(), columns=list(PREDICTION_COLUMNS))
    if predictions.empty:
        raise NotYourStudent(by_key=True)
    stored = session.execute(sa.select(log.inputs).where(log.id == int(predictions["prediction_id"].iloc[-1])))
    inputs = crypto.keyring(settings).decrypt_inputs(stored.scalar_one())
    outcome = session.execute(
        sa.select(Outcome.g3, Outcome.recorded_at)
        .where(Outcome.student_key == key)
        .order_by(Outcome.recorded_at.desc(), Outcome.id.desc())
        .limit(1)
    ).first()
    return Timeline(
        student_key=key,
        student_id=student_ids(session, settings, user_id, [key]).get(key),
        predictions=predictions,
        interventions=list_interventions(session, settings, user_id, student_key=key),
        outcome_g3=None if outcome is None else int(outcome.g3),
        outcome_at=None if outcome is None else outcome.recorded_at,
        latest_inputs=inputs,
    )
