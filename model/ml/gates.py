"""Judging a version on the school's own students, and the gate a promotion passes.

"Compare on our students" (:func:`judge`) scores a candidate and the active version of a setup on
the same rows with the paper's protocol where a version learned from those rows (10-fold out-of-fold
predictions of its recipe: setup, parameters, the rest of its training data, the school's weight),
plain scoring with its stored model where it did not, and on request a time split (each version that
learns from the rows is fitted on those predicted before a date and every version scores the rest).
Each metric's noise is the standard deviation of the candidate-minus-active difference over paired
bootstrap resamples of the students.

The evaluation data of record is the school's recorded outcomes once at least
``min_training_outcomes`` students have one, else the bundled UCI file. The promotion gate
(:func:`gate_table`) is a table, not a boolean: pass/fail accuracy, RMSE and calibration (ECE) of the
candidate against the active version, failing where the candidate is worse by more than
:data:`NOISE_FACTOR` times the noise; and the candidate's fairness gaps between groups (sex, school,
address, age band) against the limits of the threshold table. Promoting past a failed gate needs a
written reason, kept on the version's timeline period and in the audit log (:func:`promote`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd
from sklearn.model_selection import KFold
from sqlalchemy.orm import Session

from model import i18n
from model.errors import Problem, UserError
from model.i18n import N_, tr
from model.ml.dataset import load_raw
from model.ml.evaluation import LOWER_IS_BETTER, score
from model.ml.grade_model import GradeModel
from model.ml.modelcard import METRIC_LABELS, fairness_gaps, group_metrics
from model.ml.modelcard import Thresholds as GapLimits
from model.ml.schooldata import SchoolSet, kept_rows, outcome_training_set, require_enough, split_at, training_data
from model.ml.training import frame_sha256
from model.schema.fields import PASS_MARK, TARGET
from model.schema.thresholds import Thresholds
from model.settings import Settings
from model.store import registry
from model.store.tables import ModelVersion

JUDGED_METRICS = ("binary_accuracy", "five_level_accuracy", "rmse", "roc_auc", "brier", "ece")
GATE_METRICS = ("binary_accuracy", "rmse", "ece")
NOISE_FACTOR = 2.0
BOOTSTRAP = 200
FOLDS = 10
MAX_REASON = 1000
# The gate's words as shown (the gate is stored in English, with its codes; a page translates it when shown).
CHECK_LABELS = {"quality": N_("quality"), "fairness": N_("fairness")}
VERDICT_LABELS = {"pass": N_("passes"), "fail": N_("fails")}
HOW_LABELS = {"plain scoring": N_("plain scoring"), "time split": N_("time split")}
GAP_NAMES = {"accuracy": N_("{attribute} accuracy gap"),
             "false_negative_rate": N_("{attribute} false-negative rate gap"),
             "grade_bias": N_("{attribute} grade bias gap")}  # fmt: skip


class GateFailed(UserError):
    """The candidate failed its promotion gate and no reason was written; ``gate`` holds the table."""

    def __init__(self, version_id: str, gate: dict[str, Any]) -> None:
        failed = [row for row in gate["rows"] if row["verdict"] == "fail"]
        problems = [
            Problem(None, row["metric"], _shown(row["candidate"]),
                    f"{row['check']} gate: {row['metric']} {_shown(row['candidate'])} against {row['against']}")
            for row in failed
        ]  # fmt: skip
        message = tr("version {version} failed {count} check(s) of its promotion gate on {data}; write a reason to "
                     "promote it anyway", version=version_id, count=len(failed), data=gate_data(gate))  # fmt: skip
        super().__init__(message, problems)
        self.gate = gate


def _shown(value: Any) -> str:
    return "-" if value is None else f"{value:.3f}" if isinstance(value, float) else str(value)


@dataclass(frozen=True)
class Judgement:
    """Candidate and active version scored on the same students (``table``: one row per metric)."""

    setup: str
    data: str
    n: int
    candidate_id: str
    active_id: str | None
    how: dict[str, str]
    table: pd.DataFrame
    rows: pd.DataFrame
    candidate_details: pd.DataFrame


def _source(session: Session, version: ModelVersion, bundled_sha: str) -> str:
    ref = training_data(session, version.id)
    if ref is not None:
        return ref.source
    return "bundled" if version.data_sha256 == bundled_sha else "file"


def _recipe_model(version: ModelVersion, rows: pd.DataFrame) -> GradeModel:
    params = {k: v for k, v in version.params.items() if k not in {"setup", "random_state"}}
    return GradeModel(setup=version.setup, random_state=0, **params).fit(rows, rows[TARGET].to_numpy(float))


@dataclass(frozen=True)
class _Recipe:
    """How a version learns from the judged rows: what else it learned from, and the judged rows' weight."""

    extra: pd.DataFrame | None
    weight: int


