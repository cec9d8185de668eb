"""User-supplied strings shown in Markdown are literal text: no link, emphasis, colour or icon."""

from __future__ import annotations

from pathlib import Path

import pytest
from markdown_it import MarkdownIt
from streamlit.testing.v1 import AppTest

from dashboard.text import md
from tests.dashboard.test_outcomes_page import predict

HOSTILE = [
    "[click](http://evil.example)",
    "![x](http://evil.example/a.png)",
    "**admin**",
    "_a_ `code` ~~gone~~",
    ":red[alert]",
    "$x^2$",
    "<b>bold</b>",
    "# title\n- item",
    "back\\slash [x](y)",
]


@pytest.mark.parametrize("text", HOSTILE)
def test_escaped_text_renders_as_itself(text: str) -> None:
    html = MarkdownIt("commonmark").render(f"Results for {md(text)}.")
    assert "<a " not in html and "<img" not in html and "<strong>" not in html and "<em>" not in html
    assert "<code>" not in html and "<h1>" not in html and "<li>" not in html and "<b>" not in html


def test_plain_names_are_unchanged() -> None:
    assert md("S042") == "S042" and md("grades 2026") == "grades 2026"


def test_an_uploaded_file_name_and_student_id_are_shown_literally(app_db_url: str, teacher_account, raw_df) -> None:
    predict(app_db_url, raw_df, teacher_account.user, "[S1](http://evil.example)")
    predict(app_db_url, raw_df, teacher_account.user, "S1")
    page = str(Path(__file__).resolve().parents[2] / "pages" / "outcomes.py")
    at = AppTest.from_file(page, default_timeout=30)
    at.session_state["mathsight_user"] = teacher_account.user
    at.run()
    at.text_input(key="outcome_student").input("[S1](http://evil.example)")
    at.number_input(key="outcome_g3").set_value(14)
    at.button[0].click().run()
    assert [s.value for s in at.success] == [r"Recorded final grade 14 for student \[S1\](http://evil.example)."]
    at.file_uploader(key="outcomes_file").upload("[f](http://evil.example).csv", b"student_id;G3\nS1;12\n", "text/csv")
    at.run()
    assert not at.exception
    assert at.success[-1].value.startswith(r"**\[f\](http://evil.example).csv**: stored 1 of 1")
