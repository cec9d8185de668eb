"""Needs attention now: a teacher's students ranked by what calls for action, in one SQL query.

A student is listed (by their latest prediction of this teacher's) for any of four reasons:

- ``high_risk``: P(pass) below the high-risk level of the current thresholds (the school's, so a
  changed cut-off changes the list at once) and no planned or active intervention;
- ``risk_rose``: P(pass) fell since the previous prediction by more than ``attention_risk_rise``;
- ``review_due``: a planned or active intervention's review date has passed;
- ``no_grade``: the year's end date has passed and no final grade is recorded.

Ranked by the most pressing reason (high risk without a plan, then a review due, then a rise, then a
missing grade), then by P(pass). Only the teacher's own predictions and interventions are read.
"""

from __future__ import annotations

from datetime import date

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.orm import Session

from model import i18n
from model.i18n import tr
from model.schema.results import percent_text
from model.schema.thresholds import Thresholds
from model.serving.interventions import OPEN_STATUSES
from model.store.tables import Intervention, Outcome, PredictionLog

REASONS = ("high_risk", "review_due", "risk_rose", "no_grade")
WEIGHTS = {"high_risk": 8, "review_due": 4, "risk_rose": 2, "no_grade": 1}
COLUMNS = ("student_key", "prediction_id", "created_at", "setup", "p_pass", "previous_p_pass", "risk",
           "review_date", *REASONS)  # fmt: skip
LIMIT = 500


def _describe(row: dict, thresholds: Thresholds) -> str:
    said = []
    if row["high_risk"]:
        said.append(tr("high risk (P(pass) {p_pass}) and no intervention planned", p_pass=percent_text(row["p_pass"])))
    if row["review_due"]:
        said.append(tr("intervention review was due {day}", day=i18n.date(row["review_date"])))
    if row["risk_rose"]:
        said.append(tr("P(pass) fell from {before} to {now}", before=percent_text(row["previous_p_pass"]),
                       now=percent_text(row["p_pass"])))  # fmt: skip
    if row["no_grade"]:
        said.append(tr("no final grade recorded since the year ended {day}", day=i18n.date(thresholds.year_end)))
    text = "; ".join(said)
    return text[:1].upper() + text[1:]


def attention_query(user_id: int, thresholds: Thresholds, today: date, limit: int = LIMIT) -> sa.Select:
    """The SQL of :func:`needs_attention` (one statement: windows over the log, one grouped join)."""
    log = PredictionLog
    newest_first = {"partition_by": log.student_key, "order_by": (log.created_at.desc(), log.id.desc())}
    ranked = (
        sa.select(
            log.student_key, log.id.label("prediction_id"), log.created_at, log.setup, log.p_pass, log.risk,
            sa.func.row_number().over(**newest_first).label("rank"),  # one window: one sort
            sa.func.lead(log.p_pass).over(**newest_first).label("previous_p_pass"),
        )
        .where(log.user_id == user_id, log.status == "ok", log.student_key.is_not(None))
        .subquery("ranked")
    )  # fmt: skip
    is_open = Intervention.status.in_(OPEN_STATUSES)
    plans = (
        sa.select(
            Intervention.student_key,
            sa.func.count().label("open_plans"),
            sa.func.min(Intervention.review_date).label("review_date"),
        )
        .where(Intervention.user_id == user_id, is_open)
        .group_by(Intervention.student_key)
        .subquery("plans")
    )
    graded = sa.select(Outcome.id).where(Outcome.student_key == ranked.c.student_key).exists()
    year_over = thresholds.year_end is not None and today > thresholds.year_end
    flags = {
        "high_risk": sa.and_(ranked.c.p_pass < thresholds.risk_high_below, plans.c.open_plans.is_(None)),
        "review_due": plans.c.review_date < today,
        "risk_rose": ranked.c.previous_p_pass - ranked.c.p_pass > thresholds.attention_risk_rise,
        "no_grade": sa.not_(graded) if year_over else sa.false(),
    }
    cases = {name: sa.case((flag, 1), else_=0) for name, flag in flags.items()}
    score = sum(WEIGHTS[name] * case for name, case in cases.items())
    return (
        sa.select(
            *(ranked.c[name] for name in ("student_key", "prediction_id", "created_at", "setup", "p_pass")),
            ranked.c.previous_p_pass, ranked.c.risk, plans.c.review_date,
            *(case.label(name) for name, case in cases.items()),
        )
        .select_from(ranked.outerjoin(plans, plans.c.student_key == ranked.c.student_key))
        .where(ranked.c.rank == 1, sa.or_(*flags.values()))
        .order_by(score.desc(), ranked.c.p_pass, ranked.c.student_key)
        .limit(limit)
    )  # fmt: skip


def needs_attention(
    session: Session, user_id: int, thresholds: Thresholds, today: date, limit: int = LIMIT
) -> pd.DataFrame:
    """The user's students needing attention, most pressing first: :data:`COLUMNS` (reason flags as
    booleans) and ``why``, the reasons in words (in the context's language)."""
    rows = session.execute(attention_query(user_id, thresholds, today, limit)).mappings().all()
    frame = pd.DataFrame(rows, columns=list(COLUMNS))
    for name in REASONS:
        frame[name] = frame[name].astype(bool)
    frame["why"] = [_describe(row, thresholds) for row in frame.to_dict("records")]
    return frame
