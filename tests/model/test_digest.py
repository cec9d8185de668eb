"""The weekly digest against a real SMTP server (aiosmtpd on 127.0.0.1), its messages parsed back.

SQLite and PostgreSQL: recipients are exactly the active teachers who opted in; each message lists only
that teacher's students and reasons, no attribute; a refused recipient, a server that is down and a
server that insists on STARTTLS are reported with the count sent; ``--dry-run`` sends nothing; STARTTLS
with a certificate made in the test.
"""

from __future__ import annotations

import datetime as dt
import email
import email.policy
import ipaddress
import logging
import re
import socket
import ssl
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import pytest
import sqlalchemy as sa
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from model.accounts.profile import ProfileError, set_digest_preference
from model.cli.main import main
from model.errors import UserError
from model.schema.fields import ATTRIBUTES, FIELDS
from model.serving.digest import SmtpConfig
from model.serving.service import ModelStore, predict_batch
from model.settings import get_settings
from model.store.db import get_engine, session_scope
from tests.model.test_attention import T0, TODAY, _set_p_pass
from tests.model.test_history import _class, add_user
from tests.test_privacy import everything_logged  # noqa: F401 (a fixture used below)
from tests.translations import english_words

SENDER = "mathsight@school.example"
A, B, X, Z = "STU-4711-A", "STU-4712-B", "STU-4801-X", "STU-4901-Z"
SMTP_USER, SMTP_PASSWORD = "digest-sender", "Smtp-Secret-Pass-0815"
ANA, BEN, CLEO = "ana@school.example", "ben@school.example", "cleo@school.example"


