"""Did acting help: counts and pass rates per intervention type and risk, small groups without a rate."""

from __future__ import annotations

import pandas as pd
import sqlalchemy as sa

from model.monitoring.acting import acting_table
from model.serving.interventions import record_intervention
from model.serving.outcomes import record_outcome
from model.serving.predlog.writer import student_key
from model.serving.service import ModelStore, predict_batch
from model.settings import get_settings
from model.store.db import get_engine, session_scope
from model.store.tables import PredictionLog
from tests.model.test_history import _class, add_user


def test_helped_students_are_set_beside_the_others_of_the_same_risk(models_db_url: str, raw_df: pd.DataFrame) -> None:
    engine, settings = get_engine(models_db_url), get_settings()
    ana = add_user(engine, "ana")
    ids = [f"S{i}" for i in range(8)]
    predict_batch(ModelStore(engine, settings=settings), engine, _class(raw_df, ids), channel="ui", user_id=ana)
    with engine.begin() as connection:
        connection.execute(sa.update(PredictionLog).values(risk="high"))
    with session_scope(engine) as session:
        for sid in ids[:3]:
            record_intervention(session, settings, ana, "ana", student_id=sid, kind="tutoring",
                                start_date="2026-10-01", review_date="2026-11-01")  # fmt: skip
        for sid, g3 in zip(ids, [12, 14, 6, 9, 4, 11, 8, 7], strict=True):
            record_outcome(session, settings, sid, g3, ana)
    with session_scope(engine) as session:
        table = acting_table(session, min_group=3)
        small = acting_table(session, min_group=6)
    assert table.to_dict("records") == [{
        "kind": "tutoring", "risk": "high", "students": 3, "passed": 2, "pass_rate": 2 / 3,
        "others": 5, "others_passed": 1, "others_pass_rate": 1 / 5}]  # fmt: skip
    assert small["pass_rate"].isna().all() and small["others_pass_rate"].isna().all()  # counts only
    assert student_key("S0", settings) not in table.to_string()
