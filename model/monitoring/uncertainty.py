"""Intervals for the realized figures, computed from the sums the SQL aggregations return.

* a proportion (accuracy, precision, recall, a subgroup's false-negative or false-positive rate): the
  Wilson score interval, which stays inside [0, 1] and behaves at 0 and n successes;
* RMSE: the normal interval of the mean squared error (its variance from the sums of squared and fourth
  powers of the errors), clipped at 0, square-rooted; MAE likewise from the squared errors;
* ROC-AUC: Hanley and McNeil's (1982) standard error from the AUC and the two class sizes;
* a gap between two proportions: the normal interval of the difference of two independent proportions.

All at ``CONFIDENCE`` (two-sided). Below a minimum number of outcomes a figure is reported as
"too few outcomes" (:func:`figure_text`), not as a number.
"""

from __future__ import annotations

import math

from babel.numbers import format_decimal
from scipy.stats import norm

from model import i18n
from model.i18n import N_, tr

CONFIDENCE = 0.95
TOO_FEW = N_("too few outcomes")
Interval = tuple[float | None, float | None]


def count_text(n: int) -> str:
    """A count with its thousands mark: ``1,000`` in English, Babel's grouping in another language."""
    code = i18n.language()
    return f"{n:,}" if code == i18n.ENGLISH else format_decimal(n, format="#,##0", locale=code)


def z_value(confidence: float = CONFIDENCE) -> float:
    """The two-sided normal quantile of ``confidence`` (1.96 for 95%)."""
    return float(norm.ppf(0.5 + confidence / 2))


def clip(value: float, low: float = 0.0, high: float = 1.0) -> float:
    return min(max(value, low), high)


def wilson(successes: float, n: float, confidence: float = CONFIDENCE) -> Interval:
    """Wilson score interval of ``successes`` out of ``n`` (None, None when n is 0)."""
    if not n:
        return None, None
    z = z_value(confidence)
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return clip(centre - half), clip(centre + half)


def rmse_interval(squared_sum: float, fourth_sum: float, n: int, confidence: float = CONFIDENCE) -> Interval:
    """Interval of the RMSE from the sums of squared and fourth-power errors over ``n`` rows: the square
    root of the MSE's normal interval (:func:`mean_interval` of the squared errors)."""
    low, high = mean_interval(squared_sum, fourth_sum, n, confidence)
    return (None, None) if low is None or high is None else (math.sqrt(low), math.sqrt(high))


def mean_interval(total: float, squared_sum: float, n: int, confidence: float = CONFIDENCE) -> Interval:
    """Normal interval of a mean from the sum and the sum of squares of ``n`` values (MAE: |errors|)."""
    if n < 2:
        return None, None
    mean = total / n
    sd = math.sqrt(max(squared_sum / n - mean * mean, 0.0) / n)
    z = z_value(confidence)
    return max(mean - z * sd, 0.0), mean + z * sd


def auc_interval(auc: float | None, positives: int, negatives: int, confidence: float = CONFIDENCE) -> Interval:
    """Hanley-McNeil interval of a ROC-AUC with ``positives`` and ``negatives`` cases."""
    if auc is None or not positives or not negatives:
        return None, None
    q1, q2 = auc / (2 - auc), 2 * auc * auc / (1 + auc)
    variance = (auc * (1 - auc) + (positives - 1) * (q1 - auc * auc) + (negatives - 1) * (q2 - auc * auc)) / (
        positives * negatives
    )
    half = z_value(confidence) * math.sqrt(max(variance, 0.0))
    return clip(auc - half), clip(auc + half)


def gap_interval(k1: float, n1: float, k2: float, n2: float, confidence: float = CONFIDENCE) -> Interval:
    """Normal interval of the difference ``k1/n1 - k2/n2`` of two independent proportions."""
    if not n1 or not n2:
        return None, None
    p1, p2 = k1 / n1, k2 / n2
    half = z_value(confidence) * math.sqrt(p1 * (1 - p1) / n1 + p2 * (1 - p2) / n2)
    return clip(p1 - p2 - half, -1.0), clip(p1 - p2 + half, -1.0)


def figure_text(value: float | None, low: float | None, high: float | None, n: int, min_n: int,
                percent: bool = True) -> str:  # fmt: skip
    """A figure as a person reads it: "72% (64-79%, n = 120)", or "too few outcomes (n = 12)"."""
    if n < min_n:
        return tr("too few outcomes (n = {n})", n=n)
    if value is None:
        return tr("undefined (n = {n})", n=n)

    def shown(x: float) -> str:
        return i18n.percent(x, 0) if percent else i18n.number(x, 2)

    if low is None or high is None:
        return tr("{value} (n = {n})", value=shown(value), n=n)
    return tr("{value} ({low}–{high}, n = {n})", value=shown(value), low=shown(low), high=shown(high), n=n)
