"""Demo traffic for the monitoring pages: ``python -m model demo-traffic`` seeds a believable history.

It writes DEMO data (every log row has ``is_demo`` set, student ids start with ``demo-``): students
sampled from the real data set with small perturbations, a growing drift on a few attributes over
the last week, a few invalid rows that the real validator rejects, predictions by the real active
models (``predict_frame``), back-dated over the chosen days, real final grades recorded for part of
the older students and a few "not useful" and "wrongly flagged" remarks. Running it again replaces
the previous demo data.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from model.monitoring.queries import LOG
from model.schema.fields import ATTRIBUTES, GRADES, TARGET
from model.schema.validation import validate_frame
from model.serving.predlog.writer import prepare_rows, student_key
from model.serving.service import ModelStore, predict_frame
from model.settings import Settings
from model.store.tables import Feedback, Outcome, PredictionLog

DRIFT_DAYS = 7
CHUNK = 5_000
CHANNEL_SHARE = {"ui": 0.55, "api": 0.3, "cli": 0.15}
BATCH_SIZE = {"ui": (1, 1), "api": (5, 25), "cli": (20, 40)}
FEEDBACK_REASONS = {"grade looks too low for this student": "not_useful",
                    "risk level does not match what I see in class": "wrongly_flagged",
                    "predicted grade ignores recent improvement": "not_useful"}  # reason -> category  # fmt: skip


@dataclass(frozen=True)
class DemoSummary:
    """What ``demo-traffic`` wrote."""

    rows: int
    rejected: int
    outcomes: int
    feedback: int


def clear_demo(engine: Engine) -> int:
    """Delete earlier demo rows, their feedback and the outcomes of demo students; returns log rows deleted."""
    demo_keys = sa.select(LOG.student_key).where(LOG.is_demo.is_(True), LOG.student_key.is_not(None))
    demo_ids = sa.select(LOG.id).where(LOG.is_demo.is_(True))
    with engine.begin() as connection:
        connection.execute(sa.delete(Outcome).where(Outcome.student_key.in_(demo_keys)))
        connection.execute(sa.delete(Feedback).where(Feedback.prediction_id.in_(demo_ids)))
        return connection.execute(sa.delete(PredictionLog).where(LOG.is_demo.is_(True))).rowcount


def _students(frame: pd.DataFrame, n: int, drift: np.ndarray, rng: np.random.Generator) -> pd.DataFrame:
    """``n`` students resampled from ``frame`` with small noise, shifted by ``drift`` (0-1 per row)."""
    rows = frame.sample(n, replace=True, random_state=rng).reset_index(drop=True)
    extra_absences = np.round(drift * rng.uniform(0, 15, n))
    rows["absences"] = np.clip(rows["absences"] + rng.integers(-2, 3, n) + extra_absences, 0, 93)
    for name, chance in (("goout", 0.9), ("Walc", 0.6), ("freetime", 0.4)):
        rows[name] = np.clip(rows[name] + (rng.random(n) < drift * chance), 1, 5)
    rows["studytime"] = np.clip(rows["studytime"] - (rng.random(n) < drift * 0.6), 1, 4)
    rows.loc[rng.random(n) < drift * 0.5, "higher"] = "no"
    rows.loc[rng.random(n) < drift * 0.5, "Mjob"] = "at_home"
    knows = rng.choice(3, n, p=[0.5, 0.3, 0.2])  # early, period1, period2
    rows["G1"] = rows["G1"].astype("Int64").where(knows >= 1)
    rows["G2"] = rows["G2"].astype("Int64").where(knows >= 2)
    rows.loc[rng.random(n) < 0.02, "age"] = 31  # mistyped entries, rejected by the validator
    return rows.astype({name: "Int64" for name in ("absences", "goout", "Walc", "freetime", "studytime")})


def _requests(n: int, start: datetime, rng: np.random.Generator) -> pd.DataFrame:
    """Group ``n`` rows of one day into requests: channel, request id and time per row."""
    channels, ids, times = [], [], []
    while len(channels) < n:
        channel = rng.choice(list(CHANNEL_SHARE), p=list(CHANNEL_SHARE.values()))
        size = min(int(rng.integers(BATCH_SIZE[channel][0], BATCH_SIZE[channel][1] + 1)), n - len(channels))
        at = start + timedelta(hours=7 + 11 * rng.random())
        channels += [channel] * size
        ids += [f"demo-{rng.integers(1 << 62):016x}"] * size
        times += [at] * size
    return pd.DataFrame({"channel": channels, "request_id": ids, "created_at": times})


def _latency(requests: pd.DataFrame, per_row_ms: float, rng: np.random.Generator) -> np.ndarray:
    """Latency per row: a measured per-row cost plus a per-request overhead, log-normally jittered."""
    sizes = requests.groupby("request_id")["request_id"].transform("size").to_numpy()
    overhead = np.where(requests["channel"] == "ui", 40.0, 15.0)
    jitter = rng.lognormal(0.0, 0.35, len(requests))
    return (per_row_ms * sizes + overhead) * jitter / sizes


def _log_rows(
    students: pd.DataFrame, requests: pd.DataFrame, store: ModelStore, rng: np.random.Generator
) -> list[dict[str, Any]]:
    """Validate and predict the students with the real core; one log row each (rejected ones too)."""
    validation = validate_frame(students[[*ATTRIBUTES, *GRADES, "student_id"]])
    started = time.perf_counter()
    results = predict_frame(store, validation.accepted, explain=False).results
    per_row_ms = (time.perf_counter() - started) * 1000 / max(len(results), 1)
    latency = _latency(requests, per_row_ms, rng)
    positions = {int(row) - 2: row for row in results.index}  # validate_frame numbers rows from 2
    inputs = validation.accepted[[*ATTRIBUTES, *GRADES]].astype(object)
    inputs = inputs.where(inputs.notna(), None)
    rows = []
    for pos, request in enumerate(requests.itertuples(index=False)):
        base = {"request_id": request.request_id, "channel": request.channel, "created_at": request.created_at,
                "latency_ms": float(latency[pos]), "is_demo": True}  # fmt: skip
        row = positions.get(pos)
        if row is None:
            rows.append(base | {"status": "rejected", "error_type": "validation"})
            continue
        r = results.loc[row]
        rows.append(base | {
            "status": "ok", "model_version_id": r.model_version, "setup": r.setup,
            "student_key": student_key(r.student_id, store.settings), "inputs": inputs.loc[row].to_dict(),
            "predicted_g3": float(r.predicted_g3), "lower": float(r.lower), "upper": float(r.upper),
            "p_pass": float(r.p_pass), "band": r.band, "risk": r.risk,
        })  # fmt: skip
    return rows


def _insert_log(engine: Engine, settings: Settings, rows: list[dict[str, Any]]) -> list[int]:
    """Insert the demo rows as the service would (idempotency keys, inputs encrypted under a data key);
    returns their ids, for the feedback remarks."""
    ids: list[int] = []
    complete = prepare_rows(rows, settings)
    with engine.begin() as connection:
        for start in range(0, len(complete), CHUNK):
            query = sa.insert(PredictionLog).returning(PredictionLog.id, sort_by_parameter_order=True)
            ids += list(connection.execute(query, complete[start : start + CHUNK]).scalars())
    return ids


def _outcomes_and_feedback(
    rows: list[dict[str, Any]], ids: list[int], grades: np.ndarray, now: datetime, rng: np.random.Generator
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    outcomes, feedback = [], []
    for row, row_id, g3 in zip(rows, ids, grades, strict=True):
        if row["status"] != "ok":
            continue
        recorded = row["created_at"] + timedelta(days=float(rng.uniform(3, 20)))
        if recorded < now and rng.random() < 0.4:
            outcomes.append({"student_key": row["student_key"], "g3": int(g3), "recorded_at": recorded})
        if rng.random() < 0.03:
            reason = str(rng.choice(list(FEEDBACK_REASONS)))
            remarked = row["created_at"] + timedelta(minutes=5)
            feedback.append({"prediction_id": row_id, "category": FEEDBACK_REASONS[reason],
                             "reason": f"[demo] {reason}", "created_at": remarked})  # fmt: skip
    return outcomes, feedback


def demo_traffic(
    engine: Engine,
    store: ModelStore,
    frame: pd.DataFrame,
    days: int = 30,
    rows_per_day: int = 60,
    seed: int = 0,
    now: datetime | None = None,
) -> DemoSummary:
    """Replace the demo data with ``days`` of demo traffic ending at ``now`` (see the module doc)."""
    rng = np.random.default_rng(seed)
    now = now or datetime.now(UTC)
    first = (now - timedelta(days=days)).replace(hour=0, minute=0, second=0, microsecond=0)
    parts, requests = [], []
    for day in range(days):
        start = first + timedelta(days=day)
        n = max(1, int(rng.poisson(rows_per_day * (0.3 if start.weekday() >= 5 else 1.0))))
        drift = np.full(n, max(0.0, (day - (days - DRIFT_DAYS) + 1) / DRIFT_DAYS))
        parts.append(_students(frame, n, drift, rng))
        requests.append(_requests(n, start, rng))
    students = pd.concat(parts, ignore_index=True)
    students["student_id"] = [f"demo-{seed}-{i}" for i in range(len(students))]
    requests_frame = pd.concat(requests, ignore_index=True)
    keep = requests_frame["created_at"] < now
    students, requests_frame = students[keep].reset_index(drop=True), requests_frame[keep].reset_index(drop=True)
    rows = _log_rows(students, requests_frame, store, rng)
    clear_demo(engine)
    ids = _insert_log(engine, store.settings, rows)
    outcomes, feedback = _outcomes_and_feedback(rows, ids, students[TARGET].to_numpy(), now, rng)
    with engine.begin() as connection:
        if outcomes:
            connection.execute(sa.insert(Outcome), outcomes)
        if feedback:
            connection.execute(sa.insert(Feedback), feedback)
    rejected = sum(row["status"] != "ok" for row in rows)
    return DemoSummary(len(rows), rejected, len(outcomes), len(feedback))
