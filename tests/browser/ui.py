"""What a person does in the browser, shared by the journeys: sign in and out, open a page, take a screenshot."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from playwright.sync_api import Locator, Page, expect

from model import i18n
from model.i18n import tr

ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = ROOT / "docs" / "screenshots"
TIMEOUT_MS = 30_000  # a 2-core machine under load: model loading and first renders are slow
COOKIE_NAME = "mathsight_auth"  # model.settings.Settings.cookie_name


@dataclass(frozen=True)
class Account:
    """A user the live app knows, with the password that signs it in."""

    username: str
    password: str
    name: str


ADMIN = Account("admin", "browser-admin-pass-01", "Administrator")  # the app's first admin (MATHSIGHT_ADMIN_PASSWORD)
TEACHER = Account("tina", "tina-browser-pass-01", "Tina Teacher")
SECOND_TEACHER = Account("theo", "theo-browser-pass-01", "Theo Teacher")


def log_in(page: Page, account: Account, language: str = i18n.ENGLISH) -> None:
    """Open the app, sign in through the real form and wait until the browser holds the sign-in cookie.

    After a password sign-in the page loads ``auth/session`` once, whose answer sets the HttpOnly
    cookie; this waits for that answer, as a person would wait for the page to finish loading.
    ``language`` is the one the browser asks for (its page's ``locale``), so the form's labels are in it.
    """
    with i18n.use_language(language):
        username, password, sign_in = tr("Username"), tr("Password"), tr("Sign in")
        landing, signed_in = tr("Needs attention"), tr("Signed in as **{name}**", name=account.name).replace("**", "")
    page.goto("/")
    page.get_by_role("textbox", name=username).fill(account.username)
    page.get_by_role("textbox", name=password).fill(account.password)
    with page.expect_response(lambda response: "/auth/session?" in response.url) as answer:
        page.get_by_role("button", name=sign_in).click()
    assert answer.value.status == 204
    expect(heading(page, landing)).to_be_visible()
    expect(page.get_by_test_id("stSidebar").get_by_text(signed_in).first).to_be_visible()
    settle(page)


def sign_in_cookie(page: Page) -> dict | None:
    """The browser's sign-in cookie (HttpOnly cookies included), or None."""
    return next((c for c in page.context.cookies() if c["name"] == COOKIE_NAME), None)


def log_out(page: Page) -> None:
    """Press the sidebar's Log out button, wait for the login form and for the cookie to be deleted."""
    with page.expect_response(lambda response: "/auth/signout" in response.url) as answer:
        page.get_by_test_id("stSidebar").get_by_role("button", name="Log out").click()
        expect(login_form(page)).to_be_visible()
    assert answer.value.status == 204 and sign_in_cookie(page) is None


def login_form(page: Page) -> Locator:
    """The sign-in form's submit button (present only while nobody is signed in)."""
    return page.get_by_role("button", name="Sign in")


def heading(page: Page, title: str) -> Locator:
    """The heading ``title``; ``first`` because while a run redraws the page the old copy lingers a moment."""
    return page.get_by_role("heading", name=title, exact=True).first


def settle(page: Page) -> None:
    """Wait until the app's current run has finished (and with it the redraw of the page)."""
    expect(page.get_by_test_id("stApp")).to_have_attribute("data-test-script-state", "notRunning")


def open_page(page: Page, title: str) -> None:
    """Open a page through the sidebar navigation and wait for its title and the end of its run (a long menu,
    an admin's, shows its first entries only until "View N more" is pressed)."""
    nav = page.get_by_test_id("stSidebarNav")
    more = nav.get_by_test_id("stSidebarNavViewButton").filter(has_text="more")
    if more.count():
        more.click()
    nav.get_by_role("link", name=title, exact=True).click()
    expect(heading(page, title)).to_be_visible()
    settle(page)


def metric_value(page: Page, label: str) -> str:
    """The displayed value of the ``st.metric`` labelled ``label`` (once the page has been drawn)."""
    settle(page)
    metric = page.get_by_test_id("stMetric").filter(has=page.get_by_test_id("stMetricLabel").get_by_text(label))
    return metric.get_by_test_id("stMetricValue").inner_text()


def screenshot(page: Page, name: str, top: Locator | None = None) -> Path | None:
    """Save ``docs/screenshots/<name>.png`` for the README when ``MATHSIGHT_SCREENSHOTS=1``; else do nothing.

    ``top`` is scrolled to the top of the window first, so the picture shows that part of the page.
    """
    if os.environ.get("MATHSIGHT_SCREENSHOTS") != "1":
        return None
    if top is not None:
        top.evaluate("element => element.scrollIntoView({block: 'start'})")
    settle(page)
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=path)
    return path
