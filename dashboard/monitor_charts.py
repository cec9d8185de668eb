"""Plotly figures of the monitoring page, and the open-alerts banner of admin pages.

Every builder takes the small aggregated frames of :mod:`model.monitoring.queries` / :mod:`model.monitoring.drift`.
"""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd
import plotly.graph_objects as go
import streamlit as st
from sqlalchemy.orm import Session

from model import i18n
from model.i18n import N_, tr, tr_n
from model.monitoring.alerts import alert_text, open_alerts
from model.monitoring.drift import STATUS_LABELS, AttributeDrift
from model.monitoring.fairness import ATTRIBUTE_LABELS
from model.schema.fields import FIELDS
from model.schema.thresholds import Thresholds

REFERENCE, RECENT = "#9aa5b1", "#1f5fa8"
LINES_MARKERS = "lines+markers"  # not shown to users (a plotly mode)
SERIES = {"ui": "#1f5fa8", "api": "#2e7d32", "cli": "#8e6c00", "ok": "#2e7d32", "rejected": "#e0a800",
          "error": "#c62828", "high": "#c62828", "medium": "#e0a800", "low": "#2e7d32", "I": "#1b5e20",
          "II": "#43a047", "III": "#9ccc65", "IV": "#fbc02d", "V": "#c62828"}  # fmt: skip
# The series as named on a chart (channels, risk levels; the bands I-V keep their names).
SERIES_NAMES = {"ui": N_("ui"), "api": N_("api"), "cli": N_("cli"), "high": N_("high"), "medium": N_("medium"),
                "low": N_("low")}  # fmt: skip


def series_name(column: object) -> str:
    """A series' name in this language (its column name when it has no label)."""
    name = str(column)
    return tr(SERIES_NAMES[name]) if name in SERIES_NAMES else name


def _decimal(text: str) -> str:
    """``text`` (Python's English number format) with this language's decimal mark."""
    return text.replace(".", i18n.chart_separators()[0])


METRIC_NAMES = {"accuracy": N_("accuracy"), "precision": N_("precision"), "recall": N_("recall"), "f1": N_("f1"),
                "roc_auc": N_("roc-auc")}  # fmt: skip


def _layout(figure: go.Figure, title: str, yaxis: str, height: int = 320) -> go.Figure:
    figure.update_layout(
        title=title,
        yaxis_title=yaxis,
        height=height,
        margin={"l": 10, "r": 10, "t": 50, "b": 10},
        legend={"orientation": "h", "y": -0.15},
        hovermode="x unified",
        separators=i18n.chart_separators(),
    )
    return figure


def stacked_bars(frame: pd.DataFrame, columns: Sequence[str], title: str, yaxis: str | None = None) -> go.Figure:
    """One stacked bar per day, one segment per column (channel, status, band, risk level...)."""
    figure = go.Figure(
        [go.Bar(x=frame["day"], y=frame[c], name=series_name(c), marker_color=SERIES.get(str(c))) for c in columns]
    )
    figure.update_layout(barmode="stack")
    return _layout(figure, title, tr("rows") if yaxis is None else yaxis)


def shares_over_time(frame: pd.DataFrame, columns: Sequence[str], title: str) -> go.Figure:
    """Each column's share of the day's rows, stacked to 100% (how a distribution moves over time)."""
    totals = frame[list(columns)].sum(axis=1).where(lambda t: t > 0)
    figure = go.Figure(
        [
            go.Scatter(
                x=frame["day"],
                y=frame[c] / totals,
                name=series_name(c),
                stackgroup="one",
                mode="lines",
                line={"width": 0.5, "color": SERIES.get(str(c))},
            )
            for c in columns
        ]
    )
    figure.update_yaxes(tickformat=".0%", range=[0, 1])
    return _layout(figure, title, tr("share of predictions"))


def latency_chart(frame: pd.DataFrame) -> go.Figure:
    """Latency per row, p50 and p95, per day."""
    figure = go.Figure(
        [
            go.Scatter(x=frame["day"], y=frame["p50"], name="p50", mode=LINES_MARKERS, line={"color": RECENT}),
            go.Scatter(x=frame["day"], y=frame["p95"], name="p95", mode=LINES_MARKERS, line={"color": "#c62828"}),
        ]
    )
    return _layout(figure, tr("Latency per student row"), tr("milliseconds"))


def error_rate_chart(frame: pd.DataFrame) -> go.Figure:
    """Share of rows not predicted (rejected or failed), per day."""
    figure = go.Figure(go.Bar(x=frame["day"], y=frame["error_rate"], marker_color="#c62828", name=tr("error rate")))
    figure.update_yaxes(tickformat=".1%")
    return _layout(figure, tr("Error rate (rejected + failed rows)"), tr("share of rows"))


