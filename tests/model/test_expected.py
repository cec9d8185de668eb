"""Expected performance without labels (CBPE) and intervals on realized figures, on both databases.

The proof of the estimate is a simulated deployment built from the real maths file: a model trained on
half of the students "serves" the other half in ten weeks of 20; once the real grades are revealed, the
estimate's sampling interval must hold the realized accuracy in at least 80% of the weeks.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa
from scipy.stats import binomtest
from sklearn import metrics

from model.ml.training import TrainedVersion, register, train_setup
from model.monitoring import alerts
from model.monitoring import queries as monitoring
from model.monitoring.expected import expected_metrics, expected_over_time, expected_vs_realized
from model.monitoring.uncertainty import TOO_FEW, auc_interval, figure_text, rmse_interval, wilson
from model.serving.predlog.writer import write_log
from model.settings import get_settings
from model.store import db
from model.store.tables import ModelVersion, Outcome

FIRST_MONDAY = datetime(2026, 9, 7, tzinfo=UTC)
WEEKS, PER_WEEK, TRAIN_ROWS = 10, 20, 195
NOW = FIRST_MONDAY + timedelta(weeks=WEEKS + 1)
WINDOW = monitoring.Window(FIRST_MONDAY - timedelta(days=1), NOW)


# ------------------------------------------------------------------------- the formulas, against numpy
def _sums(p: np.ndarray) -> dict[str, float]:
    flagged = p < 0.5
    return {"n": len(p), "correct": np.where(flagged, 1 - p, p).sum(), "spread": (p * (1 - p)).sum(),
            "flagged": flagged.sum(), "tp": (1 - p)[flagged].sum(), "tp_var": (p * (1 - p))[flagged].sum(),
            "fn": (1 - p)[~flagged].sum(), "fn_var": (p * (1 - p))[~flagged].sum()}  # fmt: skip


def test_expected_figures_and_intervals_match_outcomes_drawn_from_the_probabilities() -> None:
    """Outcomes drawn from calibrated P(pass): the realized metrics' mean and spread are what CBPE says."""
    rng = np.random.default_rng(0)
    p = rng.beta(2, 1.2, 400)
    flagged = p < 0.5
    failed = rng.random((20_000, len(p))) >= p  # one simulated school year per row
    tp = (failed & flagged).sum(axis=1)
    fn = (failed & ~flagged).sum(axis=1)
    simulated = {
        "accuracy": (failed == flagged).mean(axis=1),
        "precision": tp / flagged.sum(),
        "recall": tp / (tp + fn),
        "f1": 2 * tp / (flagged.sum() + tp + fn),
    }
    got = expected_metrics(_sums(p))
    for name, values in simulated.items():
        assert got[name] == pytest.approx(values.mean(), abs=0.003), name
        half = (got[f"{name}_high"] - got[f"{name}_low"]) / 2
        assert half / 1.96 == pytest.approx(values.std(), rel=0.05), name
        inside = ((values >= got[f"{name}_low"]) & (values <= got[f"{name}_high"])).mean()
        assert 0.93 <= inside <= 0.97, name


def test_realized_intervals_against_scipy_and_a_bootstrap(raw_df: pd.DataFrame, trained_models: dict) -> None:
    """Wilson as scipy computes it; RMSE as a bootstrap of the real students; ROC-AUC no narrower than one."""
    assert wilson(37, 120) == pytest.approx(tuple(binomtest(37, 120).proportion_ci(method="wilson")))
    students = raw_df.iloc[:200]
    details = trained_models["early"].estimator.predict_details(students)
    error = details["predicted_g3"].to_numpy() - students["G3"].to_numpy()
    failed = students["G3"].to_numpy() < 10
    score = 1 - details["p_pass"].to_numpy()
    auc = metrics.roc_auc_score(failed, score)
    rng = np.random.default_rng(3)
    picks = rng.integers(0, len(error), (2_000, len(error)))
    boot_rmse = np.sqrt((error[picks] ** 2).mean(axis=1))
    boot_auc = np.array([metrics.roc_auc_score(failed[i], score[i]) for i in picks[:500]])
    low, high = rmse_interval(float((error**2).sum()), float((error**4).sum()), len(error))
    assert (low, high) == pytest.approx(tuple(np.quantile(boot_rmse, [0.025, 0.975])), rel=0.08)
    low, high = auc_interval(auc, int(failed.sum()), int((~failed).sum()))
    boot_width = np.diff(np.quantile(boot_auc, [0.025, 0.975]))[0]
    assert boot_width <= high - low <= 1.5 * boot_width  # Hanley-McNeil: conservative, never narrower
    assert low <= auc <= high
    assert figure_text(0.7, 0.6, 0.8, 12, 30) == f"{TOO_FEW} (n = 12)"
    assert figure_text(0.7, 0.6, 0.8, 40, 30) == "70% (60%–80%, n = 40)"


# ------------------------------------------------------------------------------ the simulated deployment
@pytest.fixture(scope="module")
def deployment(raw_df: pd.DataFrame) -> tuple[TrainedVersion, pd.DataFrame]:
    """The period1 model trained on 195 real students (seeded shuffle); the other 200 to serve."""
    order = np.random.default_rng(0).permutation(len(raw_df))
    train, served = raw_df.iloc[order[:TRAIN_ROWS]], raw_df.iloc[order[TRAIN_ROWS:]].reset_index(drop=True)
    return train_setup(train, "period1", runs=0), served


