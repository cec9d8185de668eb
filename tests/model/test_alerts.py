"""Alert rules: an injected shift fires, firings are kept per rule until acknowledged, webhook, cron exit code."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import pandas as pd
import pytest
import sqlalchemy as sa

from model.monitoring import alerts
from model.monitoring.drift import drift_report
from model.monitoring.queries import Window
from model.serving.predlog.writer import write_log
from model.settings import Settings, get_settings
from model.store import db
from model.store.tables import Alert, Feedback, ModelVersion, Outcome, PredictionLog
from tests.model.test_drift import log_students, report_of, shifted

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def engine(models_db_url: str) -> Iterator[sa.Engine]:
    yield db.get_engine(models_db_url)
    db.dispose_engines()


def evaluate(engine: sa.Engine, now: datetime = NOW, **settings: object) -> list[alerts.Firing]:
    """``evaluate_alerts`` as a front calls it: one transaction, settings with ``settings`` on top."""
    with db.session_scope(engine) as session:
        return alerts.evaluate_alerts(session, Settings(**settings), now)


def check(engine: sa.Engine, now: datetime = NOW, **settings: object) -> list[alerts.Firing]:
    with db.session_scope(engine) as session:
        return alerts.check_rules(session, Settings(**settings), now)


def test_the_real_data_fires_nothing(engine: sa.Engine, raw_df: pd.DataFrame) -> None:
    log_students(engine, raw_df)
    assert evaluate(engine) == []


def test_an_injected_shift_fires_the_drift_rule_and_is_recorded(engine: sa.Engine, raw_df: pd.DataFrame) -> None:
    log_students(engine, shifted(raw_df))
    fired = evaluate(engine)
    assert [f.rule for f in fired] == ["max_psi"]
    assert fired[0].value > 0.25 and fired[0].detail["attribute"] == "absences"
    assert "Mjob" in fired[0].detail["drifted"]
    with db.session_scope(engine) as session:
        [alert] = alerts.open_alerts(session)
        assert (alert.rule, alert.first_seen, alert.last_seen) == ("max_psi", NOW, NOW)


def test_a_firing_rule_keeps_one_open_alert_until_acknowledged(engine: sa.Engine, raw_df: pd.DataFrame) -> None:
    log_students(engine, shifted(raw_df))
    evaluate(engine)
    later = NOW + timedelta(minutes=30)
    evaluate(engine, later)
    with db.session_scope(engine) as session:
        [alert] = session.scalars(sa.select(Alert)).all()
        assert (alert.first_seen, alert.last_seen) == (NOW, later)
        alerts.acknowledge(session, alert.id, by="head")
    with db.session_scope(engine) as session:
        assert alerts.open_alerts(session) == []
        with pytest.raises(alerts.AlertNotFound):
            alerts.acknowledge(session, 999, by="head")
    evaluate(engine, later + timedelta(minutes=30))
    with db.session_scope(engine) as session:
        history = alerts.alert_history(session, now=later)
        assert [a.acknowledged_by for a in history] == [None, "head"]


def test_the_drift_alert_fires_exactly_when_the_drift_report_says_act(engine: sa.Engine, raw_df: pd.DataFrame) -> None:
    log_students(engine, shifted(raw_df))
    window = Window.last(Settings().alert_drift_days, NOW)
    worst = max(report_of(engine, window).attributes, key=lambda a: a.psi)
    for act, fires in ((worst.psi, True), (worst.psi + 0.01, False)):
        with db.session_scope(engine) as session:
            report = drift_report(session, Settings(alert_max_psi=act), window)
        assert (worst.attribute in {a.attribute for a in report.to_act_on}) is fires
        assert report.get(worst.attribute).status == ("act" if fires else "watch")
        assert [f.rule for f in check(engine, alert_max_psi=act)] == (["max_psi"] if fires else [])


def test_error_rate_latency_and_feedback_rules(engine: sa.Engine, raw_df: pd.DataFrame) -> None:
    log_students(engine, raw_df.iloc[:60])
    write_log(engine, get_settings(), [{"request_id": uuid.uuid4().hex, "channel": "api",
                                        "created_at": NOW - timedelta(hours=2), "status": "rejected",
                                        "error_type": "validation", "latency_ms": 5000.0, "is_demo": False}
                                       for _ in range(10)])  # fmt: skip
    fired = {f.rule: f for f in check(engine, alert_p95_latency_ms=1000)}
    assert set(fired) == {"error_rate", "p95_latency_ms"}
    assert fired["error_rate"].value == pytest.approx(10 / 70)
    assert check(engine, alert_min_rows=100, alert_max_psi=9) == []  # too few rows to judge


@pytest.mark.parametrize(
    ("given", "fires"),
    [
        ({"not_useful": 4, "wrongly_flagged": 3}, True),  # 7 of 60 negative: above 10%
        ({"not_useful": 4, "wrongly_flagged": 1, "useful": 10, "already_handled": 5, "not_applicable": 5}, False),
    ],
)
def test_the_feedback_rule_counts_not_useful_and_wrongly_flagged_only(
    engine: sa.Engine, raw_df: pd.DataFrame, given: dict[str, int], fires: bool
) -> None:
    log_students(engine, raw_df.iloc[:60])
    with engine.begin() as connection:
        ids = iter(connection.execute(sa.select(PredictionLog.id)).scalars().all())
        rows = [{"prediction_id": next(ids), "category": c} for c, n in given.items() for _ in range(n)]
        connection.execute(sa.insert(Feedback), rows)
    fired = {f.rule: f for f in check(engine, alert_max_psi=9)}
    assert ("feedback_rate" in fired) is fires
    if fires:
        assert fired["feedback_rate"].value == pytest.approx(7 / 60)
        assert fired["feedback_rate"].message == "11.7% of predictions marked not useful or wrongly flagged"


def test_realized_accuracy_below_the_protocol_fires(engine: sa.Engine, raw_df: pd.DataFrame) -> None:
    students = raw_df.iloc[:50]
    with db.session_scope(engine) as session:
        version = session.scalars(sa.select(ModelVersion).where(ModelVersion.setup == "early")).one()
        version.metrics = {"binary_accuracy": {"mean": 95.0}}
        version_id = version.id
    rows = [{"request_id": uuid.uuid4().hex, "channel": "ui", "created_at": NOW - timedelta(days=3), "status": "ok",
             "setup": "early", "model_version_id": version_id, "student_key": f"s{i}", "predicted_g3": 15.0,
             "p_pass": 0.95, "is_demo": False} for i in range(len(students))]  # fmt: skip
    write_log(engine, get_settings(), rows)
    with engine.begin() as connection:
        connection.execute(sa.insert(Outcome), [{"student_key": f"s{i}", "g3": 5 if i % 2 else 15} for i in range(50)])
    fired = {f.rule: f for f in check(engine)}
    assert fired["accuracy_drop:early"].value == pytest.approx(0.95 - 0.5)
    assert fired["accuracy_drop:early"].detail["n"] == 50


class _Hook(BaseHTTPRequestHandler):
    received: list[dict] = []

    def do_POST(self) -> None:  # noqa: N802 (http.server's name)
        body = self.rfile.read(int(self.headers["Content-Length"]))
        _Hook.received.append(json.loads(body))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


def test_new_alerts_are_posted_to_the_webhook_once(engine: sa.Engine, raw_df: pd.DataFrame) -> None:
    server = HTTPServer(("127.0.0.1", 0), _Hook)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    _Hook.received.clear()
    try:
        url = f"http://127.0.0.1:{server.server_port}/hook"
        log_students(engine, shifted(raw_df))
        evaluate(engine, alert_webhook_url=url)
        evaluate(engine, NOW + timedelta(minutes=5), alert_webhook_url=url)  # still open: no repost
    finally:
        server.shutdown()
        server.server_close()
    assert len(_Hook.received) == 1
    assert _Hook.received[0]["alerts"][0]["rule"] == "max_psi"
    assert alerts.notify_webhook(url, [], timeout=1) is False  # the server is gone: logged, not raised
    with pytest.raises(ValueError, match="http"):
        alerts.notify_webhook("file:///etc/passwd", [])


def _monitor_check(url: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DATABASE_URL": url}
    return subprocess.run([sys.executable, "-m", "model", "monitor", "--check"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=300)  # fmt: skip


def test_monitor_check_exits_1_when_an_alert_fires(models_db_url: str, raw_df: pd.DataFrame) -> None:
    engine = db.get_engine(models_db_url)
    log_students(engine, raw_df, at=datetime.now(UTC) - timedelta(hours=1))
    clean = _monitor_check(models_db_url)
    assert clean.returncode == 0, clean.stderr
    assert "no alert" in clean.stdout
    log_students(engine, shifted(raw_df), at=datetime.now(UTC) - timedelta(minutes=10))
    log_students(engine, shifted(raw_df), at=datetime.now(UTC) - timedelta(minutes=5))
    fired = _monitor_check(models_db_url)
    assert fired.returncode == 1, fired.stderr
    assert "ALERT max_psi" in fired.stdout
