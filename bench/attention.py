"""The "needs attention" query for a teacher with 2,000 students and 50,000 log rows (target <= 300 ms).

Fills a fresh SQLite file and a fresh PostgreSQL schema (``MATHSIGHT_BENCH_POSTGRES_URL``, default the
local test server; skipped when unreachable) with one teacher's 2,000 students predicted 25 times each
over the year (P(pass) drawn at random), 500 interventions (a fifth of them with a review date passed)
and 600 final grades, with the year's end passed so every reason is judged. Times the query (median
of 7 warm runs; the SQL alone, and with the table and its reasons in words) beside a plain
``COUNT(*)`` of the teacher's log rows in the same run, and prints the students listed,
milliseconds and the ratios to the baseline.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta

import numpy as np
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from bench._common import isolated_home, on_both_databases

STUDENTS = 2_000
PREDICTIONS_EACH = 25
TARGET_MS = 300.0
RUNS = 7
TODAY = date(2026, 7, 20)


def _fill(engine: Engine) -> int:
    from model.store.tables import Intervention, Outcome, PredictionLog, User

    rng = np.random.default_rng(13)
    start = datetime(2025, 9, 1, 8, tzinfo=UTC)
    with engine.begin() as connection:
        teacher = connection.execute(
            sa.insert(User).values(username="tina", name="Tina", password_hash="-", role="teacher").returning(User.id)
        ).scalar_one()
        keys = [f"{i:040x}" for i in range(STUDENTS)]
        p_pass = rng.uniform(0.05, 0.99, (PREDICTIONS_EACH, STUDENTS))
        rows = [
            {"request_id": f"r{k}", "idempotency_key": f"r{k}:{i}", "created_at": start + timedelta(days=12 * k),
             "user_id": teacher, "channel": "ui", "setup": "early", "student_key": key, "p_pass": float(p_pass[k, i]),
             "risk": "high" if p_pass[k, i] < 0.5 else "low", "status": "ok"}
            for k in range(PREDICTIONS_EACH) for i, key in enumerate(keys)
        ]  # fmt: skip
        connection.execute(sa.insert(PredictionLog), rows)
        plans = [
            {"user_id": teacher, "student_key": keys[i], "kind": "tutoring", "status": "active",
             "start_date": date(2026, 3, 1), "review_date": date(2026, 7, 1) if i % 5 == 0 else date(2026, 9, 1),
             "created_at": start, "updated_at": start}
            for i in range(0, STUDENTS, 4)
        ]  # fmt: skip
        connection.execute(sa.insert(Intervention), plans)
        grades = [{"student_key": keys[i], "g3": 12, "recorded_by": teacher} for i in range(0, 1800, 3)]
        connection.execute(sa.insert(Outcome), grades)
        if connection.dialect.name == "postgresql":
            connection.exec_driver_sql("ANALYZE")
    return teacher


def _median_ms(call: Callable[[], object]) -> float:
    call()  # warm
    times = []
    for _ in range(RUNS):
        started = time.perf_counter()
        call()
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


def run(name: str, engine: Engine) -> bool:
    from model.schema.thresholds import DEFAULT_THRESHOLDS
    from model.serving.attention import attention_query, needs_attention
    from model.store.db import migrate, session_scope
    from model.store.tables import PredictionLog

    migrate(engine)
    teacher = _fill(engine)
    thresholds = replace(DEFAULT_THRESHOLDS, year_end=date(2026, 7, 15))
    with session_scope(engine) as session:
        listed = len(needs_attention(session, teacher, thresholds, TODAY))
        query_ms = _median_ms(lambda: session.execute(attention_query(teacher, thresholds, TODAY)).all())
        frame_ms = _median_ms(lambda: needs_attention(session, teacher, thresholds, TODAY))
        count = sa.select(sa.func.count()).select_from(PredictionLog).where(PredictionLog.user_id == teacher)
        rows = session.execute(count).scalar_one()
        base_ms = _median_ms(lambda: session.execute(count).scalar_one())
    ok = frame_ms <= TARGET_MS
    print(f"[{name}] {rows:,} log rows, {STUDENTS:,} students, {listed} listed: query {query_ms:.1f} ms, "
          f"with the table and its reasons {frame_ms:.1f} ms (count baseline {base_ms:.1f} ms; ratios "
          f"{query_ms / base_ms:.1f}x, {frame_ms / base_ms:.1f}x); <= {TARGET_MS:g} ms: {'yes' if ok else 'NO'}",
          flush=True)  # fmt: skip
    return ok


def main() -> None:
    isolated_home()
    on_both_databases(run)


if __name__ == "__main__":
    main()
