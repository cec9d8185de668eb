"""API keys: shown once, stored hashed, tied to a user and scope, revocable, audited; and the CLI."""

from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa

from model.accounts import apikeys
from model.accounts.apikeys import ApiKeyError, ApiKeyInfo, KeyHolder
from model.accounts.users import create_user, deactivate
from model.cli.main import main as cli_main
from model.settings import Settings, get_settings
from model.store.db import get_engine, migrate, session_scope
from model.store.tables import ApiKey, AuditLog, utcnow


@pytest.fixture
def engine(db_url: str) -> sa.Engine:
    engine = get_engine(db_url)
    migrate(engine)
    return engine


# Each call in its own transaction, as a front makes it, under the process's settings by default.
def create_key(engine: sa.Engine, user_id: int, scope: str, settings: Settings | None = None,
               **actor: str) -> tuple[str, ApiKeyInfo]:  # fmt: skip
    with session_scope(engine) as session:
        return apikeys.create_key(session, user_id, scope, settings=settings or get_settings(), **actor)


def authenticate(engine: sa.Engine, header: str | None, settings: Settings | None = None) -> KeyHolder | None:
    with session_scope(engine) as session:
        return apikeys.authenticate(session, header, settings=settings or get_settings())


def revoke_key(engine: sa.Engine, prefix: str, **actor: str) -> ApiKeyInfo:
    with session_scope(engine) as session:
        return apikeys.revoke_key(session, prefix, **actor)


def list_keys(engine: sa.Engine, include_revoked: bool = True) -> list[ApiKeyInfo]:
    with session_scope(engine) as session:
        return apikeys.list_keys(session, include_revoked)


def _user(engine: sa.Engine, username: str = "teacher1", role: str = "teacher") -> int:
    with session_scope(engine) as session:
        return create_user(session, username, "correct-horse-battery", role=role, actor="pytest").id


def test_a_created_key_is_shown_once_and_stored_only_as_a_hash(engine: sa.Engine) -> None:
    user_id = _user(engine)
    plaintext, info = create_key(engine, user_id, "predict", actor="admin")
    assert plaintext.startswith(f"ms_{info.prefix}_") and len(plaintext) > 40
    with session_scope(engine) as session:
        row = session.scalars(sa.select(ApiKey)).one()
        audit = session.scalars(sa.select(AuditLog).where(AuditLog.action == "api_key_created")).one()
    assert plaintext not in row.key_hash and plaintext.split("_", 2)[2] not in row.key_hash
    assert row.key_hash == apikeys.hash_key(plaintext, settings=get_settings()) and len(row.key_hash) == 64
    assert audit.actor == "admin" and audit.detail == {
        "prefix": info.prefix,
        "username": "teacher1",
        "scope": "predict",
    }
    assert [(k.prefix, k.username, k.scope, k.active) for k in list_keys(engine)] == [
        (info.prefix, "teacher1", "predict", True)
    ]
    assert not hasattr(list_keys(engine)[0], "key_hash")


def test_authenticate_accepts_the_key_and_refuses_everything_else(engine: sa.Engine) -> None:
    user_id = _user(engine)
    plaintext, info = create_key(engine, user_id, "admin")
    holder = authenticate(engine, plaintext)
    assert holder is not None and (holder.prefix, holder.scope, holder.user_id, holder.username) == (
        info.prefix, "admin", user_id, "teacher1")  # fmt: skip
    assert holder.allows("predict") and holder.allows("admin")
    wrong_secret = plaintext[:-4] + ("AAAA" if not plaintext.endswith("AAAA") else "BBBB")
    for bad in (None, "", "nonsense", wrong_secret, f"ms_00000000_{plaintext.split('_', 2)[2]}", plaintext + "x"):
        assert authenticate(engine, bad) is None, bad


def test_a_predict_key_does_not_allow_admin(engine: sa.Engine) -> None:
    holder = authenticate(engine, create_key(engine, _user(engine), "predict")[0])
    assert holder is not None and holder.allows("predict") and not holder.allows("admin")


