"""Server-side state of sign-in sessions: a generation per user and the token ids signed out early.

A sign-in token (the dashboard's cookie) names its user, a random token id (``jti``) and the user's
session generation when it was issued. It is good only while the user is active, the generation is
still the user's (a password change, a deactivation and "sign out everywhere" bump it) and the
token id has not been revoked (a sign-out revokes it; the row is kept until the token would have
expired anyway). Everything is in the database, so every replica gives the same answer.
"""

from __future__ import annotations

import secrets
import time

import sqlalchemy as sa
from sqlalchemy.orm import Session

from model.accounts.users import _row
from model.store.audit import audit
from model.store.db import UPSERT_INSERTS
from model.store.tables import RevokedSession, User

TOKEN_ID_BYTES = 16


def new_token_id() -> str:
    """A fresh random token id (32 hex digits)."""
    return secrets.token_hex(TOKEN_ID_BYTES)


def generation(session: Session, username: str) -> int | None:
    """The current session generation of an active user, else None."""
    query = sa.select(User.session_generation).where(User.username == username, User.active.is_(True))
    return session.scalar(query)


def revoked(session: Session, jti: str) -> bool:
    """Whether the token id ``jti`` was signed out."""
    return session.scalar(sa.select(sa.func.count()).where(RevokedSession.jti == str(jti)[:64])) > 0


def is_valid(
    session: Session, username: str, jti: object, issued_generation: object, expires_at: object,
    now: float | None = None,
) -> bool:  # fmt: skip
    """Whether a token of ``username`` with id ``jti``, issued under ``issued_generation`` and good until
    ``expires_at`` (epoch seconds), may still sign in: the one check of the sign-in cookie and of a
    browser session's token on every run."""
    if not isinstance(jti, str) or not jti or isinstance(issued_generation, bool):
        return False
    if not isinstance(issued_generation, int) or isinstance(expires_at, bool):
        return False
    if not isinstance(expires_at, int | float) or expires_at <= (time.time() if now is None else now):
        return False
    current = generation(session, username)
    return current is not None and current == issued_generation and not revoked(session, jti)


def revoke(session: Session, jti: str, expires_at: float, now: float | None = None) -> None:
    """Sign the token ``jti`` out for good (kept until ``expires_at``); drops rows whose token expired."""
    now = time.time() if now is None else now
    session.execute(sa.delete(RevokedSession).where(RevokedSession.expires_at < now))
    insert = UPSERT_INSERTS[session.get_bind().dialect.name](RevokedSession)
    session.execute(insert.values(jti=str(jti)[:64], expires_at=float(expires_at)).on_conflict_do_nothing())


def end_all(session: Session, username: str, *, actor: str, actor_id: int | None = None) -> int:
    """ "Sign out everywhere": every token of ``username`` issued so far stops working; returns the new generation."""
    row = _row(session, username)
    bump(row)
    audit(session, "sessions_ended", actor, actor_id, username=row.username)
    return row.session_generation


def bump(row: User) -> None:
    """Invalidate every sign-in token of ``row`` issued so far."""
    row.session_generation = (row.session_generation or 0) + 1
