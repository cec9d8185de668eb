"""The weekly digest: each teacher who opted in gets their "needs attention" list by e-mail.

A message holds only the student ids the teacher typed (or the short key when there is none) and
the reasons (:mod:`model.serving.attention`); never an attribute. Messages are built with
:mod:`email.message` and sent with :mod:`smtplib`, upgraded with STARTTLS when configured. A failure
for one teacher is recorded and the run goes on; the log gets counts only, never an address or id.

Each message is written in its recipient's language (``users.language``; none chosen: English), the
reasons included: the list and the message are made inside :func:`model.i18n.use_language`.
"""

from __future__ import annotations

import logging
import smtplib
import ssl
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from model import i18n
from model.i18n import tr, tr_n
from model.serving.attention import needs_attention
from model.serving.history import short_key
from model.serving.students import student_ids
from model.store.crypto import DataKeyError, DecryptionError
from model.store.school import load_thresholds
from model.store.tables import User

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SmtpConfig:
    """Where and how digests are sent (from the ``MATHSIGHT_SMTP_*`` settings)."""

    host: str
    port: int = 587
    sender: str = ""
    username: str = ""
    password: str = field(default="", repr=False)
    starttls: bool = True
    timeout: float = 30.0
    ca_file: Path | None = None

    @classmethod
    def from_settings(cls, settings: Any) -> SmtpConfig:
        return cls(
            settings.smtp_host, settings.smtp_port, settings.smtp_from, settings.smtp_username, settings.smtp_password,
            settings.smtp_starttls, settings.smtp_timeout, settings.smtp_ca_file,
        )  # fmt: skip


@dataclass(frozen=True)
class Digest:
    """One teacher's digest: who gets it and the (student, why) lines; ``problem`` when the list could
    not be made (then it is not sent, and the run reports it)."""

    user_id: int
    username: str
    email: str
    lines: tuple[tuple[str, str], ...]
    problem: str | None = None
    language: str | None = None  # the recipient's (None: English)


@dataclass
class DigestReport:
    """What a run did: how many were sent, and who could not be reached with the reason."""

    sent: int = 0
    failed: list[tuple[str, str]] = field(default_factory=list)


def recipients(session: Session) -> list[tuple[int, str, str, str | None]]:
    """(id, username, address, language) of every active teacher who opted in and has an address."""
    query = (
        sa.select(User.id, User.username, User.email, User.language)
        .where(User.role == "teacher", User.active.is_(True), User.digest_opt_in.is_(True), User.email.is_not(None))
        .order_by(User.id)
    )
    return [(row.id, row.username, row.email, row.language) for row in session.execute(query) if row.email]


def collect_digests(session: Session, settings: Any, today: date) -> list[Digest]:
    """The digest of every teacher who opted in, each from that teacher's own predictions only."""
    thresholds = load_thresholds(session, settings)
    digests = []
    for user_id, username, email, language in recipients(session):
        with i18n.use_language(language):  # the reasons in the recipient's language
            listed = needs_attention(session, user_id, thresholds, today)
        try:
            ids = student_ids(session, settings, user_id, listed["student_key"])
        except (DecryptionError, DataKeyError) as error:  # a key not configured here: that teacher only
            problem = f"student ids not readable ({type(error).__name__})"  # for the run's report (CLI, English)
            digests.append(Digest(user_id, username, email, (), problem, language))
            continue
        pairs = zip(listed["student_key"], listed["why"], strict=True)
        lines = tuple((ids.get(key) or short_key(key), why) for key, why in pairs)
        digests.append(Digest(user_id, username, email, lines, language=language))
    return digests


def build_message(digest: Digest, sender: str, today: date) -> EmailMessage:
    """The digest as a plain-text e-mail, in the recipient's language."""
    with i18n.use_language(digest.language):
        return _message(digest, sender, today)


def _message(digest: Digest, sender: str, today: date) -> EmailMessage:
    message = EmailMessage()
    message["From"] = sender
    message["To"] = digest.email
    message["Subject"] = tr_n("mathsight: {count} of your students needs attention (week of {day})",
                              "mathsight: {count} of your students need attention (week of {day})",
                              len(digest.lines), day=i18n.date(today))  # fmt: skip
    message["Date"] = formatdate(localtime=False)
    message["Message-ID"] = make_msgid(domain=sender.rpartition("@")[2] or None)
    if digest.lines:
        body = [
            tr_n(
                "{count} of your students needs attention, most pressing first:",
                "{count} of your students need attention, most pressing first:",
                len(digest.lines),
            ),
            "",
        ]
        body += [f"- {student}: {why}" for student, why in digest.lines]
    else:
        calm = tr("Nothing calls for action this week: no student of yours is at high risk without a plan,\n"
                  "fell since their last prediction, has a review due or lacks a final grade.")  # fmt: skip
        body = calm.splitlines()
    body += ["", tr("Open mathsight's Needs attention page for the details."),
             tr("You get this because you opted in on your profile; opt out there.")]  # fmt: skip
    message.set_content("\n".join(body) + "\n")
    return message


def connect(config: SmtpConfig) -> smtplib.SMTP:
    """An SMTP connection as configured: EHLO, STARTTLS when asked (verifying the certificate), login."""
    client = smtplib.SMTP(config.host, config.port, timeout=config.timeout)
    try:
        client.ehlo()
        if config.starttls:
            context = ssl.create_default_context(cafile=str(config.ca_file) if config.ca_file else None)
            client.starttls(context=context)
            client.ehlo()
        if config.username:
            client.login(config.username, config.password)
    except BaseException:
        client.close()
        raise
    return client


def _reason(error: Exception) -> str:
    if isinstance(error, smtplib.SMTPRecipientsRefused):
        codes = sorted({code for code, _ in error.recipients.values()})
        return f"recipient refused (SMTP {', '.join(map(str, codes))})"
    if isinstance(error, smtplib.SMTPResponseException):
        return f"{type(error).__name__} (SMTP {error.smtp_code})"
    return type(error).__name__


def send_digests(digests: Sequence[Digest], config: SmtpConfig, today: date) -> DigestReport:
    """Send each digest; a failure is recorded for that teacher and the next one is tried."""
    report = DigestReport()
    client: smtplib.SMTP | None = None
    for digest in digests:
        if digest.problem is not None:
            report.failed.append((digest.username, digest.problem))
            continue
        try:
            if client is None:
                client = connect(config)
            client.send_message(build_message(digest, config.sender, today))
            report.sent += 1
        except (smtplib.SMTPException, OSError, ssl.SSLError, ValueError) as error:
            report.failed.append((digest.username, _reason(error)))
            if client is not None:
                try:
                    client.close()
                finally:
                    client = None  # a fresh connection for the next teacher
    if client is not None:
        try:
            client.quit()
        except (smtplib.SMTPException, OSError):
            client.close()
    log.info("digest run: %d sent, %d failed", report.sent, len(report.failed))
    return report
