"""Background training: a new model version is trained in a separate process, never in the one
that serves predictions.

A job runs :func:`model.ml.training.train_setup` in a fresh interpreter (``python -m model.ml.jobs``,
lowered CPU priority) and registers the result as an **inactive** version. A fresh interpreter
rather than ``multiprocessing``: under Streamlit the ``__main__`` module is the page script, which a
'spawn' child would run again. The rows go to the child as a CSV file that it validates again (no
pickles cross the boundary); the settings it needs (database URL, home, secret and data keys) go
through its environment, never its command line, taken from the ``Settings`` the front passed in.
The child's ``__main__`` is its own front: it reads those settings once and opens the transaction.

A job's state (status, progress, stage, version id or error) lives in a small JSON record under
``settings.home/jobs``, written atomically, so any process on the host can poll it. One job runs
at a time per home directory, so training never takes every core from the prediction service.
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd

from model.errors import UserError
from model.ml.trainingdata import MIN_TRAINING_ROWS, TrainingDataRejected, validate_training_data
from model.schema.fields import ID_COLUMN, SETUPS
from model.settings import PROJECT_ROOT, Settings

__all__ = ["MIN_TRAINING_ROWS", "TrainingDataRejected", "validate_training_data"]
MAX_RUNS = 20
ACTIVE_STATUSES = ("queued", "running")
FINISHED_STATUSES = ("done", "failed")
# Progress share of each stage: the protocol runs, then the final fit, then the registry write.
_PROTOCOL_SHARE, _FIT_SHARE = 0.8, 0.15
_NICENESS = 10


class JobError(UserError):
    """A job could not be started or found."""


@dataclass
class TrainingJob:
    """The state of one background training job, as stored in its JSON record."""

    id: str
    setup: str
    runs: int
    source: str
    created_by: str
    created_at: str
    n_rows: int
    status: str = "queued"
    progress: float = 0.0
    stage: str = "waiting for the training process"
    version_id: str | None = None
    error: str | None = None
    pid: int | None = None
    finished_at: str | None = None
    seconds: float | None = None

    @property
    def finished(self) -> bool:
        return self.status in FINISHED_STATUSES


def jobs_dir(settings: Settings) -> Path:
    """Where job records live: ``settings.home/jobs``."""
    return settings.home / "jobs"


def _path(directory: Path, job_id: str) -> Path:
    return directory / f"{job_id}.json"


def _write(directory: Path, job: TrainingJob) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    target = _path(directory, job.id)
    temporary = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    temporary.write_text(json.dumps(asdict(job)), "utf-8")
    os.replace(temporary, target)


def _read(directory: Path, job_id: str) -> TrainingJob:
    try:
        return TrainingJob(**json.loads(_path(directory, job_id).read_text("utf-8")))
    except FileNotFoundError:
        raise JobError(f"no training job {job_id!r}") from None


def _update(directory: Path, job: TrainingJob, **changes: Any) -> TrainingJob:
    for name, value in changes.items():
        setattr(job, name, value)
    _write(directory, job)
    return job


def _fail(directory: Path, job: TrainingJob, error: str, seconds: float | None = None) -> None:
    _update(directory, job, status="failed", stage="failed", error=error, seconds=seconds,
            finished_at=datetime.now(UTC).isoformat())  # fmt: skip


# ---------------------------------------------------------------- the job itself


def _data_path(directory: Path, job_id: str) -> Path:
    return directory / f"{job_id}.csv"


def run_job(directory: Path, job_id: str, settings: Settings) -> None:
    """The training process: train, register inactive, record the outcome (never raises)."""
    from model.ml.training import register, train_setup
    from model.store.db import dispose_engines, get_engine, session_scope

    job = _read(directory, job_id)
    started = time.perf_counter()
    try:
        os.nice(_NICENESS)
        _update(directory, job, status="running", pid=os.getpid(), stage=f"scoring by the protocol ({job.runs} runs)")
        frame = validate_training_data(_data_path(directory, job_id).read_bytes(), job.setup)

        def progress(fraction: float) -> None:
            _update(directory, job, progress=round(_PROTOCOL_SHARE * fraction, 4))

        trained = train_setup(frame, job.setup, runs=job.runs, progress=progress, n_jobs=1)
        trained.notes = f"trained from {job.source}"
        _update(directory, job, progress=_PROTOCOL_SHARE + _FIT_SHARE, stage="storing the new version")
        with session_scope(get_engine(settings.database_url)) as session:
            version_id = register(session, trained, created_by=job.created_by, activate=False, settings=settings)
        _update(directory, job, status="done", progress=1.0, stage="done", version_id=version_id,
                finished_at=datetime.now(UTC).isoformat(), seconds=round(time.perf_counter() - started, 2))  # fmt: skip
    except Exception as error:  # noqa: BLE001 - the record must say why the job failed
        _fail(directory, job, f"{type(error).__name__}: {error}", seconds=round(time.perf_counter() - started, 2))
    finally:
        _data_path(directory, job_id).unlink(missing_ok=True)
        dispose_engines()


_processes: dict[str, subprocess.Popen[bytes]] = {}
QUEUED_GRACE_SECONDS = 60


def _alive(job: TrainingJob) -> bool:
    process = _processes.get(job.id)
    if process is not None:
        return process.poll() is None
    if job.pid is None:
        # Started by another process and not yet picked up: trust the record for a minute, no longer
        # (a record left "queued" by a restart must not block training forever).
        return (datetime.now(UTC) - datetime.fromisoformat(job.created_at)).total_seconds() < QUEUED_GRACE_SECONDS
    try:
        os.kill(job.pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def get_job(job_id: str, *, settings: Settings) -> TrainingJob:
    """The current state of a job; a job whose process died without a word is marked failed."""
    directory = jobs_dir(settings)
    job = _read(directory, job_id)
    if job.status in ACTIVE_STATUSES and not _alive(job):
        job = _read(directory, job_id)  # it may have finished between the two reads
        if job.status in ACTIVE_STATUSES:
            _fail(directory, job, "the training process stopped unexpectedly")
    return job


def list_jobs(limit: int = 20, *, settings: Settings) -> list[TrainingJob]:
    """The latest jobs, newest first."""
    directory = jobs_dir(settings)
    if not directory.is_dir():
        return []
    paths = sorted(directory.glob("*.json"), reverse=True)[:limit]
    return [get_job(path.stem, settings=settings) for path in paths]


def running_job(*, settings: Settings) -> TrainingJob | None:
    """The job currently queued or running, if any."""
    return next((job for job in list_jobs(settings=settings) if job.status in ACTIVE_STATUSES), None)


def _child_environment(settings: Settings) -> dict[str, str]:
    """The training process's environment: this one's, with what it needs taken from ``settings``."""
    return {
        **os.environ,
        "DATABASE_URL": settings.database_url,
        "MATHSIGHT_HOME": str(settings.home),
        "MATHSIGHT_SECRET_KEY": settings.local_secret("secret_key"),
        "MATHSIGHT_DATA_KEY": settings.data_key,
        "MATHSIGHT_DATA_KEY_PREVIOUS": settings.data_key_previous,
    }


def start_training(
    frame: pd.DataFrame,
    setup: str,
    *,
    runs: int,
    created_by: str,
    source: str,
    settings: Settings,
) -> TrainingJob:
    """Start training ``setup`` on ``frame`` in a separate process; returns at once.

    ``frame`` holds validated rows (``validate_training_data`` or ``model.ml.dataset.load_raw()``).
    The version is registered in ``settings.database_url``, signed and encrypted under the keys of
    ``settings``. Raises `JobError` while another job is running.
    """
    if setup not in SETUPS:
        raise ValueError(f"unknown setup {setup!r}; expected one of {', '.join(SETUPS)}")
    if not 0 <= runs <= MAX_RUNS:
        raise ValueError(f"runs must be between 0 and {MAX_RUNS}, got {runs}")
    busy = running_job(settings=settings)
    if busy is not None:
        raise JobError(f"training job {busy.id} ({busy.setup}, started by {busy.created_by}) is still running; "
                       "wait for it to finish")  # fmt: skip
    now = datetime.now(UTC)
    job = TrainingJob(id=f"{now:%Y%m%dT%H%M%S}-{secrets.token_hex(3)}", setup=setup, runs=runs, source=source,
                      created_by=created_by, created_at=now.isoformat(), n_rows=len(frame))  # fmt: skip
    directory = jobs_dir(settings)
    _write(directory, job)
    columns = [c for c in frame.columns if c != ID_COLUMN]  # student ids are not needed to train
    frame[columns].to_csv(_data_path(directory, job.id), sep=";", index=False)
    environment = _child_environment(settings)
    with open(directory / f"{job.id}.log", "wb") as log:
        _processes[job.id] = subprocess.Popen(
            [sys.executable, "-m", "model.ml.jobs", str(directory), job.id],
            cwd=PROJECT_ROOT, env=environment, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
    return job


def wait_for(job_id: str, timeout: float = 600.0, poll: float = 0.2, *, settings: Settings) -> TrainingJob:
    """Poll a job until it finishes; raises `TimeoutError` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        job = get_job(job_id, settings=settings)
        if job.finished:
            return job
        if time.monotonic() > deadline:
            raise TimeoutError(f"training job {job_id} still {job.status} after {timeout:.0f} s")
        time.sleep(poll)


if __name__ == "__main__":
    from model.settings import get_settings

    run_job(Path(sys.argv[1]), sys.argv[2], get_settings())
