"""pages/api_keys.py through AppTest: an admin creates (shown once), lists and revokes keys; a teacher is refused."""

from __future__ import annotations

import sqlalchemy as sa

from model.accounts import apikeys
from model.settings import get_settings
from model.store.audit import list_audit
from model.store.db import get_engine, session_scope
from tests.dashboard.conftest import Account, page_test, texts


def authenticate(engine: sa.Engine, key: str) -> apikeys.KeyHolder | None:
    with session_scope(engine) as session:
        return apikeys.authenticate(session, key, settings=get_settings())


def list_keys(engine: sa.Engine) -> list[apikeys.ApiKeyInfo]:
    with session_scope(engine) as session:
        return apikeys.list_keys(session)


def test_admin_creates_a_key_shown_once_then_revokes_it(
    app_db_url: str, admin_account: Account, teacher_account: Account
) -> None:
    at = page_test("api_keys.py", admin_account.user).run()
    assert not at.exception and "0 active keys" in texts(at)
    at.selectbox(key="create:user").set_value("tina")
    at.radio(key="create:scope").set_value("predict")
    at = next(b for b in at.form_submit_button if b.label == "Create key").click().run()
    assert not at.exception
    (shown,) = [c.value for c in at.code]
    engine = get_engine(app_db_url)
    holder = authenticate(engine, shown)
    assert holder is not None and (holder.username, holder.scope) == ("tina", "predict")
    assert "shown only this once" in texts(at) and "1 active key" in texts(at)
    table = at.dataframe[0].value
    assert list(table.prefix) == [holder.prefix] and shown not in table.to_string()
    with session_scope(engine) as session:
        created = list_audit(session, "api_key_created")[0]
    assert (created.actor, created.user_id) == ("head", admin_account.user.id)

    at = at.run()
    assert not at.code  # never shown again
    at.selectbox(key="revoke:key").set_value(f"{holder.prefix} (tina, predict)")
    at = next(b for b in at.form_submit_button if b.label == "Revoke").click().run()
    assert f"Revoked key {holder.prefix}" in texts(at)
    assert authenticate(engine, shown) is None and not list_keys(engine)[0].active
    with session_scope(engine) as session:
        assert list_audit(session, "api_key_revoked")[0].detail["prefix"] == holder.prefix


def test_a_teacher_is_refused(app_db_url: str, teacher_account: Account) -> None:
    at = page_test("api_keys.py", teacher_account.user).run()
    assert "Access refused" in texts(at) and not at.form_submit_button
