"""Background training: a new model version is trained in a separate process, never in the one
that serves predictions, and every replica sees the job in the database.

A job runs :func:`model.ml.training.train_setup` in a fresh interpreter (``python -m model.ml.jobs``,
lowered CPU priority) and registers the result as an **inactive** version. A fresh interpreter
rather than ``multiprocessing``: under Streamlit the ``__main__`` module is the page script, which a
'spawn' child would run again. The rows go to the child through its standard input as CSV, which it
validates again (no pickles cross the boundary, and school data never touches the disk in clear);
the settings it needs (database URL, home, secret and data keys) go through its environment, never
its command line, taken from the ``Settings`` the front passed in.

A job's state (status, progress, stage, who, source, duration, version id or error) is a row of the
``training_job`` table, so any replica polls it. The table's unique ``running_slot`` lets the
database refuse a second running job in the installation, so training never takes every core from
the prediction service. A job whose process died is marked failed by the next read: on its own host
by its process id, elsewhere when its heartbeat (every :data:`HEARTBEAT_SECONDS`) is older than
:data:`HEARTBEAT_TIMEOUT`. A cancelled job's process stops at its next heartbeat.

Like the prediction-log writer, these functions take the ``Settings`` (its database URL), not a
session: a job's progress must be visible while it runs, so each change is its own short transaction.
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from model.errors import UserError
from model.i18n import N_, tr, tr_n
from model.ml.schooldata import SOURCES, TrainingChoice, TrainingSet, school_training_set, training_set
from model.ml.trainingdata import MIN_TRAINING_ROWS, TrainingDataRejected, validate_training_data
from model.schema.fields import ID_COLUMN, SETUPS
from model.settings import PROJECT_ROOT, Settings
from model.store import tables
from model.store.audit import audit
from model.store.db import get_engine, session_scope

__all__ = ["MIN_TRAINING_ROWS", "TrainingDataRejected", "validate_training_data"]

MAX_RUNS = 20
ACTIVE_STATUSES = ("queued", "running")
FINISHED_STATUSES = ("done", "failed", "cancelled")
HEARTBEAT_SECONDS = 2.0
HEARTBEAT_TIMEOUT = 60.0
QUEUED_GRACE_SECONDS = 60.0
# Progress share of each stage: the protocol runs, then the final fit, then the registry write.
_PROTOCOL_SHARE, _FIT_SHARE = 0.8, 0.15
_NICENESS = 10
HOST = socket.gethostname()[:255]


# A job's words as shown: its row keeps them in English, a page translates them when shown.
STATUS_LABELS = {"queued": N_("queued"), "running": N_("running"), "done": N_("done"), "failed": N_("failed"),
                 "cancelled": N_("cancelled")}  # fmt: skip
STAGE_LABELS = {"waiting for the training process": N_("waiting for the training process"),
                "storing the new version": N_("storing the new version"), "cancelling": N_("cancelling")}  # fmt: skip
ERROR_LABELS = {"the training process stopped unexpectedly": N_("the training process stopped unexpectedly")}
BUNDLED_SOURCE = "bundled UCI data"  # not shown to users as is: see source_text
SCHOOL_SOURCE = re.compile(r"^(?P<source>.+) \((?P<count>\d+) students\)$")


def stage_text(stage: str, runs: int) -> str:
    """A job's stage in this context's language (an unknown stage as stored)."""
    if stage.startswith("scoring by the protocol"):
        return tr_n("scoring by the protocol ({count} run)", "scoring by the protocol ({count} runs)", runs)
    if stage in STATUS_LABELS:
        return tr(STATUS_LABELS[stage])
    return tr(STAGE_LABELS[stage]) if stage in STAGE_LABELS else stage


def error_text(error: str | None) -> str:
    """Why a job failed, in this context's language where the words are ours (an exception's text as stored)."""
    text = error or ""
    return tr(ERROR_LABELS[text]) if text in ERROR_LABELS else text


def source_text(source: str) -> str:
    """What a job trains on, in this context's language (a file's name as given)."""
    if source == BUNDLED_SOURCE:
        return tr("bundled UCI data")
    if source.startswith("upload "):
        return tr("upload {name}", name=source.removeprefix("upload "))
    found = SCHOOL_SOURCE.match(source)
    words = {v: k for k, v in SOURCES.items()}
    if found and found["source"] in words and words[found["source"]] != "bundled":
        return tr("{source} ({count} students)", source=tr(found["source"]), count=int(found["count"]))
    return source


class JobError(UserError):
    """A job could not be started, found or cancelled."""


@dataclass(frozen=True)
class TrainingJob:
    """The state of one background training job, as its row in ``training_job`` holds it."""

    id: str
    setup: str
    runs: int
    source: str
    created_by: str
    created_at: datetime
    n_rows: int
    status: str
    progress: float
    stage: str
    version_id: str | None
    error: str | None
    host: str
    pid: int | None
    heartbeat_at: datetime | None
    finished_at: datetime | None
    seconds: float | None
    cancel_requested: bool
    options: dict[str, Any] | None

    @property
    def finished(self) -> bool:
        return self.status in FINISHED_STATUSES

    @classmethod
    def of(cls, row: tables.TrainingJob) -> TrainingJob:
        return cls(**{name: getattr(row, name) for name in cls.__dataclass_fields__})


TABLE = tables.TrainingJob


def _engine(settings: Settings) -> sa.Engine:
    return get_engine(settings.database_url)


def _update(settings: Settings, job_id: str, *conditions: Any, **values: Any) -> bool:
    """Change job ``job_id`` (where ``conditions`` hold) in its own transaction; True when a row changed."""
    with session_scope(_engine(settings)) as session:
        result = session.execute(sa.update(TABLE).where(TABLE.id == job_id, *conditions).values(**values))
        return result.rowcount == 1


def _finish(settings: Settings, job_id: str, status: str, started: float | None = None, **values: Any) -> bool:
    """End an active job with ``status``: its slot is freed, its end time kept."""
    seconds = round(time.perf_counter() - started, 2) if started is not None else None
    return _update(settings, job_id, TABLE.status.in_(ACTIVE_STATUSES), status=status, running_slot=None,
                   finished_at=datetime.now(UTC), stage=status, seconds=seconds, **values)  # fmt: skip


# ---------------------------------------------------------------- the training process


class _Heartbeat(threading.Thread):
    """Writes the job's heartbeat every few seconds; ends the process when the job was cancelled."""

    def __init__(self, settings: Settings, job_id: str, started: float) -> None:
        super().__init__(daemon=True, name=f"heartbeat-{job_id}")
        self.settings, self.job_id, self.started = settings, job_id, started
        self.stopped = threading.Event()

    def beat(self) -> None:
        with session_scope(_engine(self.settings)) as session:
            row = session.get(TABLE, self.job_id)
            if row is None or row.status not in ACTIVE_STATUSES:
                return
            if row.cancel_requested:
                row.status, row.stage, row.running_slot = "cancelled", "cancelled", None
                row.finished_at = datetime.now(UTC)
                row.seconds = round(time.perf_counter() - self.started, 2)
                session.commit()
                os._exit(0)  # the training is abandoned where it stands; nothing was registered
            row.heartbeat_at = datetime.now(UTC)

    def run(self) -> None:
        while not self.stopped.wait(HEARTBEAT_SECONDS):
            self.beat()


