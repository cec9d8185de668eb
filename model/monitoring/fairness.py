"""Fairness in production: per subgroup (sex, school, address, age band), over time.

For each subgroup of :data:`GROUPS` and ISO week of prediction time:

* the **predicted high-risk rate** (risk level 'high': P(pass) below ``risk_high_below``), known at once;
* once real grades exist (the latest :class:`~model.store.tables.Outcome` of the student key), the
  **false-negative rate** (failing students not flagged: ``p_pass >= 0.5``) and the **false-positive
  rate** (passing students flagged), each with its Wilson interval and the outcomes it rests on.

Per attribute, the **gap** of a rate is the largest minus the smallest subgroup rate among the subgroups
holding at least ``alert_min_outcomes`` outcomes, with the normal interval of a difference of two
proportions; the fairness alert fires when a gap exceeds ``alert_fairness_gap``.

The subgroup attributes are inside the logged inputs, which may be encrypted at rest: the rows are read
as a bounded sample (the window's newest ``max_rows`` predicted rows, as the drift sample) and decrypted
here, in the monitoring wing, never in a front.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.orm import Session

from model import i18n
from model.i18n import N_, tr
from model.monitoring.queries import LOG, PERIODS, Window, latest_outcomes
from model.monitoring.samples import MAX_ROWS
from model.monitoring.uncertainty import gap_interval, wilson
from model.schema.fields import PASS_MARK
from model.settings import Settings
from model.store import crypto


def age_band(age: Any) -> str | None:
    """15-16, 17-18 or 19+ (None when unknown)."""
    if age is None:
        return None
    age = int(age)
    return "15-16" if age <= 16 else "17-18" if age <= 18 else "19+"


GROUPS: dict[str, tuple[str, Callable[[Any], Any]]] = {
    "sex": ("sex", lambda v: v),
    "school": ("school", lambda v: v),
    "address": ("address", lambda v: v),
    "age band": ("age", age_band),
}
RATES = ("high_risk_rate", "fnr", "fpr")
# The subgroup attributes as shown (the keys of GROUPS stay the stored and compared names).
ATTRIBUTE_LABELS = {"sex": N_("sex"), "school": N_("school"), "address": N_("address"), "age band": N_("age band")}


def predictions_with_groups(
    session: Session, settings: Settings, window: Window, max_rows: int = MAX_ROWS, outcomes_only: bool = False
) -> pd.DataFrame:
    """The window's newest ``max_rows`` predicted rows: period (week), flagged, high_risk, failed (None
    without an outcome) and one column per subgroup attribute of :data:`GROUPS`. ``outcomes_only`` keeps
    (and decrypts) only the sampled rows whose student has a recorded grade: all the gaps need."""
    sample = (
        sa.select(PERIODS["week"].label("period"), LOG.p_pass, LOG.risk, LOG.inputs, LOG.student_key)
        .where(window.where(LOG.status == "ok", LOG.p_pass.is_not(None), LOG.inputs.is_not(None)))
        .order_by(LOG.created_at.desc())
        .limit(max_rows)
        .subquery("sample")
    )  # the bounded sample first, then its outcomes: never the join over the whole window
    latest = latest_outcomes()
    query = sa.select(sample.c.period, sample.c.p_pass, sample.c.risk, sample.c.inputs, latest.c.g3).select_from(
        sa.outerjoin(sample, latest, latest.c.student_key == sample.c.student_key)
    )
    if outcomes_only:
        query = query.where(latest.c.g3.is_not(None))
    ring = crypto.keyring(settings)
    rows = session.execute(query).all()
    records = []
    for period, p_pass, risk, inputs, g3 in rows:
        decoded = ring.decrypt_inputs(inputs) or {}
        record = {"period": str(period), "flagged": p_pass < 0.5, "high_risk": risk == "high",
                  "failed": None if g3 is None else g3 < PASS_MARK}  # fmt: skip
        for name, (attribute, derive) in GROUPS.items():
            record[name] = derive(decoded.get(attribute))
        records.append(record)
    frame = pd.DataFrame(records, columns=["period", "flagged", "high_risk", "failed", *GROUPS])
    frame["period"] = pd.to_datetime(frame["period"])
    return frame


def _rates(frame: pd.DataFrame) -> dict[str, Any]:
    known = frame[frame["failed"].notna()]
    failed = known[known["failed"].astype(bool)]
    passed = known[~known["failed"].astype(bool)]
    missed = int((~failed["flagged"].astype(bool)).sum())
    false_alarms = int(passed["flagged"].astype(bool).sum())
    n, high = len(frame), int(frame["high_risk"].sum())
    fnr_low, fnr_high = wilson(missed, len(failed))
    fpr_low, fpr_high = wilson(false_alarms, len(passed))
    hr_low, hr_high = wilson(high, n)
    return {
        "n": n, "high_risk_rate": high / n if n else None, "high_risk_rate_low": hr_low, "high_risk_rate_high": hr_high,
        "outcomes": len(known),
        "failed": len(failed), "missed": missed, "fnr": missed / len(failed) if len(failed) else None,
        "fnr_low": fnr_low, "fnr_high": fnr_high,
        "passed": len(passed), "false_alarms": false_alarms,
        "fpr": false_alarms / len(passed) if len(passed) else None, "fpr_low": fpr_low, "fpr_high": fpr_high,
    }  # fmt: skip


def subgroup_table(frame: pd.DataFrame, by_period: bool = False) -> pd.DataFrame:
    """Per attribute and subgroup (and week when ``by_period``): the rates of the module's docstring."""
    rows = []
    for attribute in GROUPS:
        keys = ["period", attribute] if by_period else [attribute]
        for key, part in frame.dropna(subset=[attribute]).groupby(keys, sort=True):
            values = key if isinstance(key, tuple) else (key,)
            head = {"attribute": attribute, **({"period": values[0]} if by_period else {}), "group": str(values[-1])}
            rows.append(head | _rates(part))
    columns = ["attribute", *(["period"] if by_period else []), "group", "n", "high_risk_rate", "high_risk_rate_low",
               "high_risk_rate_high", "outcomes", "failed", "missed", "fnr", "fnr_low", "fnr_high", "passed",
               "false_alarms", "fpr", "fpr_low", "fpr_high"]  # fmt: skip
    return pd.DataFrame(rows, columns=columns)


