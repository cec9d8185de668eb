"""Alert rules over the monitoring figures, their history in the ``alert`` table, and a webhook.

The rules judge by the threshold table (:class:`~model.schema.thresholds.Thresholds`, the
``MATHSIGHT_ALERT_*`` settings): error rate, p95 latency, feedback rate (remarks "not useful" or
"wrongly flagged" per prediction; the other categories are not counted; over the last
``alert_window_days``), input drift (over the last ``alert_drift_days``: fires when an attribute's
drift status is 'act', the same verdict the drift page shows), and, per active model version,
realized pass/fail accuracy below its protocol accuracy by more than ``alert_accuracy_drop`` (over the
last ``alert_realized_days``). A rule only judges a window holding at least its minimum number of rows.

:func:`evaluate_alerts` checks every rule, records each firing in the caller's session (one open alert
per rule, its ``last_seen`` and value refreshed until an admin acknowledges it) and posts newly opened
alerts to the webhook when one is configured, and by e-mail to the active admins with an address over
the SMTP settings the digest uses (``MATHSIGHT_SMTP_*``), with a link to the Alerts page
(``MATHSIGHT_ALERT_PAGE_URL``): once per alert episode, since only a newly opened alert is sent.
"""

from __future__ import annotations

import json
import logging
import smtplib
import ssl
import urllib.request
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from model import i18n
from model.errors import UserError
from model.i18n import tr
from model.monitoring import queries as monitoring
from model.monitoring.drift import drift_report
from model.monitoring.expected import cbpe_sums, expected_metrics, expected_sums
from model.monitoring.fairness import gap_text, outcome_gaps
from model.schema.thresholds import Thresholds, setting
from model.serving.digest import SmtpConfig
from model.serving.digest import connect as smtp_connect
from model.settings import Settings
from model.store import registry
from model.store.audit import audit
from model.store.tables import Alert, User

logger = logging.getLogger("mathsight.alerts")
JUDGED_BY = ("alert_error_rate", "alert_p95_latency_ms", "alert_feedback_rate", "alert_min_rows", "drift_act_psi",
             "alert_min_drift_rows", "drift_large_rows", "drift_p_value", "alert_accuracy_drop", "alert_min_outcomes",
             "alert_expected_accuracy_drop", "alert_fairness_gap")  # fmt: skip


@dataclass(frozen=True)
class AlertRules:
    """What the rules judge by: the threshold table, the windows they look at (days), the webhook."""

    thresholds: Thresholds
    window_days: float
    drift_days: float
    realized_days: float
    expected_days: float
    webhook_url: str
    webhook_timeout: float

    @classmethod
    def from_settings(cls, settings: Settings) -> AlertRules:
        """The rules as configured (``MATHSIGHT_ALERT_*``)."""
        return cls(
            Thresholds.from_settings(settings), settings.alert_window_days, settings.alert_drift_days,
            settings.alert_realized_days, settings.alert_expected_days, settings.alert_webhook_url,
            settings.alert_webhook_timeout,
        )  # fmt: skip

    def described(self) -> dict[str, Any]:
        """Every setting of the rules (by its environment variable) and its value, but the webhook URL."""
        judged = {name: getattr(self.thresholds, name) for name in JUDGED_BY}
        windows = {
            "alert_window_days": self.window_days,
            "alert_drift_days": self.drift_days,
            "alert_realized_days": self.realized_days,
            "alert_expected_days": self.expected_days,
            "alert_webhook_timeout": self.webhook_timeout,
        }
        return {setting(name): value for name, value in (judged | windows).items()}


@dataclass(frozen=True)
class Firing:
    """A rule whose value crossed its threshold."""

    rule: str
    value: float
    threshold: float
    message: str
    detail: dict[str, Any] = field(default_factory=dict)


