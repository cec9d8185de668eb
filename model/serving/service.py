"""The prediction service every front calls: validate, pick the setup, predict, explain, log.

A request uses, row by row, the richest setup its inputs allow (G1 and G2 known: ``period2``; only
G1: ``period1``; neither: ``early``). Each request is written to the prediction log in one insert,
accepted and rejected rows alike, so monitoring sees volume, latency and error rates.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import Engine

from model.errors import Problem, UserError
from model.logs import log_request
from model.ml.explain import FactorTable
from model.ml.grade_model import Explanation, GradeModel
from model.schema.fields import ATTRIBUTES, GRADES, ID_COLUMN
from model.schema.thresholds import Thresholds
from model.schema.validation import ValidationResult, row_setups, setup_for, validate_batch, validate_record
from model.serving.predlog.writer import student_key, student_keys, write_log, write_log_columns
from model.settings import Settings
from model.store import registry
from model.store.db import session_scope

TOP_FACTORS = 5
CHUNK_ROWS = 20_000


class NoActiveModel(RuntimeError):
    """A setup has no active model version (train one: ``python -m model train --activate``)."""

    def __init__(self, setup: str) -> None:
        super().__init__(f"no active model for setup {setup!r}; run `python -m model train --activate`")
        self.setup = setup


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
    risk levels follow their threshold table.
    """

    def __init__(self, engine: Engine, refresh_seconds: float = 3.0, *, settings: Settings) -> None:
        self.engine = engine
        self.settings = settings
        self.thresholds = Thresholds.from_settings(settings)
        self.refresh_seconds = refresh_seconds
        self._models: dict[str, LoadedModel] = {}
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
            active = registry.active_version_ids(session)
            for setup, version_id in active.items():
                current = self._models.get(setup)
                if current is None or current.version_id != version_id:
                    version = registry.get_version(session, version_id)
                    estimator = registry.load_artifact(version, settings=self.settings)
                    self._models[setup] = LoadedModel(version_id, setup, estimator, dict(version.metrics))
            for setup in set(self._models) - set(active):
                del self._models[setup]

    def get(self, setup: str) -> LoadedModel:
        self.refresh()
        try:
            return self._models[setup]
        except KeyError:
            raise NoActiveModel(setup) from None

    def active(self) -> dict[str, LoadedModel]:
        self.refresh()
        return dict(self._models)


@dataclass
class Prediction:
    """Predictions for accepted rows (index = the user's row numbers) and their explanations."""

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


RESULT_COLUMNS = ("student_id", "setup", "model_version", "predicted_g3", "lower", "upper", "likely_g3", "p_pass",
                  "band", "risk")  # fmt: skip


def predict_frame(
    store: ModelStore,
    accepted: pd.DataFrame,
    top: int = TOP_FACTORS,
    explain: bool = True,
    progress: Callable[[float], None] | None = None,
) -> Prediction:
    """Predict validated rows (``ValidationResult.accepted`` form); no logging."""
    setups = row_setups(accepted) if len(accepted) else pd.Series(dtype=object)
    parts, tables, explanations = [], [], {}
    done = 0
    for setup in ("period2", "period1", "early"):
        rows = accepted[setups == setup]
        if rows.empty:
            continue
        model = store.get(setup)
        for start in range(0, len(rows), CHUNK_ROWS):
            chunk = rows.iloc[start : start + CHUNK_ROWS]
            if explain:
                details, explanation = model.estimator.predict_explained(chunk, store.thresholds)
                explanations[setup] = _concat_explanations(explanations.get(setup), explanation)
                tables.append(FactorTable.build(explanation, chunk, top))
            else:
                details = model.estimator.predict_details(chunk, store.thresholds)
            details.insert(0, "model_version", model.version_id)
            details.insert(0, "setup", setup)
            ids = chunk[ID_COLUMN] if ID_COLUMN in chunk else pd.Series(None, index=chunk.index, dtype=object)
            details.insert(0, "student_id", ids)
            parts.append(details)
            done += len(chunk)
            if progress is not None:
                progress(done / len(accepted))
    results = pd.concat(parts).loc[accepted.index] if parts else pd.DataFrame(columns=RESULT_COLUMNS)
    return Prediction(
        results=results, factors=FactorTable.concat(tables), explanations=explanations, n_rows=len(accepted)
    )


def _concat_explanations(old: Explanation | None, new: Explanation) -> Explanation:
    if old is None:
        return new
    return Explanation(
        new.base_value,
        pd.concat([old.contributions, new.contributions]),
        np.concatenate([old.raw_prediction, new.raw_prediction]),
    )


