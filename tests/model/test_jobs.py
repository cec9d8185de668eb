"""Background training: validated input, a separate process, progress, never blocking predictions."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
import pytest
import sqlalchemy as sa

from model.errors import BatchRejected
from model.ml import jobs
from model.serving.service import ModelStore, predict_one
from model.settings import PROJECT_ROOT, Settings, get_settings
from model.store import tables
from model.store.audit import list_audit
from model.store.db import get_engine, migrate, session_scope
from model.store.registry import ArtifactIntegrityError, active_version_ids, get_version, list_versions, load_artifact
from tests.conftest import _drop_postgres_schema, _postgres_schema_url


def csv_bytes(frame: pd.DataFrame) -> bytes:
    return frame.to_csv(sep=";", index=False).encode()


@pytest.fixture(scope="module")
def raw_text(student_csv_path: Path) -> pd.DataFrame:
    """The real file as the strings a user would upload."""
    return pd.read_csv(student_csv_path, sep=";", dtype=str, keep_default_na=False)


def test_the_real_file_is_valid_training_data(student_csv_path: Path) -> None:
    frame = jobs.validate_training_data(student_csv_path.read_bytes(), "period2")
    assert len(frame) == 395 and frame["G3"].notna().all()


def test_bad_cells_are_reported_by_row_column_value_and_allowed(raw_text: pd.DataFrame) -> None:
    bad = raw_text.copy()
    bad.loc[4, "age"] = "99"
    bad.loc[10, "G3"] = "25"
    with pytest.raises(jobs.TrainingDataRejected) as caught:
        jobs.validate_training_data(csv_bytes(bad), "early")
    problems = {(p.row, p.column): p for p in caught.value.problems}
    assert set(problems) == {(6, "age"), (12, "G3")}  # spreadsheet rows: header is row 1
    assert problems[(6, "age")].value == "99" and problems[(6, "age")].allowed == "15-22"
    assert caught.value.n_rows == 395


def test_the_grades_a_setup_learns_from_are_required(raw_text: pd.DataFrame) -> None:
    with pytest.raises(jobs.TrainingDataRejected) as caught:
        jobs.validate_training_data(csv_bytes(raw_text.drop(columns=["G2"])), "period2")
    assert [(p.row, p.column) for p in caught.value.problems] == [(None, "G2")]
    assert "period2 setup needs it" in caught.value.problems[0].message

    blank = raw_text.copy()
    blank.loc[0, "G1"] = ""
    with pytest.raises(jobs.TrainingDataRejected) as caught:
        jobs.validate_training_data(csv_bytes(blank), "period1")
    assert [(p.row, p.column) for p in caught.value.problems] == [(2, "G1")]
    assert len(jobs.validate_training_data(csv_bytes(raw_text.drop(columns=["G1", "G2"])), "early")) == 395


def test_a_file_without_the_target_or_with_too_few_rows_is_refused(raw_text: pd.DataFrame) -> None:
    with pytest.raises(BatchRejected, match="G3"):
        jobs.validate_training_data(csv_bytes(raw_text.drop(columns=["G3"])), "early")
    with pytest.raises(jobs.TrainingDataRejected, match="problem") as caught:
        jobs.validate_training_data(csv_bytes(raw_text.head(20)), "early")
    assert "at least 50" in caught.value.problems[0].message


def test_training_runs_in_another_process_and_stores_an_inactive_version(
    models_db_url: str, raw_df: pd.DataFrame
) -> None:
    engine = get_engine(models_db_url)
    with session_scope(engine) as session:
        before = active_version_ids(session)
    settings = Settings(database_url=models_db_url)
    job = jobs.start_training(raw_df, "period2", runs=1, created_by="admin-ana", source="bundled UCI data",
                              settings=settings)  # fmt: skip
    with pytest.raises(jobs.JobError, match="still running"):
        jobs.start_training(raw_df, "early", runs=1, created_by="admin-bob", source="bundled UCI data",
                            settings=settings)  # fmt: skip

    # Predictions are served while the job trains.
    record = raw_df.drop(columns=["G3"]).iloc[0].to_dict()
    prediction = predict_one(ModelStore(engine, settings=get_settings()), engine, record, channel="cli")
    assert prediction.results["model_version"].item() == before["period2"]

    done = jobs.wait_for(job.id, timeout=300, settings=settings)
    assert done.status == "done", done.error
    assert done.progress == 1.0 and done.pid not in (None, os.getpid())
    assert done.seconds is not None and done.seconds > 0
    with session_scope(engine) as session:
        assert active_version_ids(session) == before
        version = get_version(session, done.version_id)
        assert version.setup == "period2" and version.created_by == "admin-ana" and version.n_rows == 395
        assert version.metrics["protocol_runs"] == 1 and "rmse" in version.metrics
        assert version.notes == "trained from bundled UCI data"
    assert [j.id for j in jobs.list_jobs(settings=settings)] == [job.id]
    assert jobs.running_job(settings=settings) is None


def test_the_job_trains_under_the_settings_it_was_given(models_db_url: str, raw_df: pd.DataFrame, tmp_path) -> None:
    """Not the environment's: another secret for the signature."""
    settings = Settings(database_url=models_db_url, home=tmp_path / "elsewhere",
                        secret_key="the-front-s-own-secret-0123456789")  # fmt: skip
    job = jobs.start_training(raw_df, "early", runs=0, created_by="admin", source="bundled UCI data",
                              settings=settings)  # fmt: skip
    done = jobs.wait_for(job.id, timeout=300, settings=settings)
    assert done.status == "done", done.error
    with session_scope(get_engine(models_db_url)) as session:
        version = get_version(session, done.version_id)
        assert load_artifact(version, settings=settings).setup == "early"
        with pytest.raises(ArtifactIntegrityError, match="another key"):
            load_artifact(version, settings=get_settings())


