"""School settings: the risk cut-offs, the "risk rose" threshold and the year's end, for every front."""

from __future__ import annotations

from datetime import date

import streamlit as st

from dashboard.context import open_page, settings, transaction
from dashboard.tables import show_table
from model import i18n
from model.errors import UserError
from model.i18n import tr
from model.schema.thresholds import Thresholds
from model.store.audit import list_audit
from model.store.school import SCHOOL_FIELDS, load_thresholds, set_school_thresholds, stored_values


def settings_form(current: Thresholds) -> dict | None:
    """The four school levels, prefilled with the ones in force; the values on submit."""
    with st.form("school_settings"):
        high, medium, rise, end = st.columns(4)
        values = {
            "risk_high_below": high.number_input(tr("High risk: P(pass) below"), 0.01, 1.0,
                                                 current.risk_high_below, 0.05, key="risk_high_below",
                                                 help=tr(SCHOOL_FIELDS["risk_high_below"])),
            "risk_medium_below": medium.number_input(tr("Medium risk: P(pass) below"), 0.01, 1.0,
                                                     current.risk_medium_below, 0.05, key="risk_medium_below",
                                                     help=tr(SCHOOL_FIELDS["risk_medium_below"])),
            "attention_risk_rise": rise.number_input(tr("Risk rose: P(pass) fell by more than"), 0.01, 0.99,
                                                     current.attention_risk_rise, 0.05, key="attention_risk_rise",
                                                     help=tr(SCHOOL_FIELDS["attention_risk_rise"])),
            "year_end": end.date_input(tr("Year's end"), value=current.year_end, key="year_end",
                                       help=tr(SCHOOL_FIELDS["year_end"])),
        }  # fmt: skip
        return values if st.form_submit_button(tr("Save")) else None


def main() -> None:
    user = open_page(__file__)
    st.caption(tr("The levels this school decides. They apply to every new prediction (dashboard, API, command line "
                  "and their downloads) within seconds and to the teachers' Needs attention lists at once; levels "
                  "not set here come from the server's environment. Every change is audited."))  # fmt: skip
    with transaction() as session:
        current = load_thresholds(session, settings())
        overridden = stored_values(session)
    values = settings_form(current)
    if values is not None:
        try:
            with transaction() as session:
                set_school_thresholds(session, settings(), user.username, user.id, **values)
        except UserError as error:
            st.error(str(error))
        else:
            st.success(tr("Saved: the school's levels are in force."))
            overridden = values
    chosen = [f"{name} = {_value(value)}" for name, value in sorted(overridden.items()) if value is not None]
    if chosen:
        st.caption(tr("Set by the school: {levels}", levels=", ".join(chosen)))
    else:
        st.caption(tr("Set by the school: none yet (environment defaults)"))
    with transaction() as session:
        changes = list_audit(session, "school_thresholds_set", limit=10)
    if changes:
        show_table([{"when": row.created_at, "who": row.actor, **row.detail} for row in changes], hide_index=True,
                   column_config={"when": tr("when"), "who": tr("who")})  # fmt: skip


def _value(value: object) -> str:
    """A level as read: a date in this language's form, else the number as set."""
    if isinstance(value, date):
        return i18n.date(value)
    return str(value)


main()
