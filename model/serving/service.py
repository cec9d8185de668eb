"""The prediction service every front calls: validate, pick the setup, predict, explain, log.

A request uses, row by row, the richest setup its inputs allow (G1 and G2 known: ``period2``; only
G1: ``period1``; neither: ``early``). Each request is written to the prediction log in one insert,
accepted and rejected rows alike, so monitoring sees volume, latency and error rates.

There is one path for one student and for a class: validated rows become :class:`Students` (one
array per field), :func:`predict_students` predicts and explains them setup by setup on arrays, and
the request is logged column by column. One student is the same path with one row: no pandas work
but the result tables, and the booster's own SHAP for a few rows (``GradeModel._contributions``).
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from model import i18n
from model.errors import Problem, UserError
from model.i18n import tr
from model.logs import log_request
from model.ml.explain import FactorTable
from model.ml.grade_model import Explanation, GradeModel
from model.schema.fields import ATTRIBUTES, GRADES, ID_COLUMN
from model.schema.results import BAND_PROBABILITY_COLUMNS, RESULT_COLUMNS
from model.schema.thresholds import Thresholds
from model.schema.validation import (
    ValidationResult,
    record_notes,
    row_setups,
    setup_for,
    validate_batch,
    validate_record,
)
from model.serving.predlog.writer import student_keys, write_log, write_log_columns
from model.serving.students import remember_students
from model.settings import Settings
from model.store import registry, school
from model.store.db import session_scope

TOP_FACTORS = 5
CHUNK_ROWS = 20_000
SETUP_ORDER = ("period2", "period1", "early")
INPUT_COLUMNS = (*ATTRIBUTES, *GRADES)
log = logging.getLogger(__name__)
LOGGED_RESULTS = ("setup", "predicted_g3", "lower", "upper", "p_pass", "p_no_grade", "band", "risk")  # log columns


class NoActiveModel(RuntimeError):
    """A setup has no active model version (train one: ``python -m model train --activate``)."""

    def __init__(self, setup: str, message: str | None = None) -> None:
        super().__init__(
            message
            or tr("no active model for setup {setup}; run `python -m model train --activate`", setup=repr(setup))
        )
        self.setup = setup


class ModelUnavailable(NoActiveModel):
    """The active version of a setup failed its integrity check, so it is not served (the reason is logged)."""

    def __init__(self, setup: str, refusal: registry.ArtifactIntegrityError) -> None:
        super().__init__(setup, tr("the model for setup {setup} is unavailable: its active version {version} failed "
                                   "the integrity check (an admin sees why on the models page)",
                                   setup=repr(setup), version=refusal.label))  # fmt: skip
        self.version_id = refusal.label
        self.reason = str(refusal)


class LegacyModel(NoActiveModel):
    """The active version of a setup was trained by grade model v1 and cannot give the v2 figures."""

    def __init__(self, setup: str) -> None:
        super().__init__(setup, tr("the active {setup} model was trained by grade model v1 and cannot give the risk "
                                   "of no final grade; train and promote a new one: "
                                   "`python -m model train --setup {setup} --activate`", setup=setup))  # fmt: skip


@dataclass(frozen=True)
class LoadedModel:
    """An active model version, loaded and verified."""

    version_id: str
    setup: str
    estimator: GradeModel
    metrics: dict[str, Any]


class ModelStore:
    """The active model of each setup, loaded once and swapped when an admin promotes another.

    The registry's active ids are re-read at most every ``refresh_seconds`` (one tiny query), so a
    promotion made by any process reaches this one within that delay without reloading per request.
    ``settings`` are the front's: the service keys student ids and writes the log under them, and the
    risk levels follow their threshold table with the school's own levels over it, re-read with the
    active ids (:func:`model.store.school.load_thresholds`).
    """

    def __init__(self, engine: Engine, refresh_seconds: float = 3.0, *, settings: Settings) -> None:
        self.engine = engine
        self.settings = settings
        self.thresholds = Thresholds.from_settings(settings)
        self.refresh_seconds = refresh_seconds
        self._models: dict[str, LoadedModel] = {}
        self._refused: dict[str, registry.ArtifactIntegrityError] = {}  # setup -> why its active version is refused
        self._checked_at = float("-inf")
        self._lock = threading.Lock()

    def refresh(self, force: bool = False) -> None:
        """Reload whatever setup's active version changed since the last check."""
        with self._lock:
            now = time.monotonic()
            if not force and now - self._checked_at < self.refresh_seconds:
                return
            try:
                self._reload()
            except (sa_exc.OperationalError, sa_exc.InterfaceError, sa_exc.TimeoutError):
                # The database is down: keep serving the loaded models (the log spools meanwhile).
                if not self._models:
                    raise
            self._checked_at = now

    def _reload(self) -> None:
        with session_scope(self.engine) as session:
            self.thresholds = school.load_thresholds(session, self.settings)
            active = registry.active_version_ids(session)
            for setup, version_id in active.items():
                current, refused = self._models.get(setup), self._refused.get(setup)
                known = (current is not None and current.version_id == version_id) or (
                    refused is not None and refused.label == version_id
                )
                if not known:
                    self._load(session, setup, version_id)
            for setup in set(self._models) - set(active):
                del self._models[setup]
            self._refused = {setup: e for setup, e in self._refused.items() if active.get(setup) == e.label}

    def _load(self, session: Session, setup: str, version_id: str) -> None:
        version = registry.get_version(session, version_id)
        try:
            # the store is shared by every session: a refusal is kept (and logged) in English, whoever's run loaded it
            with i18n.use_language(i18n.ENGLISH):
                estimator = registry.load_artifact(version, settings=self.settings)
        except registry.ArtifactIntegrityError as error:
            log.error("not serving setup %s: %s", setup, error)
            self._models.pop(setup, None)
            self._refused[setup] = error
            return
        self._refused.pop(setup, None)
        self._models[setup] = LoadedModel(version_id, setup, estimator, dict(version.metrics))

    def get(self, setup: str) -> LoadedModel:
        self.refresh()
        try:
            model = self._models[setup]
        except KeyError:
            if setup in self._refused:
                raise ModelUnavailable(setup, self._refused[setup]) from None
            raise NoActiveModel(setup) from None
        if "nograde_head_" not in model.estimator.__dict__:
            raise LegacyModel(setup)
        return model

    def active(self) -> dict[str, LoadedModel]:
        self.refresh()
        return dict(self._models)


