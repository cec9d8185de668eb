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
from sqlalchemy.engine import Engine

from model import registry
from model.db import session_scope
from model.explain import Factor, factors_per_row
from model.pipelines import Explanation, GradeModel
from model.predlog import student_key, write_log
from model.schema import (
    ATTRIBUTES,
    GRADES,
    ID_COLUMN,
    Problem,
    ValidationResult,
    row_setups,
    validate_batch,
    validate_record,
)

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
    """

    def __init__(self, engine: Engine, refresh_seconds: float = 3.0) -> None:
        self.engine = engine
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
            with session_scope(self.engine) as session:
                active = registry.active_version_ids(session)
                for setup, version_id in active.items():
                    current = self._models.get(setup)
                    if current is None or current.version_id != version_id:
                        version = registry.get_version(session, version_id)
                        estimator = registry.load_artifact(version)
                        self._models[setup] = LoadedModel(version_id, setup, estimator, dict(version.metrics))
                for setup in set(self._models) - set(active):
                    del self._models[setup]
            self._checked_at = now

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
    factors: dict[Any, list[Factor]]
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
    parts, factors, explanations = [], {}, {}
    done = 0
    for setup in ("period2", "period1", "early"):
        rows = accepted[setups == setup]
        if rows.empty:
            continue
        model = store.get(setup)
        for start in range(0, len(rows), CHUNK_ROWS):
            chunk = rows.iloc[start : start + CHUNK_ROWS]
            details = model.estimator.predict_details(chunk)
            details.insert(0, "model_version", model.version_id)
            details.insert(0, "setup", setup)
            ids = chunk[ID_COLUMN] if ID_COLUMN in chunk else pd.Series(None, index=chunk.index, dtype=object)
            details.insert(0, "student_id", ids)
            parts.append(details)
            if explain:
                explanation = model.estimator.explain(chunk)
                explanations[setup] = _concat_explanations(explanations.get(setup), explanation)
                factors.update(zip(chunk.index, factors_per_row(explanation, chunk, top), strict=True))
            done += len(chunk)
            if progress is not None:
                progress(done / len(accepted))
    results = pd.concat(parts).loc[accepted.index] if parts else pd.DataFrame(columns=RESULT_COLUMNS)
    return Prediction(results=results, factors=factors, explanations=explanations, n_rows=len(accepted))


def _concat_explanations(old: Explanation | None, new: Explanation) -> Explanation:
    if old is None:
        return new
    return Explanation(
        new.base_value,
        pd.concat([old.contributions, new.contributions]),
        np.concatenate([old.raw_prediction, new.raw_prediction]),
    )


def _log_rows(
    prediction: Prediction,
    accepted: pd.DataFrame,
    *,
    channel: str,
    user_id: int | None,
    request_id: str,
    latency_ms: float,
    status: str = "ok",
) -> list[dict[str, Any]]:
    n = max(len(accepted) + len(prediction.rejected_rows), 1)
    share = latency_ms / n
    inputs = accepted[[c for c in (*ATTRIBUTES, *GRADES) if c in accepted.columns]]
    records = inputs.astype(object).where(inputs.notna(), None).to_dict("records")
    results = prediction.results
    rows = []
    for (_, result), record in zip(results.iterrows(), records, strict=True):
        rows.append({
            "request_id": request_id, "channel": channel, "user_id": user_id, "model_version_id": result.model_version,
            "setup": result.setup, "student_key": student_key(result.student_id), "inputs": record,
            "predicted_g3": float(result.predicted_g3), "lower": float(result.lower), "upper": float(result.upper),
            "p_pass": float(result.p_pass), "band": result.band, "risk": result.risk, "latency_ms": share,
            "status": status, "error_type": None,
        })  # fmt: skip
    for _ in prediction.rejected_rows:
        rows.append({"request_id": request_id, "channel": channel, "user_id": user_id, "latency_ms": share,
                     "status": "rejected", "error_type": "validation"})  # fmt: skip
    return rows


def log_failure(engine: Engine, *, channel: str, user_id: int | None, error: BaseException, latency_ms: float) -> None:
    """Record a request that failed outright (whole file rejected, no model, internal error)."""
    status = "rejected" if isinstance(error, ValueError) else "error"
    write_log(engine, [{"request_id": uuid.uuid4().hex, "channel": channel, "user_id": user_id, "status": status,
                        "error_type": type(error).__name__, "latency_ms": latency_ms}])  # fmt: skip


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
    write_log(
        engine,
        _log_rows(prediction, validation.accepted, channel=channel, user_id=user_id,
                  request_id=prediction.request_id, latency_ms=prediction.latency_ms),
    )  # fmt: skip
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
    except ValueError as error:
        log_failure(engine, channel=channel, user_id=user_id, error=error,
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
    except ValueError as error:
        if log:
            log_failure(engine, channel=channel, user_id=user_id, error=error,
                        latency_ms=(time.perf_counter() - started) * 1000)  # fmt: skip
        raise
    frame = _record_frame(clean)
    validation = ValidationResult(accepted=frame, problems=[], extra_columns=[], n_rows=1)
    if not log:
        prediction = predict_frame(store, frame, top=top)
        prediction.latency_ms = (time.perf_counter() - started) * 1000
        return prediction
    return predict_validated(store, engine, validation, channel=channel, user_id=user_id, top=top, started=started)


def _record_frame(clean: Mapping[str, Any]) -> pd.DataFrame:
    frame = pd.DataFrame([dict(clean)], index=pd.Index([1], name="row"))
    for grade in GRADES:
        if grade not in frame:
            frame[grade] = pd.NA
        frame[grade] = frame[grade].astype("Int64")
    if ID_COLUMN not in frame:
        frame[ID_COLUMN] = None
    return frame
