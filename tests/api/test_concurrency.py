"""A large batch against a real uvicorn: other requests are answered while it is predicted and serialised."""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.api.conftest import LiveServer, running_server

PREDICTED = re.compile(r"^mathsight_api_predictions_total\{[^}]*\} ([0-9.e+]+)$", re.MULTILINE)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, _template_sqlite: Path) -> Iterator[LiveServer]:
    with running_server(tmp_path_factory.mktemp("busy"), _template_sqlite, MATHSIGHT_API_RATE_LIMIT="10000") as live:
        yield live


def _predicted(http: httpx.Client) -> float:
    return sum(float(n) for n in PREDICTED.findall(http.get("/metrics").text))


def test_healthz_answers_while_a_large_batch_reply_is_serialised(server: LiveServer, student_csv_path: Path) -> None:
    """Ordering, not timing. The batch's students are counted in /metrics once they are predicted, just
    before its reply is built; a /healthz sent once they show must complete before the batch's reply
    starts. With the reply built on the event loop, /metrics itself could not answer until the reply
    had gone (so the batch replied first)."""
    header, *rows = student_csv_path.read_text("utf-8").splitlines()
    n = 40_000
    csv = "\n".join([header, *(rows[i % len(rows)] for i in range(n))]).encode()
    order: list[str] = []
    done = threading.Event()

    def batch() -> None:
        headers = {"X-API-Key": server.keys.predict, "Content-Type": "text/csv"}
        with httpx.stream("POST", f"{server.url}/v1/predict/batch", content=csv, headers=headers,
                          timeout=300) as response:  # fmt: skip
            order.append(f"batch {response.status_code}")
            response.read()
        done.set()

    worker = threading.Thread(target=batch)
    with httpx.Client(base_url=server.url, headers={"X-API-Key": server.keys.admin}, timeout=300) as http:
        before = _predicted(http)
        worker.start()
        try:
            while not done.is_set() and _predicted(http) < before + n:
                done.wait(0.05)  # polling /metrics; nothing is asserted on how long anything takes
            order.append(f"healthz {http.get('/healthz').status_code}")
        finally:
            worker.join()
    assert order == ["healthz 200", "batch 200"]


def test_a_batch_costs_its_rows_against_the_row_limit(make_client, keys, student_csv_path: Path) -> None:
    """A key with a budget of 10 rows: a 20-row batch gets 429 with Retry-After, is not charged, and
    single students (1 row each) and a 5-row batch still pass until the budget is spent."""
    client = make_client(api_row_limit=10)
    auth = {"X-API-Key": keys.predict}
    lines = student_csv_path.read_text("utf-8").splitlines()
    big = client.post("/v1/predict/batch", content="\n".join(lines[:21]), headers={**auth, "Content-Type": "text/csv"})
    assert big.status_code == 429 and big.json()["error"] == "rate_limited", big.text
    assert int(big.headers["retry-after"]) >= 1 and "20 rows" in big.json()["message"]
    small = client.post("/v1/predict/batch", content="\n".join(lines[:6]), headers={**auth, "Content-Type": "text/csv"})
    assert small.status_code == 200 and small.json()["n_accepted"] == 5
    header = lines[0].split(";")
    student = dict(zip(header, lines[1].split(";"), strict=True))
    statuses = [client.post("/v1/predict", json=student, headers=auth).status_code for _ in range(6)]
    assert statuses == [200] * 5 + [429]
