"""Two API replicas on one PostgreSQL: concurrent class uploads and JSON batches sent to both land in
the prediction log exactly once, and a promotion made anywhere reaches both within the store's refresh."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pandas as pd
import pytest
import sqlalchemy as sa

from model.schema.fields import EXAMPLE_RECORD
from model.settings import PROJECT_ROOT, get_settings
from model.store import db, registry
from model.store.db import get_engine, session_scope
from model.store.tables import PredictionLog
from tests.api.conftest import Keys, make_keys
from tests.conftest import _drop_postgres_schema, _postgres_schema_url, install_models, register_trained
from tests.servers import free_port, stop_process, wait_healthy

REQUESTS = 32  # half CSV class files, half JSON batches, alternating between the two replicas
THREADS = 8
CLASS_SIZE = 24
PROMOTION_DEADLINE = 30.0  # seconds; the stores re-read the registry every 3 s


@dataclass(frozen=True)
class Replicas:
    """Two uvicorn processes serving ``api.main:app`` on the same PostgreSQL schema."""

    url: str
    bases: tuple[str, str]
    keys: Keys
    homes: tuple[Path, Path]


def _start(database_url: str, home: Path) -> tuple[subprocess.Popen, str]:
    port = free_port()
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "MATHSIGHT_HOME": str(home),
        "MATHSIGHT_API_RATE_LIMIT": "100000",
    }
    command = [sys.executable, "-m", "uvicorn", "api.main:app", "--host", "127.0.0.1", "--port", str(port)]
    log = (home / "uvicorn.log").open("wb")
    process = subprocess.Popen(command, cwd=PROJECT_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    log.close()  # the child keeps its own descriptor
    return process, f"http://127.0.0.1:{port}"


@pytest.fixture(scope="module")
def replicas(tmp_path_factory: pytest.TempPathFactory, trained_models: dict) -> Iterator[Replicas]:
    """A fresh PostgreSQL schema with active models and keys, and two replicas, each with its own state dir."""
    url = _postgres_schema_url()
    processes: list[subprocess.Popen] = []
    try:
        install_models(url, trained_models)
        keys = make_keys(url)
        homes = (tmp_path_factory.mktemp("replica_a"), tmp_path_factory.mktemp("replica_b"))
        started = [_start(url, home) for home in homes]
        processes = [process for process, _ in started]
        for (process, base), home in zip(started, homes, strict=True):
            try:
                wait_healthy(base, process)
            except (RuntimeError, TimeoutError) as error:
                pytest.fail(f"{error}\n{(home / 'uvicorn.log').read_text(errors='replace')[-3000:]}")
        yield Replicas(url, (started[0][1], started[1][1]), keys, homes)
    finally:
        for process in processes:
            stop_process(process)
        db.dispose_engines()
        _drop_postgres_schema(url)


def _class(raw_df: pd.DataFrame, i: int) -> pd.DataFrame:
    """A class of real students (no final grade) with one out-of-range age, different for each request."""
    start = (i * CLASS_SIZE) % (len(raw_df) - CLASS_SIZE)
    frame = raw_df.drop(columns=["G3"]).iloc[start : start + CLASS_SIZE].reset_index(drop=True)
    frame["age"] = frame["age"].astype(object)
    frame.loc[i % CLASS_SIZE, "age"] = 99
    return frame


def _send(client: httpx.Client, base: str, key: str, frame: pd.DataFrame, as_csv: bool) -> dict[str, Any]:
    headers = {"X-API-Key": key}
    if as_csv:
        body = frame.to_csv(sep=";", index=False).encode("utf-8")
        response = client.post(
            f"{base}/v1/predict/batch", content=body, headers={**headers, "Content-Type": "text/csv"}
        )
    else:
        records = json.loads(frame.to_json(orient="records"))
        response = client.post(f"{base}/v1/predict/batch", json=records, headers=headers)
    assert response.status_code == 200, response.text
    return response.json()


def _log_rows(url: str) -> list[Any]:
    query = sa.select(PredictionLog.request_id, PredictionLog.idempotency_key, PredictionLog.status)
    with get_engine(url).connect() as connection:
        return list(connection.execute(query))


def test_concurrent_batches_on_two_replicas_are_logged_exactly_once(replicas: Replicas, raw_df: pd.DataFrame) -> None:
    before = len(_log_rows(replicas.url))
    jobs = [(replicas.bases[i % 2], _class(raw_df, i), i % 4 < 2) for i in range(REQUESTS)]
    started = time.perf_counter()
    with httpx.Client(timeout=120) as client, ThreadPoolExecutor(THREADS) as pool:
        answers = list(pool.map(lambda job: _send(client, job[0], replicas.keys.predict, job[1], job[2]), jobs))
    seconds = time.perf_counter() - started

    sent_rows = REQUESTS * CLASS_SIZE
    assert sum(a["n_rows"] for a in answers) == sent_rows
    assert all((a["n_accepted"], a["n_rejected"]) == (CLASS_SIZE - 1, 1) for a in answers)
    request_ids = {a["request_id"] for a in answers}
    rows = [row for row in _log_rows(replicas.url) if row.request_id in request_ids]
    assert len(rows) == sent_rows == sum(a["n_accepted"] + a["n_rejected"] for a in answers)
    assert len(_log_rows(replicas.url)) - before == sent_rows  # and nothing else was written
    keys = [row.idempotency_key for row in _log_rows(replicas.url)]
    assert None not in keys and len(set(keys)) == len(keys)  # none twice
    assert len(request_ids) == REQUESTS
    per_request = Counter((row.request_id, row.status) for row in rows)
    expected = Counter()
    for answer in answers:
        expected[(answer["request_id"], "ok")] += answer["n_accepted"]
        expected[(answer["request_id"], "rejected")] += answer["n_rejected"]
    assert per_request == expected
    print(f"\n{REQUESTS} batches ({sent_rows} rows) on 2 replicas, {THREADS} threads: {seconds:.1f} s, "
          f"{sent_rows / seconds:.0f} rows/s")  # fmt: skip


def _served(client: httpx.Client, base: str, key: str, setup: str) -> str | None:
    """The version the replica's model store really uses for ``setup`` (a prediction says so)."""
    assert setup == "period2"  # EXAMPLE_RECORD has both period grades
    response = client.post(f"{base}/v1/predict", json=EXAMPLE_RECORD, headers={"X-API-Key": key})
    assert response.status_code == 200, response.text
    return response.json()["model_version"]