def _recipe(session: Session, version: ModelVersion, kind: str, bundled: pd.DataFrame, settings: Settings,
            bundled_sha: str) -> _Recipe | None:  # fmt: skip
    """None when ``version`` did not learn from the judged rows (``kind``: "school" or "bundled")."""
    source = _source(session, version, bundled_sha)
    ref = training_data(session, version.id)
    weight = int(ref.detail.get("weight", 1)) if ref is not None else 1
    if kind == "school" and source in ("outcomes", "pooled"):
        return _Recipe(bundled if source == "pooled" else None, weight)
    if kind == "bundled" and source in ("bundled", "pooled"):
        school = kept_rows(session, version.id, settings=settings) if source == "pooled" else None
        return _Recipe(None if school is None else pd.concat([school] * weight, ignore_index=True), 1)
    return None


def _columns(frame: pd.DataFrame, like: pd.DataFrame) -> pd.DataFrame:
    return frame[[c for c in like.columns if c in frame.columns]]


def _fit_rows(train: pd.DataFrame, recipe: _Recipe) -> pd.DataFrame:
    parts = [train] * recipe.weight
    if recipe.extra is not None:
        parts.append(_columns(recipe.extra, train))
    return pd.concat(parts, ignore_index=True)


def _out_of_fold(version: ModelVersion, rows: pd.DataFrame, recipe: _Recipe) -> pd.DataFrame:
    parts = []
    for train, test in KFold(FOLDS, shuffle=True, random_state=0).split(rows):
        model = _recipe_model(version, _fit_rows(rows.iloc[train], recipe))
        parts.append(model.predict_details(rows.iloc[test]).set_axis(rows.index[test]))
    return pd.concat(parts).loc[rows.index]


def _scores(y: np.ndarray, details: pd.DataFrame) -> dict[str, float]:
    result = score(y, details)
    return {m: result[m] for m in JUDGED_METRICS}


def _noise(y: np.ndarray, a: pd.DataFrame, b: pd.DataFrame) -> dict[str, float]:
    """Standard deviation of the (a - b) difference of each metric over paired bootstrap resamples."""
    rng = np.random.default_rng(0)
    differences: dict[str, list[float]] = {m: [] for m in JUDGED_METRICS}
    for _ in range(BOOTSTRAP):
        pick = rng.integers(0, len(y), len(y))
        passed = y[pick] >= PASS_MARK
        if passed.all() or not passed.any():  # ROC-AUC needs both outcomes
            continue
        sa, sb = _scores(y[pick], a.iloc[pick]), _scores(y[pick], b.iloc[pick])
        for m in JUDGED_METRICS:
            differences[m].append(sa[m] - sb[m])
    return {m: float(np.nanstd(values)) for m, values in differences.items()}


def _better(metric: str, difference: float) -> str:
    if not np.isfinite(difference) or difference == 0:
        return ""
    lower = metric in LOWER_IS_BETTER
    return "candidate" if (difference < 0) == lower else "active"


