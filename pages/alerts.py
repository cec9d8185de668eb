"""Alerts (admins): the alert history, a check on demand, and acknowledging open alerts."""

from __future__ import annotations

import pandas as pd
import streamlit as st
from sqlalchemy.orm import Session

from dashboard.context import CurrentUser, engine, open_page, settings
from dashboard.tables import show_table
from model.i18n import N_, tr, tr_n
from model.monitoring.alerts import AlertRules, acknowledge, alert_history, alert_text, evaluate_alerts, open_alerts
from model.settings import Settings
from model.store.db import session_scope

# The history's column headers by column name (the data keeps the English column names).
HISTORY_HEADERS = {
    "id": N_("id"),
    "rule": N_("rule"),
    "message": N_("message"),
    "value": N_("value"),
    "threshold": N_("threshold"),
    "first seen": N_("first seen"),  # not shown to users (a column name; its header is translated)
    "last seen": N_("last seen"),  # not shown to users (a column name; its header is translated)
    "acknowledged by": N_("acknowledged by"),  # not shown to users (a column name; its header is translated)
    "acknowledged at": N_("acknowledged at"),  # not shown to users (a column name; its header is translated)
}
RULE_HEADERS = {"setting": N_("setting"), "value": N_("value")}


def check_now(session: Session, configured: Settings) -> None:
    """The button that evaluates the rules at once."""
    if st.button(tr("Check the rules now")):
        fired = evaluate_alerts(session, configured)
        st.toast(tr_n("{count} rule firing", "{count} rules firing", len(fired)) if fired else tr("No rule fires"))


def acknowledge_form(session: Session, user: CurrentUser) -> str | None:
    """A form to acknowledge one of the open alerts; returns the one acknowledged (None when none)."""
    pending = {f"#{a.id} {a.rule}: {alert_text(a.rule, a.value, a.detail)}": a.id for a in open_alerts(session)}
    if not pending:
        return None
    with st.form("acknowledge"):
        chosen = st.selectbox(tr("Open alert"), list(pending))
        if st.form_submit_button(tr("Acknowledge")):
            acknowledge(session, pending[chosen], by=user.username)
            return chosen
    return None


def alert_table(session: Session) -> pd.DataFrame:
    """The alerts of the last 90 days, one row each."""
    return pd.DataFrame(
        [
            {
                "id": a.id,
                "rule": a.rule,
                "message": alert_text(a.rule, a.value, a.detail),
                "value": a.value,
                "threshold": a.threshold,
                "first seen": a.first_seen,
                "last seen": a.last_seen,
                "acknowledged by": a.acknowledged_by,
                "acknowledged at": a.acknowledged_at,
            }
            for a in alert_history(session)
        ]
    )


def show_history(history: pd.DataFrame) -> None:
    st.header(tr("History (last 90 days)"))
    if history.empty:
        st.info(tr("No alert has fired in the last 90 days."))
    else:
        show_table(history, hide_index=True, column_config=_headers(HISTORY_HEADERS))


def show_rules(configured: Settings) -> None:
    with st.expander(tr("Rules and thresholds (set with MATHSIGHT_ALERT_* environment variables)")):
        rules = AlertRules.from_settings(configured).described()
        table = pd.DataFrame({"setting": list(rules), "value": [str(v) for v in rules.values()]})
        show_table(table, hide_index=True, column_config=_headers(RULE_HEADERS))


def _headers(names: dict[str, str]) -> dict[str, str]:
    """A table's column headers in this language (the data keeps its column names)."""
    return {column: tr(label) for column, label in names.items()}


def main() -> None:
    user = open_page(__file__)
    configured = settings()
    with session_scope(engine()) as session:
        check_now(session, configured)
        acknowledged = acknowledge_form(session, user)
        history = alert_table(session)
    if acknowledged is not None:  # committed: show the page again without it
        st.success(tr("Acknowledged {alert}", alert=acknowledged.split(":")[0]))
        st.rerun()
    show_history(history)
    show_rules(configured)


main()