@dataclass
class Prediction:
    """Predictions for accepted rows (``results``: the result vocabulary's ``RESULT_COLUMNS``, index = the
    user's row numbers) and their explanations."""

    results: pd.DataFrame
    factors: FactorTable
    explanations: dict[str, Explanation]
    problems: list[Problem] = field(default_factory=list)
    n_rows: int = 0
    request_id: str = ""
    latency_ms: float = 0.0

    @property
    def rejected_rows(self) -> list[int]:
        return sorted({p.row for p in self.problems if p.row is not None})


@dataclass(frozen=True)
class Students:
    """Validated students column by column: each field's canonical values as one array (``None`` for an
    unknown grade or id), the row numbers (``rows``) and the setup each row's grades allow."""

    rows: np.ndarray
    columns: dict[str, np.ndarray]
    setups: np.ndarray

    @classmethod
    def of_frame(cls, accepted: pd.DataFrame) -> Students:
        """The rows of ``ValidationResult.accepted`` (index = row numbers)."""
        names = [name for name in (ID_COLUMN, *INPUT_COLUMNS) if name in accepted.columns]
        columns = {name: _array(accepted[name]) for name in names}
        return cls(accepted.index.to_numpy(), columns, row_setups(accepted).to_numpy(dtype=object))

    @classmethod
    def of_record(cls, record: Mapping[str, Any]) -> Students:
        """One student validated by ``validate_record``, as row 1."""
        columns = {name: np.array([value], dtype=object) for name, value in record.items()}
        return cls(np.array([1]), columns, np.array([setup_for(record)], dtype=object))

    def __len__(self) -> int:
        return len(self.rows)

    def take(self, positions: np.ndarray) -> Students:
        """The students at ``positions`` (all of them, unchanged, when that is every row in order)."""
        if len(positions) == len(self) and (len(positions) == 0 or positions[-1] == len(self) - 1):
            return self
        columns = {name: values[positions] for name, values in self.columns.items()}
        return replace(self, rows=self.rows[positions], columns=columns, setups=self.setups[positions])

    def ids(self) -> np.ndarray:
        """The student ids (``None`` where none was given)."""
        given = self.columns.get(ID_COLUMN)
        return given if given is not None else np.full(len(self), None, dtype=object)

    def inputs(self) -> list[dict[str, Any]]:
        """Each row's inputs as plain values, as the prediction log stores them."""
        names = [name for name in INPUT_COLUMNS if name in self.columns]
        values = [self.columns[name].tolist() for name in names]
        return [dict(zip(names, row, strict=True)) for row in zip(*values, strict=True)]