def judge(
    session: Session,
    candidate_id: str,
    *,
    settings: Settings,
    on: str = "school",
    split: datetime | None = None,
    school: SchoolSet | None = None,
    bundled: pd.DataFrame | None = None,
) -> Judgement:
    """Score ``candidate_id`` and its setup's active version on the school's outcomes (``on="school"``) or the
    bundled UCI file (``on="bundled"``), out-of-fold where a version learned from them; see the module.

    ``bundled`` stands in for the bundled file (default: the UCI maths file), e.g. to measure without leakage."""
    candidate = registry.get_version(session, candidate_id)
    active_id = registry.active_version_ids(session).get(candidate.setup)
    bundled = load_raw(settings=settings) if bundled is None else bundled
    bundled_sha = frame_sha256(bundled)
    if on == "school":
        school = school or outcome_training_set(session, candidate.setup, settings=settings)
        require_enough(school, Thresholds.from_settings(settings))
        rows = school.training_rows
        label = data_label("school", len(rows))
        before, after = split_at(school, split) if split is not None else (None, None)
    else:
        rows, label, before, after = bundled, data_label("bundled", len(bundled)), None, None
    if split is not None:
        if before is None or len(before) < FOLDS or len(after) < FOLDS:
            raise UserError(tr("a time split at {day} leaves too few students on one side (at least {folds} needed "
                               "before and after)", day=i18n.date(split.date()), folds=FOLDS))  # fmt: skip
        label = tr("{data}, trained on those predicted before {day}, scored on the {count} after", data=label,
                   day=i18n.date(split.date()), count=len(after))  # fmt: skip
    scored = after if split is not None else rows
    y = scored[TARGET].to_numpy(float)
    details: dict[str, pd.DataFrame] = {}
    how: dict[str, str] = {}
    for name, version_id in (("candidate", candidate_id), ("active", active_id)):
        if version_id is None:
            continue
        version = registry.get_version(session, version_id)
        recipe = _recipe(session, version, on, bundled, settings, bundled_sha)
        if recipe is None:
            model = registry.load_artifact(version, settings=settings)
            details[name], how[name] = model.predict_details(scored).set_axis(scored.index), "plain scoring"
        elif split is not None:
            details[name] = _recipe_model(version, _fit_rows(before, recipe)).predict_details(scored)
            details[name], how[name] = details[name].set_axis(scored.index), "time split"
        else:
            details[name], how[name] = _out_of_fold(version, scored, recipe), f"out-of-fold ({FOLDS}-fold)"
    table = _table(y, details)
    return Judgement(candidate.setup, label, len(scored), candidate_id, active_id, how, table, scored,
                     details["candidate"])  # fmt: skip


def _table(y: np.ndarray, details: dict[str, pd.DataFrame]) -> pd.DataFrame:
    candidate = _scores(y, details["candidate"])
    active = _scores(y, details["active"]) if "active" in details else dict.fromkeys(JUDGED_METRICS, float("nan"))
    noise = _noise(y, details["candidate"], details["active"]) if "active" in details else {}
    rows = []
    for m in JUDGED_METRICS:
        difference = candidate[m] - active[m]
        rows.append({"metric": m, "candidate": candidate[m], "active": active[m], "difference": difference,
                     "noise": noise.get(m, float("nan")), "better": _better(m, difference)})  # fmt: skip
    return pd.DataFrame(rows).set_index("metric")


# ---------------------------------------------------------------- the gate


def data_of_record(session: Session, setup: str, *, settings: Settings) -> tuple[str, SchoolSet | None]:
    """``("school", set)`` once enough students have a recorded outcome, else ``("bundled", None)``."""
    school = outcome_training_set(session, setup, settings=settings)
    enough = len(school.frame) >= Thresholds.from_settings(settings).min_training_outcomes
    return ("school", school) if enough else ("bundled", None)


def _metric_rows(judgement: Judgement) -> list[dict[str, Any]]:
    rows = []
    for m in GATE_METRICS:
        line = judgement.table.loc[m]
        worse = line["difference"] if m in LOWER_IS_BETTER else -line["difference"]
        limit = NOISE_FACTOR * line["noise"]
        # no measurable noise (every resample one-sided): any worsening fails rather than passing unseen
        fail = bool(np.isfinite(worse) and worse > (limit if np.isfinite(limit) else 0.0))
        rows.append({"check": "quality", "metric": m, "candidate": float(line["candidate"]),
                     "active": None if not np.isfinite(line["active"]) else float(line["active"]),
                     "difference": None if not np.isfinite(line["difference"]) else float(line["difference"]),
                     "noise": None if not np.isfinite(line["noise"]) else float(line["noise"]),
                     "against": f"the active version, allowed to be worse by {NOISE_FACTOR:g} x noise",
                     "verdict": "fail" if fail else "pass"})  # fmt: skip
    return rows


