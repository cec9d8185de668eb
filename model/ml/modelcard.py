"""Model cards: what a model version is for, what it was trained on, how good and how fair it is.

Fairness is measured honestly, out of sample: one repetition of 10-fold cross-validation of the
version's configuration (setup and parameters) on the reference data (the real UCI maths
students) gives every student a prediction from a model that never saw them. Those predictions
are broken down by sex, school, address and age band, and gaps between groups above
:class:`Thresholds` are flagged.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy.orm import Session

from model import i18n
from model.i18n import N_, tr, tr_n
from model.ml.dataset import CSV_SHA256, UCI_URL, load_raw
from model.ml.evaluation import METRICS, PAPER_BEST, cross_validated_details
from model.ml.schooldata import kept_rows, training_data
from model.ml.training import frame_sha256
from model.schema.fields import PASS_MARK, TARGET
from model.settings import Settings
from model.store import registry

INTENDED_USE = N_(
    "A decision aid for teachers: it estimates a student's final maths grade (G3, 0-20), the chance "
    "of passing (G3 >= 10) and the factors behind the estimate, so that a teacher can look sooner at "
    "students who may need support. It is never an automatic judgment: no grade, placement, "
    "sanction or support decision may be taken on the prediction alone."
)
LIMITS = (
    N_(
        "Trained on 395 students of two Portuguese secondary schools in 2005-2006 (one subject, "
        "maths); other schools, countries, years or subjects may behave differently."
    ),
    N_("Predictions are uncertain: read the 90% interval, not only the point estimate."),
    N_(
        "Attributes such as sex, address or family background describe groups, not the student; "
        "they are inputs because the original study used them, not because they cause grades."
    ),
    N_("Small groups (e.g. students aged 19 or more) give unstable fairness figures."),
    N_("Before the first period grades are known (setup 'early'), accuracy is much lower."),
)
CITATION = (
    "P. Cortez and A. Silva. Using Data Mining to Predict Secondary School Student Performance. "
    "In Proceedings of the 5th FUture BUsiness TEChnology Conference (FUBUTEC 2008), pp. 5-12, 2008."
)
LICENCE = "CC BY 4.0"
SOURCE = "UCI Machine Learning Repository, Student Performance (id 320), student-mat.csv"
METRIC_LABELS = {
    "binary_accuracy": N_("pass/fail accuracy (%)"),
    "five_level_accuracy": N_("5-level accuracy (%)"),
    "rmse": N_("RMSE (grade points)"),
    "roc_auc": N_("ROC-AUC"),
    "brier": N_("Brier score"),
    "ece": N_("expected calibration error"),
    "interval_coverage": N_("90% interval coverage (%)"),
    "interval_width": N_("90% interval width (points)"),
}
GROUP_ATTRIBUTES = ("sex", "school", "address", "age band")
AGE_BANDS = (("15-16", 15, 16), ("17-18", 17, 18), ("19+", 19, 99))
GAP_MEASURES = {"accuracy": N_("accuracy (points of %)"),
                "false_negative_rate": N_("false-negative rate (points of %)"),
                "grade_bias": N_("mean predicted - mean real grade (grade points)")}  # fmt: skip


@dataclass(frozen=True)
class Thresholds:
    """When a gap between groups is flagged, and how large a group must be to be compared."""

    accuracy: float = 10.0
    false_negative_rate: float = 10.0
    grade_bias: float = 1.5
    min_group: int = 10
    min_failed: int = 5


@dataclass(frozen=True)
class GroupMetrics:
    """Out-of-fold quality for one group of students (``attribute`` = ``group``)."""

    attribute: str
    group: str
    n: int
    n_failed: int
    accuracy: float
    false_negative_rate: float | None
    mean_predicted: float
    mean_actual: float

    @property
    def grade_bias(self) -> float:
        """Mean predicted minus mean real grade (positive: the model is too optimistic)."""
        return self.mean_predicted - self.mean_actual


@dataclass(frozen=True)
class Gap:
    """The spread of one measure across the groups of one attribute (largest minus smallest)."""

    attribute: str
    measure: str
    value: float
    threshold: float
    low_group: str
    high_group: str

    @property
    def flagged(self) -> bool:
        return self.value > self.threshold


@dataclass(frozen=True)
class DataProvenance:
    """Where a version's training rows came from."""

    n_rows: int
    data_sha256: str
    bundled: bool
    source: str = SOURCE
    citation: str = CITATION
    licence: str = LICENCE
    url: str = UCI_URL
    file_sha256: str = CSV_SHA256
    reference: dict[str, Any] | None = None  # the training-data reference kept with the version, if any


