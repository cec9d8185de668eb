"""Alerts (admins): the alert history, a check on demand, and acknowledging open alerts."""

from __future__ import annotations

from dataclasses import asdict

import pandas as pd
import streamlit as st

from dashboard.context import engine, require_role
from model.monitoring.alerts import AlertRules, acknowledge, alert_history, evaluate_alerts, open_alerts
from model.store.db import session_scope

user = require_role("admin")
st.title("Alerts")
db = engine()

if st.button("Check the rules now"):
    fired = evaluate_alerts(db)
    st.toast(f"{len(fired)} rule(s) firing" if fired else "No rule fires")

with session_scope(db) as session:
    pending = {f"#{a.id} {a.rule}: {(a.detail or {}).get('message', '')}": a.id for a in open_alerts(session)}
if pending:
    with st.form("acknowledge"):
        chosen = st.selectbox("Open alert", list(pending))
        if st.form_submit_button("Acknowledge"):
            with session_scope(db) as session:
                acknowledge(session, pending[chosen], by=user.username)
            st.success(f"Acknowledged {chosen.split(':')[0]}")
            st.rerun()

with session_scope(db) as session:
    history = pd.DataFrame(
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
st.subheader("History (last 90 days)")
if history.empty:
    st.info("No alert has fired in the last 90 days.")
else:
    st.dataframe(history, hide_index=True)

with st.expander("Rules and thresholds (set with MATHSIGHT_ALERT_* environment variables)"):
    rules = {k: v for k, v in asdict(AlertRules.configured()).items() if k != "webhook_url"}
    st.dataframe(pd.DataFrame({"setting": list(rules), "value": [str(v) for v in rules.values()]}), hide_index=True)
