"""Prometheus across workers: a real uvicorn with two workers in multiprocess mode, scraped and checked by
promtool, and the rules in deploy/prometheus/ checked and unit-tested by promtool.

promtool comes from Debian's ``prometheus`` package (``make test`` installs it as it installs Chromium);
without it these tests skip, except in CI (``CI=true`` or ``REQUIRE_POSTGRES=1``) where they fail.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.api.conftest import LiveServer, running_server

ROOT = Path(__file__).resolve().parents[2]
RULES = ROOT / "deploy" / "prometheus"
REQUIRED = os.environ.get("CI") == "true" or os.environ.get("REQUIRE_POSTGRES") == "1"
BATCH, MAX_REQUESTS = 40, 800


@pytest.fixture(scope="module")
def promtool() -> str:
    found = shutil.which("promtool") or ("/usr/bin/promtool" if Path("/usr/bin/promtool").is_file() else None)
    if found is None:
        if REQUIRED:
            pytest.fail("promtool is required in CI (apt-get install prometheus, or `make test`)")
        pytest.skip("promtool missing (apt-get install prometheus)")
    return found


def _promtool(promtool: str, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([promtool, *args], cwd=RULES, input=stdin, capture_output=True, text=True, timeout=120)


def test_rules_and_config_pass_promtool(promtool: str) -> None:
    checked = _promtool(promtool, "check", "rules", "rules.yml")
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "SUCCESS: 8 rules found" in checked.stdout
    tested = _promtool(promtool, "test", "rules", "rules_test.yml")
    assert tested.returncode == 0, tested.stdout + tested.stderr
    config = _promtool(promtool, "check", "config", "--syntax-only", "prometheus.yml")
    assert config.returncode == 0, config.stdout + config.stderr


@pytest.fixture(scope="module")
def two_workers(tmp_path_factory: pytest.TempPathFactory, _template_sqlite: Path) -> Iterator[tuple[LiveServer, Path]]:
    home = tmp_path_factory.mktemp("workers")
    multiproc = home / "prometheus"
    multiproc.mkdir()
    env = {"PROMETHEUS_MULTIPROC_DIR": str(multiproc), "MATHSIGHT_API_RATE_LIMIT": "100000"}
    with running_server(home, _template_sqlite, workers=2, **env) as server:
        yield server, multiproc


def _workers_counted(multiproc: Path) -> set[str]:
    return {m.group(1) for f in multiproc.glob("counter_*.db") if (m := re.match(r"counter_(\d+)\.db", f.name))}


def _schema_requests(text: str) -> float:
    return sum(
        s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if s.name == "mathsight_api_requests_total" and s.labels["route"] == "/v1/schema"
    )


def test_one_scrape_sees_both_workers_and_passes_promtool_check_metrics(
    two_workers: tuple[LiveServer, Path], promtool: str
) -> None:
    server, multiproc = two_workers
    headers = {"X-API-Key": server.keys.predict}

    def one(_: int) -> int:
        return httpx.get(f"{server.url}/v1/schema", headers=headers, timeout=30).status_code

    sent = 0
    with ThreadPoolExecutor(8) as pool:  # new connections, concurrently: the kernel hands them to both workers
        while len(_workers_counted(multiproc)) < 2 and sent < MAX_REQUESTS:
            assert set(pool.map(one, range(BATCH))) == {200}
            sent += BATCH
    assert len(_workers_counted(multiproc)) == 2, "both workers should have served requests"
    admin = {"Authorization": f"Bearer {server.keys.admin}"}
    scrapes = [httpx.get(f"{server.url}/metrics", headers=admin, timeout=30) for _ in range(6)]
    assert {r.status_code for r in scrapes} == {200}
    assert [_schema_requests(r.text) for r in scrapes] == [sent] * 6  # whichever worker answers: every request
    text = scrapes[-1].text
    assert "mathsight_api_request_duration_seconds_bucket" in text and 'le="0.005"' in text
    assert "mathsight_expected_accuracy" in text and "mathsight_model_version_info" in text
    linted = _promtool(promtool, "check", "metrics", stdin=text)
    assert linted.returncode == 0, linted.stdout + linted.stderr


def test_the_grafana_dashboard_uses_only_series_the_rules_or_the_apps_define() -> None:
    import json

    dashboard = json.loads((RULES / "grafana-dashboard.json").read_text("utf-8"))
    rules = (RULES / "rules.yml").read_text("utf-8")
    recorded = set(re.findall(r"record: (\S+)", rules))
    exported = {"mathsight_expected_accuracy", "mathsight_protocol_accuracy", "mathsight_open_alerts",
                "mathsight_dashboard_page_views_total"}  # fmt: skip
    for panel in dashboard["panels"]:
        for target in panel["targets"]:
            names = set(re.findall(r"(mathsight[:_][a-z0-9_:]+)", target["expr"]))
            assert names and names <= recorded | exported, (panel["title"], names)
