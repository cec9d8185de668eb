"""Monitoring (admins): traffic, latency, errors, predicted grades, drift, realized quality, feedback."""

from __future__ import annotations

from datetime import UTC, datetime

import pandas as pd
import streamlit as st
from babel.dates import format_date
from sqlalchemy.orm import Session

from dashboard import monitor_charts as charts
from dashboard.charts import show_chart
from dashboard.context import engine, open_page, settings
from dashboard.tables import show_table
from model import i18n
from model.i18n import N_, tr
from model.monitoring import drift
from model.monitoring import queries as monitoring
from model.monitoring.alerts import protocol_accuracy
from model.monitoring.drift import drift_report
from model.monitoring.expected import LIMITATION, expected_vs_realized
from model.monitoring.fairness import ATTRIBUTE_LABELS, GROUPS, fairness_report
from model.monitoring.samples import MAX_ROWS
from model.monitoring.uncertainty import TOO_FEW, count_text, figure_text
from model.schema.fields import BANDS, SETUPS
from model.schema.thresholds import RISK_LEVELS
from model.serving.outcomes import FEEDBACK_LABELS
from model.settings import Settings
from model.store import registry
from model.store.db import session_scope

RANGES = {N_("Last 24 hours"): 1, N_("Last 7 days"): 7, N_("Last 30 days"): 30, N_("Last 90 days"): 90,
          N_("Last 365 days"): 365}  # fmt: skip
DRIFT_SCOPES: list[str | None] = [None, *SETUPS]
TABS = (N_("Traffic"), N_("Predictions"), N_("Drift"), N_("Expected performance"), N_("Realized performance"),
        N_("Fairness"))  # fmt: skip

DRIFT_HEADERS = {"label": N_("attribute"), "verdict": N_("verdict"), "test": N_("test"), "threshold": N_("threshold"),
                 "status": N_("status"), "n_recent": N_("recent rows"), "decided_by": N_("decided by")}  # fmt: skip
REALIZED_HEADERS = {"model_version_id": N_("version"), "setup": N_("setup"), "accuracy": N_("accuracy"),
                    "precision": N_("precision"), "recall": N_("recall"), "f1": N_("f1"), "roc_auc": N_("roc-auc"),
                    "mae": N_("MAE"), "rmse": N_("RMSE")}  # fmt: skip
# The fairness table's column names (its headers are translated by FAIRNESS_HEADERS).
HIGH_RISK, FNR, FPR = "predicted high risk", "false-negative rate", "false-positive rate"  # not shown to users
FAIRNESS_HEADERS = {"attribute": N_("attribute"), "group": N_("group"), HIGH_RISK: N_("predicted high risk"),
                    FNR: N_("false-negative rate"), FPR: N_("false-positive rate")}  # fmt: skip


def headers(names: dict[str, str]) -> dict[str, str]:
    """A table's column headers in this language (the data keeps its column names)."""
    return {column: tr(label) for column, label in names.items()}


def drift_scope_label(setup: str | None) -> str:
    return tr("All traffic (the 30 attributes)") if setup is None else tr("Setup {setup} only", setup=setup)


def choose_window() -> monitoring.Window:
    """The time range and the demo-data switch."""
    left, right = st.columns([3, 1])
    days = RANGES[left.selectbox(tr("Time range"), list(RANGES), index=2, format_func=tr)]
    include_demo = right.toggle(tr("Include demo data"), value=True)
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    return monitoring.Window.last(days, now, include_demo=include_demo)


def show_overview(figures: monitoring.Overview) -> None:
    """The headline figures of the window."""
    if figures.demo_rows:
        st.info(
            tr("Demo data: {rows} of these rows were written by `python -m model demo-traffic` (simulated traffic "
               "through the real models); switch off *Include demo data* to hide them.",
               rows=count_text(figures.demo_rows)),
            icon=":material/science:",
        )  # fmt: skip
    cells = st.columns(5)
    cells[0].metric(tr("Rows logged"), count_text(figures.rows))
    cells[1].metric(tr("Error rate"), i18n.percent(figures.error_rate, 1))
    cells[2].metric(tr("Latency p50"), _milliseconds(figures.p50_ms))
    cells[3].metric(tr("Latency p95"), _milliseconds(figures.p95_ms))
    negative = tr('Remarks "not useful" or "wrongly flagged" per prediction (what the feedback alert counts)')
    cells[4].metric(tr("Feedback rate"), i18n.percent(figures.feedback_rate, 1), help=negative)


def _milliseconds(value: float | None) -> str:
    return "-" if value is None else tr("{milliseconds} ms", milliseconds=i18n.number(value, 1))


