"""A student's year: every prediction over time, interventions, the outcome, what to do next."""

from __future__ import annotations

from datetime import date, timedelta

import streamlit as st

from dashboard.context import engine, open_page, settings, store, transaction
from dashboard.downloads import download_link
from dashboard.tables import show_table
from dashboard.timeline_chart import timeline_figure
from model import i18n
from model.errors import UserError
from model.i18n import tr
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


def date_format() -> str:
    """The date inputs' format: Streamlit's year first in English, day first in Portuguese."""
    return "YYYY/MM/DD" if i18n.language() == i18n.ENGLISH else "DD/MM/YYYY"


def kind_label(kind: str) -> str:
    return tr(KIND_LABELS.get(kind, kind))


def status_label(status: str) -> str:
    return tr(STATUS_LABELS.get(status, status))


def intervention_columns() -> dict[str, object]:
    """The interventions table's headings (the columns keep their stable names)."""
    day = None if i18n.language() == i18n.ENGLISH else "DD/MM/YYYY"
    moment = None if i18n.language() == i18n.ENGLISH else "DD/MM/YYYY HH:mm"
    return {"kind": tr("Type"), "status": tr("Status"),
            "start_date": st.column_config.DateColumn(tr("Start date"), format=day),
            "review_date": st.column_config.DateColumn(tr("Review date"), format=day), "note": tr("Note"),
            "updated_at": st.column_config.DatetimeColumn(tr("Last updated"), format=moment)}  # fmt: skip


def chosen_key() -> str | None:
    """The student: the page's ``?key=`` (from a table's link) or the id typed here."""
    typed = st.text_input(tr("Student id"), key="student_lookup", placeholder=tr("e.g. S042")).strip()
    if typed:
        return student_key(typed, settings())
    return st.query_params.get(KEY_PARAM) or None


def show_summary(timeline: Timeline) -> None:
    latest = timeline.predictions.iloc[-1]
    name, chance, level, outcome = st.columns(4)
    name.metric(tr("Student"), timeline.student_id or short_key(timeline.student_key))
    chance.metric(tr("Latest P(pass)"), percent_text(float(latest["p_pass"])),
                  help=tr("setup {setup}", setup=latest["setup"]))  # fmt: skip
    level.metric(tr("Risk"), risk_text(str(latest["risk"])))
    grade = tr("not recorded") if timeline.outcome_g3 is None else f"{timeline.outcome_g3} / 20"
    outcome.metric(tr("Final grade"), grade)


def show_explanation(timeline: Timeline, user_id: int) -> None:
    """The latest prediction's main factors, recomputed from its logged inputs by today's model."""
    if not timeline.latest_inputs:
        return
    st.header(tr("Why, at the latest prediction"))
    try:
        prediction = predict_one(store(), engine(), timeline.latest_inputs, channel="ui", user_id=user_id, log=False)
    except UserError as error:
        st.warning(tr("The latest prediction cannot be explained again: {reason}", reason=error))
        return
    sentences = results_table(prediction, columns=FACTOR_COLUMNS).iloc[0].tolist()
    st.markdown("\n".join(f"- {sentence}" for sentence in sentences if sentence))
    st.caption(tr("The main factors by the model serving today, from the inputs logged with the latest "
                  "prediction; associations seen in past students, not causes."))  # fmt: skip


def intervention_form(timeline: Timeline, user: object) -> None:
    """Record a new intervention for this student."""
    with st.form("new_intervention"):  # kept as typed when refused, cleared once saved
        st.markdown(tr("**Record an intervention**"))
        kind_col, status_col, start_col, review_col = st.columns(4)
        kind = kind_col.selectbox(tr("Type"), INTERVENTION_KINDS, format_func=kind_label, key="iv_kind")
        status = status_col.selectbox(tr("Status"), INTERVENTION_STATUSES, format_func=status_label, key="iv_status")
        start = start_col.date_input(tr("Start date"), value=date.today(), key="iv_start", format=date_format())
        review = review_col.date_input(tr("Review date"), value=date.today() + timedelta(days=28), key="iv_review",
                                       format=date_format())  # fmt: skip
        note = st.text_input(tr("Note (optional)"), max_chars=MAX_NOTE, key="iv_note",
                             help=tr("No names, please: a few words on what was agreed."))  # fmt: skip
        submitted = st.form_submit_button(tr("Save intervention"))
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
        st.toast(tr("Intervention saved."))
        st.rerun()


