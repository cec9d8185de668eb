"""Training model versions: fit on a data set, score by the protocol, keep a drift reference."""

from __future__ import annotations

import gzip
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
from model.store import crypto, registry
from model.store.tables import ModelVersion, TrainingData

BOOTSTRAP_RUNS = 2
TRAINING_ROWS_PURPOSE = "training_rows"


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
    data_reference: dict[str, Any] | None = None  # what it learned from (model.ml.schooldata.training_set)
    school_rows: pd.DataFrame | None = None  # the school's rows among them, kept sealed with the version


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
    fit_frame: pd.DataFrame | None = None,
) -> TrainedVersion:
    """Score ``setup`` by ``runs`` repetitions of the protocol on ``frame``, then fit it on all of
    ``fit_frame`` (default ``frame``; pooled data repeats the school's rows there by their weight)."""
    fit_frame = frame if fit_frame is None else fit_frame
    params = {**DEFAULT_PARAMS[setup], **(params or {})}
    metrics: dict[str, Any] = {"protocol_runs": runs}
    if runs > 0:
        result = evaluate(frame, runs=runs, setups=[setup], params={setup: params}, n_jobs=n_jobs, progress=progress)
        metrics.update(to_json(result)["setups"][setup])
    estimator = GradeModel(setup=setup, **params).fit(fit_frame, fit_frame[TARGET])
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
    if trained.data_reference is not None:
        store_training_data(session, version.id, trained.data_reference, trained.school_rows, settings=settings)
    if activate:
        registry.promote(session, version.id, by=created_by, settings=settings)
    return version.id


def store_training_data(
    session: Session, version_id: str, reference: dict[str, Any], rows: pd.DataFrame | None, *, settings: Settings
) -> None:
    """Keep ``version_id``'s training-data reference, and its school rows (gzip CSV) sealed under the data key."""
    sealed, key_id = None, None
    if rows is not None:
        blob = gzip.compress(rows.to_csv(index=False, sep=";").encode("utf-8"), mtime=0)
        sealed, key_id = crypto.keyring(settings).encrypt_blob(blob, TRAINING_ROWS_PURPOSE)
    session.add(TrainingData(version_id=version_id, source=reference["source"], detail=reference, rows=sealed,
                             rows_key_id=key_id))  # fmt: skip
    session.flush()


def ensure_default_models(
    session: Session, frame: pd.DataFrame, runs: int = BOOTSTRAP_RUNS, *, settings: Settings
) -> list[str]:
    """Train and activate a model for every setup that has no active version; returns new ids.

    Every missing setup is trained before anything is written, so the transaction writes only at the
    end and holds no write lock while models are fitted."""
    active = registry.active_version_ids(session)
    trained = [train_setup(frame, setup, runs=runs) for setup in SETUPS if setup not in active]
    return [register(session, version, "system", activate=True, settings=settings) for version in trained]