@pytest.fixture
def jobs_settings(db_url: str) -> Settings:
    migrate(db_url)
    return Settings(database_url=db_url)


def test_a_failing_job_says_why(jobs_settings: Settings, raw_df: pd.DataFrame) -> None:
    job = jobs.start_training(raw_df.head(20), "early", runs=0, created_by="admin", source="twenty rows",
                              settings=jobs_settings)  # fmt: skip
    done = jobs.wait_for(job.id, timeout=300, settings=jobs_settings)
    assert done.status == "failed" and done.version_id is None
    assert "TrainingDataRejected" in done.error
    assert jobs.running_job(settings=jobs_settings) is None


def _planted(settings: Settings, **values) -> str:
    row = tables.TrainingJob(id=values.pop("id"), setup="early", runs=1, source="bundled UCI data", created_by="admin",
                             created_at=datetime.now(UTC), n_rows=395, status="running", progress=0.3, stage="scoring",
                             running_slot=1, **values)  # fmt: skip
    with session_scope(get_engine(settings.database_url)) as session:
        session.add(row)
    return row.id


def test_a_job_whose_process_vanished_is_marked_failed(jobs_settings: Settings, raw_df: pd.DataFrame) -> None:
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    job_id = _planted(jobs_settings, id="20260101T000000-dead00", host=jobs.HOST, pid=int(gone.stdout),
                      heartbeat_at=datetime.now(UTC))  # fmt: skip
    assert jobs.running_job(settings=jobs_settings) is None
    seen = jobs.get_job(job_id, settings=jobs_settings)
    assert seen.status == "failed" and "stopped unexpectedly" in seen.error and seen.finished_at is not None


def test_a_job_on_another_host_is_judged_by_its_heartbeat(jobs_settings: Settings) -> None:
    fresh = _planted(jobs_settings, id="20260101T000000-fresh0", host="replica-b", pid=1,
                     heartbeat_at=datetime.now(UTC))  # fmt: skip
    assert jobs.running_job(settings=jobs_settings).id == fresh
    stale = datetime.now(UTC) - timedelta(seconds=jobs.HEARTBEAT_TIMEOUT + 1)
    with session_scope(get_engine(jobs_settings.database_url)) as session:
        session.execute(sa.update(tables.TrainingJob).values(heartbeat_at=stale))
    assert jobs.running_job(settings=jobs_settings) is None
    assert jobs.get_job(fresh, settings=jobs_settings).status == "failed"


