"""A student's year: every prediction over time, interventions, the outcome, what to do next."""

from __future__ import annotations

from datetime import date, timedelta

import streamlit as st

from dashboard.context import engine, open_page, settings, store, transaction
from dashboard.downloads import download_link
from dashboard.tables import show_table
from dashboard.timeline_chart import timeline_figure
from model.errors import UserError
from model.schema.fields import ID_COLUMN
from model.schema.results import FACTOR_COLUMNS, percent_text, risk_text
from model.serving.downloads import results_table
from model.serving.history import short_key
from model.serving.interventions import (
    KIND_LABELS,
    MAX_NOTE,
    STATUS_LABELS,
    interventions_csv,
    record_intervention,
    update_intervention,
)
from model.serving.outcomes import record_outcome
from model.serving.predlog.writer import student_key
from model.serving.service import predict_one
from model.serving.timeline import Timeline, student_timeline
from model.store.school import load_thresholds
from model.store.tables import INTERVENTION_KINDS, INTERVENTION_STATUSES

KEY_PARAM = "key"
FORM_KEYS = ("iv_kind", "iv_status", "iv_start", "iv_review", "iv_note")


def chosen_key() -> str | None:
    """The student: the page's ``?key=`` (from a table's link) or the id typed here."""
    typed = st.text_input("Student id", key="student_lookup", placeholder="e.g. S042").strip()
    if typed:
        return student_key(typed, settings())
    return st.query_params.get(KEY_PARAM) or None


def show_summary(timeline: Timeline) -> None:
    latest = timeline.predictions.iloc[-1]
    name, chance, level, outcome = st.columns(4)
    name.metric("Student", timeline.student_id or short_key(timeline.student_key))
    chance.metric("Latest P(pass)", percent_text(float(latest["p_pass"])), help=f"setup {latest['setup']}")
    level.metric("Risk", risk_text(str(latest["risk"])))
    outcome.metric("Final grade", "not recorded" if timeline.outcome_g3 is None else f"{timeline.outcome_g3} / 20")


def show_explanation(timeline: Timeline, user_id: int) -> None:
    """The latest prediction's main factors, recomputed from its logged inputs by today's model."""
    if not timeline.latest_inputs:
        return
    st.subheader("Why, at the latest prediction")
    try:
        prediction = predict_one(store(), engine(), timeline.latest_inputs, channel="ui", user_id=user_id, log=False)
    except UserError as error:
        st.warning(f"The latest prediction cannot be explained again: {error}")
        return
    sentences = results_table(prediction, columns=FACTOR_COLUMNS).iloc[0].tolist()
    st.markdown("\n".join(f"- {sentence}" for sentence in sentences if sentence))
    st.caption("The main factors by the model serving today, from the inputs logged with the latest prediction; "
               "associations seen in past students, not causes.")  # fmt: skip


def intervention_form(timeline: Timeline, user: object) -> None:
    """Record a new intervention for this student."""
    with st.form("new_intervention"):  # kept as typed when refused, cleared once saved
        st.markdown("**Record an intervention**")
        kind_col, status_col, start_col, review_col = st.columns(4)
        kind = kind_col.selectbox("Type", INTERVENTION_KINDS, format_func=KIND_LABELS.get, key="iv_kind")
        status = status_col.selectbox("Status", INTERVENTION_STATUSES, format_func=STATUS_LABELS.get, key="iv_status")
        start = start_col.date_input("Start date", value=date.today(), key="iv_start")
        review = review_col.date_input("Review date", value=date.today() + timedelta(days=28), key="iv_review")
        note = st.text_input("Note (optional)", max_chars=MAX_NOTE, key="iv_note",
                             help="No names, please: a few words on what was agreed.")  # fmt: skip
        submitted = st.form_submit_button("Save intervention")
    if submitted:
        try:
            with transaction() as session:
                record_intervention(session, settings(), user.id, user.username,
                                    student_key=timeline.student_key, kind=kind, status=status,
                                    start_date=start, review_date=review, note=note)  # fmt: skip
        except UserError as error:
            st.error(str(error))
            return
        for name in FORM_KEYS:
            st.session_state.pop(name, None)
        st.toast("Intervention saved.")
        st.rerun()


