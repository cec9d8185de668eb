"""Record outcomes: real final grades (one at a time or by CSV) and feedback on predictions."""

from __future__ import annotations

from typing import Any

import pandas as pd
import streamlit as st

from dashboard.columns import table_columns
from dashboard.context import CurrentUser, open_page, settings, transaction
from dashboard.downloads import download_link
from dashboard.tables import show_table
from dashboard.text import count, md
from model import i18n
from model.errors import BatchRejected, InvalidInput
from model.i18n import tr, tr_n
from model.schema.results import PROBLEM_COLUMNS, RECENT_COLUMNS, RISK_LABELS
from model.serving.downloads import problems_table
from model.serving.history import recent_predictions, short_key
from model.serving.outcomes import (
    FEEDBACK_LABELS,
    MAX_REASON,
    PredictionNotFound,
    record_feedback,
    record_outcome,
    record_outcomes_csv,
)
from model.serving.outcomes import template_csv as outcomes_template

IMPORT_KEY = "outcomes_import"
RECENT = 50


def one_outcome(user: CurrentUser) -> None:
    """A form for one student's final grade."""
    with st.form("outcome_one", clear_on_submit=False):
        student_id = st.text_input(tr("Student id"), key="outcome_student", help=tr("The id used when predicting."))
        grade = st.number_input(tr("Final grade (G3)"), min_value=0, max_value=20, step=1, value=None,
                                key="outcome_g3",
                                help=tr("The real final maths grade, a whole number from 0 to 20."))  # fmt: skip
        submitted = st.form_submit_button(tr("Record the grade"), type="primary")
    if not submitted:
        return
    try:
        with transaction() as session:
            record_outcome(session, settings(), student_id, grade, user.id)
    except InvalidInput as error:
        for problem in error.problems:
            st.error(md(problem.message))
    else:
        st.success(tr("Recorded final grade {grade} for student {student}.", grade=grade,
                      student=md(student_id.strip())))  # fmt: skip


def import_file(upload: Any, user: CurrentUser) -> dict[str, Any]:
    """Store the grades of an uploaded CSV once; the result is kept for reruns."""
    result: dict[str, Any] = {"file_id": upload.file_id, "name": upload.name, "error": None, "imported": None}
    try:
        with transaction() as session:
            result["imported"] = record_outcomes_csv(session, settings(), upload.getvalue(), user.id)
    except BatchRejected as error:
        result["error"] = tr("**{file}** was not accepted: {reason}.", file=md(upload.name), reason=md(error))
    return result


def outcomes_file(user: CurrentUser) -> None:
    """Grades for many students from a CSV with the columns student_id and G3."""
    download_link(tr("Download the outcomes template"), outcomes_template(), "mathsight-outcomes-template.csv",
                  "text/csv")  # fmt: skip
    upload = st.file_uploader(tr("Outcomes file (.csv: student_id, G3)"), type=["csv"], key="outcomes_file")
    last = st.session_state.get(IMPORT_KEY)
    if upload is not None and (last is None or last["file_id"] != upload.file_id):
        last = st.session_state[IMPORT_KEY] = import_file(upload, user)
    if last is None:
        return
    if last["error"] is not None:
        st.error(last["error"])
        return
    imported = last["imported"]
    st.success(tr("**{file}**: stored {stored} of {rows} grades.", file=md(last["name"]),
                  stored=count(imported.stored), rows=count(imported.n_rows)))  # fmt: skip
    if imported.problems:
        st.warning(tr_n("{count} row was not stored; fix it and upload that row again.",
                        "{count} rows were not stored; fix them and upload those rows again.",
                        len(imported.rejected_rows), count=count(len(imported.rejected_rows))))  # fmt: skip
        config, order = table_columns(PROBLEM_COLUMNS)
        show_table(problems_table(imported.problems), hide_index=True, width="stretch", column_config=config,
                     column_order=order)  # fmt: skip


def _prediction_label(row: pd.Series) -> str:
    who = tr("student {key}", key=short_key(row["student_key"])) if row["student_key"] else tr("no student id")
    return tr("#{number} · {when} · {who} · predicted {grade} ({risk})", number=row["prediction_id"],
              when=i18n.moment(row["created_at"]), who=who, grade=i18n.number(float(row["predicted_g3"]), 1),
              risk=tr(RISK_LABELS[row["risk"]]))  # fmt: skip


def show_recent(recent: pd.DataFrame) -> None:
    """The recent predictions table (students by key prefix, feedback in words)."""
    shown = recent.assign(
        student_key=recent["student_key"].map(short_key),
        feedback=recent["feedback"].map(lambda category: tr(FEEDBACK_LABELS[category]), na_action="ignore"),
    )
    config, order = table_columns(RECENT_COLUMNS)
    show_table(shown, hide_index=True, width="stretch", column_config=config, column_order=order)


def feedback_form(recent: pd.DataFrame, user: CurrentUser) -> bool:
    """A form to give feedback on one of ``recent`` (a category, an optional why); True when it was stored."""
    rows = recent.set_index("prediction_id", drop=False)
    with st.form("feedback"):
        chosen = st.selectbox(tr("Prediction"), list(rows.index), index=None, key="feedback_id",
                              placeholder=tr("Choose an option"),
                              format_func=lambda i: _prediction_label(rows.loc[i]))  # fmt: skip
        category = st.radio(tr("This prediction was"), list(FEEDBACK_LABELS), index=None, key="feedback_category",
                            format_func=lambda category: tr(FEEDBACK_LABELS[category]), horizontal=True)  # fmt: skip
        reason = st.text_area(tr("Why? (optional; no names, please)"), max_chars=MAX_REASON, key="feedback_reason")
        submitted = st.form_submit_button(tr("Give feedback"))
    if not submitted:
        return False
    if chosen is None or category is None:
        st.error(tr("Choose the prediction and what it was first."))
        return False
    try:
        with transaction() as session:
            record_feedback(session, int(chosen), user.id, category, reason)
    except InvalidInput as error:
        st.error(md(error.problems[0].message))
    except PredictionNotFound as error:
        st.error(str(error))
    else:
        label = tr(FEEDBACK_LABELS[category]).lower()
        st.success(tr("Prediction #{number} marked {label}. Thank you: this feeds the model monitoring.",
                      number=chosen, label=label))  # fmt: skip
        return True
    return False


def _recent(user: CurrentUser) -> pd.DataFrame:
    with transaction() as session:
        return recent_predictions(session, user.id, limit=RECENT)


def recent_with_feedback(user: CurrentUser) -> None:
    """The user's recent predictions, and the form to give feedback on one."""
    recent = _recent(user)
    if recent.empty:
        st.info(tr("You have no predictions yet."))
        return
    table = st.container()
    if feedback_form(recent, user):
        recent = _recent(user)
    with table:
        show_recent(recent)


def main() -> None:
    user = open_page(__file__)
    st.write(tr("Record the real final grades of the students you predicted (by the id you gave them) so the "
                "predictions can be checked, and tell us what you made of a prediction."))  # fmt: skip
    one, many = st.tabs([tr("One student"), tr("From a CSV file")])
    with one:
        one_outcome(user)
    with many:
        outcomes_file(user)
    st.header(tr("Your recent predictions"))
    recent_with_feedback(user)


main()