def show_traffic(session: Session, window: monitoring.Window) -> None:
    volume = monitoring.volume_by_day(session, window)
    show_chart(charts.stacked_bars(volume, ["ui", "api", "cli"], tr("Volume per day by channel")))
    show_chart(charts.latency_chart(monitoring.latency_by_day(session, window)))
    show_chart(charts.error_rate_chart(monitoring.status_by_day(session, window)))
    errors = monitoring.error_types(session, window)
    if len(errors):
        show_chart(charts.error_types_chart(errors))


def show_predictions(session: Session, window: monitoring.Window) -> None:
    bands = monitoring.bands_by_day(session, window)
    show_chart(charts.shares_over_time(bands, list(BANDS), tr("Predicted band over time")))
    risk = monitoring.risk_by_day(session, window)
    show_chart(charts.shares_over_time(risk, list(RISK_LEVELS), tr("Risk level over time")))
    show_chart(charts.grade_histogram(monitoring.predicted_grade_histogram(session, window)))
    show_chart(charts.feedback_chart(monitoring.feedback_by_day(session, window)))
    show_feedback_categories(session, window)


def show_feedback_categories(session: Session, window: monitoring.Window) -> None:
    """Teachers' feedback on the window's predictions, counted per category."""
    counts = monitoring.feedback_by_category(session, window)
    shown = counts.assign(
        category=[tr(FEEDBACK_LABELS[c]) for c in counts["category"]],
        negative=[tr("yes") if n else tr("no") for n in counts["negative"]],
    ).rename(columns={"category": tr("Feedback"), "remarks": tr("Remarks"),
                      "negative": tr("Counted by the feedback alert")})  # fmt: skip
    st.markdown("**" + tr("Feedback per category") + "**")
    show_table(shown, hide_index=True)


def show_drift(session: Session, configured: Settings, window: monitoring.Window) -> None:
    scope = st.selectbox(tr("Compare"), DRIFT_SCOPES, format_func=drift_scope_label)
    report = drift_report(session, configured, window, setup=scope)
    if report is None or report.n_recent == 0:
        st.info(tr("No active model or no predicted rows in this range to compare with the training reference."))
        return
    levels = report.thresholds
    table = report.table()
    drifted = ", ".join(table.loc[table["verdict"] == drift.DRIFTED, "label"])
    names = tr(" (drifted: {names}).", names=drifted) if drifted else tr(" (none drifted).")
    st.markdown(f"**{report.summary()}**" + ("" if report.too_few_rows else names))
    st.caption(
        tr("{rows} most recent predicted rows against the training reference of `{version}`. One verdict per "
           "attribute: up to {large} rows, *drifted* when PSI reaches {act} and the test (KS for numbers, chi-square "
           "for categories) gives p < {p_value}; above, PSI alone decides; fewer than {minimum} rows: no verdict. "
           "The drift alert fires on the same verdict. PSI {watch} = watch, {act} = act.",
           rows=count_text(report.n_recent), version=report.version_id, large=count_text(levels.drift_large_rows),
           act=levels.drift_act_psi, p_value=levels.drift_p_value, minimum=count_text(levels.alert_min_drift_rows),
           watch=levels.drift_watch_psi)
    )  # fmt: skip
    shown = table.drop(columns=["attribute"]).assign(
        verdict=[tr(drift.VERDICT_LABELS[v]) for v in table["verdict"]],
        status=[tr(drift.STATUS_LABELS[s]) for s in table["status"]],
    )
    config = headers(DRIFT_HEADERS) | {
        "psi": st.column_config.NumberColumn(tr("PSI"), format="%.3f"),
        "p_value": st.column_config.NumberColumn(tr("p-value"), format="%.2e"),
        "statistic": st.column_config.NumberColumn(tr("statistic"), format="%.3f"),
        "test_drift": st.column_config.CheckboxColumn(tr("test says drift")),
    }
    show_table(shown, hide_index=True, column_config=config)
    show_chart(charts.psi_chart(table, levels))
    labels = dict(zip(table["label"], table["attribute"], strict=True))
    chosen = labels[st.selectbox(tr("Distribution of"), list(labels))]
    show_chart(charts.distribution_chart(report.get(chosen)))


def _day_month(day: pd.Timestamp) -> str:
    """``30 Nov`` (``30/nov.`` in Portuguese): the week a reading is of."""
    code = i18n.language()
    return f"{day:%d %b}" if code == i18n.ENGLISH else format_date(day, format="dd MMM", locale=code)