def _operational(session: Session, window: monitoring.Window, thresholds: Thresholds) -> list[Firing]:
    errors = monitoring.error_summary(session, window)
    if errors["total"] < thresholds.alert_min_rows:
        return []
    firings = []
    rate = errors["error_rate"]
    if rate > thresholds.alert_error_rate:
        counts = {"failed": int(errors["failed"]), "total": int(errors["total"])}
        message = alert_text("error_rate", rate, counts)
        firings.append(Firing("error_rate", rate, thresholds.alert_error_rate, message, counts))
    p95 = monitoring.latency_summary(session, window)["p95"]
    if p95 is not None and p95 > thresholds.alert_p95_latency_ms:
        message = alert_text("p95_latency_ms", p95, {})
        firings.append(Firing("p95_latency_ms", p95, thresholds.alert_p95_latency_ms, message))
    feedback = monitoring.feedback_summary(session, window)
    if feedback["predictions"] >= thresholds.alert_min_rows and feedback["rate"] > thresholds.alert_feedback_rate:
        message = alert_text("feedback_rate", feedback["rate"], {})
        firings.append(Firing("feedback_rate", feedback["rate"], thresholds.alert_feedback_rate, message))
    return firings


def _drift(session: Session, settings: Settings, now: datetime, rules: AlertRules) -> list[Firing]:
    """Fires when the drift report's one verdict is 'drifted' for an attribute (what the page shows)."""
    report = drift_report(session, settings, monitoring.Window.last(rules.drift_days, now))
    if report is None or report.too_few_rows or not report.drifted:
        return []
    worst = max(report.drifted, key=lambda a: a.psi)
    drifted = sorted(a.attribute for a in report.drifted)
    detail = {"attribute": worst.attribute, "drifted": drifted, "version_id": report.version_id,
              "attributes": len(report.attributes)}  # fmt: skip
    return [Firing("max_psi", worst.psi, report.thresholds.drift_act_psi, alert_text("max_psi", worst.psi, detail),
                   detail)]  # fmt: skip


def protocol_accuracy(metrics: dict[str, Any]) -> float | None:
    """The version's protocol pass/fail accuracy as a fraction (stored in percent), if scored."""
    value = (metrics.get("binary_accuracy") or {}).get("mean")
    return None if value is None else float(value) / 100


def _realized(session: Session, now: datetime, rules: AlertRules) -> list[Firing]:
    active = {v.id: v for v in registry.active_versions(session).values()}
    if not active:
        return []
    table = monitoring.realized_by_version(session, monitoring.Window.last(rules.realized_days, now), list(active))
    drop, min_outcomes = rules.thresholds.alert_accuracy_drop, rules.thresholds.alert_min_outcomes
    firings = []
    for row in table.itertuples():
        version = active.get(row.model_version_id)
        expected = None if version is None else protocol_accuracy(version.metrics)
        if expected is None or row.n < min_outcomes or expected - row.accuracy <= drop:
            continue
        rule = f"accuracy_drop:{version.setup}"
        detail = {"version_id": version.id, "realized": row.accuracy, "protocol": expected, "n": int(row.n)}
        firings.append(Firing(rule, expected - row.accuracy, drop, alert_text(rule, expected - row.accuracy, detail),
                              detail))  # fmt: skip
    return firings


def _expected(session: Session, now: datetime, rules: AlertRules) -> list[Firing]:
    """Per active version: CBPE expected accuracy over the last ``expected_days`` (at least ``alert_min_rows``
    predictions) below its protocol accuracy by more than ``alert_expected_accuracy_drop``."""
    active = {v.id: v for v in registry.active_versions(session).values()}
    if not active:
        return []
    window = monitoring.Window.last(rules.expected_days, now)
    sums = monitoring._frame(session, expected_sums(window, list(active)))
    drop = rules.thresholds.alert_expected_accuracy_drop
    firings = []
    for row in sums.to_dict("records"):
        version = active[row["model_version_id"]]
        protocol = protocol_accuracy(version.metrics)
        figures = expected_metrics(cbpe_sums(row))
        estimate = figures["accuracy"]
        if protocol is None or estimate is None or row["n"] < rules.thresholds.alert_min_rows:
            continue
        if protocol - estimate <= drop:
            continue
        rule = f"expected_accuracy_drop:{version.setup}"
        detail = {"version_id": version.id, "expected": estimate, "protocol": protocol, "n": int(row["n"]),
                  "interval": [figures["accuracy_low"], figures["accuracy_high"]]}  # fmt: skip
        firings.append(Firing(rule, protocol - estimate, drop, alert_text(rule, protocol - estimate, detail),
                              detail))  # fmt: skip
    return firings


