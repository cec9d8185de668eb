"""People who sign in: accounts, bcrypt password hashes, roles, activation, lockout, the first admin.

Usernames are kept in lower case (the login widget lowers what is typed). Passwords are 10 to 72
bytes (bcrypt's limit) with no surrounding spaces (the login widget strips them), and must not be
easy to guess: zxcvbn (common passwords, names, words, repeats, keyboard runs, the username) must
score them at least ``MIN_PASSWORD_SCORE``. Every change is
written to the audit log in the same transaction; passwords never are.
"""

from __future__ import annotations

import re
import secrets
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cache

import bcrypt
import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session
from zxcvbn import zxcvbn

from model.errors import UserError
from model.i18n import N_, tr
from model.settings import Settings
from model.store.audit import audit
from model.store.db import UPSERT_INSERTS, get_engine
from model.store.tables import ROLES, LoginFailure, OidcIdentity, User, utcnow

MIN_PASSWORD_LENGTH = 10
MAX_PASSWORD_BYTES = 72
MIN_PASSWORD_SCORE = 3  # zxcvbn's 0-4 scale: 3 is "safely unguessable" (about 10^8 guesses and more)
MAX_FAILED_LOGINS = 5
LOCK_MINUTES = 15
FIRST_ADMIN = "admin"
CLIENT_MAX_FAILURES = 5
CLIENT_WINDOW_SECONDS = 15 * 60
CLIENT_MAX_WAIT_SECONDS = 15 * 60
UNKNOWN_CLIENT = "unknown"
_USERNAME = re.compile(r"[a-z0-9][a-z0-9._-]{1,63}")


class AccountError(UserError):
    """A user-facing refusal: unknown user, taken username, weak password, bad role, last admin."""


@dataclass(frozen=True)
class UserInfo:
    """A user as the fronts see it (never the password hash)."""

    id: int
    username: str
    name: str
    email: str | None
    role: str
    active: bool
    created_at: datetime
    failed_logins: int
    locked_until: datetime | None
    session_generation: int = 0

    @classmethod
    def of(cls, row: User) -> UserInfo:
        return cls(row.id, row.username, row.name, row.email, row.role, row.active, row.created_at,
                   row.failed_logins, row.locked_until, row.session_generation or 0)  # fmt: skip

    def locked(self, now: datetime | None = None) -> bool:
        """True while a lockout after too many failed logins lasts."""
        return self.locked_until is not None and self.locked_until > (now or utcnow())


# zxcvbn's own words (English only), so that a refused password is explained in the user's language too.
ZXCVBN_WORDS = (
    N_("Use a few words, avoid common phrases."),
    N_("No need for symbols, digits, or uppercase letters."),
    N_("Add another word or two. Uncommon words are better."),
    N_("Straight rows of keys are easy to guess."),
    N_("Short keyboard patterns are easy to guess."),
    N_("Use a longer keyboard pattern with more turns."),
    N_('Repeats like "aaa" are easy to guess.'),
    N_('Repeats like "abcabcabc" are only slightly harder to guess than "abc".'),
    N_("Avoid repeated words and characters."),
    N_('Sequences like "abc" or "6543" are easy to guess.'),
    N_("Avoid sequences."),
    N_("Recent years are easy to guess."),
    N_("Avoid recent years."),
    N_("Avoid years that are associated with you."),
    N_("Dates are often easy to guess."),
    N_("Avoid dates and years that are associated with you."),
    N_("This is a top-10 common password."),
    N_("This is a top-100 common password."),
    N_("This is a very common password."),
    N_("This is similar to a commonly used password."),
    N_("A word by itself is easy to guess."),
    N_("Names and surnames by themselves are easy to guess."),
    N_("Common names and surnames are easy to guess."),
    N_("Capitalization doesn't help very much."),
    N_("All-uppercase is almost as easy to guess as all-lowercase."),
    N_("Reversed words aren't much harder to guess."),
    N_("Predictable substitutions like '@' instead of 'a' don't help very much."),
)


