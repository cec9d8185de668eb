"""Prometheus metrics of the API, one scrape for every worker.

The API runs several worker processes (``uvicorn --workers ${API_WORKERS:-2}``). With
``PROMETHEUS_MULTIPROC_DIR`` set (the Procfile sets it and empties it before the workers start),
prometheus-client's multiprocess mode keeps each worker's counters and histograms in memory-mapped
files in that directory, and ``/metrics`` on any worker adds up the files of all of them
(``MultiProcessCollector``): one scrape sees every worker. Without it (one process: tests, ``make api``)
the metrics live in the app's own registry, so several apps in one process never share counters.

Latency is a histogram with buckets from 5 ms to 30 s (``LATENCY_BUCKETS``): a single prediction is
milliseconds, a batch of a school's students seconds.
"""

from __future__ import annotations

import logging
import os
from collections import Counter as Counter_
from collections.abc import Iterator

import pandas as pd
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest, multiprocess
from prometheus_client.core import GaugeMetricFamily, InfoMetricFamily, Metric
from prometheus_client.registry import Collector

from model.monitoring.alerts import open_alerts, protocol_accuracy
from model.monitoring.expected import cbpe_sums, expected_metrics, expected_sums
from model.monitoring.queries import Window
from model.serving.service import ModelStore
from model.store import registry
from model.store.db import session_scope

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
log = logging.getLogger(__name__)
MULTIPROC_DIR = "PROMETHEUS_MULTIPROC_DIR"


def multiprocess_dir() -> str | None:
    """The multiprocess directory when the API runs in multiprocess mode (set before the workers start)."""
    return os.environ.get(MULTIPROC_DIR) or None


class ModelVersionCollector(Collector):
    """``mathsight_model_version_info{setup, version}``: the version each setup serves right now."""

    def __init__(self, store: ModelStore) -> None:
        self.store = store

    def collect(self) -> Iterator[Metric]:
        family = InfoMetricFamily("mathsight_model_version", "Active model version per setup", labels=["setup"])
        try:
            active = self.store.active()
        except Exception:  # a scrape must not fail because the database is down; /healthz says so
            log.warning("model versions unavailable for /metrics", exc_info=True)
            active = {}
        for setup, model in sorted(active.items()):
            family.add_metric([setup], {"version": model.version_id})
        yield family


class MonitoringCollector(Collector):
    """What the monitoring core judges, for Prometheus's alert rules (read from the database per scrape):

    * ``mathsight_expected_accuracy{setup, version}``: CBPE expected pass/fail accuracy of the active
      version over the last ``MATHSIGHT_ALERT_EXPECTED_DAYS`` (one SQL aggregation), and
      ``mathsight_protocol_accuracy{setup, version}``, the version's accuracy by the protocol;
    * ``mathsight_open_alerts{rule}``: the alerts the monitoring check opened and nobody acknowledged
      (the drift alert is ``rule="max_psi"``).
    """

    def __init__(self, store: ModelStore) -> None:
        self.store = store

    def collect(self) -> Iterator[Metric]:
        expected = GaugeMetricFamily("mathsight_expected_accuracy", "CBPE expected pass/fail accuracy of the "
                                     "active version (no outcomes needed)", labels=["setup", "version"])  # fmt: skip
        protocol = GaugeMetricFamily("mathsight_protocol_accuracy", "Pass/fail accuracy of the active version by "
                                     "the evaluation protocol", labels=["setup", "version"])  # fmt: skip
        alerts = GaugeMetricFamily("mathsight_open_alerts", "Open (unacknowledged) monitoring alerts by rule",
                                   labels=["rule"])  # fmt: skip
        try:
            with session_scope(self.store.engine) as session:
                settings = self.store.settings
                window = Window.last(settings.alert_expected_days)
                active = {v.id: v for v in registry.active_versions(session).values()}
                sums = session.execute(expected_sums(window, list(active))).mappings().all() if active else []
                for row in sums:
                    version = active[row["model_version_id"]]
                    expected.add_metric(
                        [version.setup, version.id], float(expected_metrics(cbpe_sums(row))["accuracy"] or 0)
                    )
                for version in active.values():
                    value = protocol_accuracy(version.metrics)
                    if value is not None:
                        protocol.add_metric([version.setup, version.id], value)
                rules = Counter_(alert.rule for alert in open_alerts(session))
                for rule, n in sorted(rules.items()):
                    alerts.add_metric([rule], n)
        except Exception:  # a scrape must not fail because the database is down; /healthz says so
            log.warning("monitoring figures unavailable for /metrics", exc_info=True)
        yield from (expected, protocol, alerts)


class ApiMetrics:
    """Request counts by route and status, latency per route, predictions by setup and risk."""

    def __init__(self, store: ModelStore) -> None:
        self.store = store
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "mathsight_api_requests", "API requests by route, method and status", ["route", "method", "status"],
            registry=self.registry,
        )  # fmt: skip
        self.latency = Histogram(
            "mathsight_api_request_duration_seconds", "API request latency by route", ["route"],
            buckets=LATENCY_BUCKETS, registry=self.registry,
        )  # fmt: skip
        self.predictions = Counter(
            "mathsight_api_predictions", "Students predicted through the API by setup and risk", ["setup", "risk"],
            registry=self.registry,
        )  # fmt: skip
        self.registry.register(ModelVersionCollector(store))
        self.registry.register(MonitoringCollector(store))

    def observe_request(self, route: str, method: str, status: int, seconds: float) -> None:
        """Count one finished request and its latency."""
        self.requests.labels(route, method, str(status)).inc()
        self.latency.labels(route).observe(seconds)

    def count_predictions(self, results: pd.DataFrame) -> None:
        """Count predicted students by setup and risk (``Prediction.results``)."""
        if results.empty:
            return
        for (setup, risk), n in results.groupby(["setup", "risk"]).size().items():
            self.predictions.labels(str(setup), str(risk)).inc(int(n))

    def exposition(self) -> bytes:
        """The text exposition format of every metric: of all workers in multiprocess mode."""
        directory = multiprocess_dir()
        if directory is None:
            return generate_latest(self.registry)
        combined = CollectorRegistry()
        multiprocess.MultiProcessCollector(combined, path=directory)
        combined.register(ModelVersionCollector(self.store))
        combined.register(MonitoringCollector(self.store))
        return generate_latest(combined)
