"""Monitoring the prediction log: volume, latency, errors, predicted grades, feedback, realized quality.

Every figure is an SQL aggregation over a time :class:`Window` of the log, so a page or a check reads
a few dozen rows whatever the size of the table. Each function reads through the caller's ``Session``
(the front opens the transaction once). Days are UTC calendar days. Latency is per logged row
(a batch's time is shared evenly among its rows). Realized quality sets each logged prediction beside
the latest real grade recorded for the same pseudonymous ``student_key`` and aggregates the pairs in
SQL too (ROC-AUC from ranks by window functions); Python only divides the sums.

Pass/fail metrics treat *fail* (G3 below the pass mark) as the positive class, the case the early
warning exists to catch: a student is predicted to fail when ``p_pass < 0.5`` (as in the protocol),
and ROC-AUC ranks students by ``1 - p_pass``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import Session
from sqlalchemy.sql.functions import FunctionElement

from model.monitoring import uncertainty
from model.schema.fields import BANDS, PASS_MARK
from model.schema.thresholds import RISK_LEVELS
from model.store.tables import (
    CHANNELS,
    FEEDBACK_CATEGORIES,
    NEGATIVE_FEEDBACK,
    STATUSES,
    Feedback,
    Outcome,
    PredictionLog,
    utc_day,
)

LOG = PredictionLog.__table__.c
PERCENTILES = (0.5, 0.95)
UNION_LIMIT = 200  # SELECTs per UNION ALL (SQLite allows 500)
SORT_ROWS = 200_000  # a window's latencies up to this many are sorted; beyond, the latency index is walked
REALIZED_METRICS = ("n", "mae", "rmse", "accuracy", "precision", "recall", "f1", "roc_auc")
WITH_INTERVALS = ("mae", "rmse", "accuracy", "precision", "recall", "roc_auc")  # F1 has no interval here
INTERVAL_COLUMNS = tuple(f"{m}_{end}" for m in WITH_INTERVALS for end in ("low", "high"))


@dataclass(frozen=True)
class Window:
    """A time range of the log, ``start <= created_at < end``; ``include_demo`` keeps demo rows."""

    start: datetime
    end: datetime
    include_demo: bool = True

    @classmethod
    def last(cls, days: float, now: datetime | None = None, include_demo: bool = True) -> Window:
        """The ``days`` before ``now`` (default: the current time)."""
        end = now or datetime.now(UTC)
        return cls(end - timedelta(days=days), end, include_demo)

    def conditions(self, *extra: sa.ColumnElement[bool]) -> list[sa.ColumnElement[bool]]:
        """The SQL conditions selecting the window's log rows, and ``extra``.

        The bounds are also given on the UTC day, so the planner can walk ``ix_prediction_log_day``.
        """
        first, last = self.start.astimezone(UTC).date(), self.end.astimezone(UTC).date()
        clauses = [_row_day >= first, _row_day <= last, LOG.created_at >= self.start, LOG.created_at < self.end]
        if not self.include_demo:
            clauses.append(LOG.is_demo.is_(False))
        return [*clauses, *extra]

    def where(self, *extra: sa.ColumnElement[bool]) -> sa.ColumnElement[bool]:
        """The conditions of :meth:`conditions` as one clause."""
        return sa.and_(*self.conditions(*extra))


_row_day = utc_day(LOG.created_at)
DAY = _row_day.label("day")


def _frame(session: Session, query: sa.Select[Any] | sa.CompoundSelect[Any]) -> pd.DataFrame:
    result = session.execute(query)
    frame = pd.DataFrame(result.fetchall(), columns=list(result.keys()))
    if "day" in frame:
        frame["day"] = pd.to_datetime(frame["day"].astype(str))
    return frame


def _scalar_row(session: Session, query: sa.Select[Any]) -> dict[str, Any]:
    return dict(session.execute(query).one()._mapping)


def is_postgresql(session: Session) -> bool:
    """Whether the session's database is PostgreSQL (the queries that differ by dialect ask)."""
    return session.get_bind().dialect.name == "postgresql"


