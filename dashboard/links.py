"""Links to one student's timeline page, from every table that lists students.

The student is named in the URL by their pseudonymous key (``student?key=...``), never by the id
the teacher typed, so ids stay out of browser histories and proxy logs.
"""

from __future__ import annotations

import streamlit as st
from streamlit.errors import StreamlitPageNotFoundError

from dashboard.page_table import page_spec
from dashboard.text import md

STUDENT_PAGE = page_spec("student.py").path  # as st.navigation registered it
STUDENT_URL = "student?key={}"  # not shown to users (an address)


def student_url(key: str) -> str:
    """The relative address of the student page of ``key`` (for a table's link column)."""
    return STUDENT_URL.format(key)


def student_link(key: str, label: str) -> None:
    """A link to the student page of ``key``: a navigation link in the app, a plain link when the page
    runs on its own (a test opening one page file, outside ``st.navigation``)."""
    label = md(label)  # the student id is what a teacher typed or uploaded: shown, never rendered as Markdown
    try:
        st.page_link(STUDENT_PAGE, label=label, icon=":material/timeline:", query_params={"key": key})
    except StreamlitPageNotFoundError:
        st.markdown(f"[{label}]({student_url(key)})")
