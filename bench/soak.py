"""A soak run: two API workers and two dashboard replicas on one PostgreSQL, restarted in the middle.

``python -m bench.soak --seconds 60`` (also ``python -m bench soak``; never part of a plain
``python -m bench``, since it restarts the local PostgreSQL). It creates a fresh database ``soak``
on 127.0.0.1:5432 (trust auth), migrates it and installs the default models, then runs for the
given time:

* two uvicorn processes serving ``api.main:app`` (each its own port and its own spool directory),
  driven by client threads: single students (one in ten invalid: a 400), and CSV batches of 100
  rows (one invalid row each), through ``/v1/predict`` and ``/v1/predict/batch``;
* two dashboard replicas: two processes each calling, from two threads, what the upload page calls
  (``predict_batch(store, engine, file, channel="ui", user_id=...)`` on the dashboard's engine and
  model store) with 300-row class files (two invalid rows each). The Streamlit transport is not
  driven (a browser per upload would measure the browser); the core path, its database and its
  spool are.

Halfway, PostgreSQL is restarted (``pg_ctlcluster ... restart -m fast``). Afterwards every spool is
replayed and the log is compared with what was answered: every accepted row of every 2xx answer or
finished upload must be in the log under its request id (no request lost), the log must hold nothing
else than those rows, their rejected rows and one row per refused single student, and the only 5xx
allowed is the documented 503 of a request that found the database unreachable.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

ADMIN_URL = os.environ.get("MATHSIGHT_SOAK_ADMIN_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
DATABASE = "soak"
SOAK_URL = ADMIN_URL.rsplit("/", 1)[0] + f"/{DATABASE}"
CLIENT_THREADS = 3
UPLOAD_THREADS = 2
BATCH_ROWS, UPLOAD_ROWS = 100, 300


def _fresh_database() -> None:
    import sqlalchemy as sa

    engine = sa.create_engine(ADMIN_URL, isolation_level="AUTOCOMMIT")
    with engine.connect() as connection:
        connection.execute(sa.text(f'DROP DATABASE IF EXISTS "{DATABASE}" WITH (FORCE)'))
        connection.execute(sa.text(f'CREATE DATABASE "{DATABASE}"'))
    engine.dispose()


def _users_and_key() -> tuple[int, str]:
    from model.accounts.apikeys import create_key
    from model.accounts.users import create_user
    from model.settings import get_settings
    from model.store.db import get_engine, session_scope

    with session_scope(get_engine(SOAK_URL)) as session:
        teacher = create_user(session, "soak-teacher", "soak-password-long-1", role="teacher", actor="soak").id
        api_user = create_user(session, "soak-api", "soak-password-long-2", role="teacher", actor="soak").id
        key = create_key(session, api_user, "predict", actor="soak", settings=get_settings())[0]
    return teacher, key


def _class_file(rows: int, bad: int, seed: int) -> bytes:
    """Resampled real students (for load only, never to judge quality) with ``bad`` invalid ages."""
    from bench._common import class_frame

    frame = class_frame(rows, seed=seed)
    frame["age"] = frame["age"].astype(object)
    frame.loc[list(range(bad)), "age"] = "99"
    return frame.to_csv(index=False, sep=";").encode()


def _restart_postgres() -> float:
    """Restart the local cluster; the seconds it took."""
    version = sorted(os.listdir("/etc/postgresql"))[-1]
    started = time.perf_counter()
    subprocess.run(["pg_ctlcluster", "--skip-systemctl-redirect", version, "main", "restart", "-m", "fast"],
                   check=True, capture_output=True)  # fmt: skip
    return time.perf_counter() - started


# ---------------------------------------------------------------- a dashboard replica (its own process)


def _replica(home: str, user_id: int, seconds: float, out: str) -> None:
    """What the upload page does, from ``UPLOAD_THREADS`` threads, until ``seconds`` have passed."""
    from model.errors import UserError
    from model.serving.service import ModelStore, predict_batch
    from model.settings import get_settings
    from model.store.db import get_engine, migrate

    settings = get_settings()
    engine = get_engine(settings.database_url)
    migrate(engine)
    store = ModelStore(engine, settings=settings)
    files = [_class_file(UPLOAD_ROWS, 2, seed=seed) for seed in range(4)]
    records: list[dict[str, Any]] = []
    deadline = time.monotonic() + seconds

    def uploads(worker: int) -> None:
        n = 0
        while time.monotonic() < deadline:
            n += 1
            try:
                p = predict_batch(store, engine, files[(worker + n) % len(files)], channel="ui", user_id=user_id)
            except UserError as error:
                records.append({"kind": "upload", "outcome": "refused", "error": type(error).__name__})
            except Exception as error:  # a fault: counted, the run goes on
                records.append({"kind": "upload", "outcome": "fault", "error": type(error).__name__})
            else:
                records.append({"kind": "upload", "outcome": "ok", "request_id": p.request_id,
                                "accepted": len(p.results), "rejected": len(p.rejected_rows)})  # fmt: skip

    threads = [threading.Thread(target=uploads, args=(i,)) for i in range(UPLOAD_THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    Path(out).write_text("\n".join(json.dumps(r) for r in records) + "\n")


# ---------------------------------------------------------------- API clients (threads of this process)


def _client(urls: list[str], key: str, worker: int, seconds: float, csv: bytes, records: list[dict]) -> None:
    import httpx

    from model.schema.fields import EXAMPLE_RECORD

    good, bad = dict(EXAMPLE_RECORD), {**EXAMPLE_RECORD, "age": 99}
    deadline = time.monotonic() + seconds
    n = 0
    with httpx.Client(headers={"X-API-Key": key}, timeout=60) as http:
        while time.monotonic() < deadline:
            n += 1
            url = urls[(worker + n) % len(urls)]
            kind = "batch" if n % 4 == 0 else "single"
            try:
                if kind == "batch":
                    response = http.post(f"{url}/v1/predict/batch", content=csv, headers={"Content-Type": "text/csv"})
                else:
                    response = http.post(f"{url}/v1/predict", json=bad if n % 10 == 5 else good)
            except httpx.TransportError as error:
                records.append({"kind": kind, "outcome": "transport", "error": type(error).__name__})
                continue
            record: dict[str, Any] = {"kind": kind, "status": response.status_code, "at": time.monotonic()}
            if response.status_code == 200:
                body = response.json()
                record |= {"request_id": body["request_id"], "accepted": body.get("n_accepted", 1),
                           "rejected": body.get("n_rejected", 0)}  # fmt: skip
            records.append(record)


def _serve(home: Path, name: str) -> tuple[subprocess.Popen, str]:
    from bench._common import free_port
    from model.settings import PROJECT_ROOT

    port = free_port()
    own = home / name
    own.mkdir()
    env = {**os.environ, "MATHSIGHT_HOME": str(own), "DATABASE_URL": SOAK_URL, "MATHSIGHT_API_RATE_LIMIT": str(10**9)}
    command = [sys.executable, "-m", "uvicorn", "api.main:app", "--host", "127.0.0.1", "--port", str(port),
               "--no-access-log", "--log-level", "warning"]  # fmt: skip
    log = (own / "uvicorn.log").open("wb")
    return subprocess.Popen(command, cwd=PROJECT_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT), (
        f"http://127.0.0.1:{port}"
    )


# ---------------------------------------------------------------- the check


def _drain(homes: list[Path]) -> int:
    """Replay every spool (the processes would on their next write); rows still waiting afterwards."""
    from model.serving.predlog import spool
    from model.store.db import get_engine

    engine = get_engine(SOAK_URL)
    for home in homes:
        spool.replay_spool(engine, home / "spool")
    return sum(spool.pending_rows(home / "spool") for home in homes)


def _compare(records: list[dict[str, Any]]) -> dict[str, Any]:
    import sqlalchemy as sa

    from model.store.db import get_engine

    with get_engine(SOAK_URL).connect() as connection:
        rows = connection.execute(sa.text(
            "SELECT request_id, status, error_type, count(*) FROM prediction_log GROUP BY 1, 2, 3"
        )).all()  # fmt: skip
    logged: dict[tuple[str, str], int] = {}
    refused_singles = 0
    for request_id, status, error_type, count in rows:
        if status == "rejected" and error_type == "InvalidInput":
            refused_singles += count
        else:
            logged[(request_id, status)] = logged.get((request_id, status), 0) + count
    expected: dict[tuple[str, str], int] = {}
    for r in records:
        if "request_id" in r:
            expected[(r["request_id"], "ok")] = r["accepted"]
            if r["rejected"]:
                expected[(r["request_id"], "rejected")] = r["rejected"]
    missing = sum(n - logged.get(k, 0) for k, n in expected.items() if logged.get(k, 0) < n)
    extra = sum(n - expected.get(k, 0) for k, n in logged.items() if n > expected.get(k, 0))
    answered_400 = sum(1 for r in records if r.get("status") == 400)
    return {"missing": missing, "extra": extra, "refused singles logged": refused_singles,
            "refused singles answered": answered_400}  # fmt: skip


def main(seconds: float = 60.0, restart: bool = True) -> None:
    from bench._common import engine_with_models, isolated_home
    from model.settings import PROJECT_ROOT

    home = isolated_home()
    _fresh_database()
    os.environ["DATABASE_URL"] = SOAK_URL
    from model.settings import get_settings

    get_settings.cache_clear()
    engine_with_models(SOAK_URL)
    teacher, key = _users_and_key()
    servers = [_serve(home, f"api{i}") for i in (1, 2)]
    from bench.api import _wait_healthy

    for process, url in servers:
        _wait_healthy(url, process)
    replica_homes = [home / f"dashboard{i}" for i in (1, 2)]
    replicas = []
    for own in replica_homes:
        own.mkdir()
        env = {**os.environ, "MATHSIGHT_HOME": str(own)}
        command = [sys.executable, "-m", "bench.soak", "--replica", str(own), str(teacher), str(seconds),
                   str(own / "uploads.jsonl")]  # fmt: skip
        replicas.append(subprocess.Popen(command, env=env, cwd=PROJECT_ROOT))
    csv = _class_file(BATCH_ROWS, 1, seed=9)
    records: list[dict[str, Any]] = []
    urls = [url for _, url in servers]
    clients = [threading.Thread(target=_client, args=(urls, key, i, seconds, csv, records))
               for i in range(CLIENT_THREADS)]  # fmt: skip
    started = time.monotonic()
    for thread in clients:
        thread.start()
    restart_seconds = restart_at = None
    if restart:
        time.sleep(seconds / 2)  # the middle of the run, not a timing
        restart_at = time.monotonic() - started
        restart_seconds = _restart_postgres()
    for thread in clients:
        thread.join()
    for replica in replicas:
        replica.wait()
    for own in replica_homes:
        records += [json.loads(line) for line in (own / "uploads.jsonl").read_text().splitlines() if line]
    waiting = _drain([home / "api1", home / "api2", *replica_homes])
    for process, _ in servers:
        process.terminate()
        process.wait(timeout=30)
    result = _compare(records)

    api = [r for r in records if r["kind"] != "upload"]
    uploads = [r for r in records if r["kind"] == "upload"]
    statuses = Counter(str(r.get("status", r.get("outcome"))) for r in api)
    five = {s: n for s, n in statuses.items() if s.startswith("5")}
    times_503 = [r["at"] - started for r in api if r.get("status") == 503]
    print(
        f"{seconds:.0f} s; two API workers, two dashboard replicas (upload core path), PostgreSQL database {DATABASE}"
    )
    if restart:
        print(f"PostgreSQL restarted at {restart_at:.1f} s, in {restart_seconds:.1f} s")
    sent = f"{len(api):,} ({sum(r['kind'] == 'single' for r in api):,} single, "
    sent += f"{sum(r['kind'] == 'batch' for r in api):,} batches of {BATCH_ROWS})"
    print(f"API requests sent: {sent}; by status: {dict(sorted(statuses.items()))}")
    if times_503:
        print(f"  503 answers between {min(times_503):.1f} s and {max(times_503):.1f} s")
    outcomes = Counter(r["outcome"] for r in uploads)
    print(f"uploads of {UPLOAD_ROWS} rows: {len(uploads):,}; outcomes: {dict(outcomes)}")
    accepted = sum(r.get("accepted", 0) for r in records)
    rejected = sum(r.get("rejected", 0) for r in records)
    print(f"rows accepted: {accepted:,}; rows rejected: {rejected:,}; spool rows left after the drain: {waiting}")
    print(f"log vs answers: {result['missing']} accepted or rejected rows missing from the log, {result['extra']} "
          f"extra; refused single students: {result['refused singles answered']} answered 400, "
          f"{result['refused singles logged']} logged")  # fmt: skip
    unexpected_5xx = sum(n for s, n in five.items() if s != "503")
    lost = result["missing"] + waiting
    verdict = "PASS" if not lost and not result["extra"] and not unexpected_5xx and not outcomes["fault"] else "FAIL"
    print(f"{verdict}: lost {lost}, extra {result['extra']}, 5xx other than 503: {unexpected_5xx}, "
          f"upload faults: {outcomes['fault']}")  # fmt: skip


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--no-restart", action="store_true", help="do not restart PostgreSQL (a dry run)")
    parser.add_argument("--replica", nargs=4, metavar=("HOME", "USER_ID", "SECONDS", "OUT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.replica:
        _replica(args.replica[0], int(args.replica[1]), float(args.replica[2]), args.replica[3])
    else:
        main(args.seconds, restart=not args.no_restart)
