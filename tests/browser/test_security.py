"""Issue 16 in a real browser: table exports without formulas (item 1), sessions that really end
(item 4), a forged cookie shows the sign-in form and nothing else (item 8), downloads only for the
session that made them (item 9)."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import jwt
import pandas as pd
import pytest
from playwright.sync_api import Page, expect

from tests.browser.conftest import LiveApp
from tests.browser.ui import (
    COOKIE_NAME,
    ROOT,
    SECOND_TEACHER,
    TEACHER,
    Account,
    heading,
    log_in,
    log_out,
    login_form,
    open_page,
    settle,
    sign_in_cookie,
)

pytestmark = pytest.mark.browser

EVIL_IDS = ["=cmd|' /C calc'!A0", '=HYPERLINK("http://evil.example","x")', "+1+1", "-2+3", "@SUM(A1)"]
# The table toolbar's "Download as CSV" writes through the File System Access API when it can; a test
# browser has no save dialog, so make that fail and let Streamlit take its own fallback (a plain download).
NO_SAVE_PICKER = "window.showSaveFilePicker = async () => { throw new Error('no save dialog in tests'); };"


@pytest.fixture(scope="module")
def evil_class(student_csv_path: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Ten real students whose first five ids are spreadsheet formulas."""
    frame = pd.read_csv(student_csv_path, sep=";", dtype=str, keep_default_na=False).head(10).drop(columns="G3")
    frame.insert(0, "student_id", [*EVIL_IDS, *(f"S{i:03d}" for i in range(5))])
    path = tmp_path_factory.mktemp("evil") / "class-evil.csv"
    frame.to_csv(path, sep=";", index=False)
    return path


def _upload(page: Page, path: Path) -> None:
    open_page(page, "Upload a class")
    page.get_by_test_id("stFileUploaderDropzoneInput").set_input_files(path)
    expect(heading(page, "Predictions")).to_be_visible()
    settle(page)


def _read_csv(path: Path) -> pd.DataFrame:
    return pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8-sig")


def test_the_table_toolbar_exports_escaped_cells(new_page: Callable[[], Page], evil_class: Path,
                                                 tmp_path: Path) -> None:  # fmt: skip
    page = new_page()
    page.add_init_script(NO_SAVE_PICKER)
    log_in(page, TEACHER)
    _upload(page, evil_class)
    table = page.get_by_test_id("stDataFrame").last
    table.hover()
    with page.expect_download() as download:
        table.get_by_role("button", name="Download as CSV").click()
    exported = _read_csv(Path(download.value.path()))
    ids = set(exported.iloc[:, [c for c in range(exported.shape[1]) if "tudent" in exported.columns[c]][0]])
    assert {"'" + evil for evil in EVIL_IDS} <= ids
    assert not exported.map(lambda cell: cell.startswith(("=", "+", "-", "@", "\t", "\r"))).any().any()


def _fresh_with(new_page: Callable[[], Page], cookie: dict) -> Page:
    page = new_page()
    page.context.add_cookies([cookie])
    page.goto("/")
    return page


def _signed_in_as(page: Page, account: Account) -> None:
    expect(page.get_by_test_id("stSidebar").get_by_text(f"Signed in as {account.name}").first).to_be_visible()


def _shows_only_the_sign_in_form(page: Page) -> None:
    expect(login_form(page)).to_be_visible()
    settle(page)
    expect(page.get_by_text("Signed in as")).to_have_count(0)


def test_a_cookie_copied_before_sign_out_no_longer_signs_in(new_page: Callable[[], Page]) -> None:
    page = new_page()
    log_in(page, SECOND_TEACHER)
    copied = sign_in_cookie(page)
    assert copied is not None
    _signed_in_as(_fresh_with(new_page, copied), SECOND_TEACHER)  # while the session is open the copy works
    log_out(page)
    _shows_only_the_sign_in_form(_fresh_with(new_page, copied))