def daily_counts(
    session: Session, window: Window, column: str, values: tuple[str, ...], *conditions: sa.ColumnElement[bool]
) -> pd.DataFrame:
    """Rows per UTC day with one column per value of ``column`` (conditional sums: one ordered index walk)."""
    sums = [sa.func.sum(sa.case((LOG[column] == value, 1), else_=0)).label(value) for value in values]
    query = sa.select(DAY, *sums).where(window.where(*conditions)).group_by(_row_day).order_by(_row_day)
    frame = _frame(session, query)
    frame[list(values)] = frame[list(values)].astype(int)
    return frame


# ---------------------------------------------------------------------------------------------- volume
def volume_by_day(session: Session, window: Window) -> pd.DataFrame:
    """Logged rows per UTC day and channel: columns day, ui, api, cli."""
    return daily_counts(session, window, "channel", CHANNELS)


def demo_rows(session: Session, window: Window) -> int:
    """How many rows of the window are demo traffic (written by ``demo-traffic``)."""
    query = sa.select(sa.func.count()).where(window.where(LOG.is_demo.is_(True)))
    return int(session.execute(query).scalar_one())


# --------------------------------------------------------------------------------------------- latency
def _percentile_columns() -> list[sa.Label[Any]]:
    return [sa.func.percentile_cont(p).within_group(LOG.latency_ms).label(f"p{round(p * 100)}") for p in PERCENTILES]


def _interpolate(sorted_pair: list[float], p: float, n: int) -> float:
    """``percentile_cont``: linear interpolation between the ranks around ``p * (n - 1)``."""
    position = p * (n - 1)
    fraction = position - int(position)
    low = sorted_pair[0]
    high = sorted_pair[1] if len(sorted_pair) > 1 else low
    return low + fraction * (high - low)


def _nth_values(window: Window, p: float, n: int, day: Any = None) -> sa.Select[Any]:
    """The two latencies around rank ``p * (n - 1)`` (of ``day``, or of the window): ORDER BY/LIMIT/OFFSET.

    A day is read from ``ix_prediction_log_day`` in latency order. A window of many rows walks
    ``ix_prediction_log_latency_ms`` in order, its bounds wrapped in ``likely()`` so that SQLite does
    not range-scan another index and sort instead; a window of few rows (a day's alert check) is
    range-scanned on the day index and sorted, rather than walking the latency index of the whole log.
    """
    if day is None and n > SORT_ROWS:
        where = sa.and_(*(sa.func.likely(c) for c in window.conditions(LOG.latency_ms.is_not(None))))
    elif day is None:  # few rows: read them by the day index and sort them, not the whole latency index
        where = window.where(LOG.latency_ms.is_not(None))
    else:
        where = window.where(LOG.latency_ms.is_not(None), _row_day == day)
    ranked = (
        sa.select(sa.literal(str(day)).label("day"), sa.literal(p).label("p"), LOG.latency_ms)
        .where(where)
        .order_by(LOG.latency_ms)
        .limit(2)
        .offset(int(p * (n - 1)))
        .subquery()
    )
    return sa.select(*ranked.c)


def _sqlite_percentiles(session: Session, window: Window, counts: dict[Any, int]) -> dict[Any, dict[str, float]]:
    """Percentiles per key of ``counts`` (a day, or None for the whole window) by ranked lookups."""
    selects = [_nth_values(window, p, n, day) for day, n in counts.items() for p in PERCENTILES]
    pairs: dict[tuple[str, float], list[float]] = {}
    for start in range(0, len(selects), UNION_LIMIT):
        for day, p, value in session.execute(sa.union_all(*selects[start : start + UNION_LIMIT])):
            pairs.setdefault((day, p), []).append(value)
    return {
        day: {f"p{round(p * 100)}": _interpolate(sorted(pairs[(str(day), p)]), p, n) for p in PERCENTILES}
        for day, n in counts.items()
    }