def edit_form(timeline: Timeline, user: object) -> None:
    """Change the status or review date of one of this student's interventions."""
    plans = timeline.interventions
    if plans.empty:
        return
    with st.form("edit_intervention"):
        st.markdown(tr("**Update an intervention**"))
        labels = {row.intervention_id: tr("{kind}, from {start}", kind=kind_label(row.kind),
                                          start=i18n.date(row.start_date))
                  for row in plans.itertuples()}  # fmt: skip
        which_col, status_col, review_col = st.columns(3)
        chosen = which_col.selectbox(tr("Intervention"), list(labels), format_func=labels.get, key="edit_which")
        current = plans.set_index("intervention_id").loc[chosen]
        status = status_col.selectbox(tr("Status"), INTERVENTION_STATUSES, format_func=status_label,
                                      index=INTERVENTION_STATUSES.index(current["status"]),
                                      key="edit_status")  # fmt: skip
        review = review_col.date_input(tr("Review date"), value=current["review_date"], key="edit_review",
                                       format=date_format())  # fmt: skip
        submitted = st.form_submit_button(tr("Update"))
    if submitted:
        try:
            with transaction() as session:
                update_intervention(session, settings(), user.id, user.username, int(chosen), status=status,
                                    review_date=review)  # fmt: skip
        except UserError as error:
            st.error(str(error))
            return
        st.toast(tr("Intervention updated."))
        st.rerun()


def outcome_form(timeline: Timeline, user: object) -> None:
    """Record the student's real final grade (needs the id typed with a prediction)."""
    if timeline.student_id is None:
        st.caption(tr("Record this student's final grade on the Record outcomes page, by their id."))
        return
    with st.form("student_outcome"):
        grade = st.number_input(tr("Final grade (G3, 0-20)"), min_value=0, max_value=20, step=1, value=None,
                                key="g3")  # fmt: skip
        submitted = st.form_submit_button(tr("Record final grade"))
    if submitted:
        try:
            with transaction() as session:
                record_outcome(session, settings(), timeline.student_id, grade, user.id)
        except UserError as error:
            st.error(str(error))
            return
        st.toast(tr("Final grade recorded."))
        st.rerun()


def show_interventions(timeline: Timeline, user: object) -> None:
    st.header(tr("Interventions"))
    plans = timeline.interventions
    if plans.empty:
        st.info(tr("No intervention recorded for this student yet."))
    else:
        shown = plans.assign(kind=plans["kind"].map(kind_label), status=plans["status"].map(status_label))
        show_table(shown[["kind", "status", "start_date", "review_date", "note", "updated_at"]], hide_index=True,
                   width="stretch", column_config=intervention_columns())  # fmt: skip
    intervention_form(timeline, user)
    edit_form(timeline, user)
    # built only when asked: not on every rerun of the page (each form, each click)
    if st.button(tr("Prepare all my interventions (CSV)"), key="prepare_interventions_csv"):
        with transaction() as session:
            data = interventions_csv(session, settings(), user.id)
        download_link(tr("Download all my interventions (CSV)"), data, "interventions.csv", "text/csv")


def main() -> None:
    user = open_page(__file__)
    st.caption(tr("Your own predictions of one student over the year, what was done, and the final grade."))
    key = chosen_key()
    if key is None:
        st.info(tr("Open a student from Needs attention or My students, or type their student id."))
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
    st.header(tr("Outcome"))
    outcome_form(timeline, user)


main()
