"""Needs attention now: my students ranked by what calls for action, each with the reason and a link."""

from __future__ import annotations

from datetime import date

import pandas as pd
import streamlit as st

from dashboard.context import open_page, settings, transaction
from dashboard.links import student_link, student_url
from dashboard.tables import show_table
from dashboard.text import count
from model import i18n
from model.i18n import tr
from model.serving.attention import needs_attention
from model.serving.history import short_key
from model.serving.students import student_ids
from model.store.school import load_thresholds

LINKED_FIRST = 10  # the most pressing also as page links under the table


def day_format() -> str:
    """Dates in the table: year first in English, day first in Portuguese."""
    return "YYYY-MM-DD" if i18n.language() == i18n.ENGLISH else "DD/MM/YYYY"


def show(listed: pd.DataFrame, ids: dict[str, str]) -> None:
    if listed.empty:
        st.success(tr("Nothing calls for action: no student of yours is at high risk without a plan, fell since "
                      "their last prediction, has a review due or lacks a final grade."))  # fmt: skip
        return
    table = pd.DataFrame({
        "student": [ids.get(key) or short_key(key) for key in listed["student_key"]],
        "why": listed["why"],
        "p_pass": listed["p_pass"],
        "latest": listed["created_at"],
        "open": listed["student_key"].map(student_url),
    })  # fmt: skip
    show_table(
        table,
        hide_index=True,
        width="stretch",
        column_config={
            "student": st.column_config.TextColumn(tr("Student")),
            "why": st.column_config.TextColumn(tr("Why it is listed"), width="large"),
            "p_pass": st.column_config.NumberColumn(tr("P(pass)"), format="percent"),
            "latest": st.column_config.DatetimeColumn(tr("Latest prediction"), format=day_format()),
            "open": st.column_config.LinkColumn(tr("Timeline"), display_text=tr("open")),
        },
    )
    st.markdown(tr("**Most pressing first**"))
    for key, student, why in list(zip(listed["student_key"], table["student"], listed["why"], strict=True))[
        :LINKED_FIRST
    ]:
        student_link(key, f"{student}: {why}")


def main() -> None:
    user = open_page(__file__)
    with transaction() as session:
        thresholds = load_thresholds(session, settings())
    st.caption(tr("Your own students, most pressing first: high risk (P(pass) below {high_below}) with no planned "
                  "or active intervention, a review date passed, P(pass) fallen by more than {fall} since the "
                  "previous prediction, or no final grade after the year's end.",
                  high_below=i18n.percent(thresholds.risk_high_below),
                  fall=i18n.percent(thresholds.attention_risk_rise)))  # fmt: skip
    with transaction() as session:
        listed = needs_attention(session, user.id, thresholds, date.today())
        ids = student_ids(session, settings(), user.id, listed["student_key"])
    st.metric(tr("Students listed"), count(len(listed)))
    show(listed, ids)


main()
