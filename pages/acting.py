"""Did acting help? Pass rates of students with an intervention beside those of the same risk without one."""

from __future__ import annotations

import streamlit as st

from dashboard.context import open_page, transaction
from dashboard.tables import show_table
from model.i18n import tr
from model.monitoring.acting import CAVEAT, MIN_GROUP, acting_table
from model.schema.results import risk_text
from model.serving.interventions import KIND_LABELS


def main() -> None:
    open_page(__file__)
    st.warning(tr(CAVEAT))
    st.caption(tr("Students with a recorded final grade, by intervention type and by their risk level when it was "
                  "recorded. No rate is shown for a group of fewer than {count} students.",
                  count=MIN_GROUP))  # fmt: skip
    with transaction() as session:
        table = acting_table(session)
    if table.empty:
        st.info(tr("No student with an intervention has a recorded final grade yet."))
        return
    shown = table.assign(kind=table["kind"].map(lambda kind: tr(KIND_LABELS.get(kind, kind))),
                         risk=table["risk"].map(risk_text))  # fmt: skip
    show_table(
        shown,
        hide_index=True,
        width="stretch",
        column_config={
            "kind": tr("Intervention"), "risk": tr("Risk at the time"), "students": tr("Students"),
            "passed": tr("Passed"), "pass_rate": st.column_config.NumberColumn(tr("Pass rate"), format="percent"),
            "others": tr("Same risk, no intervention"), "others_passed": tr("Of them passed"),
            "others_pass_rate": st.column_config.NumberColumn(tr("Their pass rate"), format="percent"),
        },
    )  # fmt: skip


main()
