"""A tampered model artifact in a real browser: the admin reads which version and what to do in a red
box, a teacher reads that the model is unavailable; neither ever sees an exception or a traceback."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.browser.conftest import VIEWPORT, LiveApp, create_users, start_dashboard
from tests.browser.ui import ADMIN, TEACHER, TIMEOUT_MS, log_in, open_page, settle
from tests.conftest import swap_artifact
from tests.servers import stop_process

pytestmark = pytest.mark.browser


@pytest.fixture
def tampered_app(chromium: Path, _template_sqlite: Path, tmp_path: Path) -> Iterator[tuple[LiveApp, str]]:
    """Its own dashboard over a database whose active early version carries the period2 artifact."""
    shutil.copy(_template_sqlite, tmp_path / "app.db")
    database_url = f"sqlite:///{tmp_path / 'app.db'}"
    create_users(database_url, [TEACHER])
    victim = swap_artifact(database_url, into="early", source="period2")
    app = start_dashboard(database_url, tmp_path)
    try:
        yield app, victim
    finally:
        stop_process(app.process, timeout=15)


def _page(browser: Browser, app: LiveApp) -> Page:
    context = browser.new_context(base_url=app.url, viewport=VIEWPORT)
    context.set_default_timeout(TIMEOUT_MS)
    return context.new_page()


def _no_exception(page: Page) -> None:
    expect(page.get_by_test_id("stException")).to_have_count(0)
    body = page.locator("body").inner_text()
    assert "Traceback" not in body and "ArtifactIntegrityError" not in body


def test_a_swapped_artifact_is_a_readable_message_for_admin_and_teacher(
    browser: Browser, tampered_app: tuple[LiveApp, str]
) -> None:
    app, victim = tampered_app
    admin = _page(browser, app)
    log_in(admin, ADMIN)
    open_page(admin, "Model versions")
    box = admin.get_by_test_id("stAlertContentError").filter(has_text="The active model is not being served")
    expect(box).to_be_visible()
    expect(box).to_contain_text(f"model version {victim}: its HMAC signature does not match")
    expect(box).to_contain_text("check MATHSIGHT_SECRET_KEY")
    _no_exception(admin)

    teacher = _page(browser, app)
    log_in(teacher, TEACHER)
    open_page(teacher, "Predict one student")
    teacher.get_by_role("button", name="Predict").click()
    settle(teacher)
    expect(teacher.get_by_text("No model is available for this student")).to_be_visible()
    _no_exception(teacher)
    assert "HMAC" not in teacher.locator("body").inner_text()