def _array(column: pd.Series) -> np.ndarray:
    """A validated column's values: numbers and text as they are, ``None`` for a missing value."""
    return column.to_numpy(dtype=object, na_value=None) if column.hasnans else column.to_numpy()


@dataclass
class _Part:
    """One chunk of one setup's rows (``students``, at ``positions`` among all), its model and output
    (``contributions``: rows x the model's features, None when not explained)."""

    students: Students
    positions: np.ndarray
    model: LoadedModel
    details: dict[str, np.ndarray]
    base_value: float = 0.0
    contributions: np.ndarray | None = None


def predict_students(
    store: ModelStore,
    students: Students,
    top: int = TOP_FACTORS,
    explain: bool = True,
    progress: Callable[[float], None] | None = None,
) -> Prediction:
    """Predict (and explain) validated students, each by the active model of its setup; no logging."""
    return _predict(store, students, top, explain, progress)[0]


def _predict(
    store: ModelStore,
    students: Students,
    top: int,
    explain: bool,
    progress: Callable[[float], None] | None,
) -> tuple[Prediction, dict[str, np.ndarray]]:
    """:func:`predict_students`, and the result columns as arrays (for the log)."""
    parts: list[_Part] = []
    done = 0
    for setup in SETUP_ORDER:
        positions = np.flatnonzero(students.setups == setup)
        if not len(positions):
            continue
        model = store.get(setup)
        for start in range(0, len(positions), CHUNK_ROWS):
            at = positions[start : start + CHUNK_ROWS]
            chunk = students.take(at)
            details, shap = model.estimator.predict_arrays(chunk.columns, explain=explain, thresholds=store.thresholds)
            part = _Part(chunk, at, model, details)
            if shap is not None:
                part.base_value, part.contributions = shap
            parts.append(part)
            done += len(chunk)
            if progress is not None:
                progress(done / len(students))
    columns = _result_columns(students, parts)
    index = pd.Index(students.rows, name="row")
    results = pd.DataFrame(
        {**columns, "student_id": pd.Series(columns["student_id"], index=index, dtype=object)}, index=index
    )  # student_id stays object: a missing id is None, not a missing string
    prediction = Prediction(results, _factors(parts, top), _explanations(parts), n_rows=len(students))
    return prediction, columns


def _result_columns(students: Students, parts: list[_Part]) -> dict[str, np.ndarray]:
    """The :data:`RESULT_COLUMNS` and the band probabilities as arrays over the students, in their order."""
    n = len(students)
    columns = {name: np.empty(n, dtype=object) for name in (*RESULT_COLUMNS, *BAND_PROBABILITY_COLUMNS)}
    columns |= {"student_id": students.ids(), "setup": students.setups}
    if parts:
        columns |= {name: np.empty(n) for name, values in parts[0].details.items() if values.dtype.kind == "f"}
    for part in parts:
        columns["model_version"][part.positions] = part.model.version_id
        for name, values in part.details.items():
            columns[name][part.positions] = values
    return columns


