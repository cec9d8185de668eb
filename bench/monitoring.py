"""Monitoring queries on a 1M-row prediction log, on SQLite and PostgreSQL (target: each <= 1 s).

Fills a fresh SQLite file and a fresh PostgreSQL schema (``MATHSIGHT_BENCH_POSTGRES_URL``, default
the local test server; skipped when unreachable) with ``BENCH_ROWS`` log rows spread over 90 days
(inputs resampled from the real data, 5% of students with a recorded grade, 1% with a remark), then
times every query the monitoring page and the alert check run over the whole 90 days, beside a plain
``COUNT(*)`` over the same window as the baseline. Prints rows, seconds and the ratio to the baseline.
"""

from __future__ import annotations

import json
import os
import sqlite3
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from model.ml.dataset import load_raw
from model.ml.training import register, train_setup
from model.monitoring import alerts, drift, fairness
from model.monitoring import queries as monitoring
from model.monitoring.expected import expected_over_time, expected_vs_realized
from model.schema.fields import ATTRIBUTES, GRADES
from model.settings import Settings, get_settings
from model.store import registry
from model.store.db import dispose_engines, get_engine, migrate, session_scope
from model.store.tables import Feedback, Outcome

BENCH_ROWS = int(os.environ.get("BENCH_ROWS", 1_000_000))
DAYS = 90
POSTGRES_URL = os.environ.get("MATHSIGHT_BENCH_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
TARGET_SECONDS = 1.0
POOL = 5_000
COLUMNS = ("request_id", "created_at", "channel", "model_version_id", "setup", "student_key", "inputs",
           "predicted_g3", "lower", "upper", "p_pass", "band", "risk", "latency_ms", "status", "error_type",
           "is_demo")  # fmt: skip


def _input_pool(rng: np.random.Generator) -> list[str]:
    """JSON inputs of ``POOL`` students resampled from the real data with small noise."""
    frame = load_raw(settings=get_settings()).sample(POOL, replace=True, random_state=rng).reset_index(drop=True)
    frame["absences"] = np.clip(frame["absences"] + rng.integers(-2, 3, POOL), 0, 93)
    records = frame[[*ATTRIBUTES, *GRADES]].astype(object).to_dict("records")
    return [json.dumps({k: (int(v) if isinstance(v, np.integer) else v) for k, v in r.items()}) for r in records]


def _rows(n: int, version_id: str, now: datetime, rng: np.random.Generator) -> pd.DataFrame:
    """``n`` log rows over ``DAYS`` days, oldest first."""
    seconds = np.sort(rng.uniform(0, DAYS * 86_400, n))
    created = pd.to_datetime(now - timedelta(days=DAYS)) + pd.to_timedelta(seconds, unit="s")
    status = rng.choice(["ok", "rejected", "error"], n, p=[0.975, 0.02, 0.005])
    ok = status == "ok"
    predicted = np.clip(rng.normal(10.5, 4, n), 0, 20)
    p_pass = 1 / (1 + np.exp(-(predicted - 10)))
    has_key = ok & (rng.random(n) < 0.05)
    pool = _input_pool(rng)
    return pd.DataFrame({
        "request_id": [uuid.UUID(int=int(i)).hex for i in rng.integers(0, 1 << 62, n)],
        "created_at": created.strftime("%Y-%m-%d %H:%M:%S.%f"),
        "channel": rng.choice(["ui", "api", "cli"], n, p=[0.5, 0.35, 0.15]),
        "model_version_id": np.where(ok, version_id, None),
        "setup": np.where(ok, "early", None),
        "student_key": np.where(has_key, [f"k{i:039d}" for i in range(n)], None),
        "inputs": np.where(ok, np.asarray(pool, dtype=object)[rng.integers(0, POOL, n)], None),
        "predicted_g3": np.where(ok, predicted, np.nan),
        "lower": np.where(ok, np.clip(predicted - 3, 0, 20), np.nan),
        "upper": np.where(ok, np.clip(predicted + 3, 0, 20), np.nan),
        "p_pass": np.where(ok, p_pass, np.nan),
        "band": np.where(ok, np.select([predicted >= 15.5, predicted >= 13.5, predicted >= 11.5, predicted >= 9.5],
                                       ["I", "II", "III", "IV"], "V"), None),
        "risk": np.where(ok, np.select([p_pass < 0.5, p_pass < 0.75], ["high", "medium"], "low"), None),
        "latency_ms": rng.lognormal(1.0, 1.0, n),
        "status": status,
        "error_type": np.select([status == "rejected", status == "error"], ["validation", "OperationalError"], None),
        "is_demo": False,
    })  # fmt: skip


def _fill_sqlite(path: str, rows: pd.DataFrame) -> None:
    values = rows.astype(object).where(rows.notna(), None).itertuples(index=False, name=None)
    with sqlite3.connect(path) as connection:
        connection.executemany(
            f"INSERT INTO prediction_log ({', '.join(COLUMNS)}) VALUES ({', '.join('?' * len(COLUMNS))})", values
        )


def _fill_postgresql(engine: Engine, rows: pd.DataFrame) -> None:
    frame = rows.assign(created_at=rows["created_at"] + "+00")
    values = frame.astype(object).where(frame.notna(), None).itertuples(index=False, name=None)
    with engine.raw_connection() as raw:
        cursor = raw.cursor()
        with cursor.copy(f"COPY prediction_log ({', '.join(COLUMNS)}) FROM STDIN") as copy:
            for row in values:
                copy.write_row(row)
        raw.commit()


def _fill_outcomes_feedback(engine: Engine, rows: pd.DataFrame, rng: np.random.Generator, now: datetime) -> None:
    keys = rows["student_key"].dropna().tolist()
    outcomes = [
        {"student_key": k, "g3": int(g), "recorded_at": now}
        for k, g in zip(keys, rng.integers(0, 21, len(keys)), strict=True)
    ]  # noqa: E501
    feedback_ids = rng.choice(np.flatnonzero(rows["status"].to_numpy() == "ok") + 1, len(rows) // 100, replace=False)
    feedback = [
        {"prediction_id": int(i), "category": "not_useful", "reason": "bench", "created_at": now} for i in feedback_ids
    ]
    with engine.begin() as connection:
        connection.execute(sa.insert(Outcome), outcomes)
        connection.execute(sa.insert(Feedback), feedback)
        if connection.dialect.name == "postgresql":
            connection.exec_driver_sql("ANALYZE")
    if engine.dialect.name == "postgresql":
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            connection.exec_driver_sql("VACUUM ANALYZE prediction_log")
    else:
        with engine.begin() as connection:
            connection.exec_driver_sql("ANALYZE")


def queries(
    session: Session, settings: Settings, window: monitoring.Window, now: datetime
) -> dict[str, Callable[[], Any]]:
    """What the monitoring page and ``monitor --check`` run, by name."""
    return {
        "volume_by_day": lambda: monitoring.volume_by_day(session, window),
        "latency_by_day": lambda: monitoring.latency_by_day(session, window),
        "latency_summary": lambda: monitoring.latency_summary(session, window),
        "status_by_day": lambda: monitoring.status_by_day(session, window),
        "error_types": lambda: monitoring.error_types(session, window),
        "error_summary": lambda: monitoring.error_summary(session, window),
        "bands_by_day": lambda: monitoring.bands_by_day(session, window),
        "risk_by_day": lambda: monitoring.risk_by_day(session, window),
        "grade_histogram": lambda: monitoring.predicted_grade_histogram(session, window),
        "feedback_by_day": lambda: monitoring.feedback_by_day(session, window),
        "feedback_summary": lambda: monitoring.feedback_summary(session, window),
        "demo_rows": lambda: monitoring.demo_rows(session, window),
        "realized_by_version": lambda: monitoring.realized_by_version(session, window),
        "realized_over_time": lambda: monitoring.realized_over_time(session, window),
        "expected_over_time": lambda: expected_over_time(
            session, window, list(registry.active_version_ids(session).values())
        ),
        "expected_vs_realized": lambda: expected_vs_realized(session, window, settings.alert_min_outcomes),
        "fairness_report": lambda: fairness.fairness_report(session, settings, window),
        "drift_report(7 days)": lambda: drift.drift_report(session, settings, monitoring.Window.last(7, now)),
        "alert rules (all)": lambda: alerts.check_rules(session, settings, now),
    }


def _timed(call: Callable[[], Any]) -> float:
    started = time.perf_counter()
    call()
    return time.perf_counter() - started


def _count(session: Session, window: monitoring.Window) -> int:
    return session.execute(sa.select(sa.func.count()).where(window.where())).scalar_one()


def time_queries(name: str, engine: Engine, now: datetime) -> bool:
    """Time every monitoring query over the whole log beside a COUNT(*) baseline; True when all met the target."""
    window = monitoring.Window(now - timedelta(days=DAYS + 1), now + timedelta(seconds=1))
    with session_scope(engine) as session:  # one read transaction, as the page opens
        rows = _count(session, window)  # also warms the cache, as the page's first query would
        baseline = min(_timed(lambda: _count(session, window)) for _ in range(3))
        print(f"[{name}] {'query':<24}{'rows':>11}{'seconds':>9}{'x COUNT(*)':>12}")
        print(f"[{name}] {'COUNT(*) baseline':<24}{rows:>11,}{baseline:>9.3f}{1:>12.1f}")
        ok = True
        for query, call in queries(session, get_settings(), window, now).items():
            seconds = min(_timed(call) for _ in range(2))
            ok &= seconds <= TARGET_SECONDS
            flag = "" if seconds <= TARGET_SECONDS else "  over target"
            print(f"[{name}] {query:<24}{rows:>11,}{seconds:>9.3f}{seconds / baseline:>12.1f}{flag}")
    return ok


def run(name: str, engine: Engine, fill: Callable[[pd.DataFrame], None], version: Any, now: datetime) -> bool:
    """Fill ``engine``'s database with ``BENCH_ROWS`` rows, then time the queries."""
    rng = np.random.default_rng(0)
    rows = _rows(BENCH_ROWS, version, now, rng)
    started = time.perf_counter()
    fill(rows)
    _fill_outcomes_feedback(engine, rows, rng, now)
    print(f"[{name}] filled {len(rows):,} log rows in {time.perf_counter() - started:.1f} s")
    return time_queries(name, engine, now)


@contextmanager
def _postgres_schema() -> Iterator[str | None]:
    admin = sa.create_engine(POSTGRES_URL)
    schema = f"bench_{uuid.uuid4().hex[:10]}"
    try:
        with admin.begin() as connection:
            connection.exec_driver_sql(f'CREATE SCHEMA "{schema}"')
    except sa.exc.OperationalError:
        admin.dispose()
        yield None
        return
    try:
        yield f"{POSTGRES_URL}?options=-csearch_path%3D{schema}"
    finally:
        dispose_engines()
        with admin.begin() as connection:
            connection.exec_driver_sql(f'DROP SCHEMA "{schema}" CASCADE')
        admin.dispose()


def _prepare(url: str, trained: Any) -> tuple[Engine, str]:
    engine = get_engine(url)
    migrate(engine)
    with session_scope(engine) as session:
        return engine, register(session, trained, created_by="bench", activate=True, settings=get_settings())


def main() -> None:
    now = datetime.now(UTC)
    trained = train_setup(load_raw(settings=get_settings()), "early", runs=0)
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        path = str(Path(tmp) / "bench.db")
        engine, version = _prepare(f"sqlite:///{path}", trained)
        results["sqlite"] = run("sqlite", engine, lambda rows: _fill_sqlite(path, rows), version, now)
        dispose_engines()
    with _postgres_schema() as url:
        if url is None:
            print(f"[postgresql] skipped: {POSTGRES_URL} unreachable")
        else:
            engine, version = _prepare(url, trained)
            results["postgresql"] = run("postgresql", engine, lambda rows: _fill_postgresql(engine, rows), version, now)
    for name, ok in results.items():
        print(f"[{name}] every query <= {TARGET_SECONDS:g} s: {'yes' if ok else 'NO'}")


if __name__ == "__main__":
    main()