def latency_by_day(session: Session, window: Window) -> pd.DataFrame:
    """Latency per logged row, per UTC day: columns day, n, p50, p95 (milliseconds)."""
    measured = window.where(LOG.latency_ms.is_not(None))
    if is_postgresql(session):
        query = sa.select(DAY, sa.func.count().label("n"), *_percentile_columns()).where(measured)
        return _frame(session, query.group_by(_row_day).order_by(_row_day))
    counts_query = sa.select(DAY, sa.func.count()).where(measured).group_by(_row_day).order_by(_row_day)
    counts = dict(session.execute(counts_query).all())
    values = _sqlite_percentiles(session, window, counts)
    frame = pd.DataFrame([{"day": day, "n": n, **values[day]} for day, n in counts.items()],
                         columns=["day", "n", *(f"p{round(p * 100)}" for p in PERCENTILES)])  # fmt: skip
    frame["day"] = pd.to_datetime(frame["day"].astype(str))
    return frame


def latency_summary(session: Session, window: Window) -> dict[str, float | None]:
    """Latency per logged row over the whole window: n, p50, p95 (None when there is no row)."""
    measured = window.where(LOG.latency_ms.is_not(None))
    if is_postgresql(session):
        row = _scalar_row(session, sa.select(sa.func.count().label("n"), *_percentile_columns()).where(measured))
        return {"n": int(row.pop("n"))} | {k: (None if v is None else float(v)) for k, v in row.items()}
    n = int(session.execute(sa.select(sa.func.count()).where(measured)).scalar_one())
    if n == 0:
        return {"n": 0} | {f"p{round(p * 100)}": None for p in PERCENTILES}
    return {"n": n} | _sqlite_percentiles(session, window, {None: n})[None]


# ---------------------------------------------------------------------------------------------- errors
def status_by_day(session: Session, window: Window) -> pd.DataFrame:
    """Rows per UTC day by status: columns ok, rejected, error, total and error_rate (not ok / total)."""
    frame = daily_counts(session, window, "status", STATUSES)
    frame["total"] = frame[list(STATUSES)].sum(axis=1)
    frame["error_rate"] = (frame["total"] - frame["ok"]) / frame["total"]
    return frame


def error_types(session: Session, window: Window) -> pd.DataFrame:
    """Failed rows by status and error type, most frequent first: columns status, error_type, n."""
    error_type = sa.func.coalesce(LOG.error_type, "unknown")
    query = (
        sa.select(LOG.status, error_type.label("error_type"), sa.func.count().label("n"))
        .where(window.where(LOG.status != "ok"))
        .group_by(LOG.status, error_type)
        .order_by(sa.func.count().desc())
    )
    return _frame(session, query)


def error_summary(session: Session, window: Window) -> dict[str, float | int]:
    """Rows in the window (``total``), rows not predicted (``failed``) and their share (``error_rate``)."""
    failed = sa.func.sum(sa.case((LOG.status != "ok", 1), else_=0))
    row = _scalar_row(session, sa.select(sa.func.count().label("total"), failed.label("failed")).where(window.where()))
    total, failed_n = int(row["total"]), int(row["failed"] or 0)
    return {"total": total, "failed": failed_n, "error_rate": failed_n / total if total else 0.0}


# ----------------------------------------------------------------------------------- predicted grades
def bands_by_day(session: Session, window: Window) -> pd.DataFrame:
    """Predicted rows per UTC day by band (I best ... V fail): columns day, I, II, III, IV, V."""
    return daily_counts(session, window, "band", tuple(BANDS), LOG.status == "ok")


