"""Did acting help? Pass rates of students with an intervention beside those of the same risk without one."""

from __future__ import annotations

import streamlit as st

from dashboard.context import open_page, transaction
from dashboard.tables import show_table
from model.monitoring.acting import CAVEAT, MIN_GROUP, acting_table
from model.schema.results import risk_text
from model.serving.interventions import KIND_LABELS


def main() -> None:
    open_page(__file__)
    st.warning(CAVEAT)
    st.caption(f"Students with a recorded final grade, by intervention type and by their risk level when it was "
               f"recorded. No rate is shown for a group of fewer than {MIN_GROUP} students.")  # fmt: skip
    with transaction() as session:
        table = acting_table(session)
    if table.empty:
        st.info("No student with an intervention has a recorded final grade yet.")
        return
    shown = table.assign(kind=table["kind"].map(KIND_LABELS), risk=table["risk"].map(risk_text))
    show_table(
        shown,
        hide_index=True,
        width="stretch",
        column_config={
            "kind": "Intervention", "risk": "Risk at the time", "students": "Students", "passed": "Passed",
            "pass_rate": st.column_config.NumberColumn("Pass rate", format="percent"),
            "others": "Same risk, no intervention", "others_passed": "Of them passed",
            "others_pass_rate": st.column_config.NumberColumn("Their pass rate", format="percent"),
        },
    )  # fmt: skip


main()
