"""The one threshold table: every level a front or an alert judges by, read from the settings.

Each field is the setting of the same name (environment variable ``MATHSIGHT_<NAME>``), except the
drift "act" level, which is the drift alert's own threshold ``MATHSIGHT_ALERT_MAX_PSI``: the drift
page and the alert cannot disagree. The defaults here are the settings' defaults. Build the table
with :meth:`Thresholds.from_settings`; the verdicts themselves are computed where their figures are
(risk level: ``model.ml.grade_model.risk_level``; drift status: ``model.monitoring.drift``; the
alert rules: ``model.monitoring.alerts``).
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from datetime import date

from model.i18n import tr

RISK_LEVELS = ("high", "medium", "low")
DRIFT_STATUSES = ("act", "watch", "ok")
SETTING_OF = {"drift_act_psi": "alert_max_psi"}  # fields whose setting has another name


class ThresholdError(ValueError):
    """Thresholds that contradict each other or leave their range (names the settings to fix)."""


@dataclass(frozen=True)
class Thresholds:
    """Risk levels by P(pass), drift levels by PSI and p-value, and the alert rules' thresholds."""

    risk_high_below: float = 0.5  # P(pass) below this: high risk (0.5: predicted to fail)
    risk_medium_below: float = 0.75  # below this: medium, else low
    drift_watch_psi: float = 0.1  # an attribute's PSI from this on: watch
    drift_act_psi: float = 0.25  # from this on: act, and the drift alert fires
    drift_p_value: float = 0.05  # the drift test's p-value below this: the distributions differ
    drift_large_rows: int = 1_000  # above this many recent rows the PSI alone decides the drift verdict
    alert_error_rate: float = 0.05  # share of rows not predicted
    alert_p95_latency_ms: float = 2_000.0  # p95 latency per logged row
    alert_feedback_rate: float = 0.10  # "not useful" + "wrongly flagged" remarks per prediction
    alert_accuracy_drop: float = 0.10  # realized pass/fail accuracy below the version's protocol accuracy
    alert_expected_accuracy_drop: float = 0.10  # CBPE expected accuracy below the version's protocol accuracy
    alert_fairness_gap: float = 0.20  # FNR or FPR gap between subgroups (each with enough outcomes)
    alert_min_rows: int = 50  # rows a window needs before the error, latency and feedback rules judge it
    alert_min_drift_rows: int = 200  # recent rows the drift rule needs
    alert_min_outcomes: int = 30  # real grades the accuracy rule needs per version
    attention_risk_rise: float = 0.15  # "needs attention" when P(pass) fell by more than this since the last one
    year_end: date | None = None  # after this day a student without a final grade needs attention (None: never)
    # Learning from the school's own students (model.ml.schooldata, model.ml.gates).
    min_training_outcomes: int = 100  # students with a recorded final grade needed to train or judge on them
    gate_accuracy_gap: float = 10.0  # fairness gate: largest pass/fail accuracy gap between groups (points of %)
    gate_false_negative_gap: float = 10.0  # false-negative-rate gap between groups (points of %)
    gate_grade_bias_gap: float = 1.5  # gap of (mean predicted - mean real grade) between groups (grade points)

    def __post_init__(self) -> None:
        if not 0 < self.risk_high_below < self.risk_medium_below <= 1:
            raise ThresholdError(
                tr("risk levels need 0 < {high} < {medium} <= 1, got {high_value} and {medium_value}",
                   high=setting("risk_high_below"), medium=setting("risk_medium_below"),
                   high_value=self.risk_high_below, medium_value=self.risk_medium_below)
            )  # fmt: skip
        if not 0 < self.drift_watch_psi < self.drift_act_psi:
            raise ThresholdError(
                tr("drift levels need 0 < {watch} < {act}, got {watch_value} and {act_value}",
                   watch=setting("drift_watch_psi"), act=setting("drift_act_psi"),
                   watch_value=self.drift_watch_psi, act_value=self.drift_act_psi)
            )  # fmt: skip
        if not 0 < self.attention_risk_rise < 1:
            raise ThresholdError(
                tr("{setting} must be between 0 and 1, got {value}",
                   setting=setting("attention_risk_rise"), value=self.attention_risk_rise)
            )  # fmt: skip
        if not 0 < self.drift_p_value < 1:
            raise ThresholdError(
                tr(
                    "{setting} must be between 0 and 1, got {value}",
                    setting=setting("drift_p_value"),
                    value=self.drift_p_value,
                )
            )

    @classmethod
    def from_settings(cls, settings: object) -> Thresholds:
        """The table as configured; raises :class:`ThresholdError` when the levels contradict each other.

        ``settings`` is a :class:`model.settings.Settings` (or anything with its threshold attributes); it is
        not imported here, so that ``settings`` may import this table without a circle.
        """
        return cls(**{f.name: getattr(settings, SETTING_OF.get(f.name, f.name)) for f in fields(cls)})


def setting(name: str) -> str:
    """The environment variable setting the threshold ``name``."""
    return f"MATHSIGHT_{SETTING_OF.get(name, name).upper()}"


DEFAULT_THRESHOLDS = Thresholds()