def _fairness(session: Session, settings: Settings, now: datetime, rules: AlertRules) -> list[Firing]:
    """Per subgroup attribute and rate (FNR, FPR) over the last ``realized_days``: a gap between subgroups
    holding at least ``alert_min_outcomes`` outcomes each above ``alert_fairness_gap``."""
    found = outcome_gaps(session, settings, monitoring.Window.last(rules.realized_days, now))
    limit = rules.thresholds.alert_fairness_gap
    return [
        Firing(
            f"fairness_gap:{g.attribute}:{g.rate}",
            g.gap,
            limit,
            gap_text(g.attribute, g.rate, g.gap, g.high_group, g.low_group, g.n_high, g.n_low, g.low, g.high),
            {
                "attribute": g.attribute,
                "rate": g.rate,
                "groups": [g.high_group, g.low_group],
                "n": [g.n_high, g.n_low],
                "interval": [g.low, g.high],
            },
        )  # fmt: skip
        for g in found
        if g.gap > limit
    ]


def check_rules(session: Session, settings: Settings, now: datetime | None = None) -> list[Firing]:
    """Every rule that fires at ``now`` under the configured rules (nothing is recorded).

    The messages are in English whoever asks (they are stored, posted and mailed): a page shows an alert
    in its reader's language with :func:`alert_text`."""
    now = now or datetime.now(UTC)
    rules = AlertRules.from_settings(settings)
    window = monitoring.Window.last(rules.window_days, now)
    with i18n.use_language(i18n.ENGLISH):
        return [
            *_operational(session, window, rules.thresholds),
            *_drift(session, settings, now, rules),
            *_realized(session, now, rules),
            *_expected(session, now, rules),
            *_fairness(session, settings, now, rules),
        ]


def alert_text(rule: str, value: float | None, detail: dict[str, Any] | None) -> str:
    """An alert's message in this context's language, rebuilt from its rule, value and detail (the stored
    row keeps the English message and the figures); the stored message when a figure is missing."""
    kind, _, scope = rule.partition(":")
    found = detail or {}
    try:
        share = float(value)  # type: ignore[arg-type]
        if kind == "error_rate":
            return tr("{rate} of rows failed ({failed} of {total})", rate=i18n.percent(share, 1),
                      failed=found["failed"], total=found["total"])  # fmt: skip
        if kind == "p95_latency_ms":
            return tr("p95 latency {milliseconds} ms per row", milliseconds=i18n.number(share, 0))
        if kind == "feedback_rate":
            return tr("{rate} of predictions marked not useful or wrongly flagged", rate=i18n.percent(share, 1))
        if kind == "max_psi":
            summary = tr("{drifted} of {count} attributes drifted", drifted=len(found["drifted"]),
                         count=found["attributes"])  # fmt: skip
            return tr("input drift: {summary}; PSI {psi} on {attribute}", summary=summary, psi=i18n.number(share, 2),
                      attribute=found["attribute"])  # fmt: skip
        if kind == "accuracy_drop":
            return tr("{setup}: realized accuracy {realized} on {count} students vs {protocol} by protocol",
                      setup=scope, realized=i18n.percent(found["realized"], 1), count=found["n"],
                      protocol=i18n.percent(found["protocol"], 1))  # fmt: skip
        if kind == "expected_accuracy_drop":
            low, high = found["interval"]
            return tr("{setup}: expected accuracy {expected} ({low}–{high}) on {count} predictions vs {protocol} by "
                      "protocol", setup=scope, expected=i18n.percent(found["expected"], 1),
                      low=i18n.percent(low, 1), high=i18n.percent(high, 1), count=found["n"],
                      protocol=i18n.percent(found["protocol"], 1))  # fmt: skip
        if kind == "fairness_gap":
            (high_group, low_group), (n_high, n_low) = found["groups"], found["n"]
            low, high = found.get("interval") or (None, None)
            return gap_text(found["attribute"], found["rate"], share, high_group, low_group, n_high, n_low, low, high)
    except (KeyError, TypeError, ValueError):
        pass
    return str(found.get("message", ""))


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