def test_revoked_keys_and_deactivated_users_are_refused(engine: sa.Engine) -> None:
    _user(engine, "admin1", "admin")
    user_id = _user(engine)
    revoked, info = create_key(engine, user_id, "predict")
    kept, _ = create_key(engine, user_id, "predict")
    assert revoke_key(engine, info.prefix, actor="admin1").revoked_at is not None
    assert revoke_key(engine, f"ms_{info.prefix}", actor="admin1").revoked_at is not None  # twice: no change
    assert authenticate(engine, revoked) is None and authenticate(engine, kept) is not None
    assert [k.prefix for k in list_keys(engine, include_revoked=False)] != [info.prefix]
    with session_scope(engine) as session:
        revocations = session.scalars(sa.select(AuditLog).where(AuditLog.action == "api_key_revoked")).all()
        deactivate(session, "teacher1", actor="admin1")
    assert len(revocations) == 1
    assert authenticate(engine, kept) is None


def test_bad_requests_name_what_is_wrong(engine: sa.Engine) -> None:
    user_id = _user(engine)
    with pytest.raises(ApiKeyError, match='scope "root" is not allowed: use predict or admin'):
        create_key(engine, user_id, "root")
    with pytest.raises(ApiKeyError, match="no active user with id 999"):
        create_key(engine, 999, "predict")
    with pytest.raises(ApiKeyError, match='no API key with prefix "deadbeef"'):
        revoke_key(engine, "deadbeef")
    with pytest.raises(ApiKeyError, match='no user "nobody"'), session_scope(engine) as session:
        apikeys.user_id_for(session, "nobody")


def test_keys_are_hashed_under_the_secret_of_the_settings_passed_in(engine: sa.Engine) -> None:
    ours = Settings(secret_key="ours-0123456789abcdef-ours")
    theirs = Settings(secret_key="theirs-0123456789abcdef-theirs")
    plaintext, _ = create_key(engine, _user(engine), "predict", settings=ours)
    assert apikeys.hash_key(plaintext, settings=ours) != apikeys.hash_key(plaintext, settings=theirs)
    assert authenticate(engine, plaintext, settings=ours) is not None
    assert authenticate(engine, plaintext, settings=theirs) is None
    assert authenticate(engine, plaintext) is None  # nor under the process's own secret


def test_last_used_is_recorded_at_most_once_a_minute(engine: sa.Engine) -> None:
    plaintext, info = create_key(engine, _user(engine), "predict")
    assert info.last_used_at is None
    authenticate(engine, plaintext)
    first = list_keys(engine)[0].last_used_at
    authenticate(engine, plaintext)
    assert first is not None and list_keys(engine)[0].last_used_at == first
    with engine.begin() as connection:
        connection.execute(sa.update(ApiKey).values(last_used_at=utcnow() - timedelta(minutes=5)))
    authenticate(engine, plaintext)
    assert list_keys(engine)[0].last_used_at > first - timedelta(seconds=1)


def test_cli_creates_lists_and_revokes_keys(
    db_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from model.settings import get_settings

    monkeypatch.setenv("DATABASE_URL", db_url)
    get_settings.cache_clear()
    engine = get_engine(db_url)
    migrate(engine)
    _user(engine)
    assert cli_main(["apikey", "create", "Teacher1", "--scope", "predict"]) == 0
    plaintext = capsys.readouterr().out.splitlines()[0]
    holder = authenticate(engine, plaintext)
    assert holder is not None and holder.scope == "predict"
    assert cli_main(["apikey", "list"]) == 0
    listing = capsys.readouterr().out
    assert holder.prefix in listing and "teacher1" in listing and plaintext not in listing
    assert cli_main(["apikey", "revoke", holder.prefix]) == 0
    assert f"revoked key {holder.prefix}" in capsys.readouterr().out
    assert authenticate(engine, plaintext) is None
    assert cli_main(["apikey", "list"]) == 0 and holder.prefix not in capsys.readouterr().out
    assert cli_main(["apikey", "list", "--all"]) == 0 and "revoked" in capsys.readouterr().out
    assert cli_main(["apikey", "create", "ghost"]) == 2
    assert 'no user "ghost"' in capsys.readouterr().err
    assert cli_main(["apikey", "revoke", "deadbeef"]) == 2
