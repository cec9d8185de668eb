"""Monitoring (admins): traffic, latency, errors, predicted grades, drift, realized quality, feedback."""

from __future__ import annotations

from datetime import UTC, datetime

import pandas as pd
import streamlit as st
from sqlalchemy.orm import Session

from dashboard import monitor_charts as charts
from dashboard.charts import show_chart
from dashboard.context import engine, open_page, settings
from dashboard.tables import show_table
from model.monitoring import drift
from model.monitoring import queries as monitoring
from model.monitoring.alerts import protocol_accuracy
from model.monitoring.drift import drift_report
from model.monitoring.expected import LIMITATION, expected_vs_realized
from model.monitoring.fairness import GROUPS, fairness_report
from model.monitoring.samples import MAX_ROWS
from model.monitoring.uncertainty import TOO_FEW, figure_text
from model.schema.fields import BANDS, SETUPS
from model.schema.thresholds import RISK_LEVELS
from model.serving.outcomes import FEEDBACK_LABELS
from model.settings import Settings
from model.store import registry
from model.store.db import session_scope

RANGES = {"Last 24 hours": 1, "Last 7 days": 7, "Last 30 days": 30, "Last 90 days": 90, "Last 365 days": 365}
DRIFT_SCOPES = {"All traffic (the 30 attributes)": None} | {f"Setup {s} only": s for s in SETUPS}


def choose_window() -> monitoring.Window:
    """The time range and the demo-data switch."""
    left, right = st.columns([3, 1])
    days = RANGES[left.selectbox("Time range", list(RANGES), index=2)]
    include_demo = right.toggle("Include demo data", value=True)
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    return monitoring.Window.last(days, now, include_demo=include_demo)


def show_overview(figures: monitoring.Overview) -> None:
    """The headline figures of the window."""
    if figures.demo_rows:
        st.info(
            f"Demo data: {figures.demo_rows:,} of these rows were written by `python -m model demo-traffic` "
            "(simulated traffic through the real models); switch off *Include demo data* to hide them.",
            icon=":material/science:",
        )
    cells = st.columns(5)
    cells[0].metric("Rows logged", f"{figures.rows:,}")
    cells[1].metric("Error rate", f"{figures.error_rate:.1%}")
    cells[2].metric("Latency p50", "-" if figures.p50_ms is None else f"{figures.p50_ms:.1f} ms")
    cells[3].metric("Latency p95", "-" if figures.p95_ms is None else f"{figures.p95_ms:.1f} ms")
    negative = 'Remarks "not useful" or "wrongly flagged" per prediction (what the feedback alert counts)'
    cells[4].metric("Feedback rate", f"{figures.feedback_rate:.1%}", help=negative)


def show_traffic(session: Session, window: monitoring.Window) -> None:
    volume = monitoring.volume_by_day(session, window)
    show_chart(charts.stacked_bars(volume, ["ui", "api", "cli"], "Volume per day by channel"))
    show_chart(charts.latency_chart(monitoring.latency_by_day(session, window)))
    show_chart(charts.error_rate_chart(monitoring.status_by_day(session, window)))
    errors = monitoring.error_types(session, window)
    if len(errors):
        show_chart(charts.error_types_chart(errors))


def show_predictions(session: Session, window: monitoring.Window) -> None:
    bands = monitoring.bands_by_day(session, window)
    show_chart(charts.shares_over_time(bands, list(BANDS), "Predicted band over time"))
    risk = monitoring.risk_by_day(session, window)
    show_chart(charts.shares_over_time(risk, list(RISK_LEVELS), "Risk level over time"))
    show_chart(charts.grade_histogram(monitoring.predicted_grade_histogram(session, window)))
    show_chart(charts.feedback_chart(monitoring.feedback_by_day(session, window)))
    show_feedback_categories(session, window)


def show_feedback_categories(session: Session, window: monitoring.Window) -> None:
    """Teachers' feedback on the window's predictions, counted per category."""
    counts = monitoring.feedback_by_category(session, window)
    shown = counts.assign(
        category=counts["category"].map(FEEDBACK_LABELS),
        negative=counts["negative"].map({True: "yes", False: "no"}),
    ).rename(columns={"category": "Feedback", "remarks": "Remarks", "negative": "Counted by the feedback alert"})
    st.markdown("**Feedback per category**")
    show_table(shown, hide_index=True)


