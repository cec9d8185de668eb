"""The entry script through AppTest: login form, failures, roles and navigation, logout, first admin, settings."""

from __future__ import annotations

import re

import pytest
import sqlalchemy as sa

from dashboard import auth, page_table
from dashboard.context import USER_KEY
from model.accounts import users
from model.settings import get_settings
from model.store.audit import list_audit
from model.store.db import get_engine, session_scope
from model.store.tables import User
from tests.dashboard.conftest import Account, app_test, log_in, texts

REFUSAL = "Access refused"


def _audit(url: str, action: str) -> list:
    with session_scope(get_engine(url)) as session:
        return list_audit(session, action)


def test_logged_out_visitor_sees_only_the_login_form(admin_account: Account) -> None:
    at = app_test().run()
    assert not at.exception
    assert [t.label for t in at.text_input] == ["Username", "Password"]
    assert "Sign in to mathsight" in texts(at)
    assert "Predict one student" not in texts(at)
    assert USER_KEY not in at.session_state


def test_wrong_password_is_refused_and_audited(app_db_url: str, teacher_account: Account) -> None:
    at = log_in(app_test().run(), "tina", "not-the-password")
    assert not at.exception
    assert any("Wrong username or password" in e.value for e in at.error)
    assert USER_KEY not in at.session_state
    failed = _audit(app_db_url, "login_failed")
    assert [(row.actor, row.detail["reason"]) for row in failed] == [("tina", "password")]
    assert "not-the-password" not in repr([row.detail for row in _audit(app_db_url, "login_failed")])
    at.run()  # a later rerun does not count the failure again
    assert len(_audit(app_db_url, "login_failed")) == 1


def test_unknown_username_is_refused_without_saying_which_part_was_wrong(
    app_db_url: str, admin_account: Account
) -> None:
    at = log_in(app_test().run(), "nobody", "whatever-password")
    assert [e.value for e in at.error] == [auth.failed_message()]
    assert [row.actor for row in _audit(app_db_url, "login_failed")] == ["(unknown user)"]


def _locked(url: str, username: str) -> None:
    with session_scope(get_engine(url)) as session:
        for _ in range(users.MAX_FAILED_LOGINS):
            users.record_login(session, username, ok=False)
        assert users.get_user(session, username).locked()


def test_every_failure_says_the_same_until_the_password_is_right(app_db_url: str, teacher_account: Account) -> None:
    """Unknown, wrong password, locked, deactivated: one message, so no one can tell which names exist or
    what became of an account; only the right password of a deactivated account hears why."""
    with session_scope(get_engine(app_db_url)) as session:
        users.create_user(session, "dora", "dora-password-1", role="teacher", actor="pytest")
        users.deactivate(session, "dora", actor="head")
    _locked(app_db_url, "tina")
    seen = {}
    for username, password in [("nobody", "whatever-password"), ("head", "not-the-password"),
                               ("tina", "not-the-password"), ("tina", teacher_account.password),
                               ("dora", "not-the-password")]:  # fmt: skip
        users.CLIENT_THROTTLE.clear()  # the per-client back-off is another test's subject
        at = log_in(app_test().run(), username, password)
        assert not at.exception and USER_KEY not in at.session_state
        seen[(username, password)] = [e.value for e in at.error]
    assert {key: messages for key, messages in seen.items() if messages != [auth.failed_message()]} == {}
    at = log_in(app_test().run(), "dora", "dora-password-1")
    assert USER_KEY not in at.session_state
    assert [e.value for e in at.error] == [auth.refused_message("inactive")]
    assert [e.value for e in log_in(at, "dora", "not-the-password").error] == [auth.failed_message()]


def test_teacher_signs_in_and_sees_the_teacher_pages(app_db_url: str, teacher_account: Account) -> None:
    at = log_in(app_test().run(), "tina", teacher_account.password)
    assert not at.exception
    assert at.session_state[USER_KEY] == teacher_account.user
    assert "Needs attention" in [t.value for t in at.title]  # the default page
    assert "Signed in as **Tina**" in at.sidebar.markdown[0].value
    assert [row.detail for row in _audit(app_db_url, "login_ok")] == [{"method": "password"}]
    visible = [spec.file for entries in page_table.navigation("teacher").values() for spec, shown in entries if shown]
    assert set(visible) <= {"needs_attention.py", "student.py", "predict.py", "upload.py", "outcomes.py",
                            "my_students.py"}  # fmt: skip
    assert "predict.py" in visible


