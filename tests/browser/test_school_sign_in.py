"""Signing in with the school's identity provider, in a real Chromium, through a real OIDC provider on localhost.

The dashboard runs with an ``[auth]`` table (Streamlit's ``st.login``) naming three providers: the
real one (``oidc-provider-mock``, tests/oidc_provider.py), and two discovery documents of a provider
gone wrong (another issuer than its tokens name; another key under its key id), whose sign-ins
Authlib must refuse. The admin's rules are written through the model, as the Users page does.
"""

from __future__ import annotations

import secrets
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import pandas as pd
import pytest
import sqlalchemy as sa
from playwright.sync_api import Browser, Locator, Page, expect

from dashboard.oidc import TURNED_AWAY
from model.accounts import oidc, users
from model.store.audit import list_audit
from model.store.db import get_engine, session_scope
from model.store.tables import OidcIdentity
from tests.browser.axe import audit, describe, report
from tests.browser.conftest import TIMEOUT_MS, VIEWPORT, LiveApp, start_dashboard
from tests.browser.ui import heading, open_page, settle
from tests.oidc_provider import ADMIN, STRANGER, TEACHER, Person, Provider, forged_metadata, start_provider
from tests.servers import stop_process

IDENTITY_COOKIE = "_streamlit_user"  # Streamlit's signed identity cookie


def login_form(page: Page) -> Locator:
    """The password form's submit button (the provider buttons' names also begin "Sign in")."""
    return page.get_by_role("button", name="Sign in", exact=True)


@pytest.fixture(scope="module", autouse=True)
def _report() -> Iterator[None]:
    yield
    report()


@pytest.fixture(scope="module")
def provider() -> Iterator[Provider]:
    with start_provider() as running:
        yield running


def _secrets(provider: Provider, forged: str) -> str:
    def section(name: str, label: str, metadata_url: str) -> str:
        return (f'[auth.{name}]\nlabel = "{label}"\nclient_id = "mathsight-dashboard"\n'
                f'client_secret = "dashboard-secret"\nserver_metadata_url = "{metadata_url}"\n')  # fmt: skip

    shared = f'redirect_uri = "http://127.0.0.1:{{port}}/oauth2callback"\ncookie_secret = "{secrets.token_hex(32)}"\n'
    return (
        f"[auth]\n{shared}"
        + section("school", "School account", provider.metadata_url)
        + section("wrongissuer", "Wrong issuer", f"{forged}/wrong-issuer/.well-known/openid-configuration")
        + section("badkey", "Bad key", f"{forged}/bad-key/.well-known/openid-configuration")
    )


@pytest.fixture(scope="module")
def school_app(
    chromium: Path, _template_sqlite: Path, provider: Provider, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LiveApp]:
    """The dashboard with sign-in through the provider; rules: Adriana's address is an admin, the school's
    domain is teachers. Sam (another domain) has no rule."""
    where = tmp_path_factory.mktemp("school-app")
    shutil.copy(_template_sqlite, where / "app.db")
    database_url = f"sqlite:///{where / 'app.db'}"
    engine = get_engine(database_url)
    with session_scope(engine) as session:
        oidc.add_rule(session, ADMIN.email, "admin", actor="pytest")
        oidc.add_rule(session, "@school.test", "teacher", actor="pytest")
    engine.dispose()
    with forged_metadata(provider) as forged:
        secrets_file = where / "secrets.toml"
        secrets_file.write_text(_secrets(provider, forged), "utf-8")
        app = start_dashboard(database_url, where, secrets_file=secrets_file)
        try:
            yield app
        finally:
            stop_process(app.process, timeout=15)


@pytest.fixture
def person_page(browser: Browser, school_app: LiveApp) -> Iterator[Callable[[], Page]]:
    contexts = []

    def make() -> Page:
        context = browser.new_context(base_url=school_app.url, viewport=VIEWPORT, accept_downloads=True)
        context.set_default_timeout(TIMEOUT_MS)
        contexts.append(context)
        return context.new_page()

    yield make
    for context in contexts:
        context.close()


def _identity_cookie(page: Page) -> dict | None:
    return next((c for c in page.context.cookies() if c["name"] == IDENTITY_COOKIE), None)


