"""axe-core (``axe-playwright-python``, its bundled ``axe.min.js``) in the real Chromium on every page, for
a teacher and an admin, and on the sign-in page, in English and in Portuguese (a browser asking for pt-PT):
no serious or critical violation.

With ``MATHSIGHT_A11Y_REPORT=1`` the violations per page (counted by impact, with the rule ids) are
written to ``docs/accessibility.json``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from playwright.sync_api import Locator, Page, expect

from dashboard.language import DOCUMENT_TAGS
from dashboard.page_table import PAGES
from model import i18n
from model.i18n import tr
from tests.browser.axe import audit, describe, report
from tests.browser.ui import ADMIN, TEACHER, Account, heading, log_in, settle


@pytest.fixture(scope="module", autouse=True)
def _report() -> Iterator[None]:
    yield
    report()


LANGUAGES = {"en": "en-US", "pt_PT": "pt-PT"}  # ours -> the browser's


@pytest.mark.parametrize("language", list(LANGUAGES))
def test_the_sign_in_page(new_page: Callable[..., Page], language: str) -> None:
    page = new_page(LANGUAGES[language])
    page.goto("/")
    with i18n.use_language(language):
        sign_in = tr("Sign in")
    expect(page.get_by_role("button", name=sign_in, exact=True)).to_be_visible()
    expect(page.locator("html")).to_have_attribute("lang", DOCUMENT_TAGS[language])  # WCAG 3.1.1
    blocking = audit(page, "sign-in" if language == "en" else f"sign-in ({language})")
    assert not blocking, describe(blocking)


@pytest.mark.parametrize("language", list(LANGUAGES))
@pytest.mark.parametrize("account", [TEACHER, ADMIN], ids=["teacher", "admin"])
def test_every_page_of_the_role(new_page: Callable[..., Page], account: Account, language: str) -> None:
    page = new_page(LANGUAGES[language])
    log_in(page, account, language)
    role = "admin" if account is ADMIN else "teacher"
    failures = []
    for spec in PAGES:
        if role not in spec.roles:
            continue
        with i18n.use_language(language):
            title = tr(spec.title)
        page.goto(f"/{spec.path.stem}")
        expect(heading(page, title)).to_be_visible()
        blocking = audit(page, f"{role}: {spec.title}" if language == "en" else f"{role} ({language}): {title}")
        if blocking:
            failures.append(f"{title}:\n{describe(blocking)}")
    assert not failures, "\n".join(failures)


def _tab_to(page: Page, target: Locator, presses: int = 120) -> None:
    """Press Tab (only the keyboard) until ``target`` has the focus; fail when it never gets it."""
    handle = target.element_handle()
    for _ in range(presses):
        if handle is not None and handle.evaluate("element => element === document.activeElement"):
            return
        page.keyboard.press("Tab")
    raise AssertionError(f"{target} never got the keyboard focus in {presses} presses of Tab")


def test_a_teacher_signs_in_predicts_and_reads_the_result_with_the_keyboard_only(page: Page) -> None:
    page.goto("/")
    username = page.get_by_role("textbox", name="Username")
    expect(username).to_be_visible()
    _tab_to(page, username)
    page.keyboard.type(TEACHER.username)
    page.keyboard.press("Tab")
    page.keyboard.type(TEACHER.password)
    with page.expect_response(lambda response: "/auth/session?" in response.url):
        page.keyboard.press("Enter")
    expect(heading(page, "Needs attention")).to_be_visible()
    settle(page)

    _tab_to(page, page.get_by_test_id("stSidebarNav").get_by_role("link", name="Predict one student", exact=True))
    page.keyboard.press("Enter")
    expect(heading(page, "Predict one student")).to_be_visible()
    settle(page)
    _tab_to(page, page.get_by_role("textbox", name="Student id (optional)"))
    page.keyboard.type("K-001")
    _tab_to(page, page.get_by_role("button", name="Predict", exact=True))
    page.keyboard.press("Enter")

    expect(heading(page, "Result")).to_be_visible()
    settle(page)
    for words in ("Predicted final grade (G3)", "Chance of passing (G3 ≥ 10)", "Of 100 past students like this one",
                  "What would help most"):  # fmt: skip
        expect(page.get_by_text(words).first).to_be_visible()  # the chart's meaning, in words, beside it
    blocking = audit(page, "teacher: Predict one student (with a result)")
    assert not blocking, describe(blocking)
