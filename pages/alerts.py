"""Alerts (admins): the alert history, a check on demand, and acknowledging open alerts."""

from __future__ import annotations

import pandas as pd
import streamlit as st
from sqlalchemy.orm import Session

from dashboard.context import CurrentUser, engine, open_page, settings
from dashboard.tables import show_table
from model.monitoring.alerts import AlertRules, acknowledge, alert_history, evaluate_alerts, open_alerts
from model.settings import Settings
from model.store.db import session_scope


def check_now(session: Session, configured: Settings) -> None:
    """The button that evaluates the rules at once."""
    if st.button("Check the rules now"):
        fired = evaluate_alerts(session, configured)
        st.toast(f"{len(fired)} rule(s) firing" if fired else "No rule fires")


def acknowledge_form(session: Session, user: CurrentUser) -> str | None:
    """A form to acknowledge one of the open alerts; returns the one acknowledged (None when none)."""
    pending = {f"#{a.id} {a.rule}: {(a.detail or {}).get('message', '')}": a.id for a in open_alerts(session)}
    if not pending:
        return None
    with st.form("acknowledge"):
        chosen = st.selectbox("Open alert", list(pending))
        if st.form_submit_button("Acknowledge"):
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
                "message": (a.detail or {}).get("message", ""),
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
    st.subheader("History (last 90 days)")
    if history.empty:
        st.info("No alert has fired in the last 90 days.")
    else:
        show_table(history, hide_index=True)


def show_rules(configured: Settings) -> None:
    with st.expander("Rules and thresholds (set with MATHSIGHT_ALERT_* environment variables)"):
        rules = AlertRules.from_settings(configured).described()
        show_table(pd.DataFrame({"setting": list(rules), "value": [str(v) for v in rules.values()]}), hide_index=True)


def main() -> None:
    user = open_page(__file__)
    configured = settings()
    with session_scope(engine()) as session:
        check_now(session, configured)
        acknowledged = acknowledge_form(session, user)
        history = alert_table(session)
    if acknowledged is not None:  # committed: show the page again without it
        st.success(f"Acknowledged {acknowledged.split(':')[0]}")
        st.rerun()
    show_history(history)
    show_rules(configured)


main()