def _training_set(frame: pd.DataFrame, job: TrainingJob) -> TrainingSet:
    """The job's rows as its options say: alone, or the school's first and then the bundled ones to pool."""
    options = job.options or {"source": "bundled"}
    choice = TrainingChoice(options["source"], int(options.get("weight", 1)), job.source)
    counts = options.get("counts")
    if choice.source != "pooled":
        return training_set(choice, frame.reset_index(drop=True), counts=counts)
    n_school = int(options["school_rows"])
    school, bundled = frame.iloc[:n_school].reset_index(drop=True), frame.iloc[n_school:].reset_index(drop=True)
    return training_set(choice, school, bundled, counts=counts)


def run_job(job_id: str, data: bytes, settings: Settings) -> None:
    """The training process: train on ``data`` (CSV), register inactive, record the outcome (never raises)."""
    from model.ml.training import register, train_setup
    from model.store.db import dispose_engines

    started = time.perf_counter()
    heartbeat = _Heartbeat(settings, job_id, started)
    try:
        os.nice(_NICENESS)
        with session_scope(_engine(settings)) as session:
            job = TrainingJob.of(session.get_one(TABLE, job_id))
        if not _update(settings, job_id, TABLE.status == "queued", status="running", pid=os.getpid(), host=HOST,
                       heartbeat_at=datetime.now(UTC), stage=f"scoring by the protocol ({job.runs} runs)"):  # fmt: skip
            return  # cancelled (or marked failed) before it started
        heartbeat.beat()
        heartbeat.start()
        least = min(MIN_TRAINING_ROWS, settings.min_training_outcomes)  # the school's minimum may be lower
        rows = _training_set(validate_training_data(data, job.setup, min_rows=least), job)

        def progress(fraction: float) -> None:
            _update(settings, job_id, progress=round(_PROTOCOL_SHARE * fraction, 4))

        trained = train_setup(rows.protocol, job.setup, runs=job.runs, progress=progress, n_jobs=1, fit_frame=rows.fit)
        trained.notes = f"trained from {job.source}"
        trained.data_reference, trained.school_rows = rows.reference, rows.school
        _update(settings, job_id, progress=_PROTOCOL_SHARE + _FIT_SHARE, stage="storing the new version")
        heartbeat.stopped.set()
        heartbeat.beat()  # a cancel that came during the fit wins: nothing is stored
        with session_scope(_engine(settings)) as session:
            version_id = register(session, trained, created_by=job.created_by, activate=False, settings=settings)
        _finish(settings, job_id, "done", started, progress=1.0, version_id=version_id)
    except Exception as error:  # noqa: BLE001 - the record must say why the job failed
        _finish(settings, job_id, "failed", started, error=f"{type(error).__name__}: {error}")
    finally:
        heartbeat.stopped.set()
        dispose_engines()