@pytest.fixture
def engine(db_url: str) -> Iterator[sa.Engine]:
    engine = db.get_engine(db_url)
    db.migrate(engine)
    yield engine
    db.dispose_engines()


def _serve(engine: sa.Engine, trained: TrainedVersion, served: pd.DataFrame) -> tuple[str, pd.DataFrame]:
    """Activate the model and log its predictions for the served students, 20 a week; no outcome yet."""
    with db.session_scope(engine) as session:
        version = register(session, trained, "pytest", activate=True, settings=get_settings())
    details = trained.estimator.predict_details(served)
    rows = [
        {"request_id": uuid.uuid4().hex, "channel": "api", "status": "ok", "latency_ms": 5.0, "is_demo": False,
         "created_at": FIRST_MONDAY + timedelta(weeks=i // PER_WEEK, days=1, minutes=i), "setup": "period1",
         "model_version_id": version, "student_key": f"s{i}", "predicted_g3": float(d.predicted_g3),
         "p_pass": float(d.p_pass), "band": d.band, "risk": d.risk, "inputs": {}}
        for i, d in enumerate(details.itertuples())
    ]  # fmt: skip
    write_log(engine, get_settings(), rows)
    weeks = [i // PER_WEEK for i in range(len(served))]
    truth = pd.DataFrame({"week": weeks, "g3": served["G3"].to_numpy(), "p_pass": details["p_pass"].to_numpy()})
    return version, truth


def _reveal(engine: sa.Engine, truth: pd.DataFrame) -> None:
    with engine.begin() as connection:
        connection.execute(sa.insert(Outcome), [{"student_key": f"s{i}", "g3": int(g), "recorded_at": NOW}
                                                 for i, g in enumerate(truth["g3"])])  # fmt: skip


def test_simulated_deployment_interval_covers_realized_accuracy(engine: sa.Engine, deployment: tuple) -> None:
    version, truth = _serve(engine, *deployment)
    with db.session_scope(engine) as session:
        before = expected_vs_realized(session, WINDOW, min_outcomes=10)
    assert before["n"].tolist() == [PER_WEEK] * WEEKS
    assert "realized_accuracy" not in before  # no outcome: only the estimate
    _reveal(engine, truth)
    with db.session_scope(engine) as session:
        after = expected_vs_realized(session, WINDOW, min_outcomes=10)
    assert after["setup"].unique().tolist() == ["period1"] and after["model_version_id"].unique().tolist() == [version]
    realized = truth.groupby("week").apply(lambda w: ((w["g3"] < 10) == (w["p_pass"] < 0.5)).mean())
    assert after["realized_accuracy"].to_numpy() == pytest.approx(realized.to_numpy())
    expected_acc = truth.assign(q=np.maximum(truth["p_pass"], 1 - truth["p_pass"])).groupby("week")["q"].mean()
    assert after["accuracy"].to_numpy() == pytest.approx(expected_acc.to_numpy())
    covered = (after["accuracy_low"] <= after["realized_accuracy"]) & (
        after["realized_accuracy"] <= after["accuracy_high"]
    )
    print(f"simulated deployment: interval covers realized accuracy in {covered.mean():.0%} of {WEEKS} weeks")
    assert covered.mean() >= 0.8
    wilson_low, wilson_high = after.loc[0, ["realized_accuracy_low", "realized_accuracy_high"]]
    assert (wilson_low, wilson_high) == pytest.approx(wilson(round(realized.iloc[0] * PER_WEEK), PER_WEEK))
    assert not after["realized_too_few"].any()
    with db.session_scope(engine) as session:
        few = expected_vs_realized(session, WINDOW, min_outcomes=PER_WEEK + 1)
    assert few["realized_too_few"].all()


def test_expected_accuracy_alert_fires_below_the_protocol_accuracy(
    engine: sa.Engine, deployment: tuple, monkeypatch: pytest.MonkeyPatch
) -> None:
    version, truth = _serve(engine, *deployment)
    monkeypatch.setenv("MATHSIGHT_ALERT_EXPECTED_DAYS", "80")
    monkeypatch.setenv("MATHSIGHT_ALERT_EXPECTED_ACCURACY_DROP", "0.05")
    get_settings.cache_clear()
    with db.session_scope(engine) as session:
        estimate = expected_over_time(session, WINDOW, [version], period="week")
        overall = float(np.maximum(truth["p_pass"], 1 - truth["p_pass"]).mean())
        for protocol, fires in ((overall + 0.04, False), (overall + 0.06, True)):
            session.execute(
                sa.update(ModelVersion).where(ModelVersion.id == version)
                .values(metrics={"binary_accuracy": {"mean": protocol * 100}})
            )  # fmt: skip
            firings = [f for f in alerts.check_rules(session, get_settings(), NOW) if f.rule.startswith("expected")]
            assert bool(firings) is fires
    assert len(estimate) == WEEKS
    assert firings[0].rule == "expected_accuracy_drop:period1" and firings[0].detail["n"] == len(truth)
    assert firings[0].value == pytest.approx(0.06)
