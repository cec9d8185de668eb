"""Against a real uvicorn on 127.0.0.1 (a separate process): the same behaviour over real HTTP."""

from __future__ import annotations

import json
from pathlib import Path

import httpx

from model.schema.fields import EXAMPLE_RECORD
from tests.api.conftest import LiveServer


def test_predictions_over_http(live_server: LiveServer, student_csv_path: Path) -> None:
    with httpx.Client(base_url=live_server.url, headers={"X-API-Key": live_server.keys.predict}, timeout=30) as http:
        single = http.post("/v1/predict", json=EXAMPLE_RECORD)
        assert single.status_code == 200 and single.json()["setup"] == "period2"
        csv = "\n".join(student_csv_path.read_text("utf-8").splitlines()[:51])
        batch = http.post("/v1/predict/batch", content=csv, headers={"Content-Type": "text/csv"})
        assert batch.status_code == 200 and batch.json()["n_accepted"] == 50
        bad = http.post("/v1/predict", content=b"age=16", headers={"Content-Type": "application/x-www-form-urlencoded"})
        assert bad.status_code == 415 and bad.json()["error"] == "unsupported_media_type"
    assert httpx.get(f"{live_server.url}/v1/models", timeout=10).status_code == 401
    forbidden = httpx.get(f"{live_server.url}/metrics", headers={"X-API-Key": live_server.keys.predict}, timeout=10)
    assert forbidden.status_code == 403


def test_rate_limit_and_access_log_over_http(live_server: LiveServer) -> None:
    """The server runs with MATHSIGHT_API_RATE_LIMIT=5 per minute: the admin key is used only here."""
    with httpx.Client(base_url=live_server.url, headers={"X-API-Key": live_server.keys.admin}, timeout=30) as http:
        responses = [http.get("/v1/schema") for _ in range(11)]  # 5 per window: at most 10 pass in two windows
    assert {r.status_code for r in responses} == {200, 429}
    refused = next(r for r in responses if r.status_code == 429)
    assert int(refused.headers["retry-after"]) >= 1 and refused.json()["error"] == "rate_limited"
    lines = (live_server.home / "logs" / "api-access.jsonl").read_text("utf-8").splitlines()
    assert any(json.loads(line)["status"] == 429 for line in lines)
