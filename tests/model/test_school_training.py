"""Learning from the school's own students, end to end through the service (issue 14), on SQLite and PostgreSQL:
200 students predicted and their outcomes recorded, a version trained from those outcomes in a training job,
compared with the active one on them, promoted through its gate, a bad one promoted past a failed gate with a
written reason, two steps rolled back, and the timeline and audit rows found."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa

from model.ml import gates, jobs
from model.ml.schooldata import (
    NotEnoughOutcomes,
    TrainingChoice,
    kept_rows,
    outcome_training_set,
    training_data,
    training_set,
)
from model.ml.training import register, train_setup
from model.serving.outcomes import record_outcomes_csv
from model.serving.predlog.writer import student_key
from model.serving.service import ModelStore, predict_batch
from model.settings import Settings, get_settings
from model.store import crypto, registry
from model.store.audit import list_audit
from model.store.db import get_engine, migrate, session_scope
from model.store.tables import PredictionLog, TrainingData
from tests.model.test_outcomes import add_user

N_STUDENTS = 200


@pytest.fixture
def settings(db_url: str, monkeypatch: pytest.MonkeyPatch) -> Settings:
    """The test database, with inputs and training rows encrypted under a data key."""
    monkeypatch.setenv("MATHSIGHT_DATA_KEY", crypto.generate_key())
    monkeypatch.setenv("DATABASE_URL", db_url)
    get_settings.cache_clear()
    migrate(db_url)
    return get_settings()


@pytest.fixture(scope="module")
def halves(raw_df: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The first half of the UCI students is what the installed model learned from; 200 students drawn from the
    second half (some absences altered) are the school's own, unseen by it."""
    shuffled = raw_df.sample(frac=1.0, random_state=14).reset_index(drop=True)
    seen, unseen = shuffled.iloc[:195], shuffled.iloc[195:]
    school = unseen.sample(n=N_STUDENTS, replace=True, random_state=14).reset_index(drop=True)
    rng = np.random.default_rng(14)
    altered = rng.choice(N_STUDENTS, 20, replace=False)
    school.loc[altered, "absences"] = rng.integers(0, 20, 20)
    school.insert(0, "student_id", [f"S{i:03d}" for i in range(1, N_STUDENTS + 1)])
    return seen, school


def _class_file(frame: pd.DataFrame) -> str:
    return frame.drop(columns=["G3"]).to_csv(sep=";", index=False)


