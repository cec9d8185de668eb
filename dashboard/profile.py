"""The signed-in user's own profile in the sidebar: their e-mail address and the weekly digest opt-in."""

from __future__ import annotations

import streamlit as st

from dashboard.context import CurrentUser, transaction
from model.accounts.profile import ProfileError, digest_preference, set_digest_preference

DIGEST_LABEL = "E-mail me the weekly digest"
EMAIL_LABEL = "My e-mail address"
SAVED = "Profile saved."


def profile_section(user: CurrentUser) -> None:
    """A small form only the user sees, changing only their own row."""
    with transaction() as session:
        current = digest_preference(session, user.id)
    with st.sidebar.expander("My profile", icon=":material/person:"):
        with st.form("profile"):
            email = st.text_input(EMAIL_LABEL, value=current.email or "", max_chars=254)
            opt_in = st.checkbox(
                DIGEST_LABEL,
                value=current.digest_opt_in,
                help="Once a week: the student ids and reasons of your Needs attention list, nothing else.",
                disabled=user.role != "teacher",
            )
            saved = st.form_submit_button("Save profile")
        if not saved:
            return
        try:
            with transaction() as session:
                set_digest_preference(session, user.id, email, opt_in and user.role == "teacher")
        except ProfileError as error:
            st.error(str(error), icon=":material/error:")
        else:
            st.success(SAVED, icon=":material/check:")