def test_one_running_job_per_installation_and_cancel(jobs_settings: Settings, raw_df: pd.DataFrame) -> None:
    job = jobs.start_training(raw_df, "period2", runs=20, created_by="admin-ana", source="bundled UCI data",
                              settings=jobs_settings)  # fmt: skip
    other_replica = Settings(database_url=jobs_settings.database_url, home=jobs_settings.home / "replica-b")
    with pytest.raises(jobs.JobError, match="still running"):
        jobs.start_training(raw_df, "early", runs=0, created_by="admin-bob", source="bundled UCI data",
                            settings=other_replica)  # fmt: skip
    cancelled = jobs.cancel_job(job.id, "admin-bob", settings=jobs_settings)
    assert cancelled.status == "cancelled" and cancelled.version_id is None
    with pytest.raises(jobs.JobError, match="already cancelled"):
        jobs.cancel_job(job.id, "admin-bob", settings=jobs_settings)
    assert jobs.running_job(settings=other_replica) is None
    with session_scope(get_engine(jobs_settings.database_url)) as session:
        assert [r.action for r in list_audit(session)][:2] == ["training.cancel", "training.start"]
        assert list_versions(session) == []
    again = jobs.start_training(raw_df, "early", runs=0, created_by="admin-bob", source="bundled UCI data",
                                settings=other_replica)  # fmt: skip
    assert jobs.wait_for(again.id, timeout=300, settings=jobs_settings).status == "done"


def test_unknown_jobs_and_bad_arguments(jobs_settings: Settings, raw_df: pd.DataFrame) -> None:
    with pytest.raises(jobs.JobError, match="no training job"):
        jobs.get_job("nope", settings=jobs_settings)
    with pytest.raises(ValueError, match="runs"):
        jobs.start_training(raw_df, "early", runs=99, created_by="admin", source="x", settings=jobs_settings)
    with pytest.raises(ValueError, match="setup"):
        jobs.start_training(raw_df, "late", runs=1, created_by="admin", source="x", settings=jobs_settings)


STARTER = """
import sys
from model.ml import dataset, jobs
from model.settings import Settings
settings = Settings(database_url=sys.argv[1], home=sys.argv[2])
job = jobs.start_training(dataset.load_raw(sys.argv[3]), "period1", runs=4, created_by="admin-ana",
                          source="bundled UCI data", settings=settings)
print(job.id, flush=True)
print(jobs.wait_for(job.id, timeout=600, settings=settings).status, flush=True)
"""


def test_a_job_started_by_one_process_is_seen_with_its_progress_by_another(
    student_csv_path: Path, tmp_path: Path
) -> None:
    """Two processes (two replicas: separate homes, no shared files) on one PostgreSQL database."""
    url = _postgres_schema_url()
    try:
        migrate(url)
        command = [sys.executable, "-c", STARTER, url, str(tmp_path / "replica-a"), str(student_csv_path)]
        starter = subprocess.Popen(command, cwd=PROJECT_ROOT, stdout=subprocess.PIPE, text=True)
        job_id = starter.stdout.readline().strip()
        here = Settings(database_url=url, home=tmp_path / "replica-b")
        deadline = time.monotonic() + 300
        seen: list[tuple[str, float]] = []
        while time.monotonic() < deadline:
            job = jobs.get_job(job_id, settings=here)
            seen.append((job.status, job.progress))
            if job.finished:
                break
            time.sleep(0.05)
        assert starter.wait(timeout=60) == 0 and starter.stdout.read().strip() == "done"
        assert job.status == "done" and job.version_id is not None and job.created_by == "admin-ana"
        assert job.pid not in (None, os.getpid()) and job.seconds > 0
        partial = [progress for status, progress in seen if status == "running" and 0 < progress < 1]
        assert partial, f"no progress seen between start and end: {seen[:3]} ... {seen[-3:]}"
        assert partial == sorted(partial)
    finally:
        from model.store import db

        db.dispose_engines()
        _drop_postgres_schema(url)
