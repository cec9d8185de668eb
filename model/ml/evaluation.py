"""The Cortez & Silva (2008) protocol: 10-fold cross-validation repeated N times, per setup.

Setups map to the paper's input configurations: A = ``period2`` (with G1 and G2), B = ``period1``
(with G1), C = ``early`` (neither). Tasks: pass/fail accuracy, 5-level accuracy, RMSE; we add
ROC-AUC, Brier score, expected calibration error and the coverage/width of the 90% interval.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from joblib import Parallel, delayed
from sklearn.metrics import brier_score_loss, roc_auc_score
from sklearn.model_selection import KFold

from model.ml.grade_model import DEFAULT_PARAMS, GradeModel
from model.schema.fields import BANDS, PASS_MARK, SETUPS, TARGET, bands

PAPER_LETTER = {"period2": "A", "period1": "B", "early": "C"}
METRICS = ("binary_accuracy", "five_level_accuracy", "rmse", "roc_auc", "brier", "ece", "interval_coverage",
           "interval_width", "no_grade_brier", "no_grade_ece", "no_grade_roc_auc")  # fmt: skip
# Best maths result per cell in Cortez & Silva (2008), Tables 2-4 (accuracy in %, RMSE in points).
PAPER_BEST: dict[str, dict[str, float]] = {
    "period2": {"binary_accuracy": 91.9, "five_level_accuracy": 78.5, "rmse": 1.75},
    "period1": {"binary_accuracy": 83.8, "five_level_accuracy": 60.5, "rmse": 2.46},
    "early": {"binary_accuracy": 70.6, "five_level_accuracy": 33.5, "rmse": 3.90},
}
LOWER_IS_BETTER = {"rmse", "brier", "ece", "no_grade_brier", "no_grade_ece"}


@dataclass(frozen=True)
class Summary:
    """Mean and standard deviation of one metric over the runs."""

    mean: float
    std: float

    def as_dict(self) -> dict[str, float]:
        return {"mean": self.mean, "std": self.std}


def expected_calibration_error(y_true: np.ndarray, prob: np.ndarray, bins: int = 10) -> float:
    """Weighted mean gap between predicted probability and observed frequency over equal-width bins."""
    y_true, prob = np.asarray(y_true, float), np.asarray(prob, float)
    which = np.minimum((prob * bins).astype(int), bins - 1)
    total = 0.0
    for b in np.unique(which):
        mask = which == b
        total += mask.sum() * abs(prob[mask].mean() - y_true[mask].mean())
    return float(total / len(prob))


def score(y: np.ndarray, details: pd.DataFrame) -> dict[str, float]:
    """All protocol metrics for out-of-fold predictions ``details`` of true grades ``y``."""
    y = np.asarray(y, float)
    passed = y >= PASS_MARK
    p_pass = details["p_pass"].to_numpy(float)
    point = "expected_g3" if "expected_g3" in details.columns else "predicted_g3"  # RMSE scores the mean
    predicted = details[point].to_numpy(float)
    result = {
        "binary_accuracy": float(np.mean((p_pass >= 0.5) == passed) * 100),
        "five_level_accuracy": float(np.mean(details["band"].to_numpy() == bands(y)) * 100),
        "rmse": float(np.sqrt(np.mean((predicted - y) ** 2))),
        "roc_auc": float(roc_auc_score(passed, p_pass)),
        "brier": float(brier_score_loss(passed, p_pass)),
        "ece": expected_calibration_error(passed, p_pass),
        "interval_coverage": float(np.mean((details["lower"] <= y) & (y <= details["upper"])) * 100),
        "interval_width": float(np.mean(details["upper"] - details["lower"])),
    }
    if "p_no_grade" in details.columns:
        no_grade, p_zero = y == 0, details["p_no_grade"].to_numpy(float)
        result["no_grade_brier"] = float(brier_score_loss(no_grade, p_zero))
        result["no_grade_ece"] = expected_calibration_error(no_grade, p_zero)
        result["no_grade_roc_auc"] = float(roc_auc_score(no_grade, p_zero)) if 0 < no_grade.sum() < len(y) else np.nan
    return result


COHERENCE_RULES = (
    "interval_contains_headline",
    "headline_pass_agrees_with_p_pass",
    "band_agrees_with_band_probabilities",
    "probability_shown_as_0_or_100",
    "latest_grade_up_lowers_grade",
    "failure_up_raises_grade",
    "absences_up_raise_sitter_grade",
)
LATEST_GRADE = {"early": None, "period1": "G1", "period2": "G2"}
_TOLERANCE = 1e-9


def _shown_as_certain(p: np.ndarray) -> np.ndarray:
    """Rows whose probability a whole-percent display (``f"{p:.0%}"``) would show as 0% or 100%."""
    p = np.asarray(p, dtype=float)
    return (p < 0.005) | (p >= 0.995)


def _band_inconsistent(details: pd.DataFrame) -> np.ndarray:
    """The shown band must be the median band of the band probabilities (the band where their cumulative
    sum, best band last, crosses one half); without band probabilities, the band of the headline grade."""
    shown = details["band"].to_numpy(dtype=object)
    names = list(BANDS)  # I (best) ... V (fail)
    columns = [f"p_band_{name}" for name in names]
    if not all(c in details.columns for c in columns):
        return shown != bands(details["predicted_g3"].to_numpy(float))
    probs = details[columns].to_numpy(float)[:, ::-1]  # V ... I: from the lowest grades up
    cumulative = np.cumsum(probs, axis=1)
    median = (cumulative > 0.5 - _TOLERANCE).argmax(axis=1)
    return shown != np.asarray(names[::-1], dtype=object)[median]


def coherence_counts(model: Any, frame: pd.DataFrame, setup: str) -> dict[str, int]:
    """Rows of ``frame`` violating each rule of :data:`COHERENCE_RULES` for the fitted ``model`` of ``setup``.

    Figures: the interval holds the headline grade (``predicted_g3``) and the most likely grade; headline
    >= 10 exactly when P(pass) >= 0.5; the band agrees with the band probabilities; no probability
    (P(pass), P(no grade)) reads 0% or 100%. Directions, by changing one input and predicting again: one
    more point of the latest period grade (G1 in period1, G2 in period2; none in early) never lowers the
    headline grade; one more past failure (up to 3) never raises it; one more absence never raises the
    grade of a student who sits
    the exam (``sitter_g3`` when the model gives it, else the headline grade on rows with a real G3 > 0).
    """
    details = model.predict_details(frame)
    headline = details["predicted_g3"].to_numpy(float)
    p_pass = details["p_pass"].to_numpy(float)
    lower, upper = details["lower"].to_numpy(float), details["upper"].to_numpy(float)
    outside = (lower > headline + _TOLERANCE) | (upper < headline - _TOLERANCE)
    if "likely_g3" in details.columns:  # the most likely grade is shown too
        likely = details["likely_g3"].to_numpy(float)
        outside |= (lower > likely + _TOLERANCE) | (upper < likely - _TOLERANCE)
    counts = {
        "interval_contains_headline": int(np.sum(outside)),
        "headline_pass_agrees_with_p_pass": int(np.sum((headline >= PASS_MARK) != (p_pass >= 0.5))),
        "band_agrees_with_band_probabilities": int(np.sum(_band_inconsistent(details))),
    }
    certain = _shown_as_certain(p_pass)
    if "p_no_grade" in details.columns:
        certain |= _shown_as_certain(details["p_no_grade"].to_numpy(float))
    counts["probability_shown_as_0_or_100"] = int(certain.sum())

    def changed(column: str, step: float, limit: float) -> tuple[np.ndarray, pd.DataFrame]:
        room = frame[column].to_numpy(float) + step <= limit
        moved = frame.copy()
        moved[column] = np.where(room, frame[column].to_numpy(float) + step, frame[column].to_numpy(float))
        return room, model.predict_details(moved)

    latest = LATEST_GRADE[setup]
    if latest is None:
        counts["latest_grade_up_lowers_grade"] = 0
    else:
        room, after = changed(latest, 1, 20)
        counts["latest_grade_up_lowers_grade"] = int(
            np.sum(room & (after["predicted_g3"].to_numpy(float) < headline - _TOLERANCE))
        )
    room, after = changed("failures", 1, 3)
    counts["failure_up_raises_grade"] = int(
        np.sum(room & (after["predicted_g3"].to_numpy(float) > headline + _TOLERANCE))
    )
    room, after = changed("absences", 1, 93)
    if "sitter_g3" in details.columns:
        before_sitter, after_sitter = details["sitter_g3"].to_numpy(float), after["sitter_g3"].to_numpy(float)
    else:
        room &= frame[TARGET].to_numpy(float) > 0
        before_sitter, after_sitter = headline, after["predicted_g3"].to_numpy(float)
    counts["absences_up_raise_sitter_grade"] = int(np.sum(room & (after_sitter > before_sitter + _TOLERANCE)))
    return counts


def coherence_report(frame: pd.DataFrame, setups: Iterable[str] = SETUPS) -> dict[str, dict[str, int]]:
    """:func:`coherence_counts` of each setup's default model fitted on all of ``frame`` (as ``bootstrap``
    trains it), on every row of ``frame``."""
    report = {}
    for setup in setups:
        model = GradeModel(setup=setup, **DEFAULT_PARAMS[setup]).fit(frame, frame[TARGET].to_numpy(float))
        report[setup] = coherence_counts(model, frame, setup)
    return report


def coherence_table(report: dict[str, dict[str, int]]) -> str:
    """Rows violating each rule, one line per rule, one column per setup (must all be 0)."""
    setups = list(report)
    lines = [f"{'coherence rule (rows violating)':<40}" + "".join(f"{s:>10}" for s in setups)]
    for rule in COHERENCE_RULES:
        lines.append(f"{rule:<40}" + "".join(f"{report[s][rule]:>10}" for s in setups))
    return "\n".join(lines)


def cross_validated_details(
    frame: pd.DataFrame, setup: str, run: int, params: dict[str, Any] | None = None, folds: int = 10
) -> pd.DataFrame:
    """Out-of-fold predictions of one repetition (seeded by ``run``) of k-fold CV."""
    y = frame[TARGET].to_numpy(float)
    parts = []
    for train, test in KFold(folds, shuffle=True, random_state=run).split(frame):
        model = GradeModel(setup=setup, random_state=run, **{**DEFAULT_PARAMS[setup], **(params or {})})
        model.fit(frame.iloc[train], y[train])
        parts.append(model.predict_details(frame.iloc[test]))
    return pd.concat(parts).loc[frame.index]


def _one_run(frame: pd.DataFrame, setup: str, run: int, params: dict[str, Any] | None) -> dict[str, float]:
    return score(frame[TARGET].to_numpy(float), cross_validated_details(frame, setup, run, params))


def summarise(runs: list[dict[str, float]]) -> dict[str, Summary]:
    return {
        metric: Summary(float(np.mean([r[metric] for r in runs])), float(np.std([r[metric] for r in runs])))
        for metric in runs[0]
    }


def evaluate(
    frame: pd.DataFrame,
    runs: int = 20,
    setups: Iterable[str] = SETUPS,
    params: dict[str, dict[str, Any]] | None = None,
    n_jobs: int = -1,
    progress: Callable[[float], None] | None = None,
) -> dict[str, dict[str, Summary]]:
    """Run the protocol: ``{setup: {metric: Summary}}`` over ``runs`` repetitions of 10-fold CV."""
    setups = list(setups)
    jobs = [(setup, run) for setup in setups for run in range(runs)]
    results: dict[str, list[dict[str, float]]] = {setup: [] for setup in setups}
    parallel = Parallel(n_jobs=n_jobs, return_as="generator")
    calls = (delayed(_one_run)(frame, s, r, (params or {}).get(s)) for s, r in jobs)
    for done, ((setup, _), result) in enumerate(zip(jobs, parallel(calls), strict=True), start=1):
        results[setup].append(result)
        if progress is not None:
            progress(done / len(jobs))
    return {setup: summarise(values) for setup, values in results.items()}


def to_json(result: dict[str, dict[str, Summary]]) -> dict[str, Any]:
    """The JSON shape of ``python -m model evaluate --json``."""
    return {"setups": {s: {m: v.as_dict() for m, v in metrics.items()} for s, metrics in result.items()}}


def comparison_table(result: dict[str, dict[str, Summary]]) -> str:
    """A plain-text table of our figures beside the paper's best, one row per setup and task."""
    lines = [f"{'setup':<12}{'task':<22}{'mathsight':>18}{'paper best':>12}  verdict"]
    for setup, metrics in result.items():
        for metric in (m for m in METRICS if m in metrics):
            ours = metrics[metric]
            paper = PAPER_BEST[setup].get(metric)
            label = f"{setup} ({PAPER_LETTER[setup]})"
            cell = f"{ours.mean:8.3f} ± {ours.std:6.3f}"
            if paper is None:
                lines.append(f"{label:<12}{metric:<22}{cell:>18}{'-':>12}")
                continue
            better = ours.mean <= paper if metric in LOWER_IS_BETTER else ours.mean >= paper
            lines.append(f"{label:<12}{metric:<22}{cell:>18}{paper:>12.2f}  {'at/beyond' if better else 'below'}")
    return "\n".join(lines)