@dataclass(frozen=True)
class ModelCard:
    """Everything the model card says about one version."""

    version_id: str
    setup: str
    algorithm: str
    created_at: datetime
    created_by: str
    active: bool
    params: dict[str, Any]
    metrics: dict[str, Any]
    data: DataProvenance
    groups: tuple[GroupMetrics, ...]
    gaps: tuple[Gap, ...]
    n_reference: int
    thresholds: Thresholds = field(default_factory=Thresholds)
    intended_use: str = INTENDED_USE
    limits: tuple[str, ...] = LIMITS

    @property
    def flagged(self) -> list[Gap]:
        """The gaps above their threshold."""
        return [gap for gap in self.gaps if gap.flagged]

    def to_markdown(self) -> str:
        """The card as a Markdown document."""
        return to_markdown(self)


def age_band(age: int) -> str:
    """'15-16', '17-18' or '19+'."""
    return next(name for name, low, high in AGE_BANDS if low <= age <= high)


def _group_metrics(attribute: str, group: str, actual: np.ndarray, details: pd.DataFrame) -> GroupMetrics:
    passed = actual >= PASS_MARK
    predicted_pass = details["p_pass"].to_numpy(float) >= 0.5
    failed = ~passed
    fnr = float(predicted_pass[failed].mean() * 100) if failed.any() else None
    return GroupMetrics(
        attribute=attribute,
        group=group,
        n=len(actual),
        n_failed=int(failed.sum()),
        accuracy=float((predicted_pass == passed).mean() * 100),
        false_negative_rate=fnr,
        mean_predicted=float(details["predicted_g3"].mean()),
        mean_actual=float(actual.mean()),
    )


def group_metrics(reference: pd.DataFrame, details: pd.DataFrame) -> list[GroupMetrics]:
    """Quality of out-of-fold ``details`` overall and per group of sex, school, address, age band."""
    actual = reference[TARGET].to_numpy(float)
    keys = {
        "sex": reference["sex"].astype(str),
        "school": reference["school"].astype(str),
        "address": reference["address"].astype(str),
        "age band": reference["age"].map(age_band),
    }
    result = [_group_metrics("all", "all", actual, details)]
    for attribute in GROUP_ATTRIBUTES:
        key = keys[attribute].to_numpy()
        for group in sorted(set(key)):
            mask = key == group
            result.append(_group_metrics(attribute, group, actual[mask], details[mask]))
    return result


def _spread(attribute: str, measure: str, values: dict[str, float], threshold: float) -> Gap | None:
    if len(values) < 2:
        return None
    ordered = sorted(values, key=values.__getitem__)
    low, high = ordered[0], ordered[-1]
    return Gap(attribute, measure, values[high] - values[low], threshold, low, high)


def fairness_gaps(groups: list[GroupMetrics], thresholds: Thresholds = Thresholds()) -> list[Gap]:
    """Per attribute, the accuracy, false-negative-rate and grade-bias spreads between its groups.

    Groups smaller than ``min_group`` students (``min_failed`` failed students for the
    false-negative rate) are left out of the comparison: their figures are too unstable.
    """
    gaps = []
    for attribute in GROUP_ATTRIBUTES:
        members = [g for g in groups if g.attribute == attribute and g.n >= thresholds.min_group]
        candidates = (
            _spread(attribute, "accuracy", {g.group: g.accuracy for g in members}, thresholds.accuracy),
            _spread(
                attribute,
                "false_negative_rate",
                {
                    g.group: g.false_negative_rate
                    for g in members
                    if g.false_negative_rate is not None and g.n_failed >= thresholds.min_failed
                },
                thresholds.false_negative_rate,
            ),  # fmt: skip
            _spread(attribute, "grade_bias", {g.group: g.grade_bias for g in members}, thresholds.grade_bias),
        )
        gaps.extend(gap for gap in candidates if gap is not None)
    return gaps


