"""How drift is computed: recent traffic against the training reference kept with the active model version.

1. The reference: the profile stored with the active version of the setup (``early`` for all traffic),
   category counts for a categorical attribute, the training values themselves for a numeric one.
2. The recent sample: value counts of the window's newest ``max_rows`` predicted rows
   (:func:`model.monitoring.samples.recent_counts`: SQL GROUP BY, or decrypted when inputs are encrypted).
3. Per attribute, as in Evidently's drift report: the Population Stability Index over bins taken from
   the reference (its categories; its distinct deciles for numbers), and a statistical test, two-sample
   Kolmogorov-Smirnov for numeric attributes, chi-square (2 x k contingency table) for categorical ones.
4. The level, by the threshold table (``model.schema.thresholds``): 'act' from PSI ``drift_act_psi``
   on (the drift alert's ``MATHSIGHT_ALERT_MAX_PSI``), 'watch' from ``drift_watch_psi``, else 'ok'; the
   test says the distributions differ below p ``drift_p_value``.
5. **One verdict per attribute** (:data:`VERDICTS`), the one the page shows and the drift alert fires on:

   * *too few rows* while the recent sample holds fewer than ``alert_min_drift_rows`` rows;
   * up to ``drift_large_rows`` recent rows (a small sample): *drifted* when the PSI reaches the act level
     **and** the column's test (KS for numbers, chi-square for categories) rejects equal distributions
     at ``drift_p_value``: a small sample's PSI is noisy, the test says whether the shift is more than
     sampling noise;
   * above ``drift_large_rows`` (a large sample): *drifted* when the PSI reaches the act level; at that
     size the tests reject differences too small to matter, so the effect size alone decides (as
     Evidently switches from tests to distances for large samples).

   The dataset line counts the drifted attributes: "N of 30 attributes drifted".
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import pandas as pd
from scipy.stats import chi2_contingency, ks_2samp
from sqlalchemy.orm import Session

from model.i18n import N_, tr
from model.monitoring.queries import Window
from model.monitoring.samples import MAX_ROWS, recent_counts
from model.monitoring.uncertainty import count_text
from model.schema.fields import ATTRIBUTES, FIELDS, SETUP_FEATURES
from model.schema.thresholds import DRIFT_STATUSES, Thresholds
from model.settings import Settings
from model.store import registry

DRIFTED, NOT_DRIFTED, TOO_FEW_ROWS = "drifted", "not drifted", "too few rows"
VERDICTS = (DRIFTED, NOT_DRIFTED, TOO_FEW_ROWS)
# The verdicts and levels as shown (the stored and compared values stay the codes above).
VERDICT_LABELS = {DRIFTED: N_("drifted"), NOT_DRIFTED: N_("not drifted"), TOO_FEW_ROWS: N_("too few rows")}
STATUS_LABELS = {"act": N_("act"), "watch": N_("watch"), "ok": N_("ok")}
NUMERIC_BINS = 10
PSI_FLOOR = 1e-4  # share given to an empty bin so the logarithm stays finite


@dataclass(frozen=True)
class AttributeDrift:
    """The drift of one attribute: test, statistic, p-value, PSI, both distributions, and the verdicts."""

    attribute: str
    kind: str
    test: str
    statistic: float
    p_value: float
    psi: float
    n_reference: int
    n_recent: int
    bins: tuple[str, ...]
    reference_share: tuple[float, ...]
    recent_share: tuple[float, ...]
    status: str  # 'act', 'watch' or 'ok' by the PSI (see :func:`status_of`)
    test_drift: bool  # the test's p-value is below the threshold table's ``drift_p_value``
    verdict: str = NOT_DRIFTED  # one of VERDICTS (see :func:`verdict_of`)
    decided_by: str = ""  # how the verdict was reached, in words

    @property
    def label(self) -> str:
        return tr(FIELDS[self.attribute].label)

    def distributions(self) -> pd.DataFrame:
        """Reference and recent shares per bin (bins empty in both left out): bin, reference, recent."""
        frame = pd.DataFrame({"bin": self.bins, "reference": self.reference_share, "recent": self.recent_share})
        return frame[(frame["reference"] > 0) | (frame["recent"] > 0)].reset_index(drop=True)


@dataclass(frozen=True)
class DriftReport:
    """Drift of every input of a setup in a window, against one model version's reference."""

    version_id: str
    setup: str | None
    window: Window
    n_recent: int
    attributes: tuple[AttributeDrift, ...]
    thresholds: Thresholds

    @property
    def max_psi(self) -> float:
        return max((a.psi for a in self.attributes), default=0.0)

    def get(self, attribute: str) -> AttributeDrift:
        return next(a for a in self.attributes if a.attribute == attribute)

    @property
    def to_act_on(self) -> tuple[AttributeDrift, ...]:
        """The attributes whose status is 'act'."""
        return tuple(a for a in self.attributes if a.status == "act")

    @property
    def drifted(self) -> tuple[AttributeDrift, ...]:
        """The attributes whose one verdict is 'drifted' (what the drift alert fires on)."""
        return tuple(a for a in self.attributes if a.verdict == DRIFTED)

    @property
    def too_few_rows(self) -> bool:
        return self.n_recent < self.thresholds.alert_min_drift_rows

    def summary(self) -> str:
        """The dataset line: "N of 30 attributes drifted" (or why there is no verdict)."""
        if self.too_few_rows:
            return tr(
                "No verdict: {rows} recent rows, fewer than the {needed} a verdict needs",
                rows=count_text(self.n_recent),
                needed=count_text(self.thresholds.alert_min_drift_rows),
            )
        return tr("{drifted} of {count} attributes drifted", drifted=len(self.drifted), count=len(self.attributes))

    def table(self) -> pd.DataFrame:
        """One row per attribute, drifted first, then by PSI, as a person reads it."""
        rows = [
            {
                "attribute": a.attribute,
                "label": a.label,
                "verdict": a.verdict,
                "test": a.test,
                "statistic": a.statistic,
                "p_value": a.p_value,
                "psi": a.psi,
                "threshold": tr(
                    "PSI {watch} watch / {act} act",
                    watch=self.thresholds.drift_watch_psi,
                    act=self.thresholds.drift_act_psi,
                ),
                "status": a.status,
                "test_drift": a.test_drift,
                "n_recent": a.n_recent,
                "decided_by": a.decided_by,
            }
            for a in self.attributes
        ]
        columns = ["attribute", "label", "verdict", "test", "statistic", "p_value", "psi", "threshold", "status",
                   "test_drift", "n_recent", "decided_by"]  # fmt: skip
        frame = pd.DataFrame(rows, columns=columns)
        frame["_first"] = frame["verdict"] != DRIFTED
        ordered = frame.sort_values(["_first", "psi"], ascending=[True, False], kind="stable")
        return ordered.drop(columns="_first").reset_index(drop=True)


