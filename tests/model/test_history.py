"""A teacher's own history: latest prediction per student, latest outcome, filters (SQLite and PostgreSQL)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pandas as pd
import pytest
import sqlalchemy as sa

from model.serving.history import history_counts, recent_predictions, teacher_history
from model.serving.outcomes import record_feedback, record_outcome
from model.serving.predlog.writer import student_key
from model.serving.service import ModelStore, predict_batch
from model.settings import get_settings
from model.store.db import get_engine, session_scope
from model.store.tables import PredictionLog, User

T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)


def add_user(engine, username: str, role: str = "teacher") -> int:
    with session_scope(engine) as session:
        user = User(username=username, name=username.title(), password_hash="unused-in-this-test", role=role)
        session.add(user)
        session.flush()
        return user.id


def _class(raw_df: pd.DataFrame, ids: list[str], start: int = 0) -> bytes:
    frame = raw_df.drop(columns=["G3"]).iloc[start : start + len(ids)].copy()
    frame.insert(0, "student_id", ids)
    return frame.to_csv(sep=";", index=False).encode()


def _predict(engine, store, raw_df, user_id: int, ids: list[str], at: datetime, start: int = 0) -> None:
    """Predict a class as ``user_id`` and date the new log rows ``at`` (the log's clock is the server's)."""
    with engine.connect() as connection:
        before = connection.execute(sa.select(sa.func.coalesce(sa.func.max(PredictionLog.id), 0))).scalar_one()
    predict_batch(store, engine, _class(raw_df, ids, start), channel="ui", user_id=user_id)
    with engine.begin() as connection:
        connection.execute(sa.update(PredictionLog).where(PredictionLog.id > before).values(created_at=at))


@pytest.fixture
def school(models_db_url: str, raw_df: pd.DataFrame) -> dict:
    """Two teachers: Ana predicts S1-S3 twice (a week apart), Ben predicts S1 and S9 later."""
    engine = get_engine(models_db_url)
    store = ModelStore(engine, settings=get_settings())
    ana, ben = add_user(engine, "ana"), add_user(engine, "ben")
    _predict(engine, store, raw_df, ana, ["S1", "S2", "S3"], T0)
    _predict(engine, store, raw_df, ana, ["S1", "S2", "S3"], T0 + timedelta(days=7), start=10)
    _predict(engine, store, raw_df, ben, ["S1", "S9"], T0 + timedelta(days=9), start=20)
    return {"engine": engine, "ana": ana, "ben": ben}


def test_history_shows_only_own_latest_prediction_per_student(school: dict, raw_df: pd.DataFrame) -> None:
    engine, ana, settings = school["engine"], school["ana"], get_settings()
    with session_scope(engine) as session:
        history = teacher_history(session, settings, ana)
        bens = teacher_history(session, settings, school["ben"])
    assert sorted(history["student_key"]) == sorted(student_key(s, settings) for s in ("S1", "S2", "S3"))
    assert (history["created_at"] == T0 + timedelta(days=7)).all()
    assert history["predictions"].tolist() == [2, 2, 2]
    with engine.connect() as connection:
        owners = connection.execute(
            sa.select(PredictionLog.user_id).where(PredictionLog.id.in_(history["prediction_id"].tolist()))
        ).scalars()
        assert set(owners) == {ana}
    assert sorted(bens["student_key"]) == sorted(student_key(s, settings) for s in ("S1", "S9"))
    assert "S1" not in history.to_string()


def test_history_joins_the_latest_outcome(school: dict) -> None:
    engine, ana, ben, settings = school["engine"], school["ana"], school["ben"], get_settings()
    with session_scope(engine) as session:
        record_outcome(session, settings, "S1", 8, ana)
        record_outcome(session, settings, "S1", 11, ben)
    with session_scope(engine) as session:
        history = teacher_history(session, settings, ana).set_index("student_key")
    assert history.loc[student_key("S1", settings), "outcome_g3"] == 11
    assert history.loc[student_key("S2", settings), "outcome_g3"] is pd.NA
    assert history["outcome_at"].notna().sum() == 1


def test_history_filters(school: dict) -> None:
    ana, settings = school["ana"], get_settings()
    with session_scope(school["engine"]) as session:
        one = teacher_history(session, settings, ana, student_id=" S2 ")
        assert one["student_key"].tolist() == [student_key("S2", settings)]
        assert teacher_history(session, settings, ana, student_id="S9").empty  # Ben's student, not Ana's
        assert teacher_history(session, settings, ana, since=T0 + timedelta(days=8)).empty
        week = {"since": T0 + timedelta(days=6), "until": T0 + timedelta(days=8)}
        assert len(teacher_history(session, settings, ana, **week)) == 3
        counts = history_counts(session, settings, ana)
        assert sum(counts.values()) == 3
        for level, n in counts.items():
            assert len(teacher_history(session, settings, ana, risk=level)) == n
        assert len(teacher_history(session, settings, ana, limit=2)) == 2
        with pytest.raises(ValueError, match="risk 'severe' is not one of high, medium, low"):
            teacher_history(session, settings, ana, risk="severe")


def test_recent_predictions_are_own_and_show_feedback(school: dict) -> None:
    engine, ana = school["engine"], school["ana"]
    with session_scope(engine) as session:
        recent = recent_predictions(session, ana, limit=10)
    assert len(recent) == 6
    assert recent["created_at"].is_monotonic_decreasing
    assert recent["feedback"].isna().all()
    with session_scope(engine) as session:
        record_feedback(session, int(recent["prediction_id"].iloc[0]), ana, "wrongly_flagged", "wrong class")
    with session_scope(engine) as session:
        assert recent_predictions(session, ana)["feedback"].fillna("").tolist() == ["wrongly_flagged", *[""] * 5]
        assert recent_predictions(session, school["ben"])["prediction_id"].isin(recent["prediction_id"]).sum() == 0
