"""Prometheus metrics of one API app, in its own registry (so several apps never share counters).

Each worker process counts its own requests; scrape every worker, or run one.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pandas as pd
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import InfoMetricFamily, Metric
from prometheus_client.registry import Collector

from model.serving.service import ModelStore

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
log = logging.getLogger(__name__)


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


class ApiMetrics:
    """Request counts by route and status, latency per route, predictions by setup and risk."""

    def __init__(self, store: ModelStore) -> None:
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
        """The text exposition format of every metric."""
        return generate_latest(self.registry)