@dataclass
class Mailbox:
    """What the SMTP server received: (envelope recipients, parsed message) per message."""

    refuse: set[str] = field(default_factory=set)
    received: list[tuple[list[str], email.message.EmailMessage]] = field(default_factory=list)

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):  # noqa: N802 (aiosmtpd's hook)
        if address in self.refuse:
            return "550 5.1.1 mailbox unavailable"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 (aiosmtpd's hook)
        message = email.message_from_bytes(envelope.original_content, policy=email.policy.default)
        self.received.append((list(envelope.rcpt_tos), message))
        return "250 Message accepted for delivery"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextmanager
def smtp_server(mailbox: Mailbox, **smtp: object) -> Iterator[int]:
    """A real aiosmtpd server on 127.0.0.1 for the test's duration; yields its port."""
    controller = Controller(mailbox, hostname="127.0.0.1", port=_free_port(), **smtp)
    controller.start()
    try:
        yield controller.port
    finally:
        controller.stop()


def _smtp_env(monkeypatch: pytest.MonkeyPatch, port: int, starttls: bool = False, ca_file: Path | None = None) -> None:
    monkeypatch.setenv("MATHSIGHT_SMTP_HOST", "127.0.0.1")
    monkeypatch.setenv("MATHSIGHT_SMTP_PORT", str(port))
    monkeypatch.setenv("MATHSIGHT_SMTP_FROM", SENDER)
    monkeypatch.setenv("MATHSIGHT_SMTP_STARTTLS", "true" if starttls else "false")
    if ca_file is not None:
        monkeypatch.setenv("MATHSIGHT_SMTP_CA_FILE", str(ca_file))
    get_settings.cache_clear()


@pytest.fixture
def school(models_db_url: str, raw_df: pd.DataFrame, monkeypatch: pytest.MonkeyPatch) -> dict:
    """Ana (opted in): student A high risk, B fell 0.9 -> 0.6; Ben (opted in): X high risk; Cleo (address, not
    opted in): Z high risk; Dora (opted in, deactivated) and an admin (opted in in the database)."""
    monkeypatch.setenv("DATABASE_URL", models_db_url)
    get_settings.cache_clear()
    engine, settings = get_engine(models_db_url), get_settings()
    store = ModelStore(engine, settings=settings)
    ana, ben, cleo, dora = (add_user(engine, name) for name in ("ana", "ben", "cleo", "dora"))
    head = add_user(engine, "head", role="admin")
    predict_batch(store, engine, _class(raw_df, [A, B]), channel="ui", user_id=ana)
    _set_p_pass(engine, settings, {A: 0.3, B: 0.9}, T0)
    predict_batch(store, engine, _class(raw_df, [A, B], start=30), channel="ui", user_id=ana)
    _set_p_pass(engine, settings, {A: 0.35, B: 0.6}, T0 + dt.timedelta(days=20))
    predict_batch(store, engine, _class(raw_df, [X], start=60), channel="ui", user_id=ben)
    _set_p_pass(engine, settings, {X: 0.1}, T0)
    predict_batch(store, engine, _class(raw_df, [Z], start=90), channel="ui", user_id=cleo)
    _set_p_pass(engine, settings, {Z: 0.1}, T0)
    with session_scope(engine) as session:
        set_digest_preference(session, ana, ANA, True)
        set_digest_preference(session, ben, BEN, True)
        set_digest_preference(session, cleo, CLEO, False)
        set_digest_preference(session, dora, "dora@school.example", True)
        from model.store.tables import User

        session.get(User, dora).active = False
        session.get(User, head).email, session.get(User, head).digest_opt_in = "head@school.example", True
    return {"engine": engine, "raw": raw_df}


def _run(*extra: str) -> int:
    return main(["digest", "--today", TODAY.isoformat(), *extra])


def _by_recipient(mailbox: Mailbox) -> dict[str, email.message.EmailMessage]:
    assert all(len(rcpts) == 1 for rcpts, _ in mailbox.received)
    return {rcpts[0]: message for rcpts, message in mailbox.received}


def _attributes_in(body: str) -> list[str]:
    """The attributes named in ``body``, by their codebook name or their form label (whole words)."""
    found = []
    for name in ATTRIBUTES:
        for word in (name, FIELDS[name].label):
            if re.search(rf"\b{re.escape(word)}\b", body, flags=re.IGNORECASE):
                found.append(name)
    return found


def test_each_opted_in_teacher_gets_only_their_students_and_reasons(school: dict, monkeypatch, capsys) -> None:
    mailbox = Mailbox()
    with smtp_server(mailbox) as port:
        _smtp_env(monkeypatch, port)
        assert _run() == 0
    assert "sent 2 of 2 digest(s)" in capsys.readouterr().out
    messages = _by_recipient(mailbox)
    assert sorted(messages) == [ANA, BEN]  # not Cleo (no opt-in), Dora (inactive), the admin
    for address, message in messages.items():
        assert message["To"] == address
        assert message["From"] == SENDER
        assert message["Subject"].startswith("mathsight: ") and "2026-11-20" in message["Subject"]
        assert message["Message-ID"] and message["Date"]
    ana_body = messages[ANA].get_content()
    assert f"- {A}: High risk (P(pass) 35%) and no intervention planned" in ana_body
    assert f"- {B}: P(pass) fell from 90% to 60%" in ana_body
    assert "2 of your students need attention" in messages[ANA]["Subject"]
    ben_body = messages[BEN].get_content()
    assert f"- {X}: High risk (P(pass) 10%) and no intervention planned" in ben_body
    assert A not in ben_body and Z not in ben_body and X not in ana_body
    for body in (ana_body, ben_body):
        students = [line for line in body.splitlines() if line.startswith("- ")]
        assert all(line.split(": ", 1)[0] in (f"- {A}", f"- {B}", f"- {X}") for line in students)
        assert _attributes_in(body) == []
        assert "@" not in body  # no address of anyone in the text


def test_a_refused_recipient_is_reported_with_the_count_and_the_others_are_sent(
    school: dict, monkeypatch, capsys
) -> None:
    mailbox = Mailbox(refuse={ANA})
    with smtp_server(mailbox) as port:
        _smtp_env(monkeypatch, port)
        assert _run() == 1
    captured = capsys.readouterr()
    assert "sent 1 of 2 digest(s)" in captured.out
    assert "not sent to ana: recipient refused (SMTP 550)" in captured.err
    assert sorted(_by_recipient(mailbox)) == [BEN]


def test_a_server_that_is_down_is_reported_not_raised(school: dict, monkeypatch, capsys) -> None:
    _smtp_env(monkeypatch, _free_port())  # nothing listens there
    assert _run() == 1
    captured = capsys.readouterr()
    assert "sent 0 of 2 digest(s)" in captured.out
    assert captured.err.count("ConnectionRefusedError") == 2
    assert "Traceback" not in captured.err


def test_dry_run_prints_and_sends_nothing(school: dict, monkeypatch, capsys) -> None:
    mailbox = Mailbox()
    with smtp_server(mailbox) as port:
        _smtp_env(monkeypatch, port)
        assert _run("--dry-run") == 0
    out = capsys.readouterr().out
    assert mailbox.received == []
    assert f"To: {ANA}" in out and f"To: {BEN}" in out and CLEO not in out
    assert "dry run: 2 digest(s) would be sent, none was" in out


def test_without_a_server_configured_the_command_says_so(school: dict, capsys) -> None:
    assert _run() == 2
    assert "MATHSIGHT_SMTP_HOST is not set" in capsys.readouterr().err


def _self_signed(tmp_path: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.UTC)
    ski = x509.SubjectKeyIdentifier.from_public_key(key.public_key())
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(ski, critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski), critical=False)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = tmp_path / "smtp.crt", tmp_path / "smtp.key"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return cert_file, key_file


