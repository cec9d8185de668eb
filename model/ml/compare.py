"""Two model versions side by side: protocol metrics, global SHAP importance, and how their
predictions differ on the reference data (the real UCI maths students).

Both versions predict every reference student (each with its own setup's inputs), so the
agreement and the mean absolute difference describe what would change for teachers if one
version replaced the other.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from sqlalchemy.orm import Session

from model.ml.dataset import load_raw
from model.ml.evaluation import LOWER_IS_BETTER, METRICS
from model.ml.explain import global_importance
from model.ml.grade_model import GradeModel
from model.settings import Settings
from model.store import registry
from model.store.tables import ModelVersion

PASS_THRESHOLD = 0.5
COVERAGE_TARGET = 90.0


@dataclass(frozen=True)
class VersionInfo:
    """What the comparison shows about one side."""

    id: str
    setup: str
    algorithm: str
    n_rows: int
    data_sha256: str
    protocol_runs: int


@dataclass(frozen=True)
class Comparison:
    """The result of :func:`compare_versions`.

    ``metrics``: one row per protocol metric, columns ``a_mean, a_std, b_mean, b_std, difference``
    (b - a) and ``better`` ("a", "b" or "" when equal or unknown).
    ``importance``: one row per attribute (union of both setups), columns ``a`` and ``b``, the mean
    absolute SHAP contribution in grade points (NaN where a version does not use the attribute).
    ``pass_agreement``: % of reference students both versions put on the same side of pass/fail.
    ``mean_abs_difference``: mean |predicted grade a - predicted grade b| in grade points.
    """

    a: VersionInfo
    b: VersionInfo
    metrics: pd.DataFrame
    importance: pd.DataFrame
    pass_agreement: float
    mean_abs_difference: float
    n_reference: int


def _info(version: ModelVersion) -> VersionInfo:
    return VersionInfo(
        id=version.id,
        setup=version.setup,
        algorithm=version.algorithm,
        n_rows=version.n_rows,
        data_sha256=version.data_sha256,
        protocol_runs=int(version.metrics.get("protocol_runs", 0)),
    )


def _metric(metrics: dict, name: str, part: str) -> float:
    value = metrics.get(name)
    return float(value[part]) if isinstance(value, dict) and value.get(part) is not None else float("nan")


def _better(name: str, a: float, b: float) -> str:
    """'a' or 'b' for the better value of metric ``name`` ('' when equal or unknown).

    Coverage is best near its 90% target; width, RMSE, Brier and ECE are best low; the rest high.
    """
    if not (np.isfinite(a) and np.isfinite(b)) or a == b:
        return ""
    if name == "interval_coverage":
        a, b = -abs(a - COVERAGE_TARGET), -abs(b - COVERAGE_TARGET)
    elif name in LOWER_IS_BETTER or name == "interval_width":
        a, b = -a, -b
    return "" if a == b else ("b" if b > a else "a")


def metrics_table(a: dict, b: dict) -> pd.DataFrame:
    """Every protocol metric of two versions (``ModelVersion.metrics``) with its std, side by side."""
    rows = []
    for name in METRICS:
        a_mean, b_mean = _metric(a, name, "mean"), _metric(b, name, "mean")
        difference = b_mean - a_mean
        rows.append({"metric": name, "a_mean": a_mean, "a_std": _metric(a, name, "std"), "b_mean": b_mean,
                     "b_std": _metric(b, name, "std"), "difference": difference,
                     "better": _better(name, a_mean, b_mean)})  # fmt: skip
    return pd.DataFrame(rows).set_index("metric")


def importance_table(model_a: GradeModel, model_b: GradeModel, reference: pd.DataFrame) -> pd.DataFrame:
    """Mean |SHAP| per attribute of both models on ``reference``, ordered by the larger of the two."""
    table = pd.DataFrame({
        "a": global_importance(model_a.explain(reference)),
        "b": global_importance(model_b.explain(reference)),
    })  # fmt: skip
    order = table.max(axis=1).sort_values(ascending=False, kind="stable").index
    return table.loc[order]


def compare_models(
    version_a: ModelVersion,
    model_a: GradeModel,
    version_b: ModelVersion,
    model_b: GradeModel,
    reference: pd.DataFrame,
) -> Comparison:
    """Compare two loaded models and their registry rows on ``reference`` (rows with every input)."""
    pred_a, pred_b = model_a.predict_details(reference), model_b.predict_details(reference)
    same_side = (pred_a["p_pass"] >= PASS_THRESHOLD) == (pred_b["p_pass"] >= PASS_THRESHOLD)
    gap = (pred_a["predicted_g3"] - pred_b["predicted_g3"]).abs()
    return Comparison(
        a=_info(version_a),
        b=_info(version_b),
        metrics=metrics_table(version_a.metrics, version_b.metrics),
        importance=importance_table(model_a, model_b, reference),
        pass_agreement=float(same_side.mean() * 100),
        mean_abs_difference=float(gap.mean()),
        n_reference=len(reference),
    )


def compare_versions(
    session: Session, version_a: str, version_b: str, reference: pd.DataFrame | None = None, *, settings: Settings
) -> Comparison:
    """Compare two registered versions (artifacts verified before loading) on the reference data.

    ``reference`` defaults to the real data set (``model.ml.dataset.load_raw(settings=settings)``).
    """
    reference = load_raw(settings=settings) if reference is None else reference
    row_a, row_b = registry.get_version(session, version_a), registry.get_version(session, version_b)
    model_a = registry.load_artifact(row_a, settings=settings)
    return compare_models(row_a, model_a, row_b, registry.load_artifact(row_b, settings=settings), reference)
