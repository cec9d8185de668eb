"""Alert rules over the monitoring figures, their history in the ``alert`` table, and a webhook.

Rules and their thresholds (environment variables ``MATHSIGHT_ALERT_*``, see :class:`AlertRules`):
error rate, p95 latency, feedback rate (over the last ``window_days``), the largest PSI of any
attribute (over the last ``drift_days``), and, per active model version, realized pass/fail accuracy
below its protocol accuracy by more than ``accuracy_drop`` (over the last ``realized_days``). A rule
only judges a window holding at least its minimum number of rows.

:func:`evaluate_alerts` checks every rule, records each firing (one open alert per rule, its
``last_seen`` and value refreshed until an admin acknowledges it) and posts newly opened alerts to
the webhook when one is configured.
"""

from __future__ import annotations

import json
import logging
import urllib.request
from dataclasses import asdict, dataclass, field, fields
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from model.accounts.audit import audit
from model.errors import UserError
from model.monitoring import queries as monitoring
from model.monitoring.drift import drift_report
from model.settings import Settings, get_settings
from model.store import registry
from model.store.db import session_scope
from model.store.tables import Alert

logger = logging.getLogger("mathsight.alerts")


@dataclass(frozen=True)
class AlertRules:
    """Alert thresholds and windows: the ``alert_*`` fields of the settings (``MATHSIGHT_ALERT_<NAME>``)."""

    window_days: float
    min_rows: int
    error_rate: float
    p95_latency_ms: float
    feedback_rate: float
    drift_days: float
    min_drift_rows: int
    max_psi: float
    realized_days: float
    min_outcomes: int
    accuracy_drop: float
    webhook_url: str
    webhook_timeout: float

    @classmethod
    def configured(cls, settings: Settings | None = None, **overrides: Any) -> AlertRules:
        """The rules as configured, with ``overrides`` (by rule name) on top."""
        settings = settings or get_settings()
        return cls(**{f.name: getattr(settings, f"alert_{f.name}") for f in fields(cls)} | overrides)


@dataclass(frozen=True)
class Firing:
    """A rule whose value crossed its threshold."""

    rule: str
    value: float
    threshold: float
    message: str
    detail: dict[str, Any] = field(default_factory=dict)


def _operational(engine: Engine, window: monitoring.Window, rules: AlertRules) -> list[Firing]:
    errors = monitoring.error_summary(engine, window)
    if errors["total"] < rules.min_rows:
        return []
    firings = []
    rate = errors["error_rate"]
    if rate > rules.error_rate:
        message = f"{rate:.1%} of rows failed ({errors['failed']} of {errors['total']})"
        firings.append(Firing("error_rate", rate, rules.error_rate, message))
    p95 = monitoring.latency_summary(engine, window)["p95"]
    if p95 is not None and p95 > rules.p95_latency_ms:
        firings.append(Firing("p95_latency_ms", p95, rules.p95_latency_ms, f"p95 latency {p95:.0f} ms per row"))
    feedback = monitoring.feedback_summary(engine, window)
    if feedback["predictions"] >= rules.min_rows and feedback["rate"] > rules.feedback_rate:
        firings.append(Firing("feedback_rate", feedback["rate"], rules.feedback_rate,
                              f"{feedback['rate']:.1%} of predictions marked not useful"))  # fmt: skip
    return firings


def _drift(engine: Engine, now: datetime, rules: AlertRules) -> list[Firing]:
    report = drift_report(engine, monitoring.Window.last(rules.drift_days, now))
    if report is None or report.n_recent < rules.min_drift_rows or report.max_psi <= rules.max_psi:
        return []
    worst = max(report.attributes, key=lambda a: a.psi)
    drifted = sorted(a.attribute for a in report.attributes if a.psi > rules.max_psi)
    return [Firing("max_psi", worst.psi, rules.max_psi, f"input drift: PSI {worst.psi:.2f} on {worst.attribute}",
                   {"attribute": worst.attribute, "drifted": drifted, "version_id": report.version_id})]  # fmt: skip


def protocol_accuracy(metrics: dict[str, Any]) -> float | None:
    """The version's protocol pass/fail accuracy as a fraction (stored in percent), if scored."""
    value = (metrics.get("binary_accuracy") or {}).get("mean")
    return None if value is None else float(value) / 100