def _tls_context(cert_file: Path, key_file: Path) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert_file, key_file)
    return context


@pytest.fixture
def tls_server(tmp_path: Path) -> Iterator[tuple[Mailbox, int, Path]]:
    """An aiosmtpd server that refuses mail until STARTTLS, with a certificate made here."""
    cert_file, key_file = _self_signed(tmp_path)
    mailbox = Mailbox()
    with smtp_server(mailbox, tls_context=_tls_context(cert_file, key_file), require_starttls=True) as port:
        yield mailbox, port, cert_file


def test_starttls_upgrades_the_connection_and_verifies_the_certificate(
    school: dict, tls_server, monkeypatch, capsys
) -> None:
    mailbox, port, cert_file = tls_server
    _smtp_env(monkeypatch, port, starttls=True, ca_file=cert_file)
    assert _run() == 0
    assert sorted(_by_recipient(mailbox)) == [ANA, BEN]


def test_a_server_requiring_starttls_refuses_plain_mail_and_an_unknown_certificate(
    school: dict, tls_server, monkeypatch, capsys
) -> None:
    mailbox, port, _ = tls_server
    _smtp_env(monkeypatch, port, starttls=False)
    assert _run() == 1  # the server answers 530 until STARTTLS
    assert "sent 0 of 2" in capsys.readouterr().out
    _smtp_env(monkeypatch, port, starttls=True)  # the system's CAs do not know the test's certificate
    assert _run() == 1
    assert "SSLCertVerificationError" in capsys.readouterr().err
    assert mailbox.received == []


def test_opting_in_needs_a_well_formed_address(db_url: str) -> None:
    from model.store.db import migrate

    engine = get_engine(db_url)
    migrate(engine)
    user = add_user(engine, "eve")
    with session_scope(engine) as session:
        with pytest.raises(ProfileError, match="email: the weekly digest needs an e-mail address"):
            set_digest_preference(session, user, "  ", True)
        with pytest.raises(ProfileError, match="email: not an e-mail address") as refused:
            set_digest_preference(session, user, "eve at school", False)
        assert isinstance(refused.value, UserError)
        assert [(p.column, p.value) for p in refused.value.problems] == [("email", "eve at school")]


def _authenticator(server, session, envelope, mechanism, auth_data) -> AuthResult:
    ok = isinstance(auth_data, LoginPassword) and (auth_data.login, auth_data.password) == (
        SMTP_USER.encode(),
        SMTP_PASSWORD.encode(),
    )
    return AuthResult(success=ok, handled=False)


