"""The dashboard process's own counters: page runs by outcome, served to a Prometheus holding the token."""

from __future__ import annotations

import pytest
from prometheus_client.parser import text_string_to_metric_families
from starlette.applications import Starlette
from starlette.testclient import TestClient

from dashboard import metrics
from model.settings import get_settings
from tests.dashboard.conftest import Account, page_test

TOKEN = "dashboard-metrics-token-0123456789"


def _views(text: str) -> dict[tuple[str, str], float]:
    return {(s.labels["page"], s.labels["outcome"]): s.value for family in text_string_to_metric_families(text)
            for s in family.samples if s.name == "mathsight_dashboard_page_views_total"}  # fmt: skip


def test_page_runs_are_counted_and_served_only_with_the_token(
    teacher_account: Account, admin_account: Account, monkeypatch: pytest.MonkeyPatch
) -> None:
    client = TestClient(Starlette(routes=metrics.routes()))
    assert client.get("/" + metrics.METRICS_PATH).status_code == 404  # no token configured: no route
    monkeypatch.setenv("MATHSIGHT_DASHBOARD_METRICS_TOKEN", TOKEN)
    get_settings.cache_clear()
    assert client.get("/" + metrics.METRICS_PATH, headers={"Authorization": "Bearer wrong"}).status_code == 401
    auth = {"Authorization": f"Bearer {TOKEN}"}
    before = _views(client.get("/" + metrics.METRICS_PATH, headers=auth).text)
    page_test("monitoring.py", teacher_account.user).run()
    page_test("alerts.py", admin_account.user).run()
    after = _views(client.get("/" + metrics.METRICS_PATH, headers=auth).text)
    assert after[("monitoring", "refused")] - before.get(("monitoring", "refused"), 0) == 1
    assert after[("alerts", "shown")] - before.get(("alerts", "shown"), 0) == 1
