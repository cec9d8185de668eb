"""model.accounts.users on SQLite and PostgreSQL: hashing, roles, lockout, the first admin, the audit trail."""

from __future__ import annotations

import threading

import bcrypt
import pytest
import sqlalchemy as sa

from model.accounts import users
from model.settings import Settings, get_settings
from model.store.audit import list_audit
from model.store.db import get_engine, migrate, session_scope
from model.store.tables import User

PASSWORD = "correct horse 1"


@pytest.fixture
def engine(db_url: str) -> sa.Engine:
    engine = get_engine(db_url)
    migrate(engine)
    return engine


def ensure_first_admin(engine: sa.Engine) -> str | None:
    """The first-admin check as a front makes it: one transaction, the process's settings."""
    with session_scope(engine) as session:
        return users.ensure_first_admin(session, settings=get_settings())


def _add(engine: sa.Engine, username: str = "tina", role: str = "teacher", password: str = PASSWORD) -> users.UserInfo:
    with session_scope(engine) as session:
        return users.create_user(session, username, password, role=role, name="Tina T", actor="pytest")


def test_password_is_stored_as_bcrypt_hash_and_checked(engine: sa.Engine) -> None:
    info = _add(engine)
    with session_scope(engine) as session:
        stored = session.scalar(sa.select(User.password_hash).where(User.id == info.id))
        assert stored != PASSWORD and stored.startswith("$2")
        assert bcrypt.checkpw(PASSWORD.encode(), stored.encode())
        assert users.check_password(session, "TINA", PASSWORD) == users.get_user(session, "tina")
        assert users.check_password(session, "tina", "wrong password") is None
        assert users.check_password(session, "nobody", PASSWORD) is None


def test_user_info_never_carries_the_hash(engine: sa.Engine) -> None:
    info = _add(engine)
    assert "password_hash" not in vars(info)
    assert PASSWORD not in repr(info)


@pytest.mark.parametrize(
    ("username", "password", "role", "message"),
    [
        ("x", PASSWORD, "teacher", "not allowed"),
        ("tina smith", PASSWORD, "teacher", "not allowed"),
        ("tina", "short", "teacher", "at least 10"),
        ("tina", " padded-password ", "teacher", "space"),
        ("tina", "p" * 73, "teacher", "72 bytes"),
        ("tina", PASSWORD, "headmaster", 'role "headmaster"'),
    ],
)
def test_bad_accounts_are_refused_with_a_reason(
    engine: sa.Engine, username: str, password: str, role: str, message: str
) -> None:
    with session_scope(engine) as session, pytest.raises(users.AccountError, match=message):
        users.create_user(session, username, password, role=role, actor="pytest")


def test_usernames_are_lower_case_and_unique(engine: sa.Engine) -> None:
    assert _add(engine, "Tina").username == "tina"
    with pytest.raises(users.AccountError, match="already taken"):
        _add(engine, "TINA")


def test_inactive_user_cannot_sign_in_until_reactivated(engine: sa.Engine) -> None:
    _add(engine, "head", "admin")
    _add(engine)
    with session_scope(engine) as session:
        users.deactivate(session, "tina", actor="head")
    with session_scope(engine) as session:
        assert users.check_password(session, "tina", PASSWORD) is None
        # the widget checks the real hash, so only the right password hears "deactivated" (the front refuses)
        checked = dict((info.username, h) for info, h in users.login_accounts(session))["tina"]
        assert bcrypt.checkpw(PASSWORD.encode(), checked.encode())
        assert users.record_login(session, "tina", ok=False) == "inactive"
        users.activate(session, "tina", actor="head")
    with session_scope(engine) as session:
        assert users.check_password(session, "tina", PASSWORD) is not None


def test_last_active_admin_cannot_be_deactivated(engine: sa.Engine) -> None:
    _add(engine, "head", "admin")
    with session_scope(engine) as session, pytest.raises(users.AccountError, match="last active admin"):
        users.deactivate(session, "head", actor="head")


def test_set_password_replaces_the_old_one(engine: sa.Engine) -> None:
    _add(engine)
    with session_scope(engine) as session:
        users.set_password(session, "tina", "a brand new one", actor="head")
    with session_scope(engine) as session:
        assert users.check_password(session, "tina", PASSWORD) is None
        assert users.check_password(session, "tina", "a brand new one") is not None
        with pytest.raises(users.AccountError, match='no user "ghost"'):
            users.set_password(session, "ghost", "a brand new one", actor="head")


def test_repeated_failures_lock_the_account_and_success_resets(engine: sa.Engine) -> None:
    _add(engine)
    with session_scope(engine) as session:
        reasons = [users.record_login(session, "tina", ok=False) for _ in range(users.MAX_FAILED_LOGINS + 1)]
    assert reasons == ["password"] * users.MAX_FAILED_LOGINS + ["locked"]
    with session_scope(engine) as session:
        assert users.get_user(session, "tina").locked()
        assert users.check_password(session, "tina", PASSWORD) is None
        users.set_password(session, "tina", PASSWORD, actor="head")  # an admin's reset lifts the lock
    with session_scope(engine) as session:
        assert users.check_password(session, "tina", PASSWORD) is not None
        assert users.record_login(session, "tina", ok=True) == "ok"
        assert users.get_user(session, "tina").failed_logins == 0