def risk_by_day(session: Session, window: Window) -> pd.DataFrame:
    """Predicted rows per UTC day by risk level: columns day, high, medium, low."""
    return daily_counts(session, window, "risk", RISK_LEVELS, LOG.status == "ok")


def predicted_grade_histogram(session: Session, window: Window) -> pd.DataFrame:
    """Predicted G3 rounded to whole grades: columns grade (0-20), n."""
    grade = sa.cast(sa.func.floor(LOG.predicted_g3 + 0.5), sa.Integer)
    query = (
        sa.select(grade.label("grade"), sa.func.count().label("n"))
        .where(window.where(LOG.status == "ok", LOG.predicted_g3.is_not(None)))
        .group_by(grade)
        .order_by(grade)
    )
    return _frame(session, query)


# -------------------------------------------------------------------------------------------- feedback
def _remark_days(window: Window) -> sa.Subquery:
    """The UTC day of the prediction each feedback remark is about (NULL outside the window), and its category.

    Driven from the small feedback table, one primary-key lookup in the log per remark.
    """
    day = sa.select(_row_day).where(LOG.id == Feedback.prediction_id, window.where(LOG.status == "ok"))
    return sa.select(day.scalar_subquery().label("day"), Feedback.category).select_from(Feedback).subquery("remarks")


def feedback_by_day(session: Session, window: Window) -> pd.DataFrame:
    """Per UTC day of the prediction: predictions, negative remarks on them (``NEGATIVE_FEEDBACK``: not
    useful, wrongly flagged) and their rate."""
    predictions = daily_counts(session, window, "status", ("ok",)).rename(columns={"ok": "predictions"})
    remarks = _remark_days(window)
    query = sa.select(remarks.c.day, sa.func.count().label("feedback")).where(
        remarks.c.day.is_not(None), remarks.c.category.in_(NEGATIVE_FEEDBACK)
    )
    counts = _frame(session, query.group_by(remarks.c.day))
    frame = predictions.merge(counts, on="day", how="left").fillna({"feedback": 0})
    frame["feedback"] = frame["feedback"].astype(int)
    frame["rate"] = frame["feedback"] / frame["predictions"].where(frame["predictions"] > 0)
    return frame


def feedback_by_category(session: Session, window: Window) -> pd.DataFrame:
    """Remarks on the window's predictions per category (every one of ``FEEDBACK_CATEGORIES``, zeros
    included, in that order): columns category, remarks, negative (whether the feedback alert counts it)."""
    remarks = _remark_days(window)
    query = (
        sa.select(remarks.c.category, sa.func.count()).where(remarks.c.day.is_not(None)).group_by(remarks.c.category)
    )
    found = {category: int(count) for category, count in session.execute(query)}
    return pd.DataFrame(
        {
            "category": list(FEEDBACK_CATEGORIES),
            "remarks": [found.get(category, 0) for category in FEEDBACK_CATEGORIES],
            "negative": [category in NEGATIVE_FEEDBACK for category in FEEDBACK_CATEGORIES],
        }
    )


def feedback_summary(session: Session, window: Window) -> dict[str, float | int]:
    """Predictions in the window, negative remarks on them (``NEGATIVE_FEEDBACK``: not useful, wrongly
    flagged) and the rate (negative remarks per prediction)."""
    remarks = _remark_days(window)
    predicted = sa.select(sa.func.count()).where(window.where(LOG.status == "ok"))
    predictions = int(session.execute(predicted).scalar_one())
    counted = sa.select(sa.func.count()).where(remarks.c.day.is_not(None), remarks.c.category.in_(NEGATIVE_FEEDBACK))
    feedback = int(session.execute(counted).scalar_one())
    return {"predictions": predictions, "feedback": feedback, "rate": feedback / predictions if predictions else 0.0}


