"""Server-side sign-in sessions (issue 16, item 4): a copied cookie stops working after a password
change, a sign-out, a deactivation and "sign out everywhere", on every replica."""

from __future__ import annotations

import pytest
from starlette.applications import Starlette
from starlette.testclient import TestClient

from dashboard import auth, session_cookie
from dashboard.context import USER_KEY
from model.accounts import sessions, users
from model.settings import get_settings
from model.store.audit import list_audit
from model.store.db import dispose_engines, get_engine, migrate, session_scope
from tests.conftest import _drop_postgres_schema, _postgres_schema_url
from tests.dashboard.conftest import Account, app_test, log_in


def sa_engine(url: str):
    """A separate engine (its own pool), as another replica's process would have."""
    import sqlalchemy as sa

    return sa.create_engine(url)


def _cookie_of(at) -> str:
    """The sign-in cookie the browser of ``at`` was handed (the hand-off code's token, as auth/session sets it)."""
    token = at.session_state[auth.SESSION_KEY]
    return session_cookie.session_token(at.session_state[USER_KEY].username, jti=token["jti"], generation=token["gen"],
                                        expires=token["exp"])  # fmt: skip


def _cookie(username: str, url: str) -> str:
    with session_scope(get_engine(url)) as session:
        generation = sessions.generation(session, username)
    return session_cookie.session_token(username, generation=generation)


def _signed_in(at) -> bool:
    return USER_KEY in at.session_state and any(button.key == "mathsight-logout" for button in at.button)


def test_a_cookie_taken_before_set_password_no_longer_signs_in(app_db_url: str, teacher_account: Account) -> None:
    at = log_in(app_test().run(), "tina", teacher_account.password)
    copied = _cookie_of(at)
    assert session_cookie.open_session(copied) is not None
    with session_scope(get_engine(app_db_url)) as session:
        users.set_password(session, "tina", "a-new-Password-for-tina-7", actor="cli")
    assert session_cookie.open_session(copied) is None
    at.run()  # the browser session that signed in before ends on its next run
    assert not _signed_in(at) and any("session has ended" in e.value for e in at.error)


def test_a_browser_session_whose_token_expired_ends_on_its_next_run(app_db_url: str, teacher_account: Account) -> None:
    at = log_in(app_test().run(), "tina", teacher_account.password)
    token = at.session_state[auth.SESSION_KEY]
    with session_scope(get_engine(app_db_url)) as session:  # the one check, for the cookie and the session
        assert sessions.is_valid(session, "tina", token["jti"], token["gen"], token["exp"])
        assert not sessions.is_valid(session, "tina", token["jti"], token["gen"], token["exp"], now=token["exp"])
        assert not sessions.is_valid(session, "tina", token["jti"], token["gen"], None)
    at.session_state[auth.SESSION_KEY] = {**token, "exp": 1.0}
    at.run()
    assert not _signed_in(at) and any("session has ended" in e.value for e in at.error)


def test_a_cookie_copied_before_sign_out_no_longer_signs_in(app_db_url: str, teacher_account: Account) -> None:
    at = log_in(app_test().run(), "tina", teacher_account.password)
    copied = _cookie_of(at)
    at.button(key="mathsight-logout").click().run()
    assert not _signed_in(at)
    assert session_cookie.open_session(copied) is None
    another = log_in(app_test().run(), "tina", teacher_account.password)  # signing in again still works
    assert _signed_in(another) and session_cookie.open_session(_cookie_of(another)) is not None


def test_the_sign_out_route_revokes_the_cookie_it_deletes(app_db_url: str, teacher_account: Account) -> None:
    migrate(get_engine())
    client = TestClient(Starlette(routes=session_cookie.routes()), base_url="http://testserver")
    cookie = _cookie("tina", app_db_url)
    client.cookies.set(get_settings().cookie_name, cookie)
    assert client.get("/auth/signout").status_code == 204
    assert session_cookie.open_session(cookie) is None


def test_deactivation_ends_sessions_for_good(app_db_url: str, teacher_account: Account) -> None:
    cookie = _cookie("tina", app_db_url)
    with session_scope(get_engine(app_db_url)) as session:
        users.deactivate(session, "tina", actor="head")
    assert session_cookie.open_session(cookie) is None
    with session_scope(get_engine(app_db_url)) as session:
        users.activate(session, "tina", actor="head")
    assert session_cookie.open_session(cookie) is None  # reactivated: old cookies stay dead


