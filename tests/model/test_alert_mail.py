"""Alerts by e-mail to the admins, against a real SMTP server (aiosmtpd on 127.0.0.1): once per episode."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pandas as pd
import pytest
import sqlalchemy as sa

from model.accounts.users import create_user
from model.monitoring import alerts
from model.settings import Settings
from model.store import db
from tests.model.test_alerts import NOW
from tests.model.test_digest import Mailbox, smtp_server
from tests.model.test_drift import log_students, shifted

PAGE = "https://mathsight.school.example/alerts"
SENDER = "mathsight@school.example"
PASSWORD = "Correct-Horse-Battery-9"


@pytest.fixture
def engine(models_db_url: str) -> Iterator[sa.Engine]:
    engine = db.get_engine(models_db_url)
    with db.session_scope(engine) as session:
        create_user(session, "ada", PASSWORD, role="admin", email="ada@school.example", actor="pytest")
        create_user(session, "bob", PASSWORD, role="admin", email="bob@school.example", actor="pytest")
        create_user(session, "tess", PASSWORD, role="teacher", email="tess@school.example", actor="pytest")
        create_user(session, "noaddr", PASSWORD, role="admin", actor="pytest")
    yield engine
    db.dispose_engines()


def _evaluate(engine: sa.Engine, port: int, minutes: int = 0) -> list[alerts.Firing]:
    settings = Settings(smtp_host="127.0.0.1", smtp_port=port, smtp_from=SENDER, smtp_starttls=False,
                        alert_page_url=PAGE)  # fmt: skip
    with db.session_scope(engine) as session:
        return alerts.evaluate_alerts(session, settings, NOW + timedelta(minutes=minutes))


def test_an_alert_episode_is_mailed_once_to_the_admins_with_the_page_link(
    engine: sa.Engine, raw_df: pd.DataFrame
) -> None:
    log_students(engine, shifted(raw_df), at=NOW - timedelta(hours=1))
    mailbox = Mailbox()
    with smtp_server(mailbox) as port:
        assert [f.rule for f in _evaluate(engine, port)] == ["max_psi"]
        assert [f.rule for f in _evaluate(engine, port, minutes=5)] == ["max_psi"]  # still open: no second mail
        assert len(mailbox.received) == 1
        recipients, message = mailbox.received[0]
        assert sorted(recipients) == ["ada@school.example", "bob@school.example"]  # admins with an address only
        body = message.get_content()
        assert message["From"] == SENDER and message["Subject"] == "mathsight: 1 new alert"
        assert "max_psi: input drift: 2 of 30 attributes drifted" in body and PAGE in body
        with db.session_scope(engine) as session:
            [alert] = alerts.open_alerts(session)
            alerts.acknowledge(session, alert.id, "ada", NOW + timedelta(minutes=6))
        _evaluate(engine, port, minutes=10)  # a new episode: mailed again
    assert len(mailbox.received) == 2


def test_a_mail_server_that_is_down_does_not_stop_the_check(engine: sa.Engine, raw_df: pd.DataFrame) -> None:
    log_students(engine, shifted(raw_df), at=NOW - timedelta(hours=1))
    with smtp_server(Mailbox()) as port:
        pass  # the server is gone: connection refused
    assert [f.rule for f in _evaluate(engine, port)] == ["max_psi"]
    with db.session_scope(engine) as session:
        assert [a.rule for a in alerts.open_alerts(session)] == ["max_psi"]  # recorded all the same