def _cv_params(params: dict[str, Any]) -> dict[str, Any]:
    """A version's parameters as ``cross_validated_details`` takes them (it sets setup and seed)."""
    return {k: v for k, v in params.items() if k not in {"setup", "random_state"}}


def build_model_card(
    session: Session,
    version_id: str,
    reference: pd.DataFrame | None = None,
    thresholds: Thresholds = Thresholds(),
    *,
    settings: Settings,
) -> ModelCard:
    """The model card of ``version_id``; fairness from out-of-fold predictions on ``reference``.

    ``reference`` defaults to what the version learned from: the rows kept with it (the school's
    outcomes, a training file), else the real data set (``model.ml.dataset.load_raw(settings=settings)``).
    Takes a few seconds (ten model fits).
    """
    real = load_raw(settings=settings)
    version = registry.get_version(session, version_id)
    ref = training_data(session, version_id)
    if reference is None:
        kept = kept_rows(session, version_id, settings=settings)
        reference = real if kept is None else kept
    active = registry.active_version_ids(session).get(version.setup) == version.id
    details = cross_validated_details(reference, version.setup, run=0, params=_cv_params(version.params))
    groups = group_metrics(reference, details)
    return ModelCard(
        version_id=version.id,
        setup=version.setup,
        algorithm=version.algorithm,
        created_at=version.created_at,
        created_by=version.created_by,
        active=active,
        params=dict(version.params),
        metrics=dict(version.metrics),
        data=DataProvenance(
            version.n_rows,
            version.data_sha256,
            version.data_sha256 == frame_sha256(real),
            reference=dict(ref.detail) if ref is not None else None,
        ),
        groups=tuple(groups),
        gaps=tuple(fairness_gaps(groups, thresholds)),
        n_reference=len(reference),
        thresholds=thresholds,
    )


# ---------------------------------------------------------------- Markdown


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(" --- " for _ in header) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return lines


def _number(value: float | None, digits: int = 1) -> str:
    return "-" if value is None or not np.isfinite(value) else i18n.number(value, digits)


def _g(value: float) -> str:
    """A threshold as set (``1.5``, ``10``), with this language's decimal mark."""
    text = f"{value:g}"
    return text if i18n.language() == i18n.ENGLISH else text.replace(".", ",")


def _signed(value: float) -> str:
    text = i18n.number(value, 2)
    return text if text.startswith("-") else f"+{text}"


def _metrics_lines(card: ModelCard) -> list[str]:
    runs = int(card.metrics.get("protocol_runs", 0))
    if runs == 0:
        return [tr("Not scored by the protocol (trained with 0 runs).")]
    rows = []
    for name in METRICS:
        value = card.metrics.get(name)
        if not isinstance(value, dict):
            continue
        paper = PAPER_BEST[card.setup].get(name)
        rows.append([tr(METRIC_LABELS[name]), f"{_number(value['mean'], 3)} ± {_number(value['std'], 3)}",
                     _number(paper, 2)])  # fmt: skip
    intro = tr("Cortez & Silva (2008) protocol: 10-fold cross-validation repeated {runs} time(s) on the training "
               "data; mean ± standard deviation over the repetitions.", runs=runs)  # fmt: skip
    return [intro, "", *_table([tr("metric"), tr("this version"), tr("paper best")], rows)]