def expected_reading(frame: pd.DataFrame, setup: str, protocol: float | None, min_outcomes: int) -> str:
    """The expected-vs-realized chart of one version in one line of words (its latest week)."""
    last = frame.iloc[-1]
    expected = figure_text(last["accuracy"], last["accuracy_low"], last["accuracy_high"], int(last["n"]), 1)
    realized = None
    if "realized_n" in frame and pd.notna(last.get("realized_n")):
        realized = figure_text(last["realized_accuracy"], last["realized_accuracy_low"],
                               last["realized_accuracy_high"], int(last["realized_n"]), min_outcomes)  # fmt: skip
    values = {"setup": setup, "week": _day_month(last["period"]), "expected": expected}
    if protocol is not None:
        values["protocol"] = i18n.percent(protocol, 0)
        if realized is None:
            return tr("**{setup}**, week of {week}: expected accuracy {expected}, protocol {protocol}; no outcomes yet "
                      "for that week.", **values)  # fmt: skip
        return tr("**{setup}**, week of {week}: expected accuracy {expected}, protocol {protocol}; realized "
                  "{realized}.", realized=realized, **values)  # fmt: skip
    if realized is None:
        return tr("**{setup}**, week of {week}: expected accuracy {expected}; no outcomes yet for that week.", **values)
    return tr("**{setup}**, week of {week}: expected accuracy {expected}; realized {realized}.", realized=realized,
              **values)  # fmt: skip


def show_expected(session: Session, configured: Settings, window: monitoring.Window) -> None:
    """Expected (CBPE) vs realized accuracy per week for the active version of each setup."""
    st.caption(tr(LIMITATION))
    min_outcomes = configured.alert_min_outcomes
    table = expected_vs_realized(session, window, min_outcomes)
    if table.empty:
        st.info(tr("No predictions of the active versions in this range."))
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
        st.info(tr("No outcomes yet: realized quality appears once real final grades are recorded for predicted "
                   "students."))  # fmt: skip
        return
    st.caption(
        tr("Each figure with its 95% interval (Wilson for proportions, Hanley-McNeil for ROC-AUC, normal for "
           "MAE/RMSE) and the outcomes it rests on; fewer than {minimum} outcomes: '{too_few}'.",
           minimum=min_outcomes, too_few=tr(TOO_FEW))
    )  # fmt: skip
    show_table(with_intervals(by_version, min_outcomes), hide_index=True, column_config=headers(REALIZED_HEADERS))
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
        st.info(tr("No predicted rows with inputs in this range."))
        return
    min_outcomes, limit = configured.alert_min_outcomes, configured.alert_fairness_gap
    beyond = [g for g in gaps if g.gap > limit]
    if beyond:
        gaps_text = "; ".join(g.text() for g in beyond)
        st.markdown(tr("**{gaps}**: beyond the {limit} limit.", gaps=gaps_text, limit=i18n.percent(limit, 0)))
    elif gaps:
        widest = max(gaps, key=lambda g: g.gap)
        st.markdown(tr("No gap beyond the {limit} limit; the widest: {gap}.", limit=i18n.percent(limit, 0),
                       gap=widest.text()))  # fmt: skip
    else:
        st.markdown(tr("No gap can be judged yet: fewer than {minimum} outcomes in at least two subgroups.",
                       minimum=min_outcomes))  # fmt: skip
    st.caption(
        tr("False-negative rate: failing students not flagged (P(pass) >= 50%); false-positive rate: passing "
           "students flagged. Each with its 95% Wilson interval; a rate on fewer than {minimum} students: "
           "'{too_few}'. Read from the newest {rows} predicted rows of the range.", minimum=min_outcomes,
           too_few=tr(TOO_FEW), rows=count_text(MAX_ROWS))
    )  # fmt: skip
    shown = overall[["attribute", "group", "n"]].copy()
    shown["attribute"] = [tr(ATTRIBUTE_LABELS.get(a, a)) for a in shown["attribute"]]
    rows = overall.to_dict("records")
    shown[HIGH_RISK] = [figure_text(r["high_risk_rate"], r["high_risk_rate_low"], r["high_risk_rate_high"],
                                                r["n"], 1) for r in rows]  # fmt: skip
    shown[FNR] = [figure_text(r["fnr"], r["fnr_low"], r["fnr_high"], r["failed"], min_outcomes)
                                    for r in rows]  # fmt: skip
    shown[FPR] = [figure_text(r["fpr"], r["fpr_low"], r["fpr_high"], r["passed"], min_outcomes)
                                    for r in rows]  # fmt: skip
    show_table(shown, hide_index=True, column_config=headers(FAIRNESS_HEADERS))
    attribute = st.selectbox(tr("Subgroups by"), list(GROUPS), format_func=lambda a: tr(ATTRIBUTE_LABELS[a]))
    show_chart(charts.subgroup_chart(weekly, attribute))


def main() -> None:
    open_page(__file__)
    configured = settings()
    window = choose_window()
    with session_scope(engine()) as session:  # one transaction for everything this run shows
        figures = monitoring.overview(session, window)
        show_overview(figures)
        if not figures.rows:
            st.info(tr("No predictions in this time range yet."))
            return
        traffic, quality, drift_tab, expected, realized, fair = st.tabs([tr(tab) for tab in TABS])
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
