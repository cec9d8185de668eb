"""The signed-in user's own profile in the sidebar: their language, e-mail address and the weekly digest opt-in."""

from __future__ import annotations

import streamlit as st

from dashboard import language
from dashboard.context import CurrentUser, transaction
from model import i18n
from model.accounts import profile
from model.accounts.profile import ProfileError, digest_preference, set_digest_preference
from model.i18n import N_, tr

DIGEST_LABEL = N_("E-mail me the weekly digest")
EMAIL_LABEL = N_("My e-mail address")
LANGUAGE_LABEL = N_("Language")
SAVED = N_("Profile saved.")
_LOADED_KEY = "mathsight_language_loaded"  # the user whose stored language this session has read
BROWSER = "browser"  # the language choice "follow my browser"


def apply_user_language(user: CurrentUser) -> str:
    """Speak the user's chosen language (read once per session from their account), else the browser's."""
    if st.session_state.get(_LOADED_KEY) != user.id:
        with transaction() as session:
            chosen = profile.language(session, user.id)
        st.session_state[_LOADED_KEY] = user.id
        return language.remember(chosen)
    return language.apply()


def _language_name(code: str) -> str:
    if code == BROWSER:
        return tr("My browser's language ({language})", language=i18n.LANGUAGES[language.browser_language()])
    return i18n.LANGUAGES[code]


def profile_section(user: CurrentUser) -> None:
    """A small form only the user sees, changing only their own row."""
    with transaction() as session:
        current = digest_preference(session, user.id)
        chosen = profile.language(session, user.id)
    with st.sidebar.expander(tr("My profile"), icon=":material/person:"):
        with st.form("profile"):
            options = [BROWSER, *i18n.LANGUAGES]
            picked = st.selectbox(tr(LANGUAGE_LABEL), options, index=options.index(chosen or BROWSER),
                                  format_func=_language_name, key="mathsight-profile-language")  # fmt: skip
            email = st.text_input(tr(EMAIL_LABEL), value=current.email or "", max_chars=254)
            opt_in = st.checkbox(
                tr(DIGEST_LABEL),
                value=current.digest_opt_in,
                help=tr("Once a week: the student ids and reasons of your Needs attention list, nothing else."),
                disabled=user.role != "teacher",
            )
            saved = st.form_submit_button(tr("Save profile"))
        if not saved:
            return
        code = None if picked == BROWSER else picked
        try:
            with transaction() as session:
                set_digest_preference(session, user.id, email, opt_in and user.role == "teacher")
                profile.set_language(session, user.id, code)
        except ProfileError as error:
            st.error(str(error), icon=":material/error:")
            return
        if code != chosen:  # the whole page in the new language
            language.remember(code)
            st.rerun()
        st.success(tr(SAVED), icon=":material/check:")