def evaluate_alerts(session: Session, settings: Settings, now: datetime | None = None) -> list[Firing]:
    """Check every rule, record the firings in the ``alert`` table, notify the webhook of new ones.

    The firings are written in the caller's session (its transaction commits them); the webhook is
    posted once they are written.
    """
    now = now or datetime.now(UTC)
    firings = check_rules(session, settings, now)
    opened = [f for f in firings if _record(session, f, now) is not None]
    session.flush()
    rules = AlertRules.from_settings(settings)
    if opened and rules.webhook_url:
        notify_webhook(rules.webhook_url, opened, timeout=rules.webhook_timeout)
    if opened and settings.smtp_host:
        notify_admins(session, settings, opened, now)
    return firings


def admin_addresses(session: Session) -> list[str]:
    """The e-mail addresses of the active admins who have one."""
    query = sa.select(User.email).where(User.role == "admin", User.active.is_(True), User.email.is_not(None))
    return sorted({address for address in session.scalars(query) if address})


def alert_message(firings: list[Firing], sender: str, recipients: list[str], page_url: str,
                  now: datetime) -> EmailMessage:  # fmt: skip
    """One message for the alerts opened by one check: each rule and what it saw, and the page's link."""
    message = EmailMessage()
    message["Subject"] = f"mathsight: {len(firings)} new alert{'s' if len(firings) != 1 else ''}"
    message["From"], message["To"] = sender, ", ".join(recipients)
    message["Date"], message["Message-ID"] = formatdate(now.timestamp(), usegmt=True), make_msgid(domain="mathsight")
    lines = ["New alerts opened by the monitoring check:", ""]
    lines += [f"- {f.rule}: {f.message} (threshold {f.threshold:g})" for f in firings]
    lines += ["", f"See and acknowledge them on the Alerts page: {page_url}", "",
              "You get one message per alert episode: an alert is mailed when it opens, not again while it stays "
              "open; once acknowledged, the rule firing again opens (and mails) a new one."]  # fmt: skip
    message.set_content("\n".join(lines) + "\n")
    return message


def notify_admins(session: Session, settings: Settings, firings: list[Firing], now: datetime) -> bool:
    """Mail newly opened alerts to the active admins over the shared SMTP settings (``MATHSIGHT_SMTP_*``);
    False (and a log line with no address) when there is no admin address or the server fails."""
    recipients = admin_addresses(session)
    if not recipients:
        logger.warning("alert mail: no active admin has an e-mail address")
        return False
    config = SmtpConfig.from_settings(settings)
    message = alert_message(firings, config.sender, recipients, settings.alert_page_url, now)
    try:
        client = smtp_connect(config)
        try:
            client.send_message(message)
        finally:
            client.quit()
    except (smtplib.SMTPException, OSError, ssl.SSLError) as error:
        logger.warning("alert mail failed: %s", type(error).__name__)
        return False
    logger.info("alert mail: %d alert(s) sent to %d admin(s)", len(firings), len(recipients))
    return True


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