def test_changes_and_sign_ins_are_audited_without_passwords(engine: sa.Engine) -> None:
    _add(engine, "head", "admin")
    _add(engine)
    with session_scope(engine) as session:
        users.record_login(session, "tina", ok=False)
        users.record_login(session, "nobody", ok=False)
        users.record_login(session, "tina", ok=True)
        users.set_password(session, "tina", "another password", actor="head")
    with session_scope(engine) as session:
        rows = list_audit(session, limit=50)
    actions = [row.action for row in reversed(rows)]
    assert actions == ["user_created", "user_created", "login_failed", "login_failed", "login_ok", "password_reset"]
    assert rows[1].detail == {"method": "password"} and rows[1].user_id is not None
    assert rows[2].actor == "(unknown user)" and rows[2].user_id is None
    dumped = repr([(row.actor, row.detail) for row in rows])
    assert PASSWORD not in dumped and "another password" not in dumped


def test_first_admin_gets_a_random_password_once(engine: sa.Engine) -> None:
    password = ensure_first_admin(engine)
    assert password is not None and len(password) >= users.MIN_PASSWORD_LENGTH
    assert ensure_first_admin(engine) is None
    with session_scope(engine) as session:
        admin = users.check_password(session, "admin", password)
        assert admin is not None and admin.role == "admin"
        assert len(users.list_users(session)) == 1
        assert [row.detail["source"] for row in list_audit(session, "first_admin_created")] == ["random"]


def test_first_admin_takes_the_configured_password(engine: sa.Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MATHSIGHT_ADMIN_PASSWORD", "from-the-environment")
    get_settings.cache_clear()
    assert ensure_first_admin(engine) == "from-the-environment"
    with session_scope(engine) as session:
        assert users.check_password(session, "admin", "from-the-environment") is not None


def test_first_admin_takes_the_password_of_the_settings_passed_in(engine: sa.Engine) -> None:
    settings = Settings(admin_password="from-the-settings-object")
    with session_scope(engine) as session:
        assert users.ensure_first_admin(session, settings=settings) == "from-the-settings-object"
    with session_scope(engine) as session:
        assert users.check_password(session, "admin", "from-the-settings-object") is not None
        assert [row.detail["source"] for row in list_audit(session, "first_admin_created")] == [
            "MATHSIGHT_ADMIN_PASSWORD"
        ]
    assert "from MATHSIGHT_ADMIN_PASSWORD" in users.first_admin_message("from-the-settings-object", settings=settings)
    shown = users.first_admin_message("from-the-settings-object", settings=get_settings())
    assert "password from-the-settings-object" in shown  # not configured there: shown once


def test_weak_configured_admin_password_is_refused(engine: sa.Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MATHSIGHT_ADMIN_PASSWORD", "admin")
    get_settings.cache_clear()
    with pytest.raises(users.AccountError, match="at least 10"):
        ensure_first_admin(engine)


@pytest.mark.parametrize(
    ("username", "password", "why"),
    [
        ("tina", "aaaaaaaaaa", 'Repeats like "aaa" are easy to guess'),
        ("tina", "password12", "This is a very common password"),
        ("tina", "qwertyuiop", "This is a top-100 common password"),
        ("christopher", "christopher", "it is built from the username"),
        ("tina.teacher", "tina.teacher", "it is built from the username"),
    ],
)
def test_easily_guessed_passwords_are_refused_with_the_reason(
    engine: sa.Engine, username: str, password: str, why: str
) -> None:
    with pytest.raises(users.AccountError, match="too easy to guess") as refused:
        _add(engine, username, password=password)
    assert why in str(refused.value)
    _add(engine, "head", "admin")
    with session_scope(engine) as session, pytest.raises(users.AccountError, match="too easy to guess") as reset:
        users.set_password(session, "head", "password12", actor="pytest")
    assert "This is a very common password" in str(reset.value)
    with session_scope(engine) as session:
        assert users.get_user(session, username) is None
        assert users.check_password(session, "head", PASSWORD) is not None  # the old one still works


def test_a_weak_configured_admin_password_stops_the_start_even_with_an_admin(
    engine: sa.Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    _add(engine, "head", "admin")
    monkeypatch.setenv("MATHSIGHT_ADMIN_PASSWORD", "password12")
    get_settings.cache_clear()
    with pytest.raises(users.AccountError, match="too easy to guess: This is a very common password"):
        ensure_first_admin(engine)


def test_random_first_admin_passwords_pass_the_strength_check(engine: sa.Engine) -> None:
    password = ensure_first_admin(engine)
    assert password is not None
    users.check_password_rules(password, "admin")
    for _ in range(50):
        users.check_password_rules(users.random_password(), "admin")


def test_first_admin_is_restored_when_every_admin_is_gone(engine: sa.Engine) -> None:
    first = ensure_first_admin(engine)
    _add(engine, "tina")
    with session_scope(engine) as session:
        session.execute(sa.update(User).where(User.username == "admin").values(active=False))
    second = ensure_first_admin(engine)
    assert second is not None and second != first
    with session_scope(engine) as session:
        assert users.check_password(session, "admin", second) is not None
        assert users.check_password(session, "tina", PASSWORD) is not None


def test_first_admin_is_created_once_under_concurrency(engine: sa.Engine) -> None:
    results: list[str | None] = []
    threads = [threading.Thread(target=lambda: results.append(ensure_first_admin(engine))) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sum(r is not None for r in results) == 1
    with session_scope(engine) as session:
        assert [u.username for u in users.list_users(session)] == ["admin"]