def _zxcvbn_words(text: str) -> str:
    """A zxcvbn warning or suggestion in this context's language (as it is when it is a new one)."""
    return tr(text) if text in ZXCVBN_WORDS else text


def normalize_username(username: str) -> str:
    """The stored form of a username (lower case, trimmed); raises :class:`AccountError` when malformed."""
    name = str(username).strip().lower()
    if not _USERNAME.fullmatch(name):
        raise AccountError(
            tr('username "{username}" is not allowed: use 2-64 characters a-z, 0-9, ".", "_" or "-", '
               "starting with a letter or digit", username=username)
        )  # fmt: skip
    return name


def check_password_rules(password: str, username: str | None = None) -> None:
    """Raise :class:`AccountError` unless ``password`` is 10-72 bytes without surrounding spaces and hard
    to guess (zxcvbn, with ``username`` as user input); the message says why, in zxcvbn's words."""
    if len(password) < MIN_PASSWORD_LENGTH:
        raise AccountError(tr("the password must have at least {count} characters", count=MIN_PASSWORD_LENGTH))
    if len(password.encode("utf-8")) > MAX_PASSWORD_BYTES:
        raise AccountError(tr("the password may have at most {count} bytes", count=MAX_PASSWORD_BYTES))
    if password != password.strip():
        raise AccountError(tr("the password may not begin or end with a space"))
    result = zxcvbn(password, user_inputs=[username] if username else [])
    if result["score"] >= MIN_PASSWORD_SCORE:
        return
    from_username = any(match.get("dictionary_name") == "user_inputs" for match in result["sequence"])
    feedback = result["feedback"]
    reasons = [tr("it is built from the username.") if from_username else "", _zxcvbn_words(feedback["warning"]),
               *map(_zxcvbn_words, feedback["suggestions"])]  # fmt: skip
    why = " ".join(reason.strip() for reason in reasons if reason.strip()) or tr("choose a longer, less common one.")
    raise AccountError(tr("the password is too easy to guess: {why}", why=why))


def random_password() -> str:
    """A random password that passes :func:`check_password_rules` (16 URL-safe characters)."""
    while True:
        password = secrets.token_urlsafe(12)
        try:
            check_password_rules(password, FIRST_ADMIN)
        except AccountError:  # vanishingly rare: a random string zxcvbn finds a pattern in
            continue
        return password


def hash_password(password: str, username: str | None = None) -> str:
    """A bcrypt hash of ``password`` (checked against the rules first, with ``username`` as user input)."""
    check_password_rules(password, username)
    return bcrypt.hashpw(password.encode("utf-8"), bcrypt.gensalt()).decode("ascii")


def _check_role(role: str) -> str:
    if role not in ROLES:
        raise AccountError(tr('role "{role}" is not allowed: use {roles}', role=role, roles=" or ".join(ROLES)))
    return role


def _row(session: Session, username: str) -> User:
    row = session.scalar(sa.select(User).where(User.username == str(username).strip().lower()))
    if row is None:
        raise AccountError(tr('no user "{username}"', username=username))
    return row


def create_user(
    session: Session,
    username: str,
    password: str,
    *,
    role: str,
    name: str | None = None,
    email: str | None = None,
    actor: str,
    actor_id: int | None = None,
) -> UserInfo:
    """Add an active user; raises :class:`AccountError` for a taken or malformed name, weak password or bad role."""
    username = normalize_username(username)
    _check_role(role)
    if session.scalar(sa.select(User.id).where(User.username == username)) is not None:
        raise AccountError(tr('username "{username}" is already taken', username=username))
    row = User(username=username, name=(name or "").strip() or username, email=email or None,
               password_hash=hash_password(password, username), role=role, active=True)  # fmt: skip
    session.add(row)
    session.flush()
    audit(session, "user_created", actor, actor_id, username=username, role=role)
    return UserInfo.of(row)


