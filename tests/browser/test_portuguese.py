"""A teacher whose browser asks for Portuguese (pt-PT), in a real Chromium: signs in, predicts a student
with a high risk of no final grade, uploads a class and opens "Needs attention", all in European
Portuguese, with Portuguese numbers; no English sentence on the page (what Streamlit itself draws, such
as the file uploader's "Drag and drop", is outside the page's main text checked here).

With ``MATHSIGHT_SCREENSHOTS=1`` it saves docs/screenshots/predict-pt.png and needs-attention-pt.png.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest
from playwright.sync_api import Page, expect

from model import i18n
from model.i18n import tr
from tests.browser.conftest import LiveApp, create_users
from tests.browser.ui import Account, heading, log_in, metric_value, open_page, screenshot, settle
from tests.translations import english_words

pytestmark = pytest.mark.browser

BROWSER_LANGUAGE = "pt-PT"
PROFESSORA = Account("ines", "ines-browser-pass-01", "Inês Professora")
# Streamlit's own words inside the main area that a page cannot translate (the file uploader's drop zone).
STREAMLIT_OWN = ("Drag and drop", "Limit ", "Browse files")


def pt(message: str, **values: object) -> str:
    with i18n.use_language(i18n.PORTUGUESE):
        return tr(message, **values)


def english_lines(page: Page) -> list[str]:
    """Lines of the page's main area that read as English (two English words or more)."""
    settle(page)
    text = page.get_by_test_id("stMain").inner_text()
    lines = [line for line in text.splitlines() if not any(own in line for own in STREAMLIT_OWN)]
    return [line for line in lines if len({w.lower() for w in english_words(line)}) >= 2]


@pytest.fixture(scope="module")
def weak_class(student_csv_path: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Ten real students whose second-period grade is below 8."""
    frame = pd.read_csv(student_csv_path, sep=";", dtype=str, keep_default_na=False)
    frame = frame[frame["G2"].astype(int) < 8].head(10).drop(columns="G3")
    frame.insert(0, "student_id", [f"P{i:03d}" for i in range(1, len(frame) + 1)])
    path = tmp_path_factory.mktemp("pt") / "turma-9a.csv"
    frame.to_csv(path, sep=";", index=False)
    return path


def test_a_portuguese_teacher_predicts_uploads_and_reads_needs_attention(
    new_page: Callable[..., Page], live_app: LiveApp, weak_class: Path
) -> None:
    create_users(live_app.database_url, [PROFESSORA])
    page = new_page(BROWSER_LANGUAGE)
    log_in(page, PROFESSORA, i18n.PORTUGUESE)
    expect(page.get_by_test_id("stSidebar").get_by_role("button", name=pt("Log out"))).to_be_visible()
    expect(page.locator("html")).to_have_attribute("lang", "pt-PT")  # a screen reader reads it as Portuguese

    open_page(page, pt("Predict one student"))
    page.get_by_role("spinbutton", name=pt("School absences")).fill("0")
    page.get_by_text(pt("{grade} known", grade=pt("First period grade")), exact=True).click()
    page.get_by_role("spinbutton", name=pt("First period grade"), exact=True).fill("5")
    page.get_by_role("button", name=pt("Predict"), exact=True).click()
    result = heading(page, pt("Result"))
    expect(result).to_be_visible()
    settle(page)
    risk = metric_value(page, pt("Risk of no final grade"))
    chance = metric_value(page, pt("Chance of passing (G3 ≥ 10)"))
    assert risk.endswith("%") and chance.endswith("%") and risk != chance
    grade = metric_value(page, pt("Predicted final grade (G3)"))
    assert "," in grade or grade.split("/")[0].strip().isdigit(), grade  # a decimal comma, when there are decimals
    assert english_lines(page) == []
    screenshot(page, "predict-pt", top=result)

    open_page(page, pt("Upload a class"))
    page.get_by_test_id("stFileUploaderDropzoneInput").set_input_files(weak_class)
    expect(heading(page, pt("Predictions"))).to_be_visible()
    assert english_lines(page) == []

    open_page(page, pt("Needs attention"))
    assert int(metric_value(page, pt("Students listed"))) >= 1
    assert english_lines(page) == []
    screenshot(page, "needs-attention-pt", top=heading(page, pt("Needs attention")))
