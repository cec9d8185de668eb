"""A teacher's early-warning loop in a real browser: upload a class, open "Needs attention", open a flagged
student, record an intervention and a final grade, see both on the timeline; and an admin's new high-risk
cut-off changing what a teacher's "Needs attention" lists."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pandas as pd
import pytest
import sqlalchemy as sa
from playwright.sync_api import Page, expect

from tests.browser.conftest import LiveApp, create_users
from tests.browser.ui import ADMIN, Account, heading, log_in, metric_value, open_page, screenshot, settle

pytestmark = pytest.mark.browser

CARER = Account("cara", "cara-browser-pass-01", "Cara Carer")
WATCHER = Account("wanda", "wanda-browser-pass-01", "Wanda Watcher")
RAISED_HIGH, RAISED_MEDIUM = 0.98, 0.99  # the admin's new cut-offs (the defaults: 0.5 and 0.75)


@pytest.fixture(scope="module")
def struggling_class(student_csv_path: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Twelve real students whose second-period grade is below 8 (period2 setup: clearly at risk)."""
    frame = pd.read_csv(student_csv_path, sep=";", dtype=str, keep_default_na=False)
    frame = frame[frame["G2"].astype(int) < 8].head(12).drop(columns="G3")
    frame.insert(0, "student_id", [f"C{i:03d}" for i in range(1, len(frame) + 1)])
    path = tmp_path_factory.mktemp("care") / "class-9c.csv"
    frame.to_csv(path, sep=";", index=False)
    return path


@pytest.fixture(scope="module")
def passing_class(student_csv_path: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Eight real students with a second-period grade of 11 to 13: likely to pass, but not certain to."""
    frame = pd.read_csv(student_csv_path, sep=";", dtype=str, keep_default_na=False)
    frame = frame[frame["G2"].astype(int).between(11, 13)].head(8).drop(columns="G3")
    frame.insert(0, "student_id", [f"P{i:03d}" for i in range(1, len(frame) + 1)])
    path = tmp_path_factory.mktemp("care") / "class-9p.csv"
    frame.to_csv(path, sep=";", index=False)
    return path


@pytest.fixture
def school_defaults(live_app: LiveApp) -> Iterator[None]:
    """Whatever a test sets on the school settings page is cleared afterwards (the live app is shared)."""
    from model.store.db import get_engine, session_scope
    from model.store.tables import SchoolSetting

    yield
    engine = get_engine(live_app.database_url)
    with session_scope(engine) as session:
        session.execute(sa.delete(SchoolSetting))
    engine.dispose()


def _p_pass_of(app: LiveApp, username: str) -> list[float]:
    """P(pass) of each of the user's students, by their latest prediction (read from the log directly)."""
    from model.store.db import get_engine, session_scope
    from model.store.tables import PredictionLog, User

    engine = get_engine(app.database_url)
    with session_scope(engine) as session:
        user_id = session.scalar(sa.select(User.id).where(User.username == username))
        rows = session.execute(
            sa.select(PredictionLog.student_key, PredictionLog.p_pass)
            .where(PredictionLog.user_id == user_id, PredictionLog.status == "ok")
            .order_by(PredictionLog.created_at, PredictionLog.id)
        ).all()
    engine.dispose()
    return list({key: p_pass for key, p_pass in rows}.values())  # the last one per student wins


def _listed(page: Page) -> dict[str, str]:
    """The students on the open "Needs attention" page, from its links: student id -> why it is listed."""
    settle(page)
    links = page.get_by_test_id("stMain").get_by_test_id("stPageLink").all()
    texts = [link.inner_text().strip() for link in links]
    return {text.split(":")[0].split()[-1]: text.split(":", 1)[1].strip() for text in texts}


def test_admin_raises_the_high_risk_cut_off_in_the_browser_and_the_teachers_list_grows(
    new_page: Callable[[], Page], live_app: LiveApp, passing_class: Path, school_defaults: None
) -> None:
    create_users(live_app.database_url, [WATCHER])
    teacher = new_page()
    log_in(teacher, WATCHER)
    open_page(teacher, "Upload a class")
    teacher.get_by_test_id("stFileUploaderDropzoneInput").set_input_files(passing_class)
    expect(teacher.get_by_text("Results for").first).to_be_visible()
    p_pass = _p_pass_of(live_app, WATCHER.username)
    assert len(p_pass) == 8 and min(p_pass) >= 0.5, "the class must hold no high-risk student by the defaults"
    rising = sum(p < RAISED_HIGH for p in p_pass)
    assert rising >= 1, "at least one student must fall under the raised cut-off"

    open_page(teacher, "Needs attention")
    expect(teacher.get_by_text("Nothing calls for action")).to_be_visible()
    assert _listed(teacher) == {}

    admin = new_page()
    log_in(admin, ADMIN)
    open_page(admin, "School settings")
    form = admin.get_by_test_id("stForm").filter(has_text="High risk: P(pass) below")
    form.get_by_role("spinbutton", name="Medium risk: P(pass) below").fill(str(RAISED_MEDIUM))
    form.get_by_role("spinbutton", name="High risk: P(pass) below").fill(str(RAISED_HIGH))
    form.get_by_role("button", name="Save").click()
    expect(admin.get_by_text("Saved: the school's levels are in force.")).to_be_visible()
    screenshot(admin, "school-settings", top=heading(admin, "School settings"))

    open_page(teacher, "Needs attention")
    expect(teacher.get_by_text(f"P(pass) below {RAISED_HIGH:.0%}")).to_be_visible()
    expect(teacher.get_by_test_id("stMain").get_by_test_id("stPageLink")).to_have_count(rising)
    listed = _listed(teacher)
    assert len(listed) == rising and set(listed) <= {f"P{i:03d}" for i in range(1, 9)}
    assert all(why.startswith("High risk (P(pass)") and why.endswith("and no intervention planned")
               for why in listed.values())  # fmt: skip
    assert metric_value(teacher, "Students listed") == str(rising)


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
    grade = grade_form.get_by_role("spinbutton", name="Final grade (G3, 0-20)")
    grade.fill("9")
    grade.press("Tab")  # a number input commits its value on blur: before the form is sent, not racing it
    grade_form.get_by_role("button", name="Record final grade").click()
    expect(page.get_by_text("G3 = 9")).to_be_visible()  # the outcome at the end of the timeline
    assert metric_value(page, "Final grade") == "9 / 20"
    screenshot(page, "student-timeline", top=heading(page, "Student timeline"))

    open_page(page, "Needs attention")  # a plan now (review four weeks ahead): no longer listed
    expect(page.get_by_role("link", name=f"{student}: High risk")).to_have_count(0)