def set_password(session: Session, username: str, password: str, *, actor: str, actor_id: int | None = None) -> None:
    """Replace a user's password and lift any lockout; every sign-in session of the user ends."""
    row = _row(session, username)
    if session.scalar(sa.select(OidcIdentity.id).where(OidcIdentity.user_id == row.id)) is not None:
        raise AccountError(
            tr('"{username}" signs in through the identity provider and has no password here', username=row.username)
        )
    row.password_hash = hash_password(password, row.username)
    row.failed_logins, row.locked_until = 0, None
    row.session_generation = (row.session_generation or 0) + 1
    audit(session, "password_reset", actor, actor_id, username=row.username)


def _active_admins(session: Session) -> int:
    query = sa.select(sa.func.count()).select_from(User).where(User.role == "admin", User.active.is_(True))
    return session.scalar(query) or 0


def deactivate(session: Session, username: str, *, actor: str, actor_id: int | None = None) -> None:
    """Stop a user from signing in and end their sessions (their history stays); the last active admin
    cannot be deactivated."""
    row = _row(session, username)
    if row.active and row.role == "admin" and _active_admins(session) <= 1:
        raise AccountError(tr('"{username}" is the last active admin and cannot be deactivated', username=row.username))
    row.active = False
    row.session_generation = (row.session_generation or 0) + 1  # its sign-in sessions end, for good
    audit(session, "user_deactivated", actor, actor_id, username=row.username)


def activate(session: Session, username: str, *, actor: str, actor_id: int | None = None) -> None:
    """Let a deactivated user sign in again."""
    row = _row(session, username)
    row.active = True
    audit(session, "user_activated", actor, actor_id, username=row.username)


def list_users(session: Session) -> list[UserInfo]:
    """Every user, by username."""
    return [UserInfo.of(row) for row in session.scalars(sa.select(User).order_by(User.username))]


def get_user(session: Session, username: str) -> UserInfo | None:
    """The user called ``username`` (any case), or None."""
    row = session.scalar(sa.select(User).where(User.username == str(username).strip().lower()))
    return None if row is None else UserInfo.of(row)


def _matches(password: str, password_hash: str) -> bool:
    try:
        return bcrypt.checkpw(password.encode("utf-8"), password_hash.encode("ascii"))
    except ValueError:
        return False


def check_password(session: Session, username: str, password: str) -> UserInfo | None:
    """The user when ``password`` is right and they may sign in (active, not locked), else None."""
    row = session.scalar(sa.select(User).where(User.username == str(username).strip().lower()))
    if row is None or not row.active or UserInfo.of(row).locked() or not _matches(password, row.password_hash):
        return None
    return UserInfo.of(row)


@cache
def _barred_hash() -> str:
    """A hash no typed password matches: what the login widget gets for users who may not sign in."""
    return bcrypt.hashpw(secrets.token_bytes(32), bcrypt.gensalt()).decode("ascii")


def login_accounts(session: Session, bar_all: bool = False) -> list[tuple[UserInfo, str]]:
    """Every user with the hash the login widget should check.

    Active and deactivated users get their real hash: a wrong password fails like any other, and only
    the right one lets the front say that the account is deactivated. Locked users get a hash that
    matches nothing (their attempts are seen, and a lockout never confirms a guessed password), and so
    does everyone when ``bar_all`` (a client that must wait)."""
    now = utcnow()
    accounts = []
    for row in session.scalars(sa.select(User).order_by(User.username)):
        info = UserInfo.of(row)
        allowed = not info.locked(now) and not bar_all
        accounts.append((info, row.password_hash if allowed else _barred_hash()))
    return accounts


def spend_a_password_check() -> None:
    """Take as long as checking a password does (bcrypt against a hash of the same cost), for an
    attempt that named no known user: the time of a refusal must not tell whether a username exists."""
    _matches(secrets.token_urlsafe(12), _barred_hash())


