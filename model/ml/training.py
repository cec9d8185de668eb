"""Training model versions: fit on a data set, score by the protocol, keep a drift reference."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import pandas as pd
from sqlalchemy.orm import Session

from model.ml.evaluation import evaluate, to_json
from model.ml.grade_model import ALGORITHM, DEFAULT_PARAMS, GradeModel
from model.schema.fields import CATEGORICAL, SCHEMA_VERSION, SETUP_FEATURES, SETUPS, TARGET
from model.settings import Settings
from model.store import registry
from model.store.tables import ModelVersion

BOOTSTRAP_RUNS = 2


@dataclass
class TrainedVersion:
    """A fitted model with everything the registry stores beside it."""

    setup: str
    estimator: GradeModel
    params: dict[str, Any]
    metrics: dict[str, Any]
    reference: dict[str, Any]
    data_sha256: str
    n_rows: int
    notes: str = field(default="")


def frame_sha256(frame: pd.DataFrame) -> str:
    """SHA-256 of the training rows in a canonical CSV form (independent of the source file's bytes)."""
    columns = [c for c in frame.columns if c in SETUP_FEATURES["period2"] or c == TARGET]
    canonical = frame[sorted(columns)].to_csv(index=False, lineterminator="\n")
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def reference_profile(frame: pd.DataFrame, features: Iterable[str]) -> dict[str, Any]:
    """The training distribution of every input, kept with the version for drift checks.

    Categorical inputs keep their category counts; numeric inputs keep their values (small data:
    395 rows), from which PSI bins and the KS test are computed later.
    """
    columns: dict[str, Any] = {}
    for name in features:
        values = frame[name].dropna()
        if name in CATEGORICAL:
            columns[name] = {
                "kind": "categorical",
                "counts": {str(k): int(v) for k, v in values.value_counts().items()},
            }
        else:
            columns[name] = {"kind": "numeric", "values": [int(v) for v in values]}
    return {"n_rows": len(frame), "columns": columns}


def train_setup(
    frame: pd.DataFrame,
    setup: str,
    params: dict[str, Any] | None = None,
    runs: int = BOOTSTRAP_RUNS,
    progress: Callable[[float], None] | None = None,
    n_jobs: int = 1,
) -> TrainedVersion:
    """Score ``setup`` by ``runs`` repetitions of the protocol, then fit it on all of ``frame``."""
    params = {**DEFAULT_PARAMS[setup], **(params or {})}
    metrics: dict[str, Any] = {"protocol_runs": runs}
    if runs > 0:
        result = evaluate(frame, runs=runs, setups=[setup], params={setup: params}, n_jobs=n_jobs, progress=progress)
        metrics.update(to_json(result)["setups"][setup])
    estimator = GradeModel(setup=setup, **params).fit(frame, frame[TARGET])
    return TrainedVersion(
        setup=setup,
        estimator=estimator,
        params=estimator.get_params(),
        metrics=metrics,
        reference=reference_profile(frame, SETUP_FEATURES[setup]),
        data_sha256=frame_sha256(frame),
        n_rows=len(frame),
    )


def register(
    session: Session, trained: TrainedVersion, created_by: str, activate: bool = False, *, settings: Settings
) -> str:
    """Store ``trained`` in the registry (inactive unless ``activate``); returns the version id.

    The version and its activation are written in the caller's transaction."""
    version: ModelVersion = registry.register_version(
        session,
        trained.estimator,
        setup=trained.setup,
        algorithm=ALGORITHM,
        params=trained.params,
        schema_version=SCHEMA_VERSION,
        data_sha256=trained.data_sha256,
        n_rows=trained.n_rows,
        metrics=trained.metrics,
        reference=trained.reference,
        created_by=created_by,
        notes=trained.notes,
        settings=settings,
    )
    if activate:
        registry.promote(session, version.id, by=created_by, settings=settings)
    return version.id


def ensure_default_models(
    session: Session, frame: pd.DataFrame, runs: int = BOOTSTRAP_RUNS, *, settings: Settings
) -> list[str]:
    """Train and activate a model for every setup that has no active version; returns new ids.

    Every missing setup is trained before anything is written, so the transaction writes only at the
    end and holds no write lock while models are fitted."""
    active = registry.active_version_ids(session)
    trained = [train_setup(frame, setup, runs=runs) for setup in SETUPS if setup not in active]
    return [register(session, version, "system", activate=True, settings=settings) for version in trained]