def show_drift(session: Session, configured: Settings, window: monitoring.Window) -> None:
    scope = DRIFT_SCOPES[st.selectbox("Compare", list(DRIFT_SCOPES))]
    report = drift_report(session, configured, window, setup=scope)
    if report is None or report.n_recent == 0:
        st.info("No active model or no predicted rows in this range to compare with the training reference.")
        return
    levels = report.thresholds
    table = report.table()
    drifted = ", ".join(table.loc[table["verdict"] == drift.DRIFTED, "label"]) or "none"
    st.markdown(f"**{report.summary()}**" + ("" if report.too_few_rows else f" (drifted: {drifted})."))
    st.caption(
        f"{report.n_recent:,} most recent predicted rows against the training reference of "
        f"`{report.version_id}`. One verdict per attribute: up to {levels.drift_large_rows:,} rows, *drifted* "
        f"when PSI reaches {levels.drift_act_psi} and the test (KS for numbers, chi-square for categories) "
        f"gives p < {levels.drift_p_value}; above, PSI alone decides; fewer than "
        f"{levels.alert_min_drift_rows:,} rows: no verdict. The drift alert fires on the same verdict. "
        f"PSI {levels.drift_watch_psi} = watch, {levels.drift_act_psi} = act."
    )
    show_table(
        table.drop(columns=["attribute"]),
        hide_index=True,
        column_config={
            "psi": st.column_config.NumberColumn("PSI", format="%.3f"),
            "p_value": st.column_config.NumberColumn("p-value", format="%.2e"),
            "statistic": st.column_config.NumberColumn("statistic", format="%.3f"),
            "test_drift": st.column_config.CheckboxColumn("test says drift"),
        },
    )
    show_chart(charts.psi_chart(table, levels))
    labels = dict(zip(table["label"], table["attribute"], strict=True))
    chosen = labels[st.selectbox("Distribution of", list(labels))]
    show_chart(charts.distribution_chart(report.get(chosen)))


def expected_reading(frame: pd.DataFrame, setup: str, protocol: float | None, min_outcomes: int) -> str:
    """The expected-vs-realized chart of one version in one line of words (its latest week)."""
    last = frame.iloc[-1]
    said = (
        f"**{setup}**, week of {last['period']:%d %b}: expected accuracy "
        f"{figure_text(last['accuracy'], last['accuracy_low'], last['accuracy_high'], int(last['n']), 1)}"
    )
    if protocol is not None:
        said += f", protocol {protocol:.0%}"
    if "realized_n" in frame and pd.notna(last.get("realized_n")):
        realized = figure_text(last["realized_accuracy"], last["realized_accuracy_low"],
                               last["realized_accuracy_high"], int(last["realized_n"]), min_outcomes)  # fmt: skip
        said += f"; realized {realized}"
    else:
        said += "; no outcomes yet for that week"
    return said + "."


def show_expected(session: Session, configured: Settings, window: monitoring.Window) -> None:
    """Expected (CBPE) vs realized accuracy per week for the active version of each setup."""
    st.caption(LIMITATION)
    min_outcomes = configured.alert_min_outcomes
    table = expected_vs_realized(session, window, min_outcomes)
    if table.empty:
        st.info("No predictions of the active versions in this range.")
        return
    active = registry.active_versions(session)
    for setup, version in active.items():
        frame = table[table["model_version_id"] == version.id].reset_index(drop=True)
        if frame.empty:
            continue
        protocol = protocol_accuracy(version.metrics)
        st.markdown(expected_reading(frame, setup, protocol, min_outcomes))
        show_chart(charts.expected_chart(frame, setup, version.id, protocol))