def _factors(parts: list[_Part], top: int) -> FactorTable:
    tables = []
    for part in parts:
        if part.contributions is not None:
            chunk, features = part.students, part.model.estimator.features_
            tables.append(FactorTable.largest(chunk.rows, features, part.contributions, chunk.columns, top))
    return tables[0] if len(tables) == 1 else FactorTable.concat(tables)


def _explanations(parts: list[_Part]) -> dict[str, Explanation]:
    """Per setup, the SHAP values of its rows (chunks joined)."""
    explanations = {}
    for setup in SETUP_ORDER:
        mine = [part for part in parts if part.model.setup == setup and part.contributions is not None]
        if not mine:
            continue
        values = np.concatenate([part.contributions for part in mine]) if len(mine) > 1 else mine[0].contributions
        rows = pd.Index(np.concatenate([part.students.rows for part in mine]), name="row")
        base = mine[0].base_value
        contributions = pd.DataFrame(values, columns=mine[0].model.estimator.features_, index=rows)
        explanations[setup] = Explanation(base, contributions, base + values.sum(axis=1))
    return explanations


def predict_frame(
    store: ModelStore,
    accepted: pd.DataFrame,
    top: int = TOP_FACTORS,
    explain: bool = True,
    progress: Callable[[float], None] | None = None,
) -> Prediction:
    """Predict validated rows (``ValidationResult.accepted`` form); no logging."""
    return predict_students(store, Students.of_frame(accepted), top=top, explain=explain, progress=progress)


def _log_columns(
    settings: Settings,
    prediction: Prediction,
    students: Students,
    results: dict[str, np.ndarray],
    *,
    channel: str,
    user_id: int | None,
) -> tuple[dict[str, Any], int]:
    """The request's log rows, column by column: the predicted rows, then one per rejected row."""
    n_ok, n_rejected = len(students), len(prediction.rejected_rows)
    n = n_ok + n_rejected
    missing = [None] * n_rejected
    log: dict[str, Any] = {
        "request_id": prediction.request_id, "channel": channel, "user_id": user_id,
        "latency_ms": prediction.latency_ms / max(n, 1),
        "status": ["ok"] * n_ok + ["rejected"] * n_rejected,
        "error_type": [None] * n_ok + ["validation"] * n_rejected,
        "model_version_id": results["model_version"].tolist() + missing,
        "student_key": student_keys(results["student_id"].tolist(), settings) + missing,
        "inputs": students.inputs() + missing,
        **{name: results[name].tolist() + missing for name in LOGGED_RESULTS},
    }  # fmt: skip
    return log, n


def log_failure(
    engine: Engine,
    settings: Settings,
    *,
    channel: str,
    user_id: int | None,
    error: BaseException,
    latency_ms: float,
) -> None:
    """Record a request that failed outright: ``rejected`` for a :class:`~model.errors.UserError` (the
    input was unusable), ``error`` for anything else (no model, a fault of ours)."""
    status = "rejected" if isinstance(error, UserError) else "error"
    request_id = uuid.uuid4().hex
    write_log(engine, settings, [{"request_id": request_id, "channel": channel, "user_id": user_id, "status": status,
                                  "error_type": type(error).__name__, "latency_ms": latency_ms}])  # fmt: skip
    log_request(request_id=request_id, channel=channel, n_rows=0, latency_ms=latency_ms, status=status,
                error_type=type(error).__name__)  # fmt: skip


@contextmanager
def refusal_logged(
    engine: Engine,
    settings: Settings,
    *,
    channel: str,
    user_id: int | None,
    started: float,
    only_if: Callable[[], bool] = lambda: True,
) -> Iterator[None]:
    """The one "log a refused request, re-raise" of every front: a :class:`~model.errors.UserError` raised in
    the block (a file or record unusable as a whole) is logged as a rejected request, its latency counted
    from ``started``, and raised again; ``only_if`` says whether it is this block's to log (e.g. not once
    part of the file has been predicted and logged)."""
    try:
        yield
    except UserError as error:
        if only_if():
            log_failure(engine, settings, channel=channel, user_id=user_id, error=error,
                        latency_ms=(time.perf_counter() - started) * 1000)  # fmt: skip
        raise