# ------------------------------------------------------------------------------------------ statistics
def psi(reference: Sequence[float], recent: Sequence[float], floor: float = PSI_FLOOR) -> float:
    """Population Stability Index of two count (or share) vectors over the same bins.

    ``sum((recent% - reference%) * ln(recent% / reference%))``; empty bins count as ``floor``.
    """
    expected = np.asarray(reference, dtype=float)
    actual = np.asarray(recent, dtype=float)
    if expected.sum() == 0 or actual.sum() == 0:
        return 0.0
    expected = np.maximum(expected / expected.sum(), floor)
    actual = np.maximum(actual / actual.sum(), floor)
    return float(np.sum((actual - expected) * np.log(actual / expected)))


def numeric_edges(reference_values: Sequence[int], n_bins: int = NUMERIC_BINS) -> np.ndarray:
    """Upper edges of the PSI bins of a numeric attribute: the reference's distinct decile values."""
    quantiles = np.linspace(0, 1, n_bins + 1)[1:-1]
    return np.unique(np.quantile(np.asarray(reference_values, dtype=float), quantiles, method="lower"))


def _edge_labels(edges: np.ndarray) -> tuple[str, ...]:
    """Bin k holds values in (edges[k-1], edges[k]]; the last bin everything above the last edge."""
    labels = [f"≤ {edges[0]:g}"]
    for low, high in zip(edges[:-1], edges[1:], strict=True):
        labels.append(f"{high:g}" if high - low <= 1 else f"{low + 1:g}–{high:g}")
    labels.append(f"≥ {edges[-1] + 1:g}")
    return tuple(labels)


def _bin_counts(values: np.ndarray, counts: np.ndarray, edges: np.ndarray) -> np.ndarray:
    return np.bincount(np.searchsorted(edges, values, side="left"), weights=counts, minlength=len(edges) + 1)


def status_of(psi_value: float, thresholds: Thresholds) -> str:
    """'act' from PSI ``drift_act_psi`` on, 'watch' from ``drift_watch_psi`` on, else 'ok'."""
    act, watch, ok = DRIFT_STATUSES
    return act if psi_value >= thresholds.drift_act_psi else watch if psi_value >= thresholds.drift_watch_psi else ok


def verdict_of(drift: AttributeDrift, thresholds: Thresholds) -> tuple[str, str]:
    """The one verdict of an attribute (see the module's step 5) and how it was reached, in words."""
    n = drift.n_recent
    if n < thresholds.alert_min_drift_rows:
        return TOO_FEW_ROWS, tr("{rows} recent rows < {needed}", rows=n, needed=thresholds.alert_min_drift_rows)
    large = n > thresholds.drift_large_rows
    act = drift.psi >= thresholds.drift_act_psi
    if large:
        return (DRIFTED if act else NOT_DRIFTED), tr("PSI vs {act} (large sample)", act=thresholds.drift_act_psi)
    drifted = act and drift.test_drift
    return (DRIFTED if drifted else NOT_DRIFTED), tr(
        "PSI vs {act} and {test} p vs {p_value}",
        act=thresholds.drift_act_psi,
        test=drift.test,
        p_value=thresholds.drift_p_value,
    )


