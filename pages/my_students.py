"""My students: the latest of my own predictions per student, with the real grade once recorded."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import pandas as pd
import streamlit as st

from dashboard.columns import risk_label, risk_markdown, table_columns
from dashboard.context import open_page, settings, transaction
from dashboard.links import student_url
from dashboard.tables import show_table
from dashboard.text import count
from model import i18n
from model.i18n import tr
from model.schema.fields import ID_COLUMN
from model.schema.results import HISTORY_COLUMNS, RISKS
from model.serving.history import history_counts, short_key, teacher_history
from model.serving.students import student_ids

LIMIT = 500
ALL = "All"
SHOWN_FIRST = (ID_COLUMN, "student_key", "created_at", "risk", "p_pass", "predicted_g3", "lower", "upper", "band",
               "setup")  # fmt: skip
HIDDEN = ("prediction_id", "channel", "model_version_id")


def _day_start(day: date) -> datetime:
    return datetime.combine(day, time.min, tzinfo=UTC)


def date_bounds(chosen: tuple[date, ...]) -> tuple[datetime | None, datetime | None]:
    """A picked date range as [since, until) in UTC; an unfinished pick bounds one side only."""
    since = _day_start(chosen[0]) if len(chosen) >= 1 else None
    until = _day_start(chosen[1] + timedelta(days=1)) if len(chosen) == 2 else None
    return since, until


def choose_filters() -> dict[str, Any]:
    """The risk level, student id and date range to filter by."""
    risk_col, id_col, date_col = st.columns(3)
    risk = risk_col.selectbox(tr("Risk level"), [ALL, *RISKS], key="history_risk",
                              format_func=lambda level: tr("All") if level == ALL else risk_label(level))  # fmt: skip
    student_id = id_col.text_input(tr("Student id"), key="history_student", placeholder=tr("e.g. S042")).strip()
    student_id = student_id or None
    day_first = "YYYY/MM/DD" if i18n.language() == i18n.ENGLISH else "DD/MM/YYYY"
    chosen = date_col.date_input(tr("Latest prediction between"), value=(), key="history_dates", format=day_first)
    since, until = date_bounds(tuple(chosen))
    return {"student_id": student_id, "risk": None if risk == ALL else risk, "since": since, "until": until}


def show_counts(counts: dict[str, int]) -> None:
    """Students in total and per risk level."""
    total, *levels = st.columns(1 + len(RISKS))
    total.metric(tr("Students"), count(sum(counts.values())))
    for column, level in zip(levels, RISKS, strict=True):
        column.metric(risk_markdown(level), count(counts[level]))


def show_history(history: pd.DataFrame, filtered: bool) -> None:
    """The latest prediction per student: the id the teacher typed (and the start of its pseudonymous key)."""
    if history.empty:
        st.info(tr("No predictions match.") if filtered else tr("You have made no predictions with a student id yet."))
        return
    if len(history) == LIMIT:
        st.caption(tr("Showing the {count} most recent students; narrow the filters to see others.",
                      count=count(LIMIT)))  # fmt: skip
    shown = history.assign(student_key=history["student_key"].map(short_key))
    shown.insert(0, "timeline", history["student_key"].map(student_url))
    config, order = table_columns((ID_COLUMN, *HISTORY_COLUMNS), first=SHOWN_FIRST, hide=HIDDEN)
    config["timeline"] = st.column_config.LinkColumn(tr("Timeline"), display_text=tr("open"))
    order = ["timeline", *order]
    show_table(shown, hide_index=True, width="stretch", column_config=config, column_order=order)


def main() -> None:
    user = open_page(__file__)
    st.caption(tr("Your own predictions only: the latest per student, with the real final grade once it is "
                  "recorded. Students appear under the id you typed (only you see it; encrypted when the school set "
                  "a data key) and the start of their pseudonymous key; type an id to find one. Predictions made "
                  "without a student id are listed under Record outcomes."))  # fmt: skip
    filters = choose_filters()
    with transaction() as session:
        counts = history_counts(session, settings(), user.id, **filters)
        history = teacher_history(session, settings(), user.id, limit=LIMIT, **filters)
        ids = student_ids(session, settings(), user.id, history["student_key"])
    history.insert(0, ID_COLUMN, history["student_key"].map(ids))
    show_counts(counts)
    show_history(history, filtered=any(filters.values()))


main()
