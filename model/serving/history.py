"""A teacher's own prediction history: the latest prediction per student, with the latest real grade.

Only predictions the user made are ever read (``user_id`` is part of every query). Students are
known by their pseudonymous ``student_key``; a teacher looks one up by typing the student id,
which is hashed with the same key before querying, so raw ids never reach the database.
The "latest per student" is picked in SQL with ``row_number()`` (SQLite and PostgreSQL alike).
Every function reads in the caller's ``Session``.
"""

from __future__ import annotations

from datetime import datetime

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.orm import Session

from model.schema.results import HISTORY_COLUMNS, RECENT_COLUMNS, RISKS
from model.serving.predlog.writer import student_key
from model.settings import Settings
from model.store.tables import Feedback, Outcome, PredictionLog

KEY_SHOWN = 10


def short_key(key: str | None) -> str:
    """The first characters of a student key, enough to tell a teacher's students apart on screen."""
    return "" if key is None else key[:KEY_SHOWN]


def _own_predictions(user_id: int) -> sa.ColumnElement[bool]:
    return sa.and_(PredictionLog.user_id == user_id, PredictionLog.status == "ok")


def _latest_predictions(settings: Settings, user_id: int, student_id: str | None) -> sa.Subquery:
    """Each of the user's students' predictions, ranked newest first (``rank`` 1 = latest)."""
    newest_first = (PredictionLog.created_at.desc(), PredictionLog.id.desc())
    query = sa.select(
        PredictionLog.student_key,
        PredictionLog.id.label("prediction_id"),
        PredictionLog.created_at,
        PredictionLog.channel,
        PredictionLog.setup,
        PredictionLog.model_version_id,
        PredictionLog.predicted_g3,
        PredictionLog.lower,
        PredictionLog.upper,
        PredictionLog.p_pass,
        PredictionLog.band,
        PredictionLog.risk,
        sa.func.row_number().over(partition_by=PredictionLog.student_key, order_by=newest_first).label("rank"),
        sa.func.count().over(partition_by=PredictionLog.student_key).label("predictions"),
    ).where(_own_predictions(user_id), PredictionLog.student_key.is_not(None))
    key = student_key(student_id, settings)
    if key is not None:
        query = query.where(PredictionLog.student_key == key)
    return query.subquery("ranked")


def _latest_outcome(student_keys: sa.ColumnElement[str], column: sa.ColumnElement) -> sa.ScalarSelect:
    """``column`` of the newest outcome recorded (by anyone) for the correlated ``student_keys``."""
    return (
        sa.select(column)
        .where(Outcome.student_key == student_keys)
        .order_by(Outcome.recorded_at.desc(), Outcome.id.desc())
        .limit(1)
        .scalar_subquery()
    )


def _history_query(
    settings: Settings,
    user_id: int,
    student_id: str | None,
    risk: str | None,
    since: datetime | None,
    until: datetime | None,
) -> sa.Select:
    """The latest prediction per student under the filters (risk and time apply to that latest one)."""
    if risk is not None and risk not in RISKS:
        raise ValueError(f"risk {risk!r} is not one of {', '.join(RISKS)}")
    ranked = _latest_predictions(settings, user_id, student_id)
    query = sa.select(ranked).where(ranked.c.rank == 1)
    if risk is not None:
        query = query.where(ranked.c.risk == risk)
    if since is not None:
        query = query.where(ranked.c.created_at >= since)
    if until is not None:
        query = query.where(ranked.c.created_at < until)
    return query


def teacher_history(
    session: Session,
    settings: Settings,
    user_id: int,
    *,
    student_id: str | None = None,
    risk: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    limit: int = 500,
) -> pd.DataFrame:
    """The latest of the user's own predictions per student, newest first, with the latest outcome.

    Filters: one ``student_id`` (hashed before querying), the latest prediction's ``risk`` level,
    and its time (``since`` inclusive, ``until`` exclusive; aware datetimes). Columns:
    :data:`HISTORY_COLUMNS` (``outcome_g3``/``outcome_at`` empty when no grade is recorded yet).
    """
    latest = _history_query(settings, user_id, student_id, risk, since, until)
    newest_first = (latest.selected_columns.created_at.desc(), latest.selected_columns.prediction_id.desc())
    page = latest.order_by(*newest_first).limit(limit).subquery("page")
    query = sa.select(
        *(page.c[name] for name in HISTORY_COLUMNS[:-2]),
        _latest_outcome(page.c.student_key, Outcome.g3).label("outcome_g3"),
        _latest_outcome(page.c.student_key, Outcome.recorded_at).label("outcome_at"),
    ).order_by(page.c.created_at.desc(), page.c.prediction_id.desc())
    rows = session.execute(query).mappings().all()
    frame = pd.DataFrame(rows, columns=list(HISTORY_COLUMNS))
    frame["outcome_g3"] = frame["outcome_g3"].astype("Int64")
    return frame


def history_counts(
    session: Session,
    settings: Settings,
    user_id: int,
    *,
    student_id: str | None = None,
    risk: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> dict[str, int]:
    """Students per latest risk level under the same filters as :func:`teacher_history` (no limit)."""
    latest = _history_query(settings, user_id, student_id, risk, since, until).subquery("latest")
    query = sa.select(latest.c.risk, sa.func.count()).group_by(latest.c.risk)
    found = {level: count for level, count in session.execute(query)}
    return {level: int(found.get(level, 0)) for level in RISKS}


def recent_predictions(session: Session, user_id: int, limit: int = 50) -> pd.DataFrame:
    """The user's own latest predictions (with or without a student id), newest first.

    ``feedback`` is the category of the user's feedback on the prediction (None when not given).
    Columns: :data:`RECENT_COLUMNS`.
    """
    given = (
        sa.select(Feedback.category)
        .where(Feedback.prediction_id == PredictionLog.id, Feedback.user_id == user_id)
        .limit(1)
        .scalar_subquery()
        .label("feedback")
    )
    query = (
        sa.select(
            PredictionLog.id.label("prediction_id"),
            PredictionLog.created_at,
            PredictionLog.channel,
            PredictionLog.student_key,
            PredictionLog.setup,
            PredictionLog.predicted_g3,
            PredictionLog.p_pass,
            PredictionLog.risk,
            given,
        )
        .where(_own_predictions(user_id))
        .order_by(PredictionLog.created_at.desc(), PredictionLog.id.desc())
        .limit(limit)
    )
    rows = session.execute(query).mappings().all()
    return pd.DataFrame(rows, columns=list(RECENT_COLUMNS))