THIRD_TEACHER = Account("tom", "tom-browser-pass-03", "tom")  # this module's own: the others' pages stay as they were


@pytest.fixture(scope="module")
def third_teacher(live_app: LiveApp) -> Account:
    """A teacher only this module signs in as (its uploads do not show on the shared teachers' pages)."""
    done = subprocess.run([sys.executable, "-m", "model", "users", "add", THIRD_TEACHER.username, "--role", "teacher"],
                          cwd=ROOT, env=live_app.env, input=THIRD_TEACHER.password + "\n", capture_output=True,
                          text=True, timeout=120)  # fmt: skip
    assert done.returncode == 0, done.stderr
    return THIRD_TEACHER


def _set_password(app: LiveApp, username: str, password: str) -> None:
    done = subprocess.run([sys.executable, "-m", "model", "users", "set-password", username], cwd=ROOT, env=app.env,
                          input=password + "\n", capture_output=True, text=True, timeout=120)  # fmt: skip
    assert done.returncode == 0, done.stderr


def test_a_cookie_taken_before_a_password_reset_no_longer_signs_in(new_page: Callable[[], Page],
                                                                   live_app: LiveApp) -> None:  # fmt: skip
    page = new_page()
    log_in(page, SECOND_TEACHER)
    copied = sign_in_cookie(page)
    _set_password(live_app, SECOND_TEACHER.username, "theo-Second-pass-after-reset")
    try:
        _shows_only_the_sign_in_form(_fresh_with(new_page, copied))
        page.reload()  # the browser that signed in before is signed out too
        _shows_only_the_sign_in_form(page)
    finally:
        _set_password(live_app, SECOND_TEACHER.username, SECOND_TEACHER.password)


@pytest.mark.parametrize("alg", ["none", "HS512"])
def test_a_forged_cookie_shows_the_sign_in_form_and_no_details(new_page: Callable[[], Page], live_app: LiveApp,
                                                               alg: str) -> None:  # fmt: skip
    claims = {"username": "admin", "exp_date": 9_999_999_999, "jti": "forged", "gen": 0}
    token = (
        jwt.api_jws.PyJWS(algorithms=["none"]).encode(
            jwt.utils.force_bytes(pd.io.json.ujson_dumps(claims)), None, algorithm="none"
        )  # fmt: skip
        if alg == "none"
        else jwt.encode(claims, "a-guessed-key-" * 6, "HS512")
    )
    page = _fresh_with(new_page, {"name": COOKIE_NAME, "value": token, "url": live_app.url})
    _shows_only_the_sign_in_form(page)
    text = page.locator("body").inner_text()
    for leak in ("Traceback", "Error", 'File "', ".py", str(ROOT), "site-packages", "jwt"):
        assert leak not in text, leak
    expect(page.get_by_test_id("stException")).to_have_count(0)


def test_the_predictions_download_needs_the_session_that_made_it(
    new_page: Callable[[], Page], evil_class: Path, live_app: LiveApp, third_teacher: Account
) -> None:
    page = new_page()
    log_in(page, TEACHER)
    _upload(page, evil_class)
    link = page.get_by_role("button", name="Download the predictions (CSV)")
    with page.expect_download() as download:
        link.click()
    assert len(_read_csv(Path(download.value.path()))) == 10  # signed in: it works
    url = live_app.url + link.get_attribute("href")
    assert page.context.request.get(url).status == 200

    assert new_page().context.request.get(url).status == 401  # a fresh browser, no cookie
    other = new_page()
    log_in(other, third_teacher)
    assert other.context.request.get(url).status == 403  # another user's session
    _upload(other, evil_class)  # the same output in another session: another address, for that session only
    theirs = live_app.url + other.get_by_role("button", name="Download the predictions (CSV)").get_attribute("href")
    assert theirs != url and other.context.request.get(theirs).status == 200
    assert page.context.request.get(theirs).status == 403
    log_out(page)
    assert page.context.request.get(url).status == 401  # signed out
