"""The language of this browser session: the signed-in user's choice (their profile), else the browser's.

Called first thing on every run (the entry script and :func:`dashboard.context.open_page`), so every
string of the run, from the pages and from the core, is in that language (:mod:`model.i18n`).
"""

from __future__ import annotations

import json

import streamlit as st

from model import i18n

LANGUAGE_KEY = "mathsight_language"  # the signed-in user's chosen language; absent: the browser's
DOCUMENT_TAGS = {i18n.ENGLISH: "en", i18n.PORTUGUESE: "pt-PT"}  # ours -> BCP 47, for <html lang>


def browser_language() -> str:
    """The language the browser asks for (``navigator.language``), as one of ours."""
    try:
        return i18n.from_browser(st.context.locale)
    except Exception:  # noqa: BLE001 (no browser behind this run, e.g. a test harness)
        return i18n.ENGLISH


def apply() -> str:
    """Speak this session's language for the rest of the run; returns it."""
    return i18n.set_language(st.session_state.get(LANGUAGE_KEY) or browser_language())


def remember(code: str | None) -> str:
    """Keep the user's choice for the session (None: follow the browser) and speak it from now on."""
    if code in i18n.LANGUAGES:
        st.session_state[LANGUAGE_KEY] = code
    else:
        st.session_state.pop(LANGUAGE_KEY, None)
    return apply()


def mark_document() -> None:
    """Set ``<html lang>`` to the run's language, so a screen reader reads Portuguese as Portuguese
    (WCAG 3.1.1); Streamlit's page always says ``en``. A fixed script, no user input in it."""
    tag = json.dumps(DOCUMENT_TAGS.get(i18n.language(), "en"))
    st.html(f"<script>document.documentElement.lang = {tag};</script>", unsafe_allow_javascript=True)