def error_types_chart(frame: pd.DataFrame) -> go.Figure:
    """Failed rows by error type."""
    labels = frame["status"] + ": " + frame["error_type"]
    figure = go.Figure(go.Bar(x=frame["n"], y=labels, orientation="h", marker_color="#c62828"))
    figure.update_yaxes(autorange="reversed")
    return _layout(figure, tr("Error types"), "", height=120 + 28 * max(len(frame), 1))


def grade_histogram(frame: pd.DataFrame) -> go.Figure:
    """How many predictions fall on each whole predicted grade."""
    colors = ["#c62828" if g < 10 else RECENT for g in frame["grade"]]
    figure = go.Figure(go.Bar(x=frame["grade"], y=frame["n"], marker_color=colors))
    figure.update_xaxes(title=tr("predicted G3 (fail below 10)"), range=[-0.5, 20.5])
    return _layout(figure, tr("Predicted grades"), tr("predictions"))


def feedback_chart(frame: pd.DataFrame) -> go.Figure:
    """Negative feedback ("not useful" or "wrongly flagged") per prediction, per day."""
    figure = go.Figure(go.Scatter(x=frame["day"], y=frame["rate"], mode=LINES_MARKERS, line={"color": "#8e6c00"}))
    figure.update_yaxes(tickformat=".1%")
    title = tr('Feedback rate ("not useful" or "wrongly flagged" per prediction)')
    return _layout(figure, title, tr("share of predictions"))


def realized_chart(frame: pd.DataFrame) -> go.Figure:
    """Realized pass/fail metrics per period, with the count each rests on in the hover."""
    figure = go.Figure(
        [
            go.Scatter(
                x=frame["period"],
                y=frame[m],
                name=tr(METRIC_NAMES[m]),
                mode=LINES_MARKERS,
                customdata=frame["n"],
                hovertemplate="%{y:.2f} (n=%{customdata})",
            )
            for m in ("accuracy", "precision", "recall", "f1", "roc_auc")
        ]
    )
    figure.update_yaxes(range=[0, 1.02])
    return _layout(figure, tr("Realized pass/fail quality (fail = positive)"), tr("score"))


def expected_chart(frame: pd.DataFrame, setup: str, version_id: str, protocol: float | None) -> go.Figure:
    """One version's expected accuracy per week (CBPE, with its sampling interval as a band), the realized
    accuracy with its Wilson interval where outcomes exist, and the protocol accuracy as a line."""
    band_x = [*frame["period"], *frame["period"][::-1]]
    band_y = [*frame["accuracy_high"], *frame["accuracy_low"][::-1]]
    traces: list[go.BaseTraceType] = [
        go.Scatter(x=band_x, y=band_y, fill="toself", fillcolor="rgba(31,95,168,0.15)", line={"width": 0}, mode="lines",
                   name=tr("expected: 95% interval"), hoverinfo="skip"),
        go.Scatter(x=frame["period"], y=frame["accuracy"], name=tr("expected accuracy (no outcomes needed)"),
                   mode=LINES_MARKERS, line={"color": RECENT}, customdata=frame["n"],
                   hovertemplate=tr("%{y:.0%} expected (n=%{customdata})")),
    ]  # fmt: skip
    if "realized_accuracy" in frame:
        shown = frame[frame["realized_n"].notna() & ~frame["realized_too_few"].fillna(True).astype(bool)]
        traces.append(go.Scatter(
            x=shown["period"], y=shown["realized_accuracy"], name=tr("realized accuracy"), mode="markers",
            marker={"color": SERIES["api"], "size": 9},
            error_y={"type": "data", "symmetric": False,
                     "array": shown["realized_accuracy_high"] - shown["realized_accuracy"],
                     "arrayminus": shown["realized_accuracy"] - shown["realized_accuracy_low"]},
            customdata=shown["realized_n"], hovertemplate=tr("%{y:.0%} realized (n=%{customdata})"),
        ))  # fmt: skip
    figure = go.Figure(traces)
    if protocol is not None:
        figure.add_hline(y=protocol, line_dash="dot", line_color=REFERENCE, annotation_text=tr("protocol accuracy"))
    figure.update_yaxes(range=[0, 1.02], tickformat=".0%")
    title = tr("Expected vs realized pass/fail accuracy: {setup} ({version})", setup=setup, version=version_id)
    return _layout(figure, title, tr("accuracy"))