# ------------------------------------------------------------------------------------ realized quality
def latest_outcomes() -> sa.Subquery:
    """The most recently recorded real grade of every student key: columns student_key, g3."""
    ranked = sa.select(
        Outcome.student_key,
        Outcome.g3,
        sa.func.row_number()
        .over(partition_by=Outcome.student_key, order_by=(Outcome.recorded_at.desc(), Outcome.id.desc()))
        .label("rank"),
    ).subquery("ranked_outcome")
    return sa.select(ranked.c.student_key, ranked.c.g3).where(ranked.c.rank == 1).subquery("latest_outcome")


class utc_week(FunctionElement[date]):
    """The Monday (UTC) starting the ISO week of a timestamp column, as a ``date``."""

    type = sa.Date()
    inherit_cache = True


@compiles(utc_week, "sqlite")
def _utc_week_sqlite(element: utc_week, compiler: Any, **kw: Any) -> str:
    return f"date(substr({compiler.process(element.clauses, **kw)}, 1, 10), 'weekday 0', '-6 days')"


@compiles(utc_week, "postgresql")
def _utc_week_postgresql(element: utc_week, compiler: Any, **kw: Any) -> str:
    return f"(date_trunc('week', {compiler.process(element.clauses, **kw)} AT TIME ZONE 'UTC')::date)"


PERIODS = {"day": _row_day, "week": utc_week(LOG.created_at)}


def _realized(
    session: Session, window: Window, key: sa.ColumnElement[Any], *extra: sa.ColumnElement[bool]
) -> pd.DataFrame:
    """Per value of ``key``: the sums the realized metrics are made of, aggregated in SQL.

    ROC-AUC is Mann-Whitney's U from the rank sum of the failed students, students ranked by
    ``1 - p_pass`` within their group with ties given their average rank (window functions).
    """
    latest = latest_outcomes()
    joined = (
        sa.select(
            key.label("key"),
            LOG.setup,
            LOG.p_pass,
            (LOG.predicted_g3 - latest.c.g3).label("error"),
            sa.case((latest.c.g3 < PASS_MARK, 1), else_=0).label("failed"),
            sa.case((LOG.p_pass < 0.5, 1), else_=0).label("flagged"),
        )
        .join_from(PredictionLog.__table__, latest, latest.c.student_key == LOG.student_key)
        .where(window.where(LOG.status == "ok", LOG.p_pass.is_not(None), LOG.predicted_g3.is_not(None), *extra))
        .subquery("joined")
    )
    j = joined.c
    average_rank = sa.func.rank().over(partition_by=j.key, order_by=j.p_pass.desc()) + (
        sa.func.count().over(partition_by=(j.key, j.p_pass)) - 1
    ) / sa.literal(2.0)
    ranked = sa.select(j.key, j.setup, j.error, j.failed, j.flagged, average_rank.label("rank")).subquery("ranked")
    r = ranked.c
    query = (
        sa.select(
            r.key,
            sa.func.min(r.setup).label("setup"),
            sa.func.count().label("n"),
            sa.func.sum(sa.func.abs(r.error)).label("abs_error"),
            sa.func.sum(r.error * r.error).label("squared_error"),
            sa.func.sum(r.error * r.error * r.error * r.error).label("fourth_error"),
            sa.func.sum(r.failed).label("failed"),
            sa.func.sum(r.flagged).label("flagged"),
            sa.func.sum(r.failed * r.flagged).label("hits"),
            sa.func.sum(sa.case((r.failed == 1, r.rank), else_=0)).label("failed_rank_sum"),
        )
        .group_by(r.key)
        .order_by(r.key)
    )
    return _frame(session, query)


def _ratio(numerator: float, denominator: float) -> float | None:
    return numerator / denominator if denominator else None