def _fairness_rows(judgement: Judgement, thresholds: Thresholds) -> list[dict[str, Any]]:
    limits = GapLimits(accuracy=thresholds.gate_accuracy_gap, false_negative_rate=thresholds.gate_false_negative_gap,
                       grade_bias=thresholds.gate_grade_bias_gap)  # fmt: skip
    gaps = fairness_gaps(group_metrics(judgement.rows, judgement.candidate_details), limits)
    return [{"check": "fairness", "metric": f"{gap.attribute} {gap.measure} gap", "candidate": float(gap.value),
             "active": None, "difference": None, "noise": None, "limit": gap.threshold, "attribute": gap.attribute,
             "measure": gap.measure, "groups": [gap.low_group, gap.high_group],
             "against": f"limit {gap.threshold:g} ({gap.low_group} vs {gap.high_group})",
             "verdict": "fail" if gap.flagged else "pass"} for gap in gaps]  # fmt: skip


def gate_table(session: Session, candidate_id: str, *, settings: Settings) -> dict[str, Any]:
    """The promotion gate of ``candidate_id`` on the evaluation data of record (a JSON-ready table)."""
    candidate = registry.get_version(session, candidate_id)
    kind, school = data_of_record(session, candidate.setup, settings=settings)
    with i18n.use_language(i18n.ENGLISH):  # kept on the timeline and in the audit log: English, shown translated
        judgement = judge(session, candidate_id, settings=settings, on=kind, school=school)
    rows = _metric_rows(judgement) + _fairness_rows(judgement, Thresholds.from_settings(settings))
    return {"passed": all(row["verdict"] == "pass" for row in rows), "data": judgement.data, "n": judgement.n,
            "on": kind, "active_id": judgement.active_id, "how": judgement.how, "rows": rows}  # fmt: skip


def data_label(kind: str, count: int) -> str:
    """What a version was judged on, in words: the school's outcomes or the bundled file, and how many students."""
    if kind == "school":
        return tr("the school's recorded outcomes ({count} students)", count=count)
    return tr("the bundled UCI maths file ({count} students)", count=count)


def gate_data(gate: dict[str, Any]) -> str:
    """A stored gate's data in this context's language (its stored English words for an older gate)."""
    if gate.get("on") in ("school", "bundled") and gate.get("n") is not None:
        return data_label(gate["on"], int(gate["n"]))
    return str(gate.get("data", ""))


def how_text(how: str) -> str:
    """How a version was scored (plain scoring, time split, out-of-fold), in this context's language."""
    if how.startswith("out-of-fold"):
        return tr("out-of-fold ({folds}-fold)", folds=FOLDS)
    return tr(HOW_LABELS[how]) if how in HOW_LABELS else how


def shown_rows(gate: dict[str, Any]) -> list[dict[str, Any]]:
    """A stored gate's rows with their words in this context's language (the figures unchanged)."""
    shown = []
    for row in gate["rows"]:
        words = dict(row)
        words["check"] = tr(CHECK_LABELS[row["check"]]) if row["check"] in CHECK_LABELS else row["check"]
        words["verdict"] = tr(VERDICT_LABELS[row["verdict"]]) if row["verdict"] in VERDICT_LABELS else row["verdict"]
        if row["check"] == "quality" and row["metric"] in METRIC_LABELS:
            words["metric"] = tr(METRIC_LABELS[row["metric"]])
            words["against"] = tr("the active version, allowed to be worse by {factor} x noise",
                                  factor=i18n.number(NOISE_FACTOR, 0))  # fmt: skip
        elif row["check"] == "fairness" and {"attribute", "measure", "groups"} <= set(row):
            low, high = row["groups"]
            words["metric"] = tr(GAP_NAMES[row["measure"]], attribute=tr(row["attribute"]))
            limit = f"{row['limit']:g}"
            words["against"] = tr("limit {limit} ({low} vs {high})", limit=limit, low=low, high=high)
        shown.append(words)
    return shown


def promote(
    session: Session, version_id: str, by: str, *, settings: Settings, reason: str | None = None
) -> dict[str, Any]:
    """Promote ``version_id`` through its gate; returns the gate table.

    A failed gate raises `GateFailed` unless ``reason`` says why it is promoted anyway; the gate and the
    reason are kept on the timeline and in the audit log."""
    text = (reason or "").strip()
    if len(text) > MAX_REASON:
        raise UserError(tr("the reason has {count} characters; at most {limit} are allowed", count=len(text),
                           limit=MAX_REASON))  # fmt: skip
    gate = gate_table(session, version_id, settings=settings)
    if not gate["passed"] and not text:
        raise GateFailed(version_id, gate)
    registry.promote(session, version_id, by, settings=settings, gate=gate, reason=text or None)
    return gate
