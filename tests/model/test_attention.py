"""Needs attention: each reason, the ranking, thresholds and teacher isolation (SQLite and PostgreSQL)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime, timedelta

import pandas as pd
import pytest
import sqlalchemy as sa

from model.schema.thresholds import DEFAULT_THRESHOLDS
from model.serving.attention import needs_attention
from model.serving.interventions import record_intervention, update_intervention
from model.serving.outcomes import record_outcome
from model.serving.predlog.writer import student_key
from model.serving.service import ModelStore, predict_batch
from model.settings import get_settings
from model.store.db import get_engine, session_scope
from model.store.tables import PredictionLog
from tests.model.test_history import _class, add_user

TODAY = date(2026, 11, 20)
T0 = datetime(2026, 10, 1, 9, tzinfo=UTC)


def _set_p_pass(engine, settings, values: dict[str, float], at: datetime) -> None:
    """Give the latest unset-dated rows of each student the P(pass) wanted, dated ``at``."""
    with engine.begin() as connection:
        for sid, p_pass in values.items():
            newest = connection.execute(
                sa.select(sa.func.max(PredictionLog.id)).where(PredictionLog.student_key == student_key(sid, settings))
            ).scalar_one()
            connection.execute(
                sa.update(PredictionLog).where(PredictionLog.id == newest).values(p_pass=p_pass, created_at=at)
            )


@pytest.fixture
def school(models_db_url: str, raw_df: pd.DataFrame) -> dict:
    """Ana: A high risk, B fell 0.9 -> 0.6, C fine with an overdue review, D fine; Ben: X high risk."""
    engine, settings = get_engine(models_db_url), get_settings()
    store = ModelStore(engine, settings=settings)
    ana, ben = add_user(engine, "ana"), add_user(engine, "ben")
    ids = ["A", "B", "C", "D"]
    predict_batch(store, engine, _class(raw_df, ids), channel="ui", user_id=ana)
    _set_p_pass(engine, settings, {"A": 0.3, "B": 0.9, "C": 0.9, "D": 0.95}, T0)
    predict_batch(store, engine, _class(raw_df, ids, start=30), channel="ui", user_id=ana)
    _set_p_pass(engine, settings, {"A": 0.35, "B": 0.6, "C": 0.85, "D": 0.9}, T0 + timedelta(days=20))
    predict_batch(store, engine, _class(raw_df, ["X"], start=60), channel="ui", user_id=ben)
    _set_p_pass(engine, settings, {"X": 0.1}, T0)
    with session_scope(engine) as session:
        record_intervention(session, settings, ana, "ana", student_id="C", kind="tutoring", status="active",
                            start_date="2026-10-01", review_date="2026-11-01")  # fmt: skip
    return {"engine": engine, "ana": ana, "ben": ben}


def _listed(engine, user_id: int, thresholds=DEFAULT_THRESHOLDS, today: date = TODAY) -> pd.DataFrame:
    with session_scope(engine) as session:
        return needs_attention(session, user_id, thresholds, today)


def test_each_reason_is_found_ranked_and_said(school: dict) -> None:
    settings = get_settings()
    listed = _listed(school["engine"], school["ana"])
    keys = {student_key(s, settings): s for s in "ABCD"}
    assert [keys[k] for k in listed["student_key"]] == ["A", "C", "B"]  # D needs nothing
    assert listed["why"].tolist() == [
        "High risk (P(pass) 35%) and no intervention planned",
        "Intervention review was due 2026-11-01",
        "P(pass) fell from 90% to 60%",
    ]


def test_an_intervention_clears_high_risk_and_a_new_review_date_clears_the_due_review(school: dict) -> None:
    engine, ana, settings = school["engine"], school["ana"], get_settings()
    with session_scope(engine) as session:
        record_intervention(session, settings, ana, "ana", student_id="A", kind="study_plan",
                            start_date="2026-11-19", review_date="2026-12-01")  # fmt: skip
    cs = _listed(engine, ana)
    with session_scope(engine) as session:
        c_plan = session.execute(sa.text("select id from intervention where kind = 'tutoring'")).scalar_one()
        update_intervention(session, settings, ana, "ana", c_plan, review_date="2026-12-15")
    assert student_key("A", settings) not in set(cs["student_key"])
    assert _listed(engine, ana)["student_key"].tolist() == [student_key("B", settings)]


def test_the_thresholds_and_the_year_end_change_the_list(school: dict) -> None:
    engine, ana, settings = school["engine"], school["ana"], get_settings()
    stricter = replace(DEFAULT_THRESHOLDS, risk_high_below=0.65, risk_medium_below=0.8, attention_risk_rise=0.4)
    listed = _listed(engine, ana, stricter)
    assert listed["why"].tolist()[:2] == ["High risk (P(pass) 35%) and no intervention planned",
                                          "High risk (P(pass) 60%) and no intervention planned"]  # fmt: skip
    with session_scope(engine) as session:
        record_outcome(session, settings, "D", 14, ana)
    ended = _listed(engine, ana, replace(DEFAULT_THRESHOLDS, year_end=date(2026, 11, 1)))
    no_grade = {k for k, flag in zip(ended["student_key"], ended["no_grade"], strict=True) if flag}
    assert no_grade == {student_key(s, settings) for s in "ABC"}  # D has a grade
    assert not _listed(engine, ana, replace(DEFAULT_THRESHOLDS, year_end=date(2026, 12, 1)))["no_grade"].any()


def test_another_teachers_students_are_never_listed(school: dict) -> None:
    settings = get_settings()
    assert _listed(school["engine"], school["ben"])["student_key"].tolist() == [student_key("X", settings)]
    assert student_key("X", settings) not in set(_listed(school["engine"], school["ana"])["student_key"])