def _metrics(sums: Mapping[str, Any], min_outcomes: int = 1) -> dict[str, Any]:
    """MAE and RMSE of the predicted grade; accuracy, precision, recall, F1 and ROC-AUC for *fail*; each
    (but F1) with its interval (:mod:`model.monitoring.uncertainty`) and ``too_few`` below ``min_outcomes``."""
    n = int(sums["n"])
    failed, flagged, hits = int(sums["failed"]), int(sums["flagged"]), int(sums["hits"])
    passed = n - failed
    correct = n - failed - flagged + 2 * hits
    auc = None
    if failed and passed:
        auc = (float(sums["failed_rank_sum"]) - failed * (failed + 1) / 2) / (failed * passed)
    squared, fourth = float(sums["squared_error"]), float(sums.get("fourth_error") or 0.0)
    intervals = {
        "mae": uncertainty.mean_interval(float(sums["abs_error"]), squared, n),
        "rmse": uncertainty.rmse_interval(squared, fourth, n),
        "accuracy": uncertainty.wilson(correct, n),
        "precision": uncertainty.wilson(hits, flagged),
        "recall": uncertainty.wilson(hits, failed),
        "roc_auc": uncertainty.auc_interval(auc, failed, passed),
    }
    return {
        "n": n,
        "mae": float(sums["abs_error"]) / n,
        "rmse": math.sqrt(squared / n),
        "accuracy": correct / n,
        "precision": _ratio(hits, flagged),
        "recall": _ratio(hits, failed),
        "f1": _ratio(2 * hits, flagged + failed),
        "roc_auc": auc,
        **{f"{m}_low": low for m, (low, _) in intervals.items()},
        **{f"{m}_high": high for m, (_, high) in intervals.items()},
        "too_few": n < min_outcomes,
    }


def _metrics_table(sums: pd.DataFrame, key: str, with_setup: bool = False, min_outcomes: int = 1) -> pd.DataFrame:
    rows = [{key: row["key"], **({"setup": row["setup"]} if with_setup else {}), **_metrics(row, min_outcomes)}
            for row in sums.to_dict("records")]  # fmt: skip
    columns = [key, *(["setup"] if with_setup else []), *REALIZED_METRICS, *INTERVAL_COLUMNS, "too_few"]
    return pd.DataFrame(rows, columns=columns)


def realized_by_version(
    session: Session, window: Window, versions: Sequence[str] | None = None, min_outcomes: int = 1
) -> pd.DataFrame:
    """Realized metrics per model version (and its setup), with the count of rows each rests on, their
    intervals and ``too_few`` (fewer than ``min_outcomes``); ``versions`` limits the table to those ids."""
    extra = [] if versions is None else [LOG.model_version_id.in_(list(versions))]
    sums = _realized(session, window, LOG.model_version_id, *extra)
    return _metrics_table(sums, "model_version_id", True, min_outcomes)


def realized_over_time(
    session: Session, window: Window, period: str = "week", *extra: sa.ColumnElement[bool], min_outcomes: int = 1
) -> pd.DataFrame:
    """Realized metrics (with intervals) per UTC ``period`` ("day", or "week" starting on Monday) of
    prediction time, of the rows matching ``extra``."""
    table = _metrics_table(_realized(session, window, PERIODS[period], *extra), "period", min_outcomes=min_outcomes)
    table["period"] = pd.to_datetime(table["period"].astype(str))
    return table


# -------------------------------------------------------------------------------------------- overview
@dataclass(frozen=True)
class Overview:
    """The headline figures of a window."""

    rows: int
    error_rate: float
    p50_ms: float | None
    p95_ms: float | None
    feedback_rate: float
    demo_rows: int


def overview(session: Session, window: Window) -> Overview:
    """Rows, error rate, latency p50/p95, feedback rate and demo rows of ``window``."""
    errors, latency = error_summary(session, window), latency_summary(session, window)
    return Overview(
        rows=int(errors["total"]),
        error_rate=float(errors["error_rate"]),
        p50_ms=latency["p50"],
        p95_ms=latency["p95"],
        feedback_rate=float(feedback_summary(session, window)["rate"]),
        demo_rows=demo_rows(session, window),
    )