def _fairness_lines(card: ModelCard) -> list[str]:
    t = card.thresholds
    lines = [
        tr("Out-of-fold predictions (one repetition of 10-fold cross-validation of this version's setup and "
           "parameters) for the {count} students of the reference data (what the version learned from: the rows "
           "kept with it, else the real UCI maths file). Accuracy is pass/fail accuracy; the false-negative rate is "
           "the share of students who failed (G3 < 10) but were predicted to pass, the error that withholds "
           "support.", count=card.n_reference),
        "",
    ]  # fmt: skip
    rows = [
        [tr(g.attribute), g.group, str(g.n), str(g.n_failed), _number(g.accuracy), _number(g.false_negative_rate),
         _number(g.mean_predicted, 2), _number(g.mean_actual, 2), _signed(g.grade_bias)]
        for g in card.groups
    ]  # fmt: skip
    header = [tr("attribute"), tr("group"), tr("students"), tr("failed"), tr("accuracy %"),
              tr("false-negative rate %"), tr("mean predicted"), tr("mean real"), tr("predicted - real")]  # fmt: skip
    lines += _table(header, rows)
    lines += [
        "",
        "### " + tr("Gaps between groups"),
        "",
        tr("Flagged when the spread between groups exceeds {accuracy} points of accuracy, {false_negative} points "
           "of false-negative rate or {bias} grade points of (mean predicted - mean real); groups under {min_group} "
           "students (under {min_failed} failed students for the false-negative rate) are not compared.",
           accuracy=_g(t.accuracy), false_negative=_g(t.false_negative_rate), bias=_g(t.grade_bias),
           min_group=t.min_group, min_failed=t.min_failed),
        "",
    ]  # fmt: skip
    gap_rows = [
        [tr(gap.attribute), tr(GAP_MEASURES[gap.measure]), f"{gap.low_group} → {gap.high_group}",
         _number(gap.value, 2), _g(gap.threshold), tr("**FLAGGED**") if gap.flagged else tr("ok")]
        for gap in card.gaps
    ]  # fmt: skip
    header = [tr("attribute"), tr("measure"), tr("lowest → highest group"), tr("gap"), tr("threshold"), tr("flag")]
    lines += _table(header, gap_rows)
    flagged = card.flagged
    summary = (tr_n("{count} gap flagged: check these groups before relying on the model for them.",
                    "{count} gaps flagged: check these groups before relying on the model for them.", len(flagged))
               if flagged else tr("No gap above its threshold."))  # fmt: skip
    return [*lines, "", summary]


def to_markdown(card: ModelCard) -> str:
    """The model card as Markdown: use and limits, data and provenance, metrics, fairness."""
    d = card.data
    origin = (tr("the bundled UCI maths file (all of it)") if d.bundled
              else tr("an uploaded file (not the bundled one; the rows below are what was uploaded)"))  # fmt: skip
    if d.reference is not None and not d.bundled:
        origin = tr("{label} ({rows} rows, of which {school_rows} kept with the version; school rows weighted "
                    "x{weight})", label=d.reference["label"], rows=d.reference["rows"],
                    school_rows=d.reference["school_rows"], weight=d.reference["weight"])  # fmt: skip
    lines = [
        "# " + tr("Model card: {version}", version=card.version_id),
        "",
        *_table(
            [tr("field"), tr("value")],
            [
                [tr("setup"), card.setup],
                [tr("algorithm"), card.algorithm],
                [tr("created"), tr("{when} UTC by {who}", when=i18n.moment(card.created_at), who=card.created_by)],
                [tr("active"), tr("yes") if card.active else tr("no")],
            ],
        ),  # fmt: skip
        "",
        "## " + tr("Intended use"),
        "",
        tr(card.intended_use),
        "",
        "## " + tr("Limits"),
        "",
        *[f"- {tr(limit)}" for limit in card.limits],
        "",
        "## " + tr("Data and provenance"),
        "",
        "- "
        + tr(
            "Trained on {origin}: {rows} rows, data SHA-256 `{sha}` (canonical CSV of the rows).",
            origin=origin,
            rows=d.n_rows,
            sha=d.data_sha256,
        ),
        "- " + tr("Source: {source} ({url}), file SHA-256 `{sha}`.", source=d.source, url=d.url, sha=d.file_sha256),
        "- " + tr("Citation: {citation}", citation=d.citation),
        "- " + tr("Licence: {licence}.", licence=d.licence),
        "",
        "## " + tr("Metrics"),
        "",
        *_metrics_lines(card),
        "",
        "## " + tr("Fairness"),
        "",
        *_fairness_lines(card),
        "",
    ]
    return "\n".join(lines)