# ---------------------------------------------------------------- reading and marking jobs

_processes: dict[str, subprocess.Popen[bytes]] = {}


def _alive(job: TrainingJob, now: datetime) -> bool:
    process = _processes.get(job.id)
    if process is not None:
        return process.poll() is None
    if job.pid is None:
        # Started elsewhere and not yet picked up: trust the row for a while, no longer (a job left
        # "queued" by a restart must not block training forever).
        return (now - job.created_at).total_seconds() < QUEUED_GRACE_SECONDS
    if job.host == HOST:
        try:
            os.kill(job.pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
    beat = job.heartbeat_at or job.created_at
    return (now - beat).total_seconds() < HEARTBEAT_TIMEOUT


def _checked(job: TrainingJob, settings: Settings) -> TrainingJob:
    """``job``, marked failed first when its process died without a word."""
    if job.status in ACTIVE_STATUSES and not _alive(job, datetime.now(UTC)):
        _finish(settings, job.id, "failed", error="the training process stopped unexpectedly")
        return _read(job.id, settings)
    return job


def _read(job_id: str, settings: Settings) -> TrainingJob:
    with session_scope(_engine(settings)) as session:
        row = session.get(TABLE, job_id)
        if row is None:
            raise JobError(tr("no training job {job!r}", job=job_id))
        return TrainingJob.of(row)


def get_job(job_id: str, *, settings: Settings) -> TrainingJob:
    """The current state of a job; a job whose process died without a word is marked failed."""
    return _checked(_read(job_id, settings), settings)


def list_jobs(limit: int = 20, *, settings: Settings) -> list[TrainingJob]:
    """The latest jobs of the installation, newest first."""
    with session_scope(_engine(settings)) as session:
        query = sa.select(TABLE).order_by(TABLE.created_at.desc(), TABLE.id.desc()).limit(limit)
        found = [TrainingJob.of(row) for row in session.scalars(query)]
    return [_checked(job, settings) for job in found]


def running_job(*, settings: Settings) -> TrainingJob | None:
    """The job currently queued or running in the installation, if any."""
    with session_scope(_engine(settings)) as session:
        row = session.scalars(sa.select(TABLE).where(TABLE.running_slot.is_not(None))).first()
        job = TrainingJob.of(row) if row is not None else None
    job = _checked(job, settings) if job is not None else None
    return job if job is not None and not job.finished else None


def cancel_job(job_id: str, by: str, *, settings: Settings) -> TrainingJob:
    """Stop job ``job_id``; nothing is registered; audited. Raises `JobError` for a finished job.

    On the job's own host (or before its process started) it is stopped and marked cancelled at once;
    from another replica it is flagged, and its process ends itself at its next heartbeat."""
    job = get_job(job_id, settings=settings)
    if job.finished:
        raise JobError(tr("training job {job} is already {status}", job=job_id, status=tr(STATUS_LABELS[job.status])))
    with session_scope(_engine(settings)) as session:
        session.execute(sa.update(TABLE).where(TABLE.id == job_id).values(cancel_requested=True, stage="cancelling"))
        audit(session, "training.cancel", by, job_id=job_id, setup=job.setup)
    if job.pid is None:
        _finish(settings, job_id, "cancelled")
    elif job.host == HOST:
        with contextlib.suppress(ProcessLookupError):
            os.kill(job.pid, signal.SIGTERM)
        _finish(settings, job_id, "cancelled")
    return get_job(job_id, settings=settings)


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


def _claim(settings: Settings, job: tables.TrainingJob, by: str) -> None:
    """Insert the job holding the installation's running slot; `JobError` while another job holds it."""
    for attempt in range(2):
        try:
            with session_scope(_engine(settings)) as session:
                session.add(job)
                audit(session, "training.start", by, job_id=job.id, setup=job.setup, source=job.source)
            return
        except IntegrityError:
            busy = running_job(settings=settings)  # marks a dead holder failed, freeing the slot
            if busy is not None or attempt == 1:
                if busy is None:
                    raise JobError(tr("another training job is still running; wait for it to finish")) from None
                raise JobError(tr("training job {job} ({setup}, started by {who}) is still running; wait for it to "
                                  "finish", job=busy.id, setup=busy.setup, who=busy.created_by)) from None  # fmt: skip


def start_training(
    frame: pd.DataFrame,
    setup: str,
    *,
    runs: int,
    created_by: str,
    source: str,
    settings: Settings,
    options: dict[str, Any] | None = None,
) -> TrainingJob:
    """Start training ``setup`` on ``frame`` in a separate process; returns at once.

    ``frame`` holds validated rows (``validate_training_data`` or ``model.ml.dataset.load_raw()``).
    The version is registered in ``settings.database_url``, signed and encrypted under the keys of
    ``settings``. Raises `JobError` while another job of the installation is running.
    """
    if setup not in SETUPS:
        raise ValueError(f"unknown setup {setup!r}; expected one of {', '.join(SETUPS)}")
    if not 0 <= runs <= MAX_RUNS:
        raise ValueError(f"runs must be between 0 and {MAX_RUNS}, got {runs}")
    now = datetime.now(UTC)
    row = TABLE(id=f"{now:%Y%m%dT%H%M%S}-{secrets.token_hex(3)}", setup=setup, runs=runs, source=source[:255],
                created_by=created_by, created_at=now, n_rows=len(frame), status="queued", progress=0.0,
                stage="waiting for the training process", host=HOST, running_slot=1, options=options)  # fmt: skip
    _claim(settings, row, created_by)
    columns = [c for c in frame.columns if c != ID_COLUMN]  # student ids are not needed to train
    data = frame[columns].to_csv(sep=";", index=False).encode("utf-8")
    process = subprocess.Popen(
        [sys.executable, "-m", "model.ml.jobs", row.id], cwd=PROJECT_ROOT, env=_child_environment(settings),
        stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    _processes[row.id] = process
    threading.Thread(target=_hand_over, args=(process, data), daemon=True).start()
    return _read(row.id, settings)


def start_school_training(
    session: Session, setup: str, choice: TrainingChoice, *, runs: int, created_by: str, settings: Settings
) -> TrainingJob:
    """Start training ``setup`` on the school's recorded outcomes (alone or pooled, as ``choice`` says).

    The inputs are decrypted in memory and handed to the training process on its standard input.
    Raises `NotEnoughOutcomes` below the minimum number of students with an outcome."""
    rows = school_training_set(session, setup, choice, settings=settings)
    options = {"source": choice.source, "weight": choice.weight, "school_rows": rows.reference["school_rows"],
               "counts": rows.reference["counts"]}  # fmt: skip
    label = choice.label or f"{SOURCES[choice.source]} ({rows.reference['school_rows']} students)"
    return start_training(rows.protocol, setup, runs=runs, created_by=created_by, source=label, settings=settings,
                          options=options)  # fmt: skip


def _hand_over(process: subprocess.Popen[bytes], data: bytes) -> None:
    """Write the rows to the training process's standard input (it reads them once it has started)."""
    try:
        assert process.stdin is not None
        process.stdin.write(data)
        process.stdin.close()
    except OSError:
        pass  # the process died before reading: the next read of the job marks it failed


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


def prune_processes() -> None:
    """Forget the handles of training processes that have ended (reaping them)."""
    for job_id, process in list(_processes.items()):
        if process.poll() is not None:
            del _processes[job_id]


if __name__ == "__main__":
    from model.settings import get_settings

    run_job(sys.argv[1], sys.stdin.buffer.read(), get_settings())