def test_the_school_learns_from_its_own_students(settings: Settings, halves) -> None:
    seen, school = halves
    engine = get_engine(settings.database_url)
    with session_scope(engine) as session:
        first = register(session, train_setup(seen, "period2", runs=0), "system", activate=True, settings=settings)
    teacher = add_user(engine, "teacher-tom")
    store = ModelStore(engine, settings=settings)
    predict_batch(store, engine, _class_file(school), channel="ui", user_id=teacher)
    predict_batch(store, engine, _class_file(school.head(20)), channel="ui", user_id=teacher)  # seen twice
    outcomes = school[["student_id", "G3"]].to_csv(index=False)
    with session_scope(engine) as session:
        assert record_outcomes_csv(session, settings, outcomes, teacher).stored == N_STUDENTS
        stored = session.scalars(sa.select(PredictionLog.inputs).limit(1)).one()
        assert set(stored) == {"enc"}  # the inputs are encrypted at rest

    # The training set: one row per student, counts shown, the inputs decrypted in memory.
    with session_scope(engine) as session:
        found = outcome_training_set(session, "period2", settings=settings)
    assert found.counts == {"students_with_outcome": 200, "predictions_matched": 220, "students": 200,
                            "duplicates_dropped": 20, "incomplete_inputs": 0}  # fmt: skip
    assert sorted(found.frame["G3"]) == sorted(school["G3"])
    with session_scope(engine) as session, pytest.raises(NotEnoughOutcomes, match="at least 500"):
        jobs.start_school_training(session, "period2", TrainingChoice("outcomes"), runs=1, created_by="admin-ana",
                                   settings=settings.model_copy(update={"min_training_outcomes": 500}))  # fmt: skip

    # Trained from the outcomes, pooled with the bundled file, in a training job.
    with session_scope(engine) as session:
        job = jobs.start_school_training(session, "period2", TrainingChoice("pooled", 2), runs=1,
                                         created_by="admin-ana", settings=settings)  # fmt: skip
    done = jobs.wait_for(job.id, timeout=600, settings=settings)
    assert done.status == "done", done.error
    candidate = done.version_id
    with session_scope(engine) as session:
        ref = training_data(session, candidate)
        assert ref.source == "pooled" and ref.detail["weight"] == 2 and ref.detail["school_rows"] == 200
        assert ref.detail["rows"] == 200 + 395 and ref.detail["counts"]["duplicates_dropped"] == 20
        assert ref.rows_key_id == crypto.keyring(settings).current.key_id
        raw_rows = session.execute(sa.select(TrainingData.rows).where(TrainingData.version_id == candidate)).scalar()
        assert b"GP" not in raw_rows and len(kept_rows(session, candidate, settings=settings)) == 200
        assert registry.get_version(session, candidate).n_rows == 595

    # Compared on our students: the candidate out-of-fold (it learned from them), the active one plainly.
    with session_scope(engine) as session:
        judged = gates.judge(session, candidate, settings=settings)
    assert judged.n == 200 and judged.active_id == first
    assert judged.how == {"candidate": "out-of-fold (10-fold)", "active": "plain scoring"}
    assert set(judged.table.columns) >= {"candidate", "active", "difference", "noise"}
    assert judged.table.loc["rmse", "noise"] > 0

    # A time split: students first predicted a month ago train, the others score.
    earlier = [student_key(f"S{i:03d}", settings) for i in range(1, 121)]
    month_ago = datetime.now(UTC) - timedelta(days=30)
    with session_scope(engine) as session:
        session.execute(sa.update(PredictionLog).where(PredictionLog.student_key.in_(earlier)).values(
            created_at=month_ago))  # fmt: skip
    with session_scope(engine) as session:
        split = gates.judge(session, candidate, settings=settings, split=datetime.now(UTC) - timedelta(days=15))
    assert split.n == 80 and split.how["candidate"] == "time split"

    # Promoted through its gate.
    with session_scope(engine) as session:
        gate = gates.promote(session, candidate, "admin-ana", settings=settings)
    assert gate["passed"], gate
    assert {row["check"] for row in gate["rows"]} == {"quality", "fairness"}

    # A version that learned nothing (grades shuffled) fails its gate; promoted only with a reason.
    shuffled = school.drop(columns=["student_id"]).copy()
    shuffled["G3"] = np.random.default_rng(0).permutation(shuffled["G3"].to_numpy())
    bad_rows = training_set(TrainingChoice("file", label="a shuffled file"), shuffled)
    with session_scope(engine) as session:
        trained = train_setup(bad_rows.protocol, "period2", runs=0)
        trained.data_reference, trained.school_rows = bad_rows.reference, bad_rows.school
        bad = register(session, trained, "admin-bob", settings=settings)
    with session_scope(engine) as session, pytest.raises(gates.GateFailed) as failed:
        gates.promote(session, bad, "admin-bob", settings=settings)
    assert any(p.column == "rmse" for p in failed.value.problems)
    with session_scope(engine) as session:
        assert registry.active_version_ids(session)["period2"] == candidate
        forced = gates.promote(session, bad, "admin-bob", settings=settings, reason="testing the rollback drill")
    assert not forced["passed"]

    # Two steps back: to the version installed first.
    with session_scope(engine) as session:
        registry.rollback_to(session, "period2", first, "admin-ana", settings=settings)
    with session_scope(engine) as session:
        assert registry.active_version_ids(session)["period2"] == first
        periods = registry.timeline(session, "period2")
        assert [(p.version_id, p.action, p.by) for p in periods] == [
            (first, "promote", "system"), (candidate, "promote", "admin-ana"), (bad, "promote", "admin-bob"),
            (first, "rollback", "admin-ana")]  # fmt: skip
        assert periods[1].gate["passed"] and not periods[2].gate["passed"]
        assert periods[2].reason == "testing the rollback drill" and periods[-1].ended_at is None
        promotions = [r.detail for r in list_audit(session, action="model.promote")]
        assert promotions[0] == {"setup": "period2", "version_id": bad, "previous_version_id": candidate,
                                 "gate_passed": False, "reason": "testing the rollback drill"}  # fmt: skip
        assert promotions[1]["gate_passed"] is True and "reason" not in promotions[1]
        rollback = list_audit(session, action="model.rollback")[0]
        assert rollback.actor == "admin-ana" and rollback.detail["version_id"] == first
        assert [r.action for r in list_audit(session, action="training.start")] == ["training.start"]


def test_kept_training_rows_follow_a_key_rotation(db_url: str, halves) -> None:
    from model.store.rotation import rotate_data_key

    _, school = halves
    rows = school.drop(columns=["student_id"]).head(60)
    old_key, new_key = crypto.generate_key(), crypto.generate_key()
    before = Settings(database_url=db_url, data_key=old_key)
    migrate(db_url)
    data = training_set(TrainingChoice("file", label="an export"), rows)
    with session_scope(get_engine(db_url)) as session:
        trained = train_setup(data.protocol, "early", runs=0)
        trained.data_reference, trained.school_rows = data.reference, data.school
        version = register(session, trained, "admin", settings=before)
    after = Settings(database_url=db_url, data_key=new_key, data_key_previous=old_key)
    with session_scope(get_engine(db_url)) as session:
        assert rotate_data_key(session, settings=after).texts == 1
    only_new = Settings(database_url=db_url, data_key=new_key)
    with session_scope(get_engine(db_url)) as session:
        kept = kept_rows(session, version, settings=only_new)
        assert len(kept) == 60 and kept["G3"].tolist() == rows["G3"].tolist()
        assert training_data(session, version).rows_key_id == crypto.keyring(only_new).current.key_id
