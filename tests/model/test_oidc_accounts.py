"""model.accounts.oidc on SQLite and PostgreSQL: rules, requests, the users provider sign-ins become."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from model.accounts import oidc, sessions, users
from model.store.audit import list_audit
from model.store.db import get_engine, migrate, session_scope

ISSUER = "https://login.school.example"


@pytest.fixture
def engine(db_url: str) -> sa.Engine:
    engine = get_engine(db_url)
    migrate(engine)
    return engine


def _resolve(engine: sa.Engine, email: str | None, subject: str = "sub-1", **claims: object) -> oidc.Resolution:
    claims.setdefault("email_verified", True)
    with session_scope(engine) as session:
        return oidc.resolve(session, issuer=ISSUER, subject=subject, email=email, name="Ana Silva", **claims)


def _rule(engine: sa.Engine, pattern: str, role: str) -> oidc.Rule:
    with session_scope(engine) as session:
        return oidc.add_rule(session, pattern, role, actor="admin")


@pytest.mark.parametrize(("typed", "stored"), [("Ana@School.PT", "ana@school.pt"), ("@school.pt", "@school.pt"),
                                               (" school.pt ", "@school.pt")])  # fmt: skip
def test_patterns_are_addresses_or_domains_in_lower_case(typed: str, stored: str) -> None:
    assert oidc.normalize_pattern(typed) == stored


@pytest.mark.parametrize("bad", ["", "@", "ana@", "@school", "a b@school.pt", "ana@@school.pt"])
def test_malformed_patterns_are_refused_naming_the_value_and_the_allowed_forms(bad: str) -> None:
    with pytest.raises(users.AccountError, match="e-mail or domain .* not allowed: write an address"):
        oidc.normalize_pattern(bad)


def test_an_unmapped_person_waits_and_the_admin_sees_the_request_once(engine: sa.Engine) -> None:
    assert _resolve(engine, "ana@school.pt") == oidc.Resolution("waiting")
    assert _resolve(engine, "ana@school.pt") == oidc.Resolution("waiting")
    with session_scope(engine) as session:
        waiting = oidc.requests(session)
        assert [(r.email, r.name) for r in waiting] == [("ana@school.pt", "Ana Silva")]
        assert users.list_users(session) == []
        assert [e.action for e in list_audit(session)].count("oidc_access_requested") == 1


def test_a_domain_rule_creates_the_user_once_and_an_address_rule_beats_it(engine: sa.Engine) -> None:
    _rule(engine, "@school.pt", "teacher")
    first = _resolve(engine, "Ana@school.pt")
    assert first.status == "ok" and first.user is not None
    assert (first.user.username, first.user.role, first.user.email) == ("ana@school.pt", "teacher", "ana@school.pt")
    assert _resolve(engine, "ana@school.pt").user == first.user  # the same row, not a second one
    _rule(engine, "ana@school.pt", "admin")
    again = _resolve(engine, "ana@school.pt")
    assert again.user is not None and (again.user.id, again.user.role) == (first.user.id, "admin")
    with session_scope(engine) as session:
        assert oidc.requests(session) == []
        actions = [e.action for e in list_audit(session)]
        assert "user_created" in actions and "user_role_changed" in actions


def test_a_removed_rule_means_waiting_again_and_deactivation_wins_over_rules(engine: sa.Engine) -> None:
    _rule(engine, "@school.pt", "teacher")
    user = _resolve(engine, "ana@school.pt").user
    assert user is not None
    with session_scope(engine) as session:
        oidc.remove_rule(session, "school.pt", actor="admin")
    assert _resolve(engine, "ana@school.pt").status == "waiting"
    _rule(engine, "@school.pt", "teacher")
    with session_scope(engine) as session:
        users.deactivate(session, user.username, actor="admin")
    assert _resolve(engine, "ana@school.pt").status == "inactive"
    # the same address under a new subject (a second provider, a recreated account) does not come back
    assert _resolve(engine, "ana@school.pt", subject="sub-2").status == "inactive"


def test_an_unverified_address_never_matches_a_rule(engine: sa.Engine) -> None:
    _rule(engine, "@school.pt", "admin")
    assert _resolve(engine, "ana@school.pt", email_verified=False).status == "unverified"
    assert _resolve(engine, "ana@school.pt", email_verified="false").status == "unverified"
    assert _resolve(engine, "ana@school.pt", email_verified=None).status == "unverified"  # claim not sent
    unsent = _resolve(engine, "ana@school.pt", email_verified=None, trust_unsent_verification=True)
    assert unsent.status == "ok"  # the installation trusts a provider that never sends the claim
    assert _resolve(engine, "ana@school.pt", email_verified=False, trust_unsent_verification=True).status == (
        "unverified"
    )
    assert _resolve(engine, "ana@school.pt", email_verified=True).status == "ok"


def test_same_address_from_another_subject_is_another_person(engine: sa.Engine) -> None:
    _rule(engine, "@school.pt", "teacher")
    one = _resolve(engine, "ana@school.pt", subject="a").user
    two = _resolve(engine, "ana@school.pt", subject="b").user
    assert one is not None and two is not None and one.id != two.id and two.username.startswith("ana@school.pt-")


def test_provider_accounts_have_no_password_that_signs_in(engine: sa.Engine) -> None:
    _rule(engine, "@school.pt", "teacher")
    user = _resolve(engine, "ana@school.pt").user
    assert user is not None
    with session_scope(engine) as session:
        assert oidc.is_provider_account(session, user.id)
        with pytest.raises(users.AccountError, match="signs in through the identity provider"):
            users.set_password(session, user.username, "a long enough pass phrase 9", actor="admin")
    with session_scope(engine) as session:
        assert users.check_password(session, user.username, "") is None


def test_a_provider_sign_in_ends_with_sign_out_everywhere_and_deactivation(engine: sa.Engine) -> None:
    _rule(engine, "@school.pt", "teacher")
    user = _resolve(engine, "ana@school.pt").user
    assert user is not None
    jti = oidc.session_id(ISSUER, "sub-1", 1_700_000_000, "nonce")
    with session_scope(engine) as session:
        generation = oidc.session_generation(session, jti, user, expires_at=4e9)
        assert sessions.is_valid(session, user.username, jti, generation, 4e9)
        sessions.end_all(session, user.username, actor="admin")
    with session_scope(engine) as session:  # the same ID token keeps the generation it was opened under
        again = users.get_user(session, user.username)
        assert again is not None and oidc.session_generation(session, jti, again, 4e9) == generation
        assert not sessions.is_valid(session, user.username, jti, generation, 4e9)
        other = oidc.session_id(ISSUER, "sub-1", 1_700_000_100, "other nonce")  # a new sign-in at the provider
        assert sessions.is_valid(
            session, user.username, other, oidc.session_generation(session, other, again, 4e9), 4e9
        )
        users.deactivate(session, user.username, actor="admin")
    with session_scope(engine) as session:
        assert not sessions.is_valid(session, user.username, other, generation + 1, 4e9)
