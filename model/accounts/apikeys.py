"""API keys: created and revoked by an admin, shown once, stored as a keyed hash, checked per request.

A key reads ``ms_<prefix>_<secret>``. The prefix (8 hex digits) is stored in clear to find the key
and to name it in lists and logs; the whole key is stored only as HMAC-SHA256 under the server's
``secret_key`` (a fast keyed hash suits a 256-bit random secret checked on every request; changing
``secret_key`` invalidates every key). Each key belongs to a user and has a scope: ``predict`` (the
prediction endpoints) or ``admin`` (everything). Creation and revocation are audited.

Every function works in the caller's session (the front opens and commits the transaction); the
server secret comes from the ``Settings`` the front passes in.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.orm import Session

from model.errors import UserError
from model.i18n import tr
from model.settings import Settings
from model.store.audit import audit
from model.store.tables import SCOPES, ApiKey, User, utcnow

KEY_TAG = "ms"
PREFIX_BYTES = 4
SECRET_BYTES = 32
LAST_USED_EVERY = timedelta(seconds=60)
_KEY_PATTERN = re.compile(rf"{KEY_TAG}_([0-9a-f]{{{PREFIX_BYTES * 2}}})_([A-Za-z0-9_-]{{20,128}})")


class ApiKeyError(UserError):
    """A user-facing refusal: unknown user or key, inactive user, bad scope."""


@dataclass(frozen=True)
class ApiKeyInfo:
    """A key as lists show it: never the secret nor its hash."""

    id: int
    prefix: str
    user_id: int
    username: str
    scope: str
    created_at: datetime
    revoked_at: datetime | None
    last_used_at: datetime | None

    @property
    def active(self) -> bool:
        return self.revoked_at is None


@dataclass(frozen=True)
class KeyHolder:
    """Who a valid key authenticates: the key's id, prefix and scope and its user."""

    key_id: int
    prefix: str
    scope: str
    user_id: int
    username: str
    role: str

    def allows(self, scope: str) -> bool:
        """An ``admin`` key may do everything; a ``predict`` key only what needs ``predict``."""
        return self.scope == "admin" or self.scope == scope


def hash_key(key: str, *, settings: Settings) -> str:
    """HMAC-SHA256 of the whole key under the ``secret_key`` of ``settings`` (hex)."""
    secret = settings.local_secret("secret_key").encode("utf-8")
    return hmac.new(secret, key.encode("utf-8"), hashlib.sha256).hexdigest()


def _info(key: ApiKey, username: str) -> ApiKeyInfo:
    return ApiKeyInfo(key.id, key.prefix, key.user_id, username, key.scope, key.created_at, key.revoked_at,
                      key.last_used_at)  # fmt: skip


def user_id_for(session: Session, username: str) -> int:
    """The id of the active user ``username`` (any case); raises :class:`ApiKeyError` otherwise."""
    row = session.execute(
        sa.select(User.id, User.active).where(User.username == str(username).strip().lower())
    ).one_or_none()
    if row is None:
        raise ApiKeyError(tr('no user "{username}"', username=username))
    if not row.active:
        raise ApiKeyError(tr('user "{username}" is deactivated', username=username))
    return row.id


def create_key(
    session: Session,
    user_id: int,
    scope: str,
    actor: str = "system",
    actor_id: int | None = None,
    *,
    settings: Settings,
) -> tuple[str, ApiKeyInfo]:
    """A new key for ``user_id``: returns the plaintext (show it once; it is not kept) and its record.

    ``actor`` (and ``actor_id``) name who does it, for the audit log."""
    if scope not in SCOPES:
        raise ApiKeyError(tr('scope "{scope}" is not allowed: use {scopes}', scope=scope, scopes=" or ".join(SCOPES)))
    user = session.get(User, user_id)
    if user is None or not user.active:
        raise ApiKeyError(tr("no active user with id {user_id}", user_id=user_id))
    prefix = secrets.token_hex(PREFIX_BYTES)
    plaintext = f"{KEY_TAG}_{prefix}_{secrets.token_urlsafe(SECRET_BYTES)}"
    key = ApiKey(prefix=prefix, key_hash=hash_key(plaintext, settings=settings), user_id=user_id, scope=scope)
    session.add(key)
    session.flush()
    audit(session, "api_key_created", actor, actor_id, prefix=prefix, username=user.username, scope=scope)
    return plaintext, _info(key, user.username)


def revoke_key(session: Session, prefix: str, actor: str = "system", actor_id: int | None = None) -> ApiKeyInfo:
    """Revoke the key with ``prefix`` (revoking twice changes nothing); raises :class:`ApiKeyError`."""
    prefix = prefix.strip().removeprefix(f"{KEY_TAG}_").split("_", 1)[0].lower()
    row = session.execute(
        sa.select(ApiKey, User.username).join(User, User.id == ApiKey.user_id).where(ApiKey.prefix == prefix)
    ).one_or_none()
    if row is None:
        raise ApiKeyError(tr('no API key with prefix "{prefix}"', prefix=prefix))
    key, username = row
    if key.revoked_at is None:
        key.revoked_at = utcnow()
        audit(session, "api_key_revoked", actor, actor_id, prefix=prefix, username=username)
    return _info(key, username)


def list_keys(session: Session, include_revoked: bool = True) -> list[ApiKeyInfo]:
    """Every key (newest first) with its user's name; revoked ones too unless ``include_revoked`` is False."""
    query = sa.select(ApiKey, User.username).join(User, User.id == ApiKey.user_id)
    if not include_revoked:
        query = query.where(ApiKey.revoked_at.is_(None))
    query = query.order_by(ApiKey.created_at.desc(), ApiKey.id.desc())
    return [_info(key, username) for key, username in session.execute(query)]


def authenticate(session: Session, header: str | None, *, settings: Settings) -> KeyHolder | None:
    """The holder of the key in ``header``, or None for a missing, malformed, unknown, wrong or revoked
    key or an inactive user. Records ``last_used_at`` at most once per ``LAST_USED_EVERY`` (in the
    caller's transaction: the API commits it before the route runs, see ``api.deps``)."""
    match = _KEY_PATTERN.fullmatch((header or "").strip())
    if match is None:
        return None
    query = (
        sa.select(ApiKey.id, ApiKey.key_hash, ApiKey.scope, ApiKey.revoked_at, ApiKey.last_used_at,
                  User.id.label("user_id"), User.username, User.role, User.active)
        .join(User, User.id == ApiKey.user_id)
        .where(ApiKey.prefix == match.group(1))
    )  # fmt: skip
    row = session.execute(query).one_or_none()
    if row is None or not hmac.compare_digest(row.key_hash, hash_key(match.group(0), settings=settings)):
        return None
    if row.revoked_at is not None or not row.active:
        return None
    _touch(session, row.id, row.last_used_at)
    return KeyHolder(row.id, match.group(1), row.scope, row.user_id, row.username, row.role)


def _touch(session: Session, key_id: int, last_used_at: datetime | None) -> None:
    now = utcnow()
    if last_used_at is not None and now - last_used_at < LAST_USED_EVERY:
        return
    session.execute(sa.update(ApiKey).where(ApiKey.id == key_id).values(last_used_at=now))
