"""The sidebar's "My profile": a teacher sets their own address and the weekly digest opt-in (AppTest)."""

from __future__ import annotations

import sqlalchemy as sa

from dashboard.profile import DIGEST_LABEL, EMAIL_LABEL, SAVED
from model.store.audit import list_audit
from model.store.db import get_engine, session_scope
from model.store.tables import User
from tests.dashboard.conftest import Account, app_test, log_in


def _row(url: str, username: str) -> tuple[str | None, bool]:
    with session_scope(get_engine(url)) as session:
        row = session.execute(sa.select(User.email, User.digest_opt_in).where(User.username == username)).one()
        return row.email, row.digest_opt_in


def _profile(at):
    email = next(t for t in at.text_input if t.label == EMAIL_LABEL)
    opt_in = next(c for c in at.checkbox if c.label == DIGEST_LABEL)
    save = next(b for b in at.button if b.label == "Save profile")
    return email, opt_in, save


def test_a_teacher_opts_in_on_their_own_profile_and_bad_input_writes_nothing(
    app_db_url: str, teacher_account: Account
) -> None:
    at = log_in(app_test().run(), "tina", teacher_account.password)
    assert not at.exception
    email, opt_in, save = _profile(at)
    assert (email.value, opt_in.value) == ("", False)

    opt_in.check()
    save.click()
    at.run()
    assert any("email: the weekly digest needs an e-mail address" in e.value for e in at.error)
    assert _row(app_db_url, "tina") == (None, False)  # nothing written

    email, opt_in, save = _profile(at)
    email.input("not an address")
    opt_in.check()
    save.click()
    at.run()
    assert any("email: not an e-mail address" in e.value for e in at.error)
    assert _row(app_db_url, "tina") == (None, False)

    email, opt_in, save = _profile(at)
    email.input("tina@school.example")
    opt_in.check()
    save.click()
    at.run()
    assert not at.exception
    assert any(SAVED in s.value for s in at.success)
    assert _row(app_db_url, "tina") == ("tina@school.example", True)
    assert _row(app_db_url, "head") == (None, False)  # only their own row
    with session_scope(get_engine(app_db_url)) as session:
        [entry] = list_audit(session, "digest_preference_set")
    assert entry.detail == {"digest_opt_in": True, "email_set": True}  # the address is not audited

    email, opt_in, save = _profile(at.run())
    assert (email.value, opt_in.value) == ("tina@school.example", True)  # shown back on the next run
    opt_in.uncheck()
    save.click()
    at.run()
    assert _row(app_db_url, "tina") == ("tina@school.example", False)


def test_an_admin_cannot_opt_in_to_a_teachers_digest(app_db_url: str, admin_account: Account) -> None:
    at = log_in(app_test().run(), "head", admin_account.password)
    assert not at.exception
    _, opt_in, _ = _profile(at)
    assert opt_in.disabled