def test_admin_sees_every_page(teacher_account: Account, admin_account: Account) -> None:
    sections = page_table.navigation("admin")
    assert all(shown for entries in sections.values() for _, shown in entries)
    assert "users.py" in [spec.file for spec, _ in sections["Administration"]]
    at = log_in(app_test().run(), "head", admin_account.password)
    at.switch_page("../pages/users.py").run()
    assert not at.exception
    assert "Users" in [t.value for t in at.title]
    assert REFUSAL not in texts(at)


def test_teacher_opening_an_admin_page_by_url_is_refused(teacher_account: Account) -> None:
    hidden = [spec for entries in page_table.navigation("teacher").values() for spec, shown in entries if not shown]
    assert "users.py" in [spec.file for spec in hidden]
    at = log_in(app_test().run(), "tina", teacher_account.password)
    for spec in hidden:
        at.switch_page(f"../pages/{spec.file}").run()
        assert not at.exception, spec.file
        assert any(REFUSAL in e.value for e in at.error), spec.file
        assert spec.title not in [t.value for t in at.title], spec.file
        assert not at.main.form_submit_button, spec.file  # the sidebar has the profile form


def test_logout_clears_the_user_and_shows_the_form_again(app_db_url: str, teacher_account: Account) -> None:
    at = log_in(app_test().run(), "tina", teacher_account.password)
    at.session_state["predict:scratch"] = {"record": {"age": 17}}
    at.button(key="mathsight-logout").click().run()
    assert not at.exception
    assert USER_KEY not in at.session_state
    assert "predict:scratch" not in at.session_state
    assert [t.label for t in at.text_input] == ["Username", "Password"]
    assert [row.actor for row in _audit(app_db_url, "logout")] == ["tina"]
    at.run()
    assert USER_KEY not in at.session_state


def test_deactivated_teacher_is_signed_out_and_cannot_sign_in(app_db_url: str, teacher_account: Account) -> None:
    at = log_in(app_test().run(), "tina", teacher_account.password)
    with session_scope(get_engine(app_db_url)) as session:
        users.deactivate(session, "tina", actor="head")
    at.run()
    assert USER_KEY not in at.session_state
    assert any("deactivated" in e.value for e in at.error)
    log_in(at, "tina", teacher_account.password)
    assert USER_KEY not in at.session_state
    assert any("deactivated" in e.value for e in at.error)


def test_first_start_creates_an_admin_and_prints_the_password_once(
    app_db_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    at = app_test().run()
    assert not at.exception
    printed = capsys.readouterr().out
    match = re.search(r"mathsight: first admin created: user admin, password (\S+)", printed)
    assert match, printed
    app_test().run()
    assert "first admin created" not in capsys.readouterr().out
    at = log_in(app_test().run(), "admin", match.group(1))
    assert at.session_state[USER_KEY].role == "admin"


def test_first_admin_takes_the_configured_password(
    app_db_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("MATHSIGHT_ADMIN_PASSWORD", "configured-admin-pw")
    get_settings.cache_clear()
    at = app_test().run()
    printed = capsys.readouterr().out
    assert "password from MATHSIGHT_ADMIN_PASSWORD" in printed and "configured-admin-pw" not in printed
    log_in(at, "admin", "configured-admin-pw")
    assert at.session_state[USER_KEY].username == "admin"
    with session_scope(get_engine(app_db_url)) as session:
        assert session.scalar(sa.select(sa.func.count()).select_from(User)) == 1


def test_a_weak_configured_admin_password_refuses_to_start(app_db_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MATHSIGHT_ADMIN_PASSWORD", "password12")
    get_settings.cache_clear()
    at = app_test().run()
    assert not at.exception and not at.text_input  # no login form
    assert any("cannot start" in e.value and "MATHSIGHT_ADMIN_PASSWORD" in e.value
               and "This is a very common password" in e.value for e in at.error)  # fmt: skip


def test_production_without_a_proper_cookie_key_refuses_to_start(
    app_db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MATHSIGHT_ENV", "production")
    monkeypatch.setenv("MATHSIGHT_COOKIE_KEY", "change-me")
    get_settings.cache_clear()
    at = app_test().run()
    assert not at.exception
    assert any("cannot start" in e.value and "MATHSIGHT_COOKIE_KEY" in e.value for e in at.error)
    assert not at.text_input  # no login form