def show_realized(session: Session, configured: Settings, window: monitoring.Window) -> None:
    min_outcomes = configured.alert_min_outcomes
    by_version = monitoring.realized_by_version(session, window, min_outcomes=min_outcomes)
    if by_version.empty:
        st.info("No outcomes yet: realized quality appears once real final grades are recorded for predicted students.")
        return
    st.caption(
        f"Each figure with its 95% interval (Wilson for proportions, Hanley-McNeil for ROC-AUC, normal for "
        f"MAE/RMSE) and the outcomes it rests on; fewer than {min_outcomes} outcomes: '{TOO_FEW}'."
    )
    show_table(with_intervals(by_version, min_outcomes), hide_index=True)
    over_time = monitoring.realized_over_time(session, window)
    show_chart(charts.realized_chart(over_time))
    show_chart(charts.realized_error_chart(over_time))


def with_intervals(table: pd.DataFrame, min_outcomes: int) -> pd.DataFrame:
    """The realized table as read: each figure "value (low–high, n = ...)" or "too few outcomes"."""
    shown = table[["model_version_id", "setup", "n"]].copy()
    for name in monitoring.WITH_INTERVALS:
        percent = name not in ("mae", "rmse")
        shown[name] = [
            figure_text(row[name], row[f"{name}_low"], row[f"{name}_high"], int(row["n"]), min_outcomes, percent)
            for row in table.to_dict("records")
        ]
    shown["f1"] = [
        figure_text(v, None, None, int(n), min_outcomes) for v, n in zip(table["f1"], table["n"], strict=True)
    ]
    return shown


def show_fairness(session: Session, configured: Settings, window: monitoring.Window) -> None:
    """Per subgroup (sex, school, address, age band): predicted high-risk rate, realized FNR/FPR with intervals."""
    overall, weekly, gaps = fairness_report(session, configured, window)
    if overall.empty:
        st.info("No predicted rows with inputs in this range.")
        return
    min_outcomes, limit = configured.alert_min_outcomes, configured.alert_fairness_gap
    beyond = [g for g in gaps if g.gap > limit]
    if beyond:
        st.markdown("**" + "; ".join(g.text() for g in beyond) + f"**: beyond the {limit:.0%} limit.")
    elif gaps:
        widest = max(gaps, key=lambda g: g.gap)
        st.markdown(f"No gap beyond the {limit:.0%} limit; the widest: {widest.text()}.")
    else:
        st.markdown(f"No gap can be judged yet: fewer than {min_outcomes} outcomes in at least two subgroups.")
    st.caption(
        "False-negative rate: failing students not flagged (P(pass) >= 50%); false-positive rate: passing students "
        f"flagged. Each with its 95% Wilson interval; a rate on fewer than {min_outcomes} students: '{TOO_FEW}'. "
        f"Read from the newest {MAX_ROWS:,} predicted rows of the range."
    )
    shown = overall[["attribute", "group", "n"]].copy()
    rows = overall.to_dict("records")
    shown["predicted high risk"] = [figure_text(r["high_risk_rate"], r["high_risk_rate_low"], r["high_risk_rate_high"],
                                                r["n"], 1) for r in rows]  # fmt: skip
    shown["false-negative rate"] = [figure_text(r["fnr"], r["fnr_low"], r["fnr_high"], r["failed"], min_outcomes)
                                    for r in rows]  # fmt: skip
    shown["false-positive rate"] = [figure_text(r["fpr"], r["fpr_low"], r["fpr_high"], r["passed"], min_outcomes)
                                    for r in rows]  # fmt: skip
    show_table(shown, hide_index=True)
    attribute = st.selectbox("Subgroups by", list(GROUPS))
    show_chart(charts.subgroup_chart(weekly, attribute))


def main() -> None:
    open_page(__file__)
    configured = settings()
    window = choose_window()
    with session_scope(engine()) as session:  # one transaction for everything this run shows
        figures = monitoring.overview(session, window)
        show_overview(figures)
        if not figures.rows:
            st.info("No predictions in this time range yet.")
            return
        tabs = ["Traffic", "Predictions", "Drift", "Expected performance", "Realized performance", "Fairness"]
        traffic, quality, drift_tab, expected, realized, fair = st.tabs(tabs)
        with traffic:
            show_traffic(session, window)
        with quality:
            show_predictions(session, window)
        with drift_tab:
            show_drift(session, configured, window)
        with expected:
            show_expected(session, configured, window)
        with realized:
            show_realized(session, configured, window)
        with fair:
            show_fairness(session, configured, window)


main()