def _serve(
    store: ModelStore,
    engine: Engine,
    students: Students,
    *,
    problems: list[Problem],
    n_rows: int,
    channel: str,
    user_id: int | None,
    top: int,
    explain: bool,
    progress: Callable[[float], None] | None,
    started: float,
    log: bool,
) -> Prediction:
    """Predict ``students`` and, when ``log``, write the whole request (their rows and the rejected ones)."""
    prediction, results = _predict(store, students, top, explain, progress)
    prediction.problems = problems
    prediction.n_rows = n_rows
    prediction.request_id = uuid.uuid4().hex
    prediction.latency_ms = (time.perf_counter() - started) * 1000
    if not log:
        return prediction
    columns, n = _log_columns(store.settings, prediction, students, results, channel=channel, user_id=user_id)
    write_log_columns(engine, store.settings, columns, n)
    remember_students(engine, store.settings, user_id, results["student_id"].tolist(),
                      columns["student_key"][: len(students)])  # fmt: skip
    n_rejected = len(prediction.rejected_rows)
    setups, counts = np.unique(students.setups.astype(str), return_counts=True)
    log_request(request_id=prediction.request_id, channel=channel, n_rows=n_rows, n_rejected=n_rejected,
                latency_ms=prediction.latency_ms, setups=dict(zip(setups.tolist(), counts.tolist(), strict=True)),
                status="ok" if not n_rejected else "partial" if len(students) else "rejected")  # fmt: skip
    return prediction


def predict_validated(
    store: ModelStore,
    engine: Engine,
    validation: ValidationResult,
    *,
    channel: str,
    user_id: int | None = None,
    top: int = TOP_FACTORS,
    explain: bool = True,
    progress: Callable[[float], None] | None = None,
    started: float | None = None,
) -> Prediction:
    """Predict the accepted rows of ``validation`` and log the whole request in one insert."""
    return _serve(store, engine, Students.of_frame(validation.accepted), problems=validation.problems,
                  n_rows=validation.n_rows, channel=channel, user_id=user_id, top=top, explain=explain,
                  progress=progress, started=time.perf_counter() if started is None else started,
                  log=True)  # fmt: skip


def predict_batch(
    store: ModelStore,
    engine: Engine,
    data: Any,
    *,
    channel: str,
    user_id: int | None = None,
    top: int = TOP_FACTORS,
    explain: bool = True,
    progress: Callable[[float], None] | None = None,
) -> Prediction:
    """Validate a class file (bytes, text, path or file) and predict every valid row.

    Raises ``BatchRejected`` for an unusable file (logged as a rejected request).
    """
    started = time.perf_counter()
    with refusal_logged(engine, store.settings, channel=channel, user_id=user_id, started=started):
        validation = validate_batch(data)
    return predict_validated(store, engine, validation, channel=channel, user_id=user_id, top=top,
                             explain=explain, progress=progress, started=started)  # fmt: skip


def predict_one(
    store: ModelStore,
    engine: Engine,
    record: Mapping[str, Any],
    *,
    channel: str,
    user_id: int | None = None,
    top: int = TOP_FACTORS,
    log: bool = True,
) -> Prediction:
    """Validate and predict one student, as row 1 of the class path (raises ``InvalidInput`` naming
    every bad field); ``log=False`` for a hypothetical (the what-if), which is not written."""
    started = time.perf_counter()
    with refusal_logged(engine, store.settings, channel=channel, user_id=user_id, started=started, only_if=lambda: log):
        clean = validate_record(record)
    return _serve(store, engine, Students.of_record(clean), problems=record_notes(record), n_rows=1,
                  channel=channel, user_id=user_id, top=top, explain=True, progress=None, started=started,
                  log=log)  # fmt: skip