def _registry_says(client: httpx.Client, base: str, key: str, setup: str) -> str | None:
    models = client.get(f"{base}/v1/models", headers={"X-API-Key": key}).json()["models"]
    return next((m["version"] for m in models if m["setup"] == setup), None)


def test_a_promotion_reaches_both_replicas(replicas: Replicas, trained_models: dict) -> None:
    engine, key = get_engine(replicas.url), replicas.keys.predict
    new = register_trained(engine, trained_models["period2"], created_by="pytest")
    with httpx.Client(timeout=30) as client:
        old = [_served(client, base, key, "period2") for base in replicas.bases]
        assert new not in old and old[0] == old[1]
        with session_scope(engine) as session:
            registry.promote(session, new, by="pytest", settings=get_settings())
        promoted = time.monotonic()
        seen: dict[str, float] = {}
        while len(seen) < 2 and time.monotonic() - promoted < PROMOTION_DEADLINE:
            for base in replicas.bases:
                if base not in seen and _served(client, base, key, "period2") == new:
                    seen[base] = time.monotonic() - promoted
            time.sleep(0.1)  # polling interval, not a wait for timing
        assert set(seen) == set(replicas.bases), f"after {PROMOTION_DEADLINE} s only {seen} serve {new}"
        assert all(_registry_says(client, base, key, "period2") == new for base in replicas.bases)
    print(f"\npromotion of {new} seen by replica A after {seen[replicas.bases[0]]:.1f} s, "
          f"B after {seen[replicas.bases[1]]:.1f} s")  # fmt: skip
