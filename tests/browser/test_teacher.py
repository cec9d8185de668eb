"""A teacher in a real browser: predict one student, upload a class, meet refusals, log out."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest
from playwright.sync_api import Page, expect

from tests.browser.ui import (
    SECOND_TEACHER,
    TEACHER,
    heading,
    log_in,
    log_out,
    login_form,
    metric_value,
    open_page,
    screenshot,
    settle,
    sign_in_cookie,
)

pytestmark = pytest.mark.browser

ADMIN_PAGES = {"monitoring": "Monitoring", "models": "Model versions", "users": "Users"}
# Three cells of the real file made wrong: (0-based data row, column, bad value).
CORRUPTIONS = [(3, "age", "31"), (10, "Mjob", "astronaut"), (20, "absences", "lots")]
FORMULA_IDS = {0: "=1+2", 1: "@SUM(A1)"}


def spreadsheet_row(index: int) -> int:
    """The row number a spreadsheet shows for a 0-based data row (the header is row 1)."""
    return index + 2


@pytest.fixture(scope="module")
def class_file(student_csv_path: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """30 real students with a student_id column (two look like spreadsheet formulas) and three bad cells."""
    frame = pd.read_csv(student_csv_path, sep=";", dtype=str, keep_default_na=False).head(30).drop(columns="G3")
    ids = [FORMULA_IDS.get(i, f"S{i + 1:03d}") for i in range(len(frame))]
    frame.insert(0, "student_id", ids)
    for index, column, value in CORRUPTIONS:
        frame.loc[index, column] = value
    path = tmp_path_factory.mktemp("class") / "class-7b.csv"
    frame.to_csv(path, sep=";", index=False)
    return path


def _download(page: Page, button: str, into: Path) -> pd.DataFrame:
    """Click a download button and read the CSV it delivers (strings, as a spreadsheet would)."""
    with page.expect_download() as download:
        page.get_by_role("button", name=button).click()
    path = into / download.value.suggested_filename
    download.value.save_as(path)
    return pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8-sig")


def test_teacher_predicts_one_student_and_sees_the_explanation(page: Page) -> None:
    log_in(page, TEACHER)
    open_page(page, "Predict one student")
    page.get_by_role("textbox", name="Student id (optional)").fill("B-001")
    page.get_by_role("spinbutton", name="Absences").fill("14")
    page.get_by_role("spinbutton", name="Age").fill("17")
    page.get_by_role("button", name="Predict", exact=True).click()

    result = heading(page, "Result")
    expect(result).to_be_visible()
    settle(page)
    grade = metric_value(page, "Predicted final grade (G3)")
    assert grade.endswith("/ 20") and 0 <= float(grade.split("/")[0]) <= 20
    expect(page.get_by_text("90% interval:")).to_be_visible()
    assert metric_value(page, "Chance of passing (G3 ≥ 10)").endswith("%")
    assert metric_value(page, "Risk of no final grade").endswith("%")  # its own figure (grade model v2)
    expect(page.get_by_text("risk of failing")).to_be_visible()
    expect(page.get_by_text("setup early", exact=False)).to_be_visible()  # no grades given: early warning
    chart = page.get_by_test_id("stPlotlyChart").first
    expect(chart.locator(".js-plotly-plot")).to_be_visible()
    expect(page.get_by_text("Of 100 past students like this one")).to_be_visible()
    expect(page.get_by_text("What would help most")).to_be_visible()
    sentences = page.get_by_test_id("stMarkdown").locator("li").filter(has_text="points")
    expect(sentences.first).to_be_visible()
    assert sentences.count() >= 3  # the top factors in plain words, each with its points
    screenshot(page, "predict", top=result)


def test_a_student_with_a_high_no_grade_risk_sees_it_as_its_own_figure_and_words(page: Page) -> None:
    """A low first period grade and no recorded absence: in the UCI data that is how the students who did not
    sit the final exam looked, and the page says so as its own figure, apart from the chance of passing."""
    log_in(page, TEACHER)
    open_page(page, "Predict one student")
    page.get_by_role("spinbutton", name="School absences").fill("0")
    page.get_by_text("First period grade known", exact=True).click()  # Streamlit's label takes the click
    expect(page.get_by_role("checkbox", name="First period grade known")).to_be_checked()
    page.get_by_role("spinbutton", name="First period grade", exact=True).fill("5")
    page.get_by_role("button", name="Predict", exact=True).click()

    expect(heading(page, "Result")).to_be_visible()
    expect(page.get_by_text("setup period1", exact=False)).to_be_visible()  # G1 given: the period-1 model
    risk = metric_value(page, "Risk of no final grade")
    assert risk.endswith("%") and int(risk.removesuffix("%").split()[-1]) >= 30, risk
    chance = metric_value(page, "Chance of passing (G3 ≥ 10)")
    assert chance != risk  # two figures, two questions
    words = page.get_by_text(f"The risk of no final grade is {risk}", exact=False)
    expect(words).to_be_visible()
    expect(words).to_contain_text("did not sit the final exam, which is a different warning from a low grade")
    screenshot(page, "predict-no-grade", top=heading(page, "Result"))


def test_teacher_uploads_a_class_with_bad_rows(page: Page, class_file: Path, tmp_path: Path) -> None:
    log_in(page, TEACHER)
    open_page(page, "Upload a class")
    page.get_by_test_id("stFileUploaderDropzoneInput").set_input_files(class_file)

    expect(heading(page, "Validation report")).to_be_visible()
    assert (metric_value(page, "Rows in the file"), metric_value(page, "Predicted"), metric_value(page, "Rejected")) \
        == ("30", "27", "3")  # fmt: skip
    expect(heading(page, "The class at a glance")).to_be_visible()
    expect(page.get_by_test_id("stPlotlyChart").first.locator(".js-plotly-plot")).to_be_visible()

    report = _download(page, "Download the validation report (CSV)", tmp_path)
    bad = {(spreadsheet_row(i), column, value) for i, column, value in CORRUPTIONS}
    assert set(zip(report["row"].astype(int), report["column"], report["value"], strict=True)) == bad
    assert report["allowed"].str.len().gt(0).all()  # each problem says what is allowed

    results = _download(page, "Download the predictions (CSV)", tmp_path)
    assert len(results) == 27
    assert set(results["row"].astype(int)) == {spreadsheet_row(i) for i in range(30)} - {r for r, _, _ in bad}
    assert {"'" + FORMULA_IDS[0], "'" + FORMULA_IDS[1]} <= set(results["student_id"])  # cannot run as formulas
    assert not results.map(lambda cell: cell.startswith(("=", "+", "@"))).any().any()
    screenshot(page, "upload", top=page.get_by_text("Results for"))


def test_teacher_opening_admin_urls_is_refused(page: Page) -> None:
    log_in(page, TEACHER)
    nav = page.get_by_test_id("stSidebarNav")
    for title in ADMIN_PAGES.values():
        expect(nav.get_by_role("link", name=title, exact=True)).to_have_count(0)
    for path, title in ADMIN_PAGES.items():
        page.goto(f"/{path}")
        expect(page.get_by_text("Access refused: this page is for admin accounts")).to_be_visible()
        settle(page)
        expect(page.get_by_role("heading", name=title, exact=True)).to_have_count(0)
        expect(page.get_by_test_id("stSidebar").get_by_text(f"Signed in as {TEACHER.name}").first).to_be_visible()


def test_the_sign_in_cookie_is_http_only_and_survives_a_reload(page: Page) -> None:
    log_in(page, TEACHER)
    cookie = sign_in_cookie(page)
    assert cookie is not None and cookie["httpOnly"] and cookie["sameSite"] == "Strict" and cookie["path"] == "/"
    assert cookie["expires"] > 0  # kept across browser restarts until it expires, not a session cookie
    assert "mathsight_auth" not in page.evaluate("document.cookie")  # page scripts cannot read it
    xsrf = next(c for c in page.context.cookies() if c["name"] == "_streamlit_xsrf")  # XSRF protection is on
    assert xsrf["sameSite"] == "Strict"
    page.reload()
    expect(page.get_by_test_id("stSidebar").get_by_text(f"Signed in as {TEACHER.name}").first).to_be_visible()
    expect(login_form(page)).to_have_count(0)


def test_logout_ends_the_session(new_page: Callable[[], Page]) -> None:
    page = new_page()
    log_in(page, TEACHER)
    open_page(page, "Predict one student")
    page.get_by_role("textbox", name="Student id (optional)").fill("B-LOGOUT")
    page.get_by_role("button", name="Predict", exact=True).click()
    expect(heading(page, "Result")).to_be_visible()
    settle(page)
    open_page(page, "My students")
    assert int(metric_value(page, "Students")) >= 1

    log_out(page)
    page.goto("/my_students")
    expect(login_form(page)).to_be_visible()
    settle(page)
    expect(page.get_by_role("heading", name="My students", exact=True)).to_have_count(0)
    expect(page.get_by_text("Signed in as")).to_have_count(0)

    log_in(page, SECOND_TEACHER)  # the same browser, another teacher: nothing of the first one remains
    expect(heading(page, "Result")).to_have_count(0)
    open_page(page, "My students")
    assert metric_value(page, "Students") == "0"
