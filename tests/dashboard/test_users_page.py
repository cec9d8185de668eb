"""pages/users.py through AppTest: an admin manages accounts; a teacher is refused."""

from __future__ import annotations

from streamlit.testing.v1 import AppTest

from dashboard.context import USER_KEY
from model.accounts import users
from model.store.audit import list_audit
from model.store.db import get_engine, session_scope
from tests.dashboard.conftest import Account, app_test, log_in, page_test, texts


def _submit(at: AppTest, label: str) -> AppTest:
    return next(b for b in at.form_submit_button if b.label == label).click().run()


def _add(at: AppTest, username: str, password: str, again: str | None = None, role: str = "teacher") -> AppTest:
    at.text_input(key="add:username").input(username)
    at.text_input(key="add:name").input("Ann Teacher")
    at.selectbox(key="add:role").set_value(role)
    at.text_input(key="add:password").input(password)
    at.text_input(key="add:again").input(password if again is None else again)
    return _submit(at, "Add user")


def _user(url: str, username: str) -> users.UserInfo | None:
    with session_scope(get_engine(url)) as session:
        return users.get_user(session, username)


def test_admin_adds_a_teacher_who_can_then_sign_in(app_db_url: str, admin_account: Account) -> None:
    at = _add(page_test("users.py", admin_account.user).run(), "Ann", "ann-password-1")
    assert not at.exception
    assert any('Added teacher "ann"' in s.value for s in at.success)
    table = at.dataframe[0].value
    assert set(table.username) == {"head", "ann"} and "password_hash" not in table.columns
    info = _user(app_db_url, "ann")
    assert info is not None and (info.role, info.name, info.active) == ("teacher", "Ann Teacher", True)
    with session_scope(get_engine(app_db_url)) as session:
        created = list_audit(session, "user_created")[0]
    assert (created.actor, created.user_id, created.detail) == ("head", admin_account.user.id,
                                                              {"username": "ann", "role": "teacher"})  # fmt: skip
    app = log_in(app_test().run(), "ann", "ann-password-1")
    assert app.session_state[USER_KEY].username == "ann"
    assert "Needs attention" in [t.value for t in app.title]


def test_bad_new_accounts_are_refused_with_a_reason(app_db_url: str, admin_account: Account) -> None:
    at = _add(page_test("users.py", admin_account.user).run(), "ann", "ann-password-1", again="something-else")
    assert any("differ" in e.value for e in at.error)
    at = _add(at, "ann", "short")
    assert any("at least 10" in e.value for e in at.error)
    at = _add(at, "ann", "aaaaaaaaaa")
    assert any('too easy to guess: Repeats like "aaa" are easy to guess' in e.value for e in at.error)
    at = _add(at, "annabelle", "annabelle1")
    assert any("built from the username" in e.value for e in at.error)
    at = _add(at, "head", "head-password-2")
    assert any("already taken" in e.value for e in at.error)
    assert _user(app_db_url, "ann") is None


def test_admin_deactivates_reactivates_and_resets(
    app_db_url: str, admin_account: Account, teacher_account: Account
) -> None:
    at = page_test("users.py", admin_account.user).run()
    at.selectbox(key="deactivate:username").set_value("tina")
    at = _submit(at, "Deactivate")
    assert any("can no longer sign in" in s.value for s in at.success)
    assert not _user(app_db_url, "tina").active
    app = log_in(app_test().run(), "tina", teacher_account.password)
    assert USER_KEY not in app.session_state
    at.run()
    at.selectbox(key="activate:username").set_value("tina")
    at = _submit(at, "Reactivate")
    assert _user(app_db_url, "tina").active
    at.selectbox(key="reset:username").set_value("tina")
    at.text_input(key="reset:password").input("tina-new-password")
    at.text_input(key="reset:again").input("tina-new-password")
    at = _submit(at, "Set password")
    assert any('New password set for "tina"' in s.value for s in at.success)
    app = log_in(app_test().run(), "tina", "tina-new-password")
    assert app.session_state[USER_KEY].username == "tina"


def test_admin_cannot_deactivate_themselves(admin_account: Account) -> None:
    at = page_test("users.py", admin_account.user).run()
    assert "head" not in at.selectbox(key="deactivate:username").options


def test_teacher_is_refused(teacher_account: Account) -> None:
    at = page_test("users.py", teacher_account.user).run()
    assert not at.exception
    assert any("Access refused" in e.value for e in at.error)
    assert not at.form_submit_button and not at.dataframe
    assert "Users" not in texts(at)


def test_admin_sees_who_waits_and_gives_school_accounts_a_role(app_db_url: str, admin_account: Account) -> None:
    from model.accounts import oidc

    with session_scope(get_engine(app_db_url)) as session:
        oidc.resolve(
            session,
            issuer="https://idp.school.test",
            subject="s-1",
            email="sam@school.test",
            name="Sam",
            email_verified=True,
        )
    at = page_test("users.py", admin_account.user).run()
    assert any("1 school account waits for a role" in w.value for w in at.warning)
    assert "sam@school.test (Sam), last tried" in texts(at)
    at.text_input(key="oidc:pattern").input("school")
    at = _submit(at, "Give this role")
    assert any('"school" is not allowed: write an address such as ana@school.pt or a domain' in e.value
               for e in at.error)  # fmt: skip
    at.text_input(key="oidc:pattern").input("@School.test")
    at.selectbox(key="oidc:role").set_value("teacher")
    at = _submit(at, "Give this role")
    assert any('matching "@school.test" sign in as teacher' in s.value for s in at.success)
    with session_scope(get_engine(app_db_url)) as session:
        assert [(r.pattern, r.role, r.created_by) for r in oidc.list_rules(session)] == [("@school.test", "teacher",
                                                                                          "head")]  # fmt: skip
        resolution = oidc.resolve(
            session, issuer="https://idp.school.test", subject="s-1", email="sam@school.test", email_verified=True
        )
    assert resolution.status == "ok" and resolution.user is not None and resolution.user.role == "teacher"
