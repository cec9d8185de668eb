"""Did acting help? For admins: pass rates of students with an intervention beside those without.

Per intervention type and per risk level at the time (the risk of the teacher's latest prediction of
that student made before the intervention was recorded): how many students have a recorded final
grade and how many of them passed (G3 >= 10), set beside the students of the same risk level
(their latest prediction) with a final grade and no intervention at all. This is association, not
effect: nothing was randomised, and teachers choose whom to help. Groups smaller than
``min_group`` show counts but no rate (privacy and noise). Counts only, never a student.
"""

from __future__ import annotations

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.orm import Session

from model.i18n import N_
from model.schema.thresholds import RISK_LEVELS
from model.store.tables import Intervention, Outcome, PredictionLog

MIN_GROUP = 10
PASS_MARK = 10
CAVEAT = N_("Association, not effect: no student was assigned at random, and teachers choose whom to help, so a "
          "difference can come from who was chosen as much as from what was done.")  # fmt: skip
COLUMNS = ("kind", "risk", "students", "passed", "pass_rate", "others", "others_passed", "others_pass_rate")


def _latest_grades() -> sa.Subquery:
    """Each student's latest recorded final grade."""
    newest = sa.func.row_number().over(
        partition_by=Outcome.student_key, order_by=(Outcome.recorded_at.desc(), Outcome.id.desc())
    )
    ranked = sa.select(Outcome.student_key, Outcome.g3, newest.label("rank")).subquery("ranked_outcomes")
    return sa.select(ranked.c.student_key, ranked.c.g3).where(ranked.c.rank == 1).subquery("grades")


def _rate(passed: int, n: int, min_group: int) -> float | None:
    return passed / n if n >= min_group and n else None


def acting_table(session: Session, min_group: int = MIN_GROUP) -> pd.DataFrame:
    """One row per (intervention type, risk level at the time) with graded students: :data:`COLUMNS`."""
    grades = _latest_grades()
    risk_then = (
        sa.select(PredictionLog.risk)
        .where(PredictionLog.user_id == Intervention.user_id, PredictionLog.student_key == Intervention.student_key,
               PredictionLog.status == "ok", PredictionLog.created_at <= Intervention.created_at)
        .order_by(PredictionLog.created_at.desc(), PredictionLog.id.desc())
        .limit(1)
        .scalar_subquery()
    )  # fmt: skip
    helped = (
        sa.select(Intervention.kind, risk_then.label("risk"), Intervention.student_key, grades.c.g3)
        .join(grades, grades.c.student_key == Intervention.student_key)
        .distinct()
        .subquery("helped")
    )
    acted = session.execute(
        sa.select(helped.c.kind, helped.c.risk, sa.func.count(sa.distinct(helped.c.student_key)),
                  sa.func.count(sa.distinct(sa.case((helped.c.g3 >= PASS_MARK, helped.c.student_key)))))
        .where(helped.c.risk.is_not(None))
        .group_by(helped.c.kind, helped.c.risk)
    ).all()  # fmt: skip
    newest = sa.func.row_number().over(
        partition_by=PredictionLog.student_key, order_by=(PredictionLog.created_at.desc(), PredictionLog.id.desc())
    )
    latest = (
        sa.select(PredictionLog.student_key, PredictionLog.risk, newest.label("rank"))
        .where(PredictionLog.status == "ok", PredictionLog.student_key.is_not(None))
        .subquery("latest")
    )
    untouched = sa.not_(sa.select(Intervention.id).where(Intervention.student_key == latest.c.student_key).exists())
    others = {
        risk: (int(n), int(passed))
        for risk, n, passed in session.execute(
            sa.select(latest.c.risk, sa.func.count(), sa.func.sum(sa.case((grades.c.g3 >= PASS_MARK, 1), else_=0)))
            .join(grades, grades.c.student_key == latest.c.student_key)
            .where(latest.c.rank == 1, untouched)
            .group_by(latest.c.risk)
        )
    }
    rows = []
    for kind, risk, n, passed in sorted(acted, key=lambda r: (r[0], RISK_LEVELS.index(r[1]))):
        n_other, passed_other = others.get(risk, (0, 0))
        rows.append((kind, risk, int(n), int(passed), _rate(int(passed), int(n), min_group), n_other, passed_other,
                     _rate(passed_other, n_other, min_group)))  # fmt: skip
    return pd.DataFrame(rows, columns=list(COLUMNS))