def _judged(name: str, kind: str, test: str, statistic: float, p_value: float, reference: np.ndarray,
            recent: np.ndarray, bins: tuple[str, ...], thresholds: Thresholds) -> AttributeDrift:  # fmt: skip
    """The drift of one attribute from its test result and its binned counts, with its verdicts."""
    value = psi(reference, recent)
    judged = AttributeDrift(
        name, kind, test, statistic, p_value, value, int(reference.sum()), int(recent.sum()), bins,
        _shares(reference), _shares(recent), status_of(value, thresholds), p_value < thresholds.drift_p_value,
    )  # fmt: skip
    verdict, decided_by = verdict_of(judged, thresholds)
    return replace(judged, verdict=verdict, decided_by=decided_by)


def numeric_drift(
    name: str, reference_values: Sequence[int], recent: Mapping[int, int], thresholds: Thresholds
) -> AttributeDrift:
    """PSI over the reference deciles and the two-sample KS test of a numeric attribute."""
    ref = np.asarray(reference_values, dtype=float)
    values = np.asarray(list(recent), dtype=float)
    counts = np.asarray(list(recent.values()), dtype=float)
    edges = numeric_edges(ref)
    if counts.sum() > 0:
        test = ks_2samp(ref, np.repeat(values, counts.astype(int)))
        statistic, p_value = float(test.statistic), float(test.pvalue)
    else:
        statistic, p_value = 0.0, 1.0
    ref_bins, recent_bins = _bin_counts(ref, np.ones_like(ref), edges), _bin_counts(values, counts, edges)
    return _judged(name, "numeric", "KS", statistic, p_value, ref_bins, recent_bins, _edge_labels(edges), thresholds)


def categorical_drift(
    name: str, reference_counts: Mapping[str, int], recent: Mapping[str, int], thresholds: Thresholds
) -> AttributeDrift:
    """PSI over the categories and the chi-square test of homogeneity of a categorical attribute."""
    categories = list(dict.fromkeys([*(FIELDS[name].allowed or ()), *reference_counts, *recent]))
    ref = np.asarray([reference_counts.get(c, 0) for c in categories], dtype=float)
    now = np.asarray([recent.get(c, 0) for c in categories], dtype=float)
    seen = (ref + now) > 0
    if now.sum() > 0 and seen.sum() >= 2:
        test = chi2_contingency(np.vstack([ref[seen], now[seen]]))
        statistic, p_value = float(test.statistic), float(test.pvalue)
    else:
        statistic, p_value = 0.0, 1.0
    return _judged(name, "categorical", "chi-square", statistic, p_value, ref, now, tuple(categories), thresholds)


def _shares(counts: np.ndarray) -> tuple[float, ...]:
    total = counts.sum()
    return tuple(float(c / total) if total else 0.0 for c in counts)


# ------------------------------------------------------------------------------------------- the report
def reference_of(session: Session, setup: str) -> tuple[str, dict[str, Any]] | None:
    """(version id, reference profile) of the active version of ``setup``, or None without one."""
    version = registry.active_versions(session).get(setup)
    return None if version is None else (version.id, dict(version.reference))


def attribute_drift(
    name: str, reference_column: Mapping[str, Any], recent: Mapping[Any, int], thresholds: Thresholds
) -> AttributeDrift:
    """The drift of one attribute given its reference profile column and its recent value counts."""
    if reference_column["kind"] == "categorical":
        return categorical_drift(name, reference_column["counts"], recent, thresholds)
    return numeric_drift(name, reference_column["values"], recent, thresholds)


def drift_report(
    session: Session, settings: Settings, window: Window, setup: str | None = None, max_rows: int = MAX_ROWS
) -> DriftReport | None:
    """Drift of the inputs in ``window`` against the active version's reference; None without one.

    With a ``setup``, its traffic is compared on all its inputs (grades included) with the reference
    of its active version; without, all traffic is compared on the 30 attributes every request has,
    with the reference of the active ``early`` version. Judged by the settings' threshold table.
    """
    found = reference_of(session, setup or "early")
    if found is None:
        return None
    version_id, reference = found
    thresholds = Thresholds.from_settings(settings)
    columns = reference["columns"]
    names = [n for n in (SETUP_FEATURES[setup] if setup else ATTRIBUTES) if n in columns]
    counts = recent_counts(session, settings, window, names, setup, max_rows)
    attributes = tuple(attribute_drift(name, columns[name], counts[name], thresholds) for name in names)
    n_recent = max((a.n_recent for a in attributes), default=0)
    return DriftReport(version_id, setup, window, n_recent, attributes, thresholds)
