"""Expected pass/fail performance before outcomes arrive: confidence-based performance estimation (CBPE).

As in NannyML's CBPE: if the logged P(pass) is calibrated, a student predicted to fail (``p_pass < 0.5``,
*fail* the positive class as in :mod:`model.monitoring.queries`) really fails with probability
``1 - p_pass``, and one predicted to pass really passes with probability ``p_pass``. Every cell of the
confusion matrix then has an expected value, a sum over the logged rows, and so has every metric made
of those cells:

* accuracy: ``sum(max(p, 1 - p)) / n``;
* true positives ``A = sum over flagged rows of (1 - p)``, false negatives ``B = sum over the other
  rows of (1 - p)``, flagged rows ``F``: precision ``A / F``, recall ``A / (A + B)``, F1
  ``2A / (F + A + B)``.

The **sampling interval** is the spread of the realized metric when every outcome is drawn from its
calibrated probability: each row's outcome is an independent Bernoulli draw, so ``A`` and ``B`` have
variances ``sum p (1 - p)`` over their rows, accuracy has ``sum p (1 - p) / n^2``, and precision, recall
and F1 get theirs by the delta method; the interval is the normal one at ``CONFIDENCE``, clipped to
[0, 1]. Every sum is taken in SQL, per ISO week and model version, so the cost is one aggregation.

What this cannot see: the estimate relies on calibration. When the relation between the inputs and the
grade changes (concept drift) while the inputs look the same, the probabilities are miscalibrated and
the estimate stays confident; only realized outcomes show that.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd
import sqlalchemy as sa
from scipy.stats import norm
from sqlalchemy.orm import Session

from model.i18n import N_
from model.monitoring import queries as monitoring
from model.monitoring.queries import DAY, LOG, Window, _row_day
from model.monitoring.uncertainty import CONFIDENCE, clip
from model.store import registry

EXPECTED_METRICS = ("accuracy", "precision", "recall", "f1")
LIMITATION = N_(
    "The expected figures rely on calibration (that the model's P(pass) holds for today's students): "
    "they follow changes "
    "in who is predicted (input drift) but cannot see a change in how inputs relate to grades (concept drift). "
    "Only real outcomes show that."
)


RAW_SUMS = ("n", "p", "p2", "flagged", "flagged_p", "flagged_p2")


def expected_sums(window: Window, versions: Sequence[str], by_day: bool = False) -> sa.Select[Any]:
    """Six plain sums per model version (and UTC day when ``by_day``) of the window's predicted rows:
    rows, sum of p, of p squared, flagged rows, and p and p squared over the flagged rows
    (:func:`cbpe_sums` derives the CBPE sums from them). Days walk the day index; weeks are added up
    from days in Python, since the sums are additive."""
    p = LOG.p_pass
    flagged = p < 0.5
    keys = [LOG.model_version_id, *([DAY] if by_day else [])]
    groups = [LOG.model_version_id, *([_row_day] if by_day else [])]
    return (
        sa.select(
            *keys,
            sa.func.count().label("n"),
            sa.func.sum(p).label("p"),
            sa.func.sum(p * p).label("p2"),
            sa.func.sum(sa.case((flagged, 1), else_=0)).label("flagged"),
            sa.func.sum(sa.case((flagged, p), else_=0.0)).label("flagged_p"),
            sa.func.sum(sa.case((flagged, p * p), else_=0.0)).label("flagged_p2"),
        )
        .where(window.where(LOG.status == "ok", LOG.p_pass.is_not(None), LOG.model_version_id.in_(list(versions))))
        .group_by(*groups)
    )


def cbpe_sums(raw: Mapping[str, Any]) -> dict[str, float]:
    """The CBPE sums of :func:`expected_metrics` from the six plain sums of :func:`expected_sums`."""
    n, p, p2 = float(raw["n"]), float(raw["p"] or 0), float(raw["p2"] or 0)
    flagged, fp, fp2 = float(raw["flagged"] or 0), float(raw["flagged_p"] or 0), float(raw["flagged_p2"] or 0)
    tp = flagged - fp  # sum over flagged rows of (1 - p)
    spread, tp_var = p - p2, fp - fp2  # sums of p (1 - p)
    return {"n": int(n), "correct": tp + (p - fp), "spread": spread, "flagged": int(flagged), "tp": tp,
            "tp_var": tp_var, "fn": (n - flagged) - (p - fp), "fn_var": spread - tp_var}  # fmt: skip


def expected_metrics(sums: Mapping[str, Any], confidence: float = CONFIDENCE) -> dict[str, float | int | None]:
    """The expected accuracy, precision, recall and F1 and their sampling intervals from the CBPE sums.

    ``sums`` holds n, correct (sum of max(p, 1-p)), spread (sum of p(1-p)), flagged, tp, tp_var, fn,
    fn_var as defined in the module's docstring. Keys: ``<metric>``, ``<metric>_low``, ``<metric>_high``
    (None where the metric is undefined: no flagged row for precision, no expected failure for recall).
    """
    z = float(norm.ppf(0.5 + confidence / 2))
    n, flagged = int(sums["n"]), int(sums["flagged"])
    a, b = float(sums["tp"]), float(sums["fn"])
    var_a, var_b = float(sums["tp_var"]), float(sums["fn_var"])
    figures: dict[str, tuple[float, float] | None] = {
        "accuracy": (float(sums["correct"]) / n, float(sums["spread"]) / n**2) if n else None,
        "precision": (a / flagged, var_a / flagged**2) if flagged else None,
        "recall": ((a / (a + b)), (b**2 * var_a + a**2 * var_b) / (a + b) ** 4) if a + b > 0 else None,
        "f1": (
            (2 * a / (flagged + a + b), 4 * ((flagged + b) ** 2 * var_a + a**2 * var_b) / (flagged + a + b) ** 4)
            if flagged + a + b > 0
            else None
        ),
    }
    result: dict[str, float | int | None] = {"n": n}
    for name, figure in figures.items():
        if figure is None:
            result |= {name: None, f"{name}_low": None, f"{name}_high": None}
            continue
        value, variance = figure
        half = z * math.sqrt(max(variance, 0.0))
        result |= {name: value, f"{name}_low": clip(value - half), f"{name}_high": clip(value + half)}
    return result


EXPECTED_COLUMNS = ["model_version_id", "period", "n"] + [
    f"{m}{suffix}" for m in EXPECTED_METRICS for suffix in ("", "_low", "_high")
]


def expected_over_time(session: Session, window: Window, versions: Sequence[str], period: str = "week") -> pd.DataFrame:
    """Per model version and UTC ``period`` (Monday-started week by default): the CBPE figures.

    Columns: model_version_id, period, n, and accuracy, precision, recall, f1 each with _low/_high.
    """
    daily = monitoring._frame(session, expected_sums(window, versions, by_day=True))
    if daily.empty:
        return pd.DataFrame(columns=EXPECTED_COLUMNS)
    days = pd.to_datetime(daily["day"])
    daily["period"] = days - pd.to_timedelta(days.dt.dayofweek, unit="D") if period == "week" else days
    summed = daily.groupby(["model_version_id", "period"], sort=True)[list(RAW_SUMS)].sum().reset_index()
    rows = [{"model_version_id": r["model_version_id"], "period": r["period"], **expected_metrics(cbpe_sums(r))}
            for r in summed.to_dict("records")]  # fmt: skip
    return pd.DataFrame(rows, columns=EXPECTED_COLUMNS)


def expected_vs_realized(
    session: Session, window: Window, min_outcomes: int, versions: Sequence[str] | None = None, period: str = "week"
) -> pd.DataFrame:
    """The expected figures of the active versions (or ``versions``) per week, beside the realized ones.

    One row per version and period with the setup, the CBPE columns of :func:`expected_over_time` and,
    prefixed ``realized_``, the realized metrics with their intervals (:func:`monitoring.realized_over_time`
    for that version: outcomes, accuracy, precision, recall, F1, with ``too_few`` below ``min_outcomes``).
    """
    active = registry.active_versions(session)
    setup_of = {v.id: setup for setup, v in active.items()}
    ids = list(versions) if versions is not None else list(setup_of)
    if not ids:
        return pd.DataFrame(columns=["setup", *EXPECTED_COLUMNS])
    expected = expected_over_time(session, window, ids, period)
    expected.insert(0, "setup", expected["model_version_id"].map(setup_of))
    # One aggregation for every version: keyed by "<version>|<period>" (ROC-AUC ranks within each key).
    key = LOG.model_version_id + "|" + sa.cast(monitoring.PERIODS[period], sa.String)
    sums = monitoring._realized(session, window, key, LOG.model_version_id.in_(ids))
    realized = monitoring._metrics_table(sums, "key", min_outcomes=min_outcomes)
    if realized.empty:
        return expected
    split = realized.pop("key").str.rsplit("|", n=1, expand=True)
    realized.insert(0, "period", pd.to_datetime(split[1]))
    realized.insert(0, "model_version_id", split[0])
    keep = ["model_version_id", "period", *[c for c in realized.columns if c not in ("model_version_id", "period")]]
    realized = realized[keep].rename(columns={c: f"realized_{c}" for c in keep[2:]})
    return expected.merge(realized, on=["model_version_id", "period"], how="left")
