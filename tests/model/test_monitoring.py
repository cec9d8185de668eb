"""Monitoring aggregations on SQLite and PostgreSQL: counts, percentiles, feedback, realized metrics."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa
from sklearn import metrics
from sqlalchemy.orm import Session

from model.monitoring import queries as monitoring
from model.serving.predlog.writer import write_log
from model.settings import get_settings
from model.store import db
from model.store.tables import Feedback, Outcome, PredictionLog

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
DAY1, DAY2 = NOW - timedelta(days=2), NOW - timedelta(days=1)


@pytest.fixture
def engine(models_db_url: str) -> Iterator[sa.Engine]:
    yield db.get_engine(models_db_url)
    db.dispose_engines()


@pytest.fixture
def session(engine: sa.Engine) -> Iterator[Session]:
    """The read transaction a front would open (its first query runs after the test's writes)."""
    with db.session_scope(engine) as session:
        yield session


def _row(at: datetime, **values: object) -> dict[str, object]:
    """A log row; every row its own request (the log skips repeated idempotency keys)."""
    ok = values.get("status", "ok") == "ok"
    base = {
        "request_id": uuid.uuid4().hex,
        "channel": "ui",
        "created_at": at,
        "status": "ok",
        "latency_ms": 10.0,
        "is_demo": False,
    }
    if ok:
        base |= {"setup": "early", "predicted_g3": 12.0, "p_pass": 0.8, "band": "III", "risk": "low", "inputs": {}}
    return base | values


def _window(include_demo: bool = True) -> monitoring.Window:
    return monitoring.Window(NOW - timedelta(days=3), NOW, include_demo)


@pytest.fixture
def traffic(engine: sa.Engine) -> dict[str, list[float]]:
    """Two days of rows with known channels, statuses, latencies, bands, risks and a demo row."""
    rng = np.random.default_rng(1)
    latencies = {"day1": list(rng.lognormal(2, 1, 37)), "day2": list(rng.lognormal(3, 0.5, 20))}
    rows = [_row(DAY1 + timedelta(minutes=i), latency_ms=v, channel=("ui", "api", "cli")[i % 3])
            for i, v in enumerate(latencies["day1"])]  # fmt: skip
    rows += [_row(DAY2 + timedelta(minutes=i), latency_ms=v, channel="api", band="V", risk="high", predicted_g3=7.4)
             for i, v in enumerate(latencies["day2"])]  # fmt: skip
    rows += [_row(DAY2, status="rejected", error_type="validation", latency_ms=None)] * 2
    rows += [_row(DAY2, status="error", error_type="NoActiveModel", latency_ms=None)]
    rows += [_row(DAY2, is_demo=True, channel="cli", latency_ms=None), _row(NOW, channel="cli")]  # last: outside
    write_log(engine, get_settings(), rows)
    return latencies


def test_volume_status_and_error_types_per_day(session: Session, traffic: dict) -> None:
    volume = monitoring.volume_by_day(session, _window()).set_index("day")
    assert volume.loc["2026-11-18"].to_dict() == {"ui": 13, "api": 12, "cli": 12}
    assert volume.loc["2026-11-19"].to_dict() == {"ui": 3, "api": 20, "cli": 1}
    status = monitoring.status_by_day(session, _window()).set_index("day")
    assert status.loc["2026-11-19", ["ok", "rejected", "error", "total"]].tolist() == [21, 2, 1, 24]
    assert status.loc["2026-11-19", "error_rate"] == pytest.approx(3 / 24)
    types = monitoring.error_types(session, _window())
    assert types.values.tolist() == [["rejected", "validation", 2], ["error", "NoActiveModel", 1]]
    assert monitoring.error_summary(session, _window()) == {"total": 61, "failed": 3, "error_rate": 3 / 61}


def test_demo_rows_are_counted_and_can_be_left_out(session: Session, traffic: dict) -> None:
    assert monitoring.demo_rows(session, _window()) == 1
    without = monitoring.volume_by_day(session, _window(include_demo=False)).set_index("day")
    assert without.loc["2026-11-19", "cli"] == 0


@pytest.mark.parametrize("walk", [False, True], ids=["sorted", "index-walk"])
def test_latency_percentiles_match_numpy_per_day_and_overall(
    session: Session, traffic: dict, walk: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Both ways SQLite finds a window's percentiles: sorting few rows, walking the latency index for many."""
    if walk:
        monkeypatch.setattr(monitoring, "SORT_ROWS", 0)
    by_day = monitoring.latency_by_day(session, _window()).set_index("day")
    for day, values in (("2026-11-18", traffic["day1"]), ("2026-11-19", traffic["day2"])):
        assert by_day.loc[day, "n"] == len(values)
        assert by_day.loc[day, "p50"] == pytest.approx(np.percentile(values, 50))
        assert by_day.loc[day, "p95"] == pytest.approx(np.percentile(values, 95))
    summary = monitoring.latency_summary(session, _window())
    every = traffic["day1"] + traffic["day2"]
    assert summary["n"] == len(every)
    assert summary["p50"] == pytest.approx(np.percentile(every, 50))
    assert summary["p95"] == pytest.approx(np.percentile(every, 95))


def test_an_empty_window_has_no_latency(session: Session) -> None:
    assert monitoring.latency_summary(session, _window()) == {"n": 0, "p50": None, "p95": None}
    assert monitoring.latency_by_day(session, _window()).empty


def test_bands_risk_and_grade_histogram(session: Session, traffic: dict) -> None:
    bands = monitoring.bands_by_day(session, _window()).set_index("day")
    assert bands.loc["2026-11-18"].to_dict() == {"I": 0, "II": 0, "III": 37, "IV": 0, "V": 0}
    assert bands.loc["2026-11-19", "V"] == 20
    risk = monitoring.risk_by_day(session, _window()).set_index("day")
    assert risk.loc["2026-11-19"].to_dict() == {"high": 20, "medium": 0, "low": 1}
    histogram = monitoring.predicted_grade_histogram(session, _window())
    assert dict(zip(histogram["grade"], histogram["n"], strict=True)) == {7: 20, 12: 38}


def test_feedback_rate_counts_negative_remarks_on_the_window_s_predictions(
    engine: sa.Engine, session: Session, traffic: dict
) -> None:
    with engine.begin() as connection:
        ids = connection.execute(sa.select(PredictionLog.id).where(PredictionLog.status == "ok")).scalars().all()
        given = [(ids[0], "not_useful"), (ids[1], "wrongly_flagged"), (ids[2], "useful"),
                 (ids[3], "already_handled"), (ids[4], "useful"), (ids[-1], "not_useful")]  # fmt: skip
        connection.execute(sa.insert(Feedback), [{"prediction_id": i, "category": c} for i, c in given])
    summary = monitoring.feedback_summary(session, _window())
    assert summary == {"predictions": 58, "feedback": 2, "rate": 2 / 58}  # ids[-1] is outside the window
    by_day = monitoring.feedback_by_day(session, _window()).set_index("day")
    assert by_day.loc["2026-11-18", ["predictions", "feedback"]].tolist() == [37, 2]
    assert by_day.loc["2026-11-19", "feedback"] == 0
    counts = monitoring.feedback_by_category(session, _window())
    assert counts.to_dict("list") == {
        "category": ["useful", "not_useful", "wrongly_flagged", "already_handled", "not_applicable"],
        "remarks": [2, 1, 1, 1, 0],
        "negative": [False, True, True, False, False],
    }


def _realized_rows(engine: sa.Engine, raw_df: pd.DataFrame, trained_models: dict) -> pd.DataFrame:
    """Real predictions of the early model for 120 real students, with their real G3 as outcome."""
    students = raw_df.iloc[:120]
    details = trained_models["early"].estimator.predict_details(students)
    with engine.connect() as connection:
        version = connection.execute(sa.text("SELECT version_id FROM active_model WHERE setup = 'early'")).scalar_one()
    keys = [f"k{i}" for i in range(len(students))]
    write_log(engine, get_settings(), [
        _row(DAY1 + timedelta(days=i % 2), student_key=k, model_version_id=version,
             predicted_g3=float(d.predicted_g3), p_pass=float(d.p_pass))
        for i, (k, d) in enumerate(zip(keys, details.itertuples(), strict=True))
    ])  # fmt: skip
    older = [{"student_key": k, "g3": 0, "recorded_at": NOW - timedelta(days=5)} for k in keys]
    latest = [{"student_key": k, "g3": int(g), "recorded_at": NOW} for k, g in zip(keys, students["G3"], strict=True)]
    with engine.begin() as connection:
        connection.execute(sa.insert(Outcome), older + latest)
    return pd.DataFrame({"pred": details["predicted_g3"].to_numpy(), "p_pass": details["p_pass"].to_numpy(),
                         "g3": students["G3"].to_numpy(), "version": version})  # fmt: skip


def _sklearn(expected: pd.DataFrame) -> dict[str, float]:
    failed = expected["g3"] < 10
    flagged = expected["p_pass"] < 0.5
    return {
        "n": len(expected),
        "mae": metrics.mean_absolute_error(expected["g3"], expected["pred"]),
        "rmse": metrics.root_mean_squared_error(expected["g3"], expected["pred"]),
        "accuracy": metrics.accuracy_score(failed, flagged),
        "precision": metrics.precision_score(failed, flagged),
        "recall": metrics.recall_score(failed, flagged),
        "f1": metrics.f1_score(failed, flagged),
        "roc_auc": metrics.roc_auc_score(failed, 1 - expected["p_pass"]),
    }


def test_realized_metrics_match_sklearn_using_the_latest_outcome(
    engine: sa.Engine, session: Session, raw_df: pd.DataFrame, trained_models: dict
) -> None:
    expected = _realized_rows(engine, raw_df, trained_models)
    table = monitoring.realized_by_version(session, _window())
    assert table["model_version_id"].tolist() == [expected["version"][0]]
    assert table.iloc[0]["setup"] == "early"
    got = table.iloc[0][list(monitoring.REALIZED_METRICS)].to_dict()
    assert got == pytest.approx(_sklearn(expected))


def test_realized_metrics_over_time_split_by_week(
    engine: sa.Engine, session: Session, raw_df: pd.DataFrame, trained_models: dict
) -> None:
    expected = _realized_rows(engine, raw_df, trained_models)
    weekly = monitoring.realized_over_time(session, _window(), period="day")
    assert weekly["n"].tolist() == [60, 60]
    day1 = expected.iloc[::2].reset_index(drop=True)
    assert weekly.iloc[0][list(monitoring.REALIZED_METRICS)].to_dict() == pytest.approx(_sklearn(day1))


def test_realized_metrics_without_both_classes_leave_undefined_ones_empty(engine: sa.Engine, session: Session) -> None:
    write_log(
        engine,
        get_settings(),
        [_row(DAY1, student_key=f"p{i}", predicted_g3=12.0 + i, p_pass=0.9 - i / 10) for i in range(2)],
    )
    with engine.begin() as connection:
        connection.execute(sa.insert(Outcome), [{"student_key": f"p{i}", "g3": 13 + 2 * i, "recorded_at": NOW}
                                                 for i in range(2)])  # fmt: skip
    result = monitoring.realized_by_version(session, _window()).iloc[0]
    assert result["n"] == 2 and result["accuracy"] == 1.0 and result["mae"] == pytest.approx(1.5)
    assert result["roc_auc"] is None and result["precision"] is None and result["recall"] is None
    assert monitoring.realized_by_version(session, _window(), versions=["none"]).empty


def test_realized_roc_auc_averages_tied_scores_like_sklearn(engine: sa.Engine, session: Session) -> None:
    p_pass = [0.2, 0.2, 0.2, 0.7, 0.7, 0.9, 0.4, 0.4]
    g3 = [8, 12, 9, 11, 7, 15, 12, 3]
    write_log(
        engine,
        get_settings(),
        [_row(DAY1, student_key=f"t{i}", predicted_g3=10.0, p_pass=p) for i, p in enumerate(p_pass)],
    )
    with engine.begin() as connection:
        connection.execute(sa.insert(Outcome), [{"student_key": f"t{i}", "g3": g, "recorded_at": NOW}
                                                 for i, g in enumerate(g3)])  # fmt: skip
    failed = np.array(g3) < 10
    got = monitoring.realized_by_version(session, _window()).iloc[0]
    assert got["roc_auc"] == pytest.approx(metrics.roc_auc_score(failed, 1 - np.array(p_pass)))
