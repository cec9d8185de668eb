"""Background training: validated input, a separate process, progress, never blocking predictions."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from model.errors import BatchRejected
from model.ml import jobs
from model.serving.service import ModelStore, predict_one
from model.settings import Settings, get_settings
from model.store.db import get_engine, session_scope
from model.store.registry import ArtifactIntegrityError, active_version_ids, get_version, load_artifact


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
    """Not the environment's: another home for the records, another secret for the signature."""
    settings = Settings(database_url=models_db_url, home=tmp_path / "elsewhere",
                        secret_key="the-front-s-own-secret-0123456789")  # fmt: skip
    job = jobs.start_training(raw_df, "early", runs=0, created_by="admin", source="bundled UCI data",
                              settings=settings)  # fmt: skip
    assert (tmp_path / "elsewhere" / "jobs" / f"{job.id}.json").is_file()
    assert jobs.list_jobs(settings=get_settings()) == []
    done = jobs.wait_for(job.id, timeout=300, settings=settings)
    assert done.status == "done", done.error
    with session_scope(get_engine(models_db_url)) as session:
        version = get_version(session, done.version_id)
        assert load_artifact(version, settings=settings).setup == "early"
        with pytest.raises(ArtifactIntegrityError, match="another key"):
            load_artifact(version, settings=get_settings())


def test_a_failing_job_says_why(tmp_path: Path, raw_df: pd.DataFrame) -> None:
    never_migrated = Settings(database_url=f"sqlite:///{tmp_path / 'empty.db'}")
    job = jobs.start_training(raw_df, "early", runs=0, created_by="admin", source="bundled UCI data",
                              settings=never_migrated)  # fmt: skip
    done = jobs.wait_for(job.id, timeout=300, settings=never_migrated)
    assert done.status == "failed" and done.version_id is None
    assert "model_version" in done.error


def test_a_job_whose_process_vanished_is_marked_failed() -> None:
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    job = jobs.TrainingJob(id="20260101T000000-dead00", setup="early", runs=1, source="bundled UCI data",
                           created_by="admin", created_at="2026-01-01T00:00:00+00:00", n_rows=395, status="running",
                           pid=int(gone.stdout))  # fmt: skip
    jobs._write(jobs.jobs_dir(get_settings()), job)
    assert jobs.running_job(settings=get_settings()) is None
    seen = jobs.get_job(job.id, settings=get_settings())
    assert seen.status == "failed" and "stopped unexpectedly" in seen.error


def test_unknown_jobs_and_bad_arguments(raw_df: pd.DataFrame) -> None:
    with pytest.raises(jobs.JobError, match="no training job"):
        jobs.get_job("nope", settings=get_settings())
    with pytest.raises(ValueError, match="runs"):
        jobs.start_training(raw_df, "early", runs=99, created_by="admin", source="x", settings=get_settings())
    with pytest.raises(ValueError, match="setup"):
        jobs.start_training(raw_df, "late", runs=1, created_by="admin", source="x", settings=get_settings())
