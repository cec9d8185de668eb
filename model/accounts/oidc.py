"""People who sign in through the school's identity provider (OpenID Connect), beside local accounts.

The provider says who someone is (issuer, subject, e-mail); mathsight decides what they may do. An
admin writes rules mapping an e-mail address (``ana@school.pt``) or a whole domain (``@school.pt``)
to a role; an exact address wins over its domain. The first time a person with a matching rule
signs in, they become an ordinary ``users`` row (username: their e-mail address; a password hash
no typed password matches), so deactivation, session generations, the access matrix, the audit log
and teacher isolation apply to them unchanged. A person without a rule is recorded as a request an
admin sees on the Users page, and gets nothing. The role follows the rule at every sign-in (a rule
removed later means waiting again); a deactivated user stays deactivated whatever the rules say.

Each provider sign-in (one ID token) is a session (:class:`OidcSession`) opened under the user's
session generation: "sign out everywhere", a deactivation and a sign-out end it like a password
session, also for a copy of the browser's identity cookie.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

import bcrypt
import sqlalchemy as sa
from sqlalchemy.orm import Session

from model.accounts.users import AccountError, UserInfo
from model.i18n import tr
from model.store.audit import audit
from model.store.tables import ROLES, OidcIdentity, OidcRule, OidcSession, User, utcnow

_ADDRESS = re.compile(r"[^@\s]+@([a-z0-9-]+\.)+[a-z0-9-]{2,}")
_DOMAIN = re.compile(r"@([a-z0-9-]+\.)+[a-z0-9-]{2,}")
Status = Literal["ok", "waiting", "inactive", "unverified"]


@dataclass(frozen=True)
class Rule:
    """An admin's rule: an address or ``@domain`` and its role."""

    id: int
    pattern: str
    role: str
    created_at: datetime
    created_by: str


@dataclass(frozen=True)
class Request:
    """Someone the provider vouched for who has no mathsight account yet (no rule matched)."""

    email: str | None
    name: str | None
    issuer: str
    first_seen: datetime
    last_seen: datetime


@dataclass(frozen=True)
class Resolution:
    """What a provider sign-in comes to: ``ok`` with the user, or why not."""

    status: Status
    user: UserInfo | None = None


def normalize_pattern(pattern: str) -> str:
    """The stored form of a rule's pattern: an address ``name@school.pt`` or a domain ``@school.pt``
    (lower case; a bare ``school.pt`` means the domain); raises :class:`AccountError` otherwise."""
    text = str(pattern).strip().lower()
    if text and "@" not in text:
        text = "@" + text
    if _DOMAIN.fullmatch(text) or _ADDRESS.fullmatch(text):
        return text
    raise AccountError(tr('e-mail or domain "{pattern}" is not allowed: write an address such as ana@school.pt '
                          "or a domain such as @school.pt", pattern=pattern))  # fmt: skip


def add_rule(session: Session, pattern: str, role: str, *, actor: str, actor_id: int | None = None) -> Rule:
    """Map an address or domain to ``role`` (replacing its earlier role); audited."""
    pattern = normalize_pattern(pattern)
    if role not in ROLES:
        raise AccountError(tr('role "{role}" is not allowed: use {roles}', role=role, roles=" or ".join(ROLES)))
    row = session.scalar(sa.select(OidcRule).where(OidcRule.pattern == pattern))
    if row is None:
        row = OidcRule(pattern=pattern, role=role, created_by=actor)
        session.add(row)
    else:
        row.role, row.created_by, row.created_at = role, actor, utcnow()
    session.flush()
    audit(session, "oidc_rule_set", actor, actor_id, pattern=pattern, role=role)
    return _rule(row)


def remove_rule(session: Session, pattern: str, *, actor: str, actor_id: int | None = None) -> None:
    """Delete the rule of ``pattern``; people it let in wait for an administrator at their next sign-in."""
    pattern = normalize_pattern(pattern)
    row = session.scalar(sa.select(OidcRule).where(OidcRule.pattern == pattern))
    if row is None:
        raise AccountError(tr('no rule for "{pattern}"', pattern=pattern))
    session.delete(row)
    audit(session, "oidc_rule_removed", actor, actor_id, pattern=pattern)


def _rule(row: OidcRule) -> Rule:
    return Rule(row.id, row.pattern, row.role, row.created_at, row.created_by)


def list_rules(session: Session) -> list[Rule]:
    """Every rule, by pattern."""
    return [_rule(row) for row in session.scalars(sa.select(OidcRule).order_by(OidcRule.pattern))]


def role_for(session: Session, email: str | None) -> str | None:
    """The role the rules give ``email`` (its own rule first, then its domain's), or None."""
    address = (email or "").strip().lower()
    if not _ADDRESS.fullmatch(address):
        return None
    domain = "@" + address.rsplit("@", 1)[1]
    query = sa.select(OidcRule.pattern, OidcRule.role).where(OidcRule.pattern.in_([address, domain]))
    rules = {pattern: role for pattern, role in session.execute(query)}
    return rules.get(address) or rules.get(domain)