def _log_columns(
    settings: Settings,
    prediction: Prediction,
    accepted: pd.DataFrame,
    *,
    channel: str,
    user_id: int | None,
    request_id: str,
    latency_ms: float,
) -> tuple[dict[str, Any], int]:
    """The request's log rows, column by column: the predicted rows, then one per rejected row."""
    results = prediction.results
    n_ok, n_rejected = len(results), len(prediction.rejected_rows)
    n = n_ok + n_rejected
    columns = [c for c in (*ATTRIBUTES, *GRADES) if c in accepted.columns]
    ordered = accepted.loc[results.index, columns] if columns else accepted.loc[results.index]
    values = [_plain_list(ordered[c]) for c in columns]
    inputs = [dict(zip(columns, row, strict=True)) for row in zip(*values, strict=True)] if columns else [None] * n_ok
    missing = [None] * n_rejected
    log: dict[str, Any] = {
        "request_id": request_id, "channel": channel, "user_id": user_id, "latency_ms": latency_ms / max(n, 1),
        "status": ["ok"] * n_ok + ["rejected"] * n_rejected,
        "error_type": [None] * n_ok + ["validation"] * n_rejected,
        "model_version_id": results["model_version"].tolist() + missing,
        "setup": results["setup"].tolist() + missing,
        "student_key": student_keys(results["student_id"].tolist(), settings) + missing,
        "inputs": inputs + missing,
        **{c: results[c].astype(float).tolist() + missing for c in ("predicted_g3", "lower", "upper", "p_pass")},
        "band": results["band"].tolist() + missing,
        "risk": results["risk"].tolist() + missing,
    }  # fmt: skip
    return log, n


def _plain_list(column: pd.Series) -> list[Any]:
    """Python values (int/str/None) of a column, for JSON."""
    if column.hasnans:
        return [None if pd.isna(v) else (int(v) if isinstance(v, np.integer | int) else v) for v in column.tolist()]
    return column.tolist()


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
    started = time.perf_counter() if started is None else started
    prediction = predict_frame(store, validation.accepted, top=top, explain=explain, progress=progress)
    prediction.problems = validation.problems
    prediction.n_rows = validation.n_rows
    prediction.request_id = uuid.uuid4().hex
    prediction.latency_ms = (time.perf_counter() - started) * 1000
    write_log_columns(
        engine,
        store.settings,
        *_log_columns(store.settings, prediction, validation.accepted, channel=channel, user_id=user_id,
                      request_id=prediction.request_id, latency_ms=prediction.latency_ms),
    )  # fmt: skip
    n_rejected = len(prediction.rejected_rows)
    log_request(request_id=prediction.request_id, channel=channel, n_rows=validation.n_rows, n_rejected=n_rejected,
                latency_ms=prediction.latency_ms, setups=prediction.results["setup"].value_counts().to_dict(),
                status="ok" if not n_rejected else "partial" if len(prediction.results) else "rejected")  # fmt: skip
    return prediction


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
    try:
        validation = validate_batch(data)
    except UserError as error:
        log_failure(engine, store.settings, channel=channel, user_id=user_id, error=error,
                    latency_ms=(time.perf_counter() - started) * 1000)  # fmt: skip
        raise
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
    """Validate and predict one student (raises ``InvalidInput`` naming every bad field)."""
    started = time.perf_counter()
    try:
        clean = validate_record(record)
    except UserError as error:
        if log:
            log_failure(engine, store.settings, channel=channel, user_id=user_id, error=error,
                        latency_ms=(time.perf_counter() - started) * 1000)  # fmt: skip
        raise
    model = store.get(setup_for(clean))
    details, base, contributions = model.estimator.predict_record(clean, store.thresholds)
    index = pd.Index([1], name="row")
    results = pd.DataFrame(
        [{"student_id": clean.get(ID_COLUMN), "setup": model.setup, "model_version": model.version_id, **details}],
        index=index,
    )
    names = np.asarray(model.estimator.features_, dtype=object)
    order = np.argsort(-np.abs(contributions), kind="stable")[:top]
    factors = FactorTable(
        index, names[order][None, :], contributions[order][None, :],
        np.array([clean.get(name) for name in names[order]], dtype=object)[None, :],
    )  # fmt: skip
    explanation = Explanation(
        base, pd.DataFrame([contributions], columns=names, index=index), np.array([base + contributions.sum()])
    )
    prediction = Prediction(results, factors, {model.setup: explanation}, n_rows=1, request_id=uuid.uuid4().hex)
    prediction.latency_ms = (time.perf_counter() - started) * 1000
    if log:
        inputs = {name: clean[name] for name in (*ATTRIBUTES, *GRADES) if name in clean}
        key = student_key(clean.get(ID_COLUMN), store.settings)
        write_log(engine, store.settings, [{
            "request_id": prediction.request_id, "channel": channel, "user_id": user_id,
            "model_version_id": model.version_id, "setup": model.setup, "student_key": key,
            "inputs": inputs, **{k: float(details[k]) for k in ("predicted_g3", "lower", "upper", "p_pass")},
            "band": details["band"], "risk": details["risk"], "latency_ms": prediction.latency_ms, "status": "ok",
        }])  # fmt: skip
        log_request(request_id=prediction.request_id, channel=channel, n_rows=1, n_rejected=0,
                    latency_ms=prediction.latency_ms, setups={model.setup: 1}, status="ok")  # fmt: skip
    return prediction