def edit_form(timeline: Timeline, user: object) -> None:
    """Change the status or review date of one of this student's interventions."""
    plans = timeline.interventions
    if plans.empty:
        return
    with st.form("edit_intervention"):
        st.markdown("**Update an intervention**")
        labels = {row.intervention_id: f"{KIND_LABELS[row.kind]}, from {row.start_date:%Y-%m-%d}"
                  for row in plans.itertuples()}  # fmt: skip
        which_col, status_col, review_col = st.columns(3)
        chosen = which_col.selectbox("Intervention", list(labels), format_func=labels.get, key="edit_which")
        current = plans.set_index("intervention_id").loc[chosen]
        status = status_col.selectbox("Status", INTERVENTION_STATUSES, format_func=STATUS_LABELS.get,
                                      index=INTERVENTION_STATUSES.index(current["status"]),
                                      key="edit_status")  # fmt: skip
        review = review_col.date_input("Review date", value=current["review_date"], key="edit_review")
        submitted = st.form_submit_button("Update")
    if submitted:
        try:
            with transaction() as session:
                update_intervention(session, settings(), user.id, user.username, int(chosen), status=status,
                                    review_date=review)  # fmt: skip
        except UserError as error:
            st.error(str(error))
            return
        st.toast("Intervention updated.")
        st.rerun()


def outcome_form(timeline: Timeline, user: object) -> None:
    """Record the student's real final grade (needs the id typed with a prediction)."""
    if timeline.student_id is None:
        st.caption("Record this student's final grade on the Record outcomes page, by their id.")
        return
    with st.form("student_outcome"):
        grade = st.number_input("Final grade (G3, 0-20)", min_value=0, max_value=20, step=1, value=None, key="g3")
        submitted = st.form_submit_button("Record final grade")
    if submitted:
        try:
            with transaction() as session:
                record_outcome(session, settings(), timeline.student_id, grade, user.id)
        except UserError as error:
            st.error(str(error))
            return
        st.toast("Final grade recorded.")
        st.rerun()


def show_interventions(timeline: Timeline, user: object) -> None:
    st.subheader("Interventions")
    plans = timeline.interventions
    if plans.empty:
        st.info("No intervention recorded for this student yet.")
    else:
        shown = plans.assign(kind=plans["kind"].map(KIND_LABELS), status=plans["status"].map(STATUS_LABELS))
        show_table(shown[["kind", "status", "start_date", "review_date", "note", "updated_at"]], hide_index=True,
                     width="stretch")  # fmt: skip
    intervention_form(timeline, user)
    edit_form(timeline, user)
    # built only when asked: not on every rerun of the page (each form, each click)
    if st.button("Prepare all my interventions (CSV)", key="prepare_interventions_csv"):
        with transaction() as session:
            data = interventions_csv(session, settings(), user.id)
        download_link("Download all my interventions (CSV)", data, "interventions.csv", "text/csv")


def main() -> None:
    user = open_page(__file__)
    st.caption("Your own predictions of one student over the year, what was done, and the final grade.")
    key = chosen_key()
    if key is None:
        st.info(f"Open a student from Needs attention or My students, or type their {ID_COLUMN.replace('_', ' ')}.")
        return
    try:
        with transaction() as session:
            timeline = student_timeline(session, settings(), user.id, key)
            thresholds = load_thresholds(session, settings())
    except UserError as error:
        st.error(str(error))
        return
    show_summary(timeline)
    st.plotly_chart(timeline_figure(timeline, thresholds.risk_high_below), key="timeline")
    show_explanation(timeline, user.id)
    show_interventions(timeline, user)
    st.subheader("Outcome")
    outcome_form(timeline, user)


main()