def subgroup_chart(weekly: pd.DataFrame, attribute: str) -> go.Figure:
    """Predicted high-risk rate per subgroup of ``attribute`` per week, and the realized false-negative rate
    (dotted) where outcomes exist."""
    part = weekly[weekly["attribute"] == attribute]
    traces = []
    for group, rows in part.groupby("group", sort=True):
        traces.append(go.Scatter(x=rows["period"], y=rows["high_risk_rate"], mode=LINES_MARKERS,
                                 name=tr("{group}: predicted high risk", group=group), customdata=rows["n"],
                                 hovertemplate="%{y:.0%} (n=%{customdata})"))  # fmt: skip
        known = rows[rows["fnr"].notna()]
        if len(known):
            traces.append(go.Scatter(x=known["period"], y=known["fnr"], mode=LINES_MARKERS, line={"dash": "dot"},
                                     name=tr("{group}: false-negative rate", group=group),
                                     customdata=known["failed"],
                                     hovertemplate=tr("%{y:.0%} (failing students=%{customdata})")))  # fmt: skip
    figure = go.Figure(traces)
    figure.update_yaxes(range=[0, 1.02], tickformat=".0%")
    title = tr("Fairness over time by {attribute}", attribute=tr(ATTRIBUTE_LABELS.get(attribute, attribute)))
    return _layout(figure, title, tr("share"))


def realized_error_chart(frame: pd.DataFrame) -> go.Figure:
    """Realized MAE and RMSE of the predicted grade per period."""
    figure = go.Figure(
        [
            go.Bar(
                x=frame["period"],
                y=frame[m],
                name=m.upper(),
                customdata=frame["n"],
                hovertemplate=tr("%{y:.2f} points (n=%{customdata})"),
            )
            for m in ("mae", "rmse")
        ]
    )
    return _layout(figure, tr("Realized grade error"), tr("grade points"))


def psi_chart(table: pd.DataFrame, thresholds: Thresholds) -> go.Figure:
    """PSI per attribute, most drifted first, with the watch and act thresholds."""
    colors = ["#c62828" if s == "act" else "#e0a800" if s == "watch" else "#2e7d32" for s in table["status"]]
    figure = go.Figure(go.Bar(x=table["psi"], y=table["label"], orientation="h", marker_color=colors))
    for value, name in ((thresholds.drift_watch_psi, "watch"), (thresholds.drift_act_psi, "act")):
        figure.add_vline(x=value, line_dash="dash", line_color="#555", annotation_text=tr(STATUS_LABELS[name]))
    figure.update_yaxes(autorange="reversed")
    return _layout(figure, tr("Drift per attribute (PSI)"), "", height=120 + 22 * len(table))


def distribution_chart(drift: AttributeDrift) -> go.Figure:
    """The reference and recent distributions of one attribute over each other (Evidently style)."""
    shares = drift.distributions()
    labels = [tr(FIELDS[drift.attribute].value_label(_as_value(b))) for b in shares["bin"]]
    figure = go.Figure(
        [
            go.Bar(x=labels, y=shares["reference"], name=tr("training reference"), marker_color=REFERENCE, opacity=0.7),
            go.Bar(x=labels, y=shares["recent"], name=tr("recent traffic"), marker_color=RECENT, opacity=0.7),
        ]
    )
    figure.update_layout(barmode="overlay")
    figure.update_yaxes(tickformat=".0%")
    title = tr("{attribute}: {test} p = {p_value}, PSI = {psi} ({status}; n = {recent} recent vs {reference} "
               "reference)", attribute=drift.label, test=drift.test, p_value=_decimal(f"{drift.p_value:.3g}"),
               psi=_decimal(f"{drift.psi:.3f}"), status=tr(STATUS_LABELS.get(drift.status, drift.status)),
               recent=drift.n_recent, reference=drift.n_reference)  # fmt: skip
    return _layout(figure, title, tr("share of rows"))


def _as_value(label: str) -> str | int:
    return int(label) if label.isdigit() else label


def open_alerts_banner(session: Session) -> int:
    """A red banner listing the unacknowledged alerts (for admin pages); returns how many there are."""
    alerts = [(a.rule, alert_text(a.rule, a.value, a.detail), a.last_seen) for a in open_alerts(session)]
    if alerts:
        lines = "\n".join(
            "- "
            + tr("**{rule}**: {message} (last seen {seen} UTC)", rule=rule, message=message, seen=i18n.moment(seen))
            for rule, message, seen in alerts
        )
        heading = tr_n("{count} open alert — see the Alerts page to acknowledge:",
                       "{count} open alerts — see the Alerts page to acknowledge:", len(alerts))  # fmt: skip
        st.error(f"{heading}\n{lines}", icon="🚨")
    return len(alerts)