def _realized(engine: Engine, now: datetime, rules: AlertRules) -> list[Firing]:
    with session_scope(engine) as session:
        active = {v.id: v for v in registry.active_versions(session).values()}
    if not active:
        return []
    table = monitoring.realized_by_version(engine, monitoring.Window.last(rules.realized_days, now), list(active))
    firings = []
    for row in table.itertuples():
        version = active.get(row.model_version_id)
        expected = None if version is None else protocol_accuracy(version.metrics)
        if expected is None or row.n < rules.min_outcomes or expected - row.accuracy <= rules.accuracy_drop:
            continue
        firings.append(Firing(
            f"accuracy_drop:{version.setup}", expected - row.accuracy, rules.accuracy_drop,
            f"{version.setup}: realized accuracy {row.accuracy:.1%} on {row.n} students vs {expected:.1%} by protocol",
            {"version_id": version.id, "realized": row.accuracy, "protocol": expected, "n": int(row.n)},
        ))  # fmt: skip
    return firings


def check_rules(engine: Engine, now: datetime | None = None, rules: AlertRules | None = None) -> list[Firing]:
    """Every rule that fires at ``now`` (nothing is recorded)."""
    now = now or datetime.now(UTC)
    rules = rules or AlertRules.configured()
    window = monitoring.Window.last(rules.window_days, now)
    return [*_operational(engine, window, rules), *_drift(engine, now, rules), *_realized(engine, now, rules)]


def _record(session: Session, firing: Firing, now: datetime) -> Alert | None:
    """Refresh the open alert of the firing's rule, or open one; returns the alert when newly opened."""
    alert = session.scalars(
        sa.select(Alert).where(Alert.rule == firing.rule, Alert.acknowledged_at.is_(None)).order_by(Alert.id.desc())
    ).first()
    if alert is not None:
        alert.value, alert.threshold, alert.last_seen, alert.detail = (
            firing.value, firing.threshold, now, {"message": firing.message, **firing.detail},
        )  # fmt: skip
        return None
    alert = Alert(rule=firing.rule, value=firing.value, threshold=firing.threshold, first_seen=now, last_seen=now,
                  detail={"message": firing.message, **firing.detail})  # fmt: skip
    session.add(alert)
    return alert


def evaluate_alerts(engine: Engine, now: datetime | None = None, rules: AlertRules | None = None) -> list[Firing]:
    """Check every rule, record the firings in the ``alert`` table, notify the webhook of new ones."""
    now = now or datetime.now(UTC)
    rules = rules or AlertRules.configured()
    firings = check_rules(engine, now, rules)
    with session_scope(engine) as session:
        opened = [f for f in firings if _record(session, f, now) is not None]
    if opened and rules.webhook_url:
        notify_webhook(rules.webhook_url, opened, timeout=rules.webhook_timeout)
    return firings


def notify_webhook(url: str, firings: list[Firing], timeout: float = 5.0) -> bool:
    """POST the firings as JSON to ``url``; False (and a log line) when the endpoint fails."""
    body = json.dumps({"source": "mathsight", "alerts": [asdict(f) for f in firings]}, default=str).encode("utf-8")
    if not url.startswith(("http://", "https://")):
        raise ValueError(f"alert webhook URL must be http(s), got {url!r}")
    headers = {"Content-Type": "application/json"}
    request = urllib.request.Request(url, data=body, method="POST", headers=headers)  # noqa: S310 (scheme checked)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310 (scheme checked)
            return 200 <= response.status < 300
    except OSError as error:
        logger.warning("alert webhook failed: %s", error)
        return False


def open_alerts(session: Session) -> list[Alert]:
    """Alerts not yet acknowledged, most recently seen first."""
    query = sa.select(Alert).where(Alert.acknowledged_at.is_(None)).order_by(Alert.last_seen.desc(), Alert.id.desc())
    return list(session.scalars(query))


def alert_history(session: Session, days: float = 90.0, now: datetime | None = None) -> list[Alert]:
    """Alerts seen in the last ``days``, most recent first (acknowledged or not)."""
    since = (now or datetime.now(UTC)) - timedelta(days=days)
    query = sa.select(Alert).where(Alert.last_seen >= since).order_by(Alert.last_seen.desc(), Alert.id.desc())
    return list(session.scalars(query))


class AlertNotFound(UserError, LookupError):
    """No alert with that id."""


def acknowledge(session: Session, alert_id: int, by: str, now: datetime | None = None) -> Alert:
    """Mark an alert as seen by ``by``; the rule opens a new alert if it fires again."""
    alert = session.get(Alert, alert_id)
    if alert is None:
        raise AlertNotFound(f"no alert with id {alert_id}")
    if alert.acknowledged_at is None:
        alert.acknowledged_by, alert.acknowledged_at = by, now or datetime.now(UTC)
        audit(session, "alert.acknowledge", by, alert_id=alert_id, rule=alert.rule)
    return alert