def record_login(session: Session, username: str | None, ok: bool, method: str = "password") -> str:
    """Audit a sign-in attempt; returns why it failed ("unknown", "inactive", "locked", "password") or "ok".

    Wrong passwords of an active user are counted; after ``MAX_FAILED_LOGINS`` in a row the account is
    locked for ``LOCK_MINUTES``. A success resets the count.
    """
    row = None if username is None else session.scalar(sa.select(User).where(User.username == username.lower()))
    if ok and row is not None:
        row.failed_logins, row.locked_until = 0, None
        audit(session, "login_ok", row.username, row.id, method=method)
        return "ok"
    if row is None:
        audit(session, "login_failed", "(unknown user)", None, reason="unknown")
        return "unknown"
    reason = "inactive" if not row.active else "locked" if UserInfo.of(row).locked() else "password"
    if reason == "password":
        row.failed_logins += 1
    audit(session, "login_failed", row.username, row.id, reason=reason, failed_logins=row.failed_logins)
    if reason == "password" and row.failed_logins >= MAX_FAILED_LOGINS:
        row.locked_until = utcnow() + timedelta(minutes=LOCK_MINUTES)
        audit(session, "user_locked", "system", row.id, username=row.username, minutes=LOCK_MINUTES)
    return reason


class ClientThrottle:
    """Exponential back-off per client address, in process memory and thread-safe.

    Failed sign-ins are remembered per client for ``window`` seconds. From the ``max_failures``-th
    failure in that window on, the client must wait ``2 ** (n - max_failures)`` seconds (capped at
    ``max_wait``) after its latest failure, ``n`` being its failures in the window; an attempt made
    while it must wait is refused unchecked and counts as a failure. ``clock`` (seconds) is injectable.
    :class:`DatabaseClientThrottle` keeps the same count in the database, for every replica.
    """

    def __init__(
        self,
        max_failures: int = CLIENT_MAX_FAILURES,
        window: float = CLIENT_WINDOW_SECONDS,
        max_wait: float = CLIENT_MAX_WAIT_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.max_failures, self.window, self.max_wait, self.clock = max_failures, window, max_wait, clock
        self._failures: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def _recent(self, client: str, now: float) -> deque[float]:
        failures = self._failures.get(client, deque())
        while failures and failures[0] <= now - self.window:
            failures.popleft()
        return failures

    def _wait(self, failures: Sequence[float], now: float) -> float:
        """The wait after ``failures`` (the client's failure times in the window, oldest first)."""
        if len(failures) < self.max_failures:
            return 0.0
        wait = min(2.0 ** (len(failures) - self.max_failures), self.max_wait)
        return max(0.0, failures[-1] + wait - now)

    def wait_seconds(self, client: str) -> float:
        """How long ``client`` must still wait before its next attempt is checked (0 when it may try)."""
        with self._lock:
            now = self.clock()
            return self._wait(self._recent(client, now), now)

    def failed(self, client: str) -> float:
        """Count a failed (or refused) attempt of ``client``; returns the wait it now faces."""
        with self._lock:
            now = self.clock()
            if len(self._failures) > 10_000:  # forget clients whose failures have all expired
                self._failures = {key: q for key, q in self._failures.items() if self._recent(key, now)}
            failures = self._recent(client, now)
            failures.append(now)
            self._failures[client] = failures
            return self._wait(failures, now)

    def clear(self) -> None:
        """Forget every failure (tests, or an operator after an incident)."""
        with self._lock:
            self._failures.clear()


class DatabaseClientThrottle(ClientThrottle):
    """:class:`ClientThrottle` with the failures in the ``login_failure`` table: every dashboard
    replica on the database sees the same count, and a restart forgets nothing. ``engine`` defaults to
    the configured database (read at each call); ``clock`` is wall-clock seconds since the epoch.

    Like the API's database rate limiter it holds an engine and counts in its own short transaction,
    not the caller's: a failure must be counted at once for every replica, whatever happens to the
    sign-in's own transaction, and must not wait on that transaction's SQLite write lock."""

    def __init__(self, engine: Engine | None = None, clock: Callable[[], float] = time.time, **limits: float) -> None:
        super().__init__(clock=clock, **limits)  # type: ignore[arg-type]
        self.engine = engine

    def _times(self, connection: sa.Connection, client: str, now: float) -> list[float]:
        query = (
            sa.select(LoginFailure.failed_at)
            .where(LoginFailure.client == client, LoginFailure.failed_at > now - self.window)
            .order_by(LoginFailure.failed_at)
        )
        return list(connection.execute(query).scalars())

    def wait_seconds(self, client: str) -> float:
        now = self.clock()
        with (self.engine or get_engine()).connect() as connection:
            return self._wait(self._times(connection, client[:64], now), now)

    def failed(self, client: str) -> float:
        now, client = self.clock(), client[:64]
        with (self.engine or get_engine()).begin() as connection:
            connection.execute(sa.delete(LoginFailure).where(LoginFailure.failed_at <= now - self.window))
            connection.execute(sa.insert(LoginFailure).values(client=client, failed_at=now))
            return self._wait(self._times(connection, client, now), now)

    def clear(self) -> None:
        with (self.engine or get_engine()).begin() as connection:
            connection.execute(sa.delete(LoginFailure))


CLIENT_THROTTLE: ClientThrottle = DatabaseClientThrottle()


def record_throttled(session: Session, client: str | None, wait_seconds: float) -> None:
    """Audit a sign-in attempt refused unchecked because its client must wait (``login_throttled``)."""
    audit(session, "login_throttled", "(client)", None, client=client or UNKNOWN_CLIENT,
          wait_seconds=round(wait_seconds, 1))  # fmt: skip


def first_admin_message(password: str, *, settings: Settings) -> str:
    """The framed terminal message that shows a new first admin's password once."""
    frame = "=" * 72
    shown = "from MATHSIGHT_ADMIN_PASSWORD" if password == settings.admin_password else password
    return (
        f"\n{frame}\nmathsight: first admin created: user admin, password {shown}\n"
        f"Sign in and keep it safe: it is not shown again (reset it on the Users page).\n{frame}\n"
    )


def ensure_first_admin(session: Session, *, settings: Settings) -> str | None:
    """Make sure an active admin exists; returns the new admin's password, or None if one existed.

    The password is ``MATHSIGHT_ADMIN_PASSWORD`` (``settings.admin_password``) when set, else a random
    one that the caller must show once; a configured one that breaks the password rules raises
    :class:`AccountError` even when an admin exists (the fronts refuse to start).
    If a user called ``admin`` exists but no admin is active, it
    is reactivated as an admin with the new password (the way back in when every admin was
    deactivated). Safe to call concurrently: the admin row is inserted with ON CONFLICT DO NOTHING,
    so a process that loses the race inserts nothing and returns None (its transaction stays usable).
    """
    if settings.admin_password:  # refused at start, whether or not it is needed now
        check_password_rules(settings.admin_password, FIRST_ADMIN)
    password = settings.admin_password or random_password()
    if _active_admins(session):
        return None
    existing = session.scalar(sa.select(User).where(User.username == FIRST_ADMIN))
    if existing is None:
        if not _insert_first_admin(session, password):
            return None
    else:
        existing.role, existing.active = "admin", True
        set_password(session, FIRST_ADMIN, password, actor="system")
    audit(session, "first_admin_created", "system", None, username=FIRST_ADMIN,
          source="MATHSIGHT_ADMIN_PASSWORD" if settings.admin_password else "random")  # fmt: skip
    return password


def _insert_first_admin(session: Session, password: str) -> bool:
    """Insert the ``admin`` user (audited); False when another process inserted it first."""
    values = {"username": FIRST_ADMIN, "name": "Administrator", "email": None, "role": "admin", "active": True,
              "password_hash": hash_password(password, FIRST_ADMIN)}  # fmt: skip
    insert = UPSERT_INSERTS[session.get_bind().dialect.name](User).values(**values)
    user_id = session.scalar(insert.on_conflict_do_nothing(index_elements=[User.username]).returning(User.id))
    if user_id is None:
        return False
    audit(session, "user_created", "system", None, username=FIRST_ADMIN, role="admin")
    return True