def test_a_logged_in_run_over_starttls_logs_counts_only(
    everything_logged: Path,  # noqa: F811 (the imported fixture)
    school: dict,
    tmp_path: Path,
    monkeypatch,
    capfd,
) -> None:
    monkeypatch.setattr(logging.getLogger("mail.log"), "propagate", False)  # the test's server stands for a remote one
    cert_file, key_file = _self_signed(tmp_path)
    mailbox = Mailbox(refuse={BEN})
    server = {"tls_context": _tls_context(cert_file, key_file), "require_starttls": True,
              "auth_required": True, "authenticator": _authenticator}  # fmt: skip
    with smtp_server(mailbox, **server) as port:
        _smtp_env(monkeypatch, port, starttls=True, ca_file=cert_file)
        monkeypatch.setenv("MATHSIGHT_SMTP_USERNAME", SMTP_USER)
        monkeypatch.setenv("MATHSIGHT_SMTP_PASSWORD", SMTP_PASSWORD)
        monkeypatch.setenv("MATHSIGHT_LOG_DIR", str(everything_logged))
        get_settings.cache_clear()
        assert _run() == 1
        monkeypatch.setenv("MATHSIGHT_SMTP_PASSWORD", "wrong-password")
        get_settings.cache_clear()
        assert _run() == 1
    assert sorted(_by_recipient(mailbox)) == [ANA]  # the right login sent Ana's; the wrong one nothing
    captured = capfd.readouterr()
    assert "sent 1 of 2" in captured.out and "sent 0 of 2" in captured.out
    assert "SMTPAuthenticationError (SMTP 535)" in captured.err
    logged = {p.name: p.read_text("utf-8", errors="replace") for p in everything_logged.rglob("*") if p.is_file()}
    assert any("digest run: 1 sent, 1 failed" in text for text in logged.values())
    forbidden = [A, B, X, Z, ANA, BEN, CLEO, SMTP_PASSWORD, "wrong-password"]
    assert {(name, word) for name, text in logged.items() for word in forbidden if word in text} == set()


def test_smtp_settings_come_from_the_environment_or_secrets_toml(tmp_path: Path, monkeypatch) -> None:
    from model.settings import SecretsTomlSource, Settings

    secrets = tmp_path / "secrets.toml"
    secrets.write_text('[mathsight]\nsmtp_password = "from-the-toml"\nsmtp_starttls = false\n', "utf-8")
    assert SecretsTomlSource(Settings, secrets)() == {"smtp_password": "from-the-toml", "smtp_starttls": False}
    monkeypatch.setenv("MATHSIGHT_SMTP_HOST", "smtp.school.example")
    monkeypatch.setenv("MATHSIGHT_SMTP_STARTTLS", "false")
    monkeypatch.setenv("MATHSIGHT_SMTP_PASSWORD", "from-the-env")
    settings = Settings()
    assert (settings.smtp_host, settings.smtp_port, settings.smtp_starttls) == ("smtp.school.example", 587, False)
    assert "from-the-env" not in repr(SmtpConfig.from_settings(settings))


def test_a_teacher_whose_ids_cannot_be_read_is_reported_and_the_others_are_sent(
    school: dict, monkeypatch, capsys
) -> None:
    from model.store.tables import StudentRef, User

    with session_scope(school["engine"]) as session:
        ana = session.scalar(sa.select(User.id).where(User.username == "ana"))
        session.execute(sa.update(StudentRef).where(StudentRef.user_id == ana).values(ref_key_id="gone-key"))
    mailbox = Mailbox()
    with smtp_server(mailbox) as port:
        _smtp_env(monkeypatch, port)
        assert _run() == 1
    captured = capsys.readouterr()
    assert "sent 1 of 2 digest(s)" in captured.out
    assert "not sent to ana: student ids not readable (DecryptionError)" in captured.err
    assert sorted(_by_recipient(mailbox)) == [BEN]


def test_each_teacher_reads_the_digest_in_their_own_language(school: dict, monkeypatch) -> None:
    """Ben chose Portuguese on his profile, Ana chose nothing: his digest is Portuguese, hers English, in one run
    (and the run itself, the command line's, stays English)."""
    from model.accounts.profile import set_language
    from model.store.tables import User

    with session_scope(school["engine"]) as session:
        ben = session.scalar(sa.select(User.id).where(User.username == "ben"))
        set_language(session, ben, "pt_PT")
    mailbox = Mailbox()
    with smtp_server(mailbox) as port:
        _smtp_env(monkeypatch, port)
        assert _run() == 0
    messages = _by_recipient(mailbox)
    ben_body, ana_body = messages[BEN].get_content(), messages[ANA].get_content()
    assert messages[BEN]["Subject"] == "mathsight: 1 dos seus alunos precisa de atenção (semana de 20/11/2026)"
    assert f"- {X}: Risco alto (P(aprovação) 10%) e nenhuma intervenção planeada" in ben_body
    assert "Abrir a página Precisa de atenção do mathsight para ver os pormenores." in ben_body
    assert not english_words(ben_body.replace(X, ""))
    assert messages[ANA]["Subject"] == "mathsight: 2 of your students need attention (week of 2026-11-20)"
    assert f"- {A}: High risk (P(pass) 35%) and no intervention planned" in ana_body
    assert "Open mathsight's Needs attention page for the details." in ana_body