def requests(session: Session) -> list[Request]:
    """The people waiting for an administrator (no account yet), latest first."""
    query = sa.select(OidcIdentity).where(OidcIdentity.user_id.is_(None)).order_by(OidcIdentity.last_seen.desc())
    return [Request(row.email, row.name, row.issuer, row.first_seen, row.last_seen) for row in session.scalars(query)]


def is_provider_account(session: Session, user_id: int) -> bool:
    """Whether the user signs in through the identity provider (and so has no password)."""
    return session.scalar(sa.select(OidcIdentity.id).where(OidcIdentity.user_id == user_id)) is not None


def _username(session: Session, email: str) -> str:
    """A free username for ``email``: the address itself (lower case), else the address with a short suffix."""
    base = email.lower()[:64]
    candidate = base
    while session.scalar(sa.select(User.id).where(User.username == candidate)) is not None:
        candidate = f"{base[:55]}-{secrets.token_hex(4)}"
    return candidate


def _create_user(session: Session, identity: OidcIdentity, email: str, name: str | None, role: str) -> User:
    unusable = bcrypt.hashpw(secrets.token_bytes(32), bcrypt.gensalt()).decode("ascii")  # no password matches
    row = User(username=_username(session, email), name=(name or "").strip()[:128] or email, email=email,
               password_hash=unusable, role=role, active=True)  # fmt: skip
    session.add(row)
    session.flush()
    identity.user_id = row.id
    audit(session, "user_created", "identity provider", None, username=row.username, role=role, method="oidc")
    return row


def _active_admins(session: Session) -> int:
    query = sa.select(sa.func.count()).select_from(User).where(User.role == "admin", User.active.is_(True))
    return session.scalar(query) or 0


def resolve(session: Session, *, issuer: str, subject: str, email: str | None, name: str | None = None,
            email_verified: object = None, trust_unsent_verification: bool = False) -> Resolution:  # fmt: skip
    """Who a provider sign-in (ID token claims ``iss``, ``sub``, ``email``, ``name``, ``email_verified``)
    is in mathsight. Records the identity, creates its user the first time a rule matches, keeps the
    role in step with the rules, and records a waiting request when none matches."""
    if not issuer or not subject:
        raise AccountError(tr("the identity provider's answer names no issuer or subject"))
    # Roles follow the address, so only an address the provider vouches for counts; a provider that never
    # sends the claim (Microsoft Entra) is trusted only when the installation says so.
    if email_verified in (False, "false") or (email_verified not in (True, "true") and not trust_unsent_verification):
        return Resolution("unverified")
    email = (email or "").strip().lower()[:254] or None
    identity = session.scalar(sa.select(OidcIdentity).where(OidcIdentity.issuer == issuer[:255],
                                                            OidcIdentity.subject == subject[:255]))  # fmt: skip
    new = identity is None
    if identity is None:
        identity = OidcIdentity(issuer=issuer[:255], subject=subject[:255])
        session.add(identity)
    identity.email, identity.name, identity.last_seen = email, (name or "")[:128] or None, utcnow()
    session.flush()
    role = role_for(session, email)
    user = session.get(User, identity.user_id) if identity.user_id is not None else None
    if user is not None and not user.active:
        return Resolution("inactive", UserInfo.of(user))
    if role is None or email is None:
        if new:
            audit(session, "oidc_access_requested", email or "(no e-mail)", user.id if user else None, issuer=issuer)
        return Resolution("waiting")
    if user is None:
        same = session.scalar(sa.select(User).where(sa.or_(User.email == email, User.username == email)))
        if same is not None and not same.active:  # a deactivated person does not come back under a new subject
            return Resolution("inactive", UserInfo.of(same))
        user = _create_user(session, identity, email, name, role)
    elif user.role != role and not (user.role == "admin" and _active_admins(session) <= 1):
        audit(session, "user_role_changed", "identity provider", None, username=user.username, role=role,
              previous=user.role)  # fmt: skip
        user.role = role
    return Resolution("ok", UserInfo.of(user))


def session_id(issuer: str, subject: str, issued_at: object, nonce: object) -> str:
    """The id of one provider sign-in: a hash of its ID token's issuer, subject, ``iat`` and ``nonce``."""
    text = "\x1f".join(str(part) for part in (issuer, subject, issued_at, nonce))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:32]


def session_generation(session: Session, jti: str, user: UserInfo, expires_at: float) -> int:
    """The session generation provider sign-in ``jti`` was opened under (the user's current one when
    the dashboard sees it first)."""
    row = session.get(OidcSession, jti)
    if row is None or row.user_id != user.id:
        if row is not None:
            session.delete(row)
            session.flush()
        now = utcnow().timestamp()
        session.execute(sa.delete(OidcSession).where(OidcSession.expires_at < now))
        row = OidcSession(jti=jti, user_id=user.id, generation=user.session_generation, expires_at=expires_at)
        session.add(row)
        session.flush()
    return row.generation


def carry_on(session: Session, jti: str, generation: int) -> None:
    """After "sign out everywhere else" in this browser session: its provider sign-in goes on under ``generation``."""
    session.execute(sa.update(OidcSession).where(OidcSession.jti == jti).values(generation=generation))
