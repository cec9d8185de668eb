"""The REST API under sustained load: a real uvicorn on 127.0.0.1, driven from a second process.

The server runs ``api.main:app`` on a temporary SQLite database with an active model per setup; a
client process sends requests for a bounded time (and at most a bounded count) and reports
throughput and p50/p95 latency for single students and 1,000-row batches (CSV and JSON). Every
request goes through the whole path: key check, rate limiter, validation, prediction, SHAP factors,
one prediction-log insert, metrics and the access log.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

SECONDS = 15.0
MAX_REQUESTS = 5000
BATCH_ROWS = 1000
SCENARIOS = (
    # name, path, content type, payload file, concurrency
    ("single student (JSON), 1 client", "/v1/predict", "application/json", "single.jsonl", 1),
    ("single student (JSON), 4 clients", "/v1/predict", "application/json", "single.jsonl", 4),
    (f"batch of {BATCH_ROWS:,} (CSV), 1 client", "/v1/predict/batch", "text/csv", "batch.csv", 1),
    (f"batch of {BATCH_ROWS:,} (JSON list), 1 client", "/v1/predict/batch", "application/json", "batch.json", 1),
)


def _payloads(folder: Path) -> None:
    """Request bodies from resampled real students (for speed only, never to judge quality)."""
    import pandas as pd

    from bench._common import class_frame

    students = class_frame(200, seed=3)
    records = [{k: v for k, v in row.items() if pd.notna(v)} for row in students.to_dict("records")]
    (folder / "single.jsonl").write_text("\n".join(json.dumps(r, default=int) for r in records), "utf-8")
    batch = class_frame(BATCH_ROWS, seed=4)
    (folder / "batch.csv").write_text(batch.to_csv(index=False, sep=";"), "utf-8")
    rows = [{k: v for k, v in row.items() if pd.notna(v)} for row in batch.to_dict("records")]
    (folder / "batch.json").write_text(json.dumps(rows, default=int), "utf-8")


def _admin_key() -> str:
    from model.accounts.apikeys import create_key
    from model.accounts.users import create_user
    from model.settings import get_settings
    from model.store.db import get_engine, session_scope

    settings = get_settings()
    with session_scope(get_engine(settings.database_url)) as session:
        user = create_user(session, "bench", "bench-password-1", role="admin", actor="bench")
        return create_key(session, user.id, "admin", actor="bench", settings=settings)[0]


def _wait_healthy(url: str, process: subprocess.Popen, timeout: float = 120.0) -> None:
    import httpx

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"uvicorn exited with code {process.returncode}")
        try:
            if httpx.get(f"{url}/healthz", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)  # polling interval
    raise TimeoutError(f"{url}/healthz not healthy after {timeout} s")


def _drive(url: str, key: str, path: str, content_type: str, payload: Path, concurrency: int,
           seconds: float, max_requests: int) -> dict[str, Any]:  # fmt: skip
    """Send requests from ``concurrency`` threads until ``seconds`` pass or ``max_requests`` are sent."""
    import httpx

    bodies = payload.read_text("utf-8").splitlines() if payload.suffix == ".jsonl" else [payload.read_text("utf-8")]
    encoded = [b.encode() for b in bodies]
    latencies: list[float] = []
    failures: list[int] = []
    lock = threading.Lock()
    sent = iter(range(max_requests))
    deadline = time.perf_counter() + seconds

    def worker() -> None:
        headers = {"X-API-Key": key, "Content-Type": content_type}
        with httpx.Client(base_url=url, headers=headers, timeout=120) as http:
            while time.perf_counter() < deadline:
                with lock:
                    i = next(sent, None)
                if i is None:
                    return
                started = time.perf_counter()
                status = http.post(path, content=encoded[i % len(encoded)]).status_code
                with lock:
                    (latencies if status == 200 else failures).append((time.perf_counter() - started) * 1000)

    started = time.perf_counter()
    threads = [threading.Thread(target=worker) for _ in range(concurrency)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return {"ok": len(latencies), "failed": len(failures), "seconds": time.perf_counter() - started,
            "latencies_ms": latencies}  # fmt: skip


def _client(args: argparse.Namespace) -> None:
    """The second process: run one scenario and print its figures as JSON."""
    result = _drive(args.url, args.key, args.path, args.content_type, Path(args.payload), args.concurrency,
                    args.seconds, args.max_requests)  # fmt: skip
    print(json.dumps(result))


def _report(name: str, result: dict[str, Any], rows: int) -> None:
    from bench._common import percentile

    lat = result["latencies_ms"] or [float("nan")]
    rate = result["ok"] / result["seconds"]
    per_rows = f", {rate * rows:,.0f} students/s" if rows > 1 else ""
    print(
        f"{name}: {result['ok']} ok, {result['failed']} failed in {result['seconds']:.1f} s -> "
        f"{rate:.1f} req/s{per_rows}; p50 {percentile(lat, 50):.1f} ms, p95 {percentile(lat, 95):.1f} ms"
    )


def _serve(home: Path, workers: int) -> tuple[subprocess.Popen, str]:
    from bench._common import free_port
    from model.settings import PROJECT_ROOT

    port = free_port()
    env = {**os.environ, "MATHSIGHT_API_RATE_LIMIT": str(10**9)}
    command = [sys.executable, "-m", "uvicorn", "api.main:app", "--host", "127.0.0.1", "--port", str(port),
               "--workers", str(workers), "--no-access-log", "--log-level", "warning"]  # fmt: skip
    log = (home / "uvicorn.log").open("wb")
    process = subprocess.Popen(command, cwd=PROJECT_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    return process, f"http://127.0.0.1:{port}"


def main(seconds: float = SECONDS, max_requests: int = MAX_REQUESTS, workers: int = 1) -> None:
    from bench._common import engine_with_models, isolated_home

    home = isolated_home()
    engine_with_models()
    key = _admin_key()
    folder = Path(tempfile.mkdtemp(prefix="payloads-", dir=home))
    _payloads(folder)
    process, url = _serve(home, workers)
    try:
        _wait_healthy(url, process)
        print(f"uvicorn api.main:app, {workers} worker(s), SQLite; client in a second process; "
              f"each scenario at most {seconds:.0f} s or {max_requests} requests")  # fmt: skip
        for name, path, content_type, payload, concurrency in SCENARIOS:
            command = [sys.executable, "-m", "bench.api", "--client", "--url", url, "--key", key, "--path", path,
                       "--content-type", content_type, "--payload", str(folder / payload),
                       "--concurrency", str(concurrency), "--seconds", str(seconds),
                       "--max-requests", str(max_requests)]  # fmt: skip
            done = subprocess.run(command, capture_output=True, text=True, check=True, timeout=seconds + 300)
            _report(name, json.loads(done.stdout.strip().splitlines()[-1]), BATCH_ROWS if "batch" in path else 1)
    finally:
        process.terminate()
        process.wait(timeout=30)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bench.api", description=__doc__.splitlines()[0])
    parser.add_argument("--client", action="store_true", help="run as the load-generating client")
    parser.add_argument("--url")
    parser.add_argument("--key")
    parser.add_argument("--path")
    parser.add_argument("--content-type")
    parser.add_argument("--payload")
    parser.add_argument("--concurrency", type=int, default=1)
    parser.add_argument("--seconds", type=float, default=SECONDS)
    parser.add_argument("--max-requests", type=int, default=MAX_REQUESTS)
    parser.add_argument("--workers", type=int, default=1, help="uvicorn workers (server mode)")
    return parser


if __name__ == "__main__":
    arguments = _parser().parse_args()
    if arguments.client:
        _client(arguments)
    else:
        main(arguments.seconds, arguments.max_requests, arguments.workers)