@dataclass(frozen=True)
class Gap:
    """The largest difference of one rate between the subgroups of one attribute that hold enough outcomes."""

    attribute: str
    rate: str  # 'fnr' or 'fpr'
    high_group: str
    low_group: str
    gap: float
    low: float | None
    high: float | None
    n_high: int
    n_low: int

    def text(self) -> str:
        """The gap in words, in this context's language (the alert stores it in English)."""
        return gap_text(self.attribute, self.rate, self.gap, self.high_group, self.low_group, self.n_high, self.n_low,
                        self.low, self.high)  # fmt: skip


RATE_NAMES = {"fnr": N_("false-negative rate"), "fpr": N_("false-positive rate")}


def _signed(share: float) -> str:
    text = i18n.percent(share, 0)
    return text if text.startswith("-") else f"+{text}"


def gap_text(attribute: str, rate: str, gap: float, high_group: str, low_group: str, n_high: int, n_low: int,
             low: float | None = None, high: float | None = None) -> str:  # fmt: skip
    """ "sex: false-negative rate 12% higher for M (n = 40) than F (n = 38) (95% interval -3% to +27%)"."""
    values = {"attribute": tr(ATTRIBUTE_LABELS.get(attribute, attribute)), "rate": tr(RATE_NAMES[rate]),
              "gap": i18n.percent(gap, 0), "high_group": high_group, "n_high": n_high, "low_group": low_group,
              "n_low": n_low}  # fmt: skip
    if low is None or high is None:
        return tr("{attribute}: {rate} {gap} higher for {high_group} (n = {n_high}) than {low_group} (n = {n_low})",
                  **values)  # fmt: skip
    return tr("{attribute}: {rate} {gap} higher for {high_group} (n = {n_high}) than {low_group} (n = {n_low}) "
              "(95% interval {low} to {high})", low=_signed(low), high=_signed(high), **values)  # fmt: skip


def gaps(table: pd.DataFrame, min_outcomes: int) -> list[Gap]:
    """Per attribute and rate (FNR, FPR): the gap between the subgroups with at least ``min_outcomes``
    students behind the rate (failing students for FNR, passing ones for FPR)."""
    found = []
    for attribute, part in table.groupby("attribute", sort=False):
        for rate, base, hits in (("fnr", "failed", "missed"), ("fpr", "passed", "false_alarms")):
            enough = part[(part[base] >= min_outcomes) & part[rate].notna()]
            if len(enough) < 2:
                continue
            top, bottom = enough.loc[enough[rate].idxmax()], enough.loc[enough[rate].idxmin()]
            low, high = gap_interval(top[hits], top[base], bottom[hits], bottom[base])
            difference = float(top[rate] - bottom[rate])
            found.append(Gap(str(attribute), rate, str(top["group"]), str(bottom["group"]), difference, low, high,
                             int(top[base]), int(bottom[base])))  # fmt: skip
    return found


def outcome_gaps(session: Session, settings: Settings, window: Window, max_rows: int = MAX_ROWS) -> list[Gap]:
    """The gaps of :func:`fairness_report` alone (what the alert needs): only rows with an outcome are decrypted,
    and no weekly table is built."""
    frame = predictions_with_groups(session, settings, window, max_rows, outcomes_only=True)
    return gaps(subgroup_table(frame), settings.alert_min_outcomes) if len(frame) else []


def fairness_report(
    session: Session, settings: Settings, window: Window, max_rows: int = MAX_ROWS
) -> tuple[pd.DataFrame, pd.DataFrame, list[Gap]]:
    """(subgroups over the whole window, subgroups per week, gaps) of the window's bounded sample."""
    frame = predictions_with_groups(session, settings, window, max_rows)
    overall = subgroup_table(frame)
    return overall, subgroup_table(frame, by_period=True), gaps(overall, settings.alert_min_outcomes)
