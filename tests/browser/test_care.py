"""A teacher's early-warning loop in a real browser: upload a class, open "Needs attention", open a flagged
student, record an intervention and a final grade, see both on the timeline."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from playwright.sync_api import Page, expect

from tests.browser.conftest import LiveApp, create_users
from tests.browser.ui import Account, heading, log_in, metric_value, open_page, screenshot, settle

pytestmark = pytest.mark.browser

CARER = Account("cara", "cara-browser-pass-01", "Cara Carer")


@pytest.fixture(scope="module")
def struggling_class(student_csv_path: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Twelve real students whose second-period grade is below 8 (period2 setup: clearly at risk)."""
    frame = pd.read_csv(student_csv_path, sep=";", dtype=str, keep_default_na=False)
    frame = frame[frame["G2"].astype(int) < 8].head(12).drop(columns="G3")
    frame.insert(0, "student_id", [f"C{i:03d}" for i in range(1, len(frame) + 1)])
    path = tmp_path_factory.mktemp("care") / "class-9c.csv"
    frame.to_csv(path, sep=";", index=False)
    return path


def test_teacher_acts_on_a_flagged_student_and_follows_up(page: Page, live_app: LiveApp,
                                                          struggling_class: Path) -> None:  # fmt: skip
    create_users(live_app.database_url, [CARER])
    log_in(page, CARER)  # lands on Needs attention
    expect(page.get_by_text("Nothing calls for action")).to_be_visible()

    open_page(page, "Upload a class")
    page.get_by_test_id("stFileUploaderDropzoneInput").set_input_files(struggling_class)
    expect(page.get_by_text("Results for").first).to_be_visible()

    open_page(page, "Needs attention")
    assert int(metric_value(page, "Students listed")) >= 1
    first = page.get_by_role("link", name="and no intervention planned").first
    expect(first).to_be_visible()
    student = first.inner_text().split(":")[0].split()[-1]  # after the link's icon
    assert student.startswith("C")
    screenshot(page, "needs-attention", top=heading(page, "Needs attention"))
    first.click()

    expect(heading(page, "Student timeline")).to_be_visible()
    settle(page)
    assert metric_value(page, "Student") == student
    expect(page.get_by_test_id("stPlotlyChart").first.locator(".js-plotly-plot")).to_be_visible()
    expect(page.get_by_text("No intervention recorded for this student yet.")).to_be_visible()

    form = page.get_by_test_id("stForm").filter(has_text="Record an intervention")
    form.get_by_role("textbox", name="Note (optional)").fill("tutoring after school, Tuesdays")
    form.get_by_role("button", name="Save intervention").click()
    settle(page)
    expect(page.get_by_text("No intervention recorded for this student yet.")).to_have_count(0)
    expect(page.get_by_text("Tutoring (planned)")).to_be_visible()  # the span on the timeline chart

    grade_form = page.get_by_test_id("stForm").filter(has_text="Final grade")
    grade_form.get_by_role("spinbutton", name="Final grade (G3, 0-20)").fill("9")
    grade_form.get_by_role("button", name="Record final grade").click()
    expect(page.get_by_text("G3 = 9")).to_be_visible()  # the outcome at the end of the timeline
    assert metric_value(page, "Final grade") == "9 / 20"
    screenshot(page, "student-timeline", top=heading(page, "Student timeline"))

    open_page(page, "Needs attention")  # a plan now (review four weeks ahead): no longer listed
    expect(page.get_by_role("link", name=f"{student}: High risk")).to_have_count(0)
