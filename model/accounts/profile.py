"""What a user sets on their own profile: their e-mail address, the weekly digest opt-in and their language.

Only the signed-in user changes their own (the front passes their id); audited without the address.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.orm import Session

from model import i18n
from model.errors import Problem, UserError
from model.i18n import N_, tr
from model.store.audit import audit
from model.store.tables import User

MAX_EMAIL = 254
_EMAIL = re.compile(r"[^@\s<>,;\"]+@[^@\s<>,;\"]+\.[^@\s<>,;\"]+")
EMAIL_ALLOWED = N_("an address like name@school.example (at most 254 characters)")


class ProfileError(UserError):
    """A refused profile change (a malformed address, opting in without one)."""


@dataclass(frozen=True)
class DigestPreference:
    email: str | None
    digest_opt_in: bool


def _checked_email(email: str | None) -> str | None:
    text = (email or "").strip()
    if not text:
        return None
    if len(text) > MAX_EMAIL or not _EMAIL.fullmatch(text):
        problem = Problem(None, "email", text, tr("not an e-mail address"), tr(EMAIL_ALLOWED))
        raise ProfileError(tr("email: not an e-mail address; allowed: {allowed}", allowed=tr(EMAIL_ALLOWED)), [problem])
    return text


def digest_preference(session: Session, user_id: int) -> DigestPreference:
    """The user's address and opt-in."""
    row = session.execute(sa.select(User.email, User.digest_opt_in).where(User.id == user_id)).one_or_none()
    return DigestPreference(None, False) if row is None else DigestPreference(row.email, bool(row.digest_opt_in))


def set_digest_preference(session: Session, user_id: int, email: str | None, opt_in: bool) -> DigestPreference:
    """Set the user's own address and digest opt-in; opting in needs an address."""
    address = _checked_email(email)
    if opt_in and address is None:
        problem = Problem(None, "email", "", tr("the weekly digest needs an e-mail address"), tr(EMAIL_ALLOWED))
        raise ProfileError(tr("email: the weekly digest needs an e-mail address"), [problem])
    row = session.get(User, user_id)
    if row is None:
        raise ProfileError(tr("no such user"))
    row.email, row.digest_opt_in = address, bool(opt_in)
    audit(session, "digest_preference_set", row.username, user_id, digest_opt_in=bool(opt_in),
          email_set=address is not None)  # fmt: skip
    return DigestPreference(address, bool(opt_in))


def language(session: Session, user_id: int) -> str | None:
    """The language the user chose (a code of ``i18n.LANGUAGES``), or None: they follow their browser."""
    chosen = session.execute(sa.select(User.language).where(User.id == user_id)).scalar_one_or_none()
    return chosen if chosen in i18n.LANGUAGES else None


def set_language(session: Session, user_id: int, code: str | None) -> str | None:
    """Set the user's own language (None: follow the browser); audited."""
    if code is not None and code not in i18n.LANGUAGES:
        allowed = ", ".join(i18n.LANGUAGES)
        problem = Problem(None, "language", str(code), tr("not a language of mathsight"), allowed)
        raise ProfileError(tr("language: {code} is not one of {allowed}", code=repr(code), allowed=allowed), [problem])
    row = session.get(User, user_id)
    if row is None:
        raise ProfileError(tr("no such user"))
    if row.language != code:
        row.language = code
        audit(session, "language_set", row.username, user_id, language=code or "browser")
    return code