def sign_in_with_provider(page: Page, person: Person, button: str = "Sign in with School account") -> None:
    """From the sign-in page through the provider's own authorization page, as ``person``, and back."""
    page.goto("/")
    expect(login_form(page)).to_be_visible()
    page.get_by_role("button", name=button).click()
    expect(page.get_by_role("heading", name="Authorize Client")).to_be_visible()  # the provider's page
    page.get_by_role("button", name=person.subject, exact=True).click()
    page.wait_for_url(lambda url: url.startswith("http://127.0.0.1:"))  # back on the dashboard
    settle(page)


def _audit_actions(app: LiveApp, username: str) -> list[tuple[str, dict]]:
    with session_scope(get_engine(app.database_url)) as session:
        return [(e.action, e.detail) for e in list_audit(session) if e.actor == username]


def test_the_password_form_and_the_provider_button_share_the_sign_in_page(
    person_page: Callable[[], Page], school_app: LiveApp
) -> None:
    page = person_page()
    page.goto("/")
    expect(login_form(page)).to_be_visible()
    expect(page.get_by_role("button", name="Sign in with School account")).to_be_visible()
    blocking = audit(page, "sign-in, with school-account buttons")
    assert not blocking, describe(blocking)


def test_a_mapped_teacher_signs_in_sees_only_teacher_pages_and_signs_out(
    person_page: Callable[[], Page], school_app: LiveApp
) -> None:
    page = person_page()
    sign_in_with_provider(page, TEACHER)
    expect(heading(page, "Needs attention")).to_be_visible()
    sidebar = page.get_by_test_id("stSidebar")
    expect(sidebar.get_by_text(f"Signed in as {TEACHER.name}").first).to_be_visible()
    expect(page.get_by_test_id("stSidebarNav").get_by_role("link", name="Users", exact=True)).to_have_count(0)
    assert _identity_cookie(page) is not None
    assert ("login_ok", {"method": "oidc"}) in _audit_actions(school_app, TEACHER.email)
    sidebar.get_by_role("button", name="Log out").click()
    page.get_by_role("button", name="End session").click()  # the provider's own sign-out page, then back
    expect(login_form(page)).to_be_visible()
    assert _identity_cookie(page) is None
    assert any(action == "logout" for action, _ in _audit_actions(school_app, TEACHER.email))


def test_a_provider_signed_in_teacher_downloads_their_predictions(
    person_page: Callable[[], Page], school_app: LiveApp, student_csv_path: Path, tmp_path: Path
) -> None:
    """The download route knows a session by mathsight's own cookie: a provider sign-in gets it too."""
    frame = pd.read_csv(student_csv_path, sep=";", dtype=str, keep_default_na=False).head(6).drop(columns="G3")
    frame.insert(0, "student_id", [f"OIDC{i}" for i in range(6)])
    class_file = tmp_path / "class.csv"
    frame.to_csv(class_file, sep=";", index=False)
    page = person_page()
    sign_in_with_provider(page, TEACHER)
    open_page(page, "Upload a class")
    page.get_by_test_id("stFileUploaderDropzoneInput").set_input_files(class_file)
    expect(heading(page, "Predictions")).to_be_visible()
    settle(page)
    link = page.get_by_role("button", name="Download the predictions (CSV)")
    with page.expect_download() as download:
        link.click()
    rows = pd.read_csv(download.value.path(), dtype=str, keep_default_na=False, encoding="utf-8-sig")
    assert len(rows) == 6
    url = school_app.url + link.get_attribute("href")
    assert page.context.request.get(url).status == 200
    assert person_page().context.request.get(url).status == 401  # another browser, signed in nowhere


def test_deactivating_a_provider_account_ends_its_open_session(
    person_page: Callable[[], Page], school_app: LiveApp
) -> None:
    page = person_page()
    sign_in_with_provider(page, TEACHER)
    expect(heading(page, "Needs attention")).to_be_visible()
    cookie = _identity_cookie(page)
    with session_scope(get_engine(school_app.database_url)) as session:
        users.deactivate(session, TEACHER.email, actor="pytest")
    try:
        page.get_by_test_id("stSidebarNav").get_by_role("link", name="My students", exact=True).click()
        expect(page.get_by_text("This account is deactivated; ask an administrator.")).to_be_visible()
        expect(page.get_by_test_id("stSidebarNav")).to_have_count(0)
        copy = person_page()  # a copy of the identity cookie in another browser gets nothing either
        assert cookie is not None
        copy.context.add_cookies([cookie])
        copy.goto("/")
        expect(copy.get_by_text("This account is deactivated; ask an administrator.")).to_be_visible()
    finally:
        with session_scope(get_engine(school_app.database_url)) as session:
            users.activate(session, TEACHER.email, actor="pytest")