def test_sign_out_everywhere_ends_the_other_sessions_only(app_db_url: str, teacher_account: Account) -> None:
    here = log_in(app_test().run(), "tina", teacher_account.password)
    there = log_in(app_test().run(), "tina", teacher_account.password)
    copied = _cookie_of(there)
    here.button(key="mathsight-end-all").click().run()
    assert not here.exception and _signed_in(here)
    assert session_cookie.open_session(_cookie_of(here)) is not None  # this browser got a fresh cookie
    assert here.session_state[auth.COOKIE_HANDOFF]
    there.run()
    assert not _signed_in(there)
    assert session_cookie.open_session(copied) is None
    with session_scope(get_engine(app_db_url)) as session:
        assert [row.actor for row in list_audit(session, "sessions_ended")] == ["tina"]


def test_an_admin_signs_a_user_out_everywhere_from_the_users_page(app_db_url: str, teacher_account: Account,
                                                                   admin_account: Account) -> None:  # fmt: skip
    teacher = log_in(app_test().run(), "tina", teacher_account.password)
    admin = log_in(app_test().run(), "head", admin_account.password)
    admin.switch_page("../pages/users.py").run()
    admin.selectbox(key="end-sessions:username").select("tina")
    next(b for b in admin.button if b.label == "Sign out everywhere").click().run()
    assert not admin.exception and any("signed out everywhere" in s.value for s in admin.success)
    teacher.run()
    assert not _signed_in(teacher) and _signed_in(admin.run())


def test_the_cli_signs_a_user_out(app_db_url: str, teacher_account: Account) -> None:
    from model.cli.main import main

    cookie = _cookie("tina", app_db_url)
    assert main(["users", "sign-out", "tina"]) == 0
    assert session_cookie.open_session(cookie) is None


def test_a_forged_or_old_style_token_opens_no_session(app_db_url: str, teacher_account: Account) -> None:
    import jwt

    old_style = jwt.encode({"username": "tina", "exp_date": 9e9}, get_settings().local_secret("cookie_key"), "HS256")
    assert session_cookie.open_session(old_style) is None
    wrong_generation = session_cookie.session_token("tina", generation=7)
    assert session_cookie.open_session(wrong_generation) is None


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_two_app_instances_on_one_database_agree(backend: str, tmp_path) -> None:
    """A sign-out and a password change made through one replica's engine end the session on the other."""
    url = f"sqlite:///{tmp_path / 'shared.db'}" if backend == "sqlite" else _postgres_schema_url()
    try:
        one, other = sa_engine(url), sa_engine(url)  # two pools: two processes
        migrate(one)
        with session_scope(one) as session:
            users.create_user(session, "tina", "tina-replica-pass-01", role="teacher", name="Tina", actor="pytest")
        settings = get_settings()
        first, second = (session_cookie.session_token("tina", settings) for _ in range(2))
        assert session_cookie.open_session(first, settings, one) and session_cookie.open_session(first, settings, other)
        claims = session_cookie.read_token(first, settings.local_secret("cookie_key"))
        with session_scope(one) as session:  # replica one signs the first cookie out
            sessions.revoke(session, claims["jti"], claims["exp_date"])
        assert session_cookie.open_session(first, settings, other) is None
        assert session_cookie.open_session(second, settings, other) is not None
        with session_scope(other) as session:  # replica two changes the password
            users.set_password(session, "tina", "tina-replica-pass-02!", actor="pytest")
        assert session_cookie.open_session(second, settings, one) is None
    finally:
        if backend == "postgresql":
            dispose_engines()
            _drop_postgres_schema(url)


def test_revoked_token_ids_are_dropped_once_expired(app_db_url: str) -> None:
    import sqlalchemy as sa

    from model.store.tables import RevokedSession

    with session_scope(get_engine(app_db_url)) as session:
        sessions.revoke(session, "old", expires_at=100.0, now=50.0)
        sessions.revoke(session, "old", expires_at=100.0, now=60.0)  # twice: no error
        sessions.revoke(session, "new", expires_at=1e12, now=200.0)
        assert set(session.scalars(sa.select(RevokedSession.jti))) == {"new"}


def test_an_admin_changing_their_own_password_stays_signed_in_here_only(app_db_url: str,
                                                                         admin_account: Account) -> None:  # fmt: skip
    admin = log_in(app_test().run(), "head", admin_account.password)
    elsewhere = log_in(app_test().run(), "head", admin_account.password)
    admin.switch_page("../pages/users.py").run()
    admin.selectbox(key="reset:username").select("head")
    admin.text_input(key="reset:password").input("Quartz-lantern-meadow-91")
    admin.text_input(key="reset:again").input("Quartz-lantern-meadow-91")
    next(b for b in admin.button if b.label == "Set password").click().run()
    assert not admin.exception and any("New password set" in s.value for s in admin.success)
    assert session_cookie.open_session(_cookie_of(admin)) is not None  # the fresh cookie of this browser
    assert _signed_in(admin.run())
    assert not _signed_in(elsewhere.run())