def test_an_unmapped_person_waits_and_the_mapped_admin_lets_them_in(
    person_page: Callable[[], Page], school_app: LiveApp
) -> None:
    stranger = person_page()
    sign_in_with_provider(stranger, STRANGER)
    expect(heading(stranger, "Waiting for an administrator")).to_be_visible()
    expect(stranger.get_by_text(STRANGER.email)).to_be_visible()
    expect(stranger.get_by_test_id("stSidebarNav")).to_have_count(0)
    expect(heading(stranger, "Needs attention")).to_have_count(0)
    blocking = audit(stranger, "waiting for an administrator (school account)")
    assert not blocking, describe(blocking)

    admin = person_page()
    sign_in_with_provider(admin, ADMIN)
    expect(admin.get_by_test_id("stSidebar").get_by_text(f"Signed in as {ADMIN.name}").first).to_be_visible()
    open_page(admin, "Users")
    expect(admin.get_by_text("1 school account waits for a role")).to_be_visible()
    admin.get_by_role("tab", name="School accounts").click()
    expect(admin.get_by_text(STRANGER.email).first).to_be_visible()
    admin.get_by_role("textbox", name="E-mail address or domain").fill(STRANGER.email)
    admin.get_by_role("button", name="Give this role").click()
    expect(admin.get_by_text(f'School accounts matching "{STRANGER.email}" sign in as teacher.')).to_be_visible()

    stranger.reload()  # signs in again with the identity the provider gave
    expect(heading(stranger, "Needs attention")).to_be_visible()
    expect(stranger.get_by_test_id("stSidebar").get_by_text(f"Signed in as {STRANGER.name}").first).to_be_visible()


@pytest.mark.parametrize("button", ["Sign in with Wrong issuer", "Sign in with Bad key"])
def test_an_id_token_of_the_wrong_issuer_or_with_a_bad_signature_is_refused(
    person_page: Callable[[], Page], school_app: LiveApp, button: str
) -> None:
    identities = _identities(school_app)
    page = person_page()
    sign_in_with_provider(page, ADMIN, button=button)
    expect(login_form(page)).to_be_visible()
    expect(page.get_by_test_id("stSidebarNav")).to_have_count(0)
    assert _identity_cookie(page) is None
    assert _identities(school_app) == identities  # the dashboard never saw an identity


def _identities(app: LiveApp) -> int:
    with session_scope(get_engine(app.database_url)) as session:
        return session.scalar(sa.select(sa.func.count()).select_from(OidcIdentity)) or 0


def test_sign_out_everywhere_and_sign_out_end_copies_of_the_identity_cookie(
    person_page: Callable[[], Page], school_app: LiveApp
) -> None:
    first, second = person_page(), person_page()
    sign_in_with_provider(first, TEACHER)
    sign_in_with_provider(second, TEACHER)
    expect(heading(second, "Needs attention")).to_be_visible()
    first.get_by_test_id("stSidebar").get_by_role("button", name="Sign out everywhere else").click()
    expect(first.get_by_text("Signed out everywhere else.")).to_be_visible()
    second.get_by_test_id("stSidebarNav").get_by_role("link", name="My students", exact=True).click()
    expect(second.get_by_text(TURNED_AWAY["ended"])).to_be_visible()
    open_page(first, "My students")  # this browser goes on

    cookie = _identity_cookie(first)
    first.get_by_test_id("stSidebar").get_by_role("button", name="Log out").click()
    first.get_by_role("button", name="End session").click()
    expect(login_form(first)).to_be_visible()
    copy = person_page()
    assert cookie is not None
    copy.context.add_cookies([cookie])
    copy.goto("/")
    expect(copy.get_by_text(TURNED_AWAY["ended"])).to_be_visible()
    expect(heading(copy, "Needs attention")).to_have_count(0)
