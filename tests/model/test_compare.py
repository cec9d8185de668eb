"""Comparing two registered versions on the real data: metrics, SHAP importance, agreement."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from model.ml.compare import compare_versions, metrics_table
from model.ml.evaluation import METRICS
from model.ml.training import TrainedVersion, train_setup
from model.ml.versions import setup_overview
from model.schema.fields import SETUP_FEATURES
from model.settings import get_settings
from model.store.db import get_engine, session_scope
from model.store.registry import active_version_ids
from tests.conftest import register_trained


@pytest.fixture(scope="module")
def scored(raw_df: pd.DataFrame) -> dict[str, TrainedVersion]:
    """Two period2 versions scored by one protocol run each: the default and a smaller, coarser one (its tree
    count fixed: the default's own inner choice already keeps few trees in period2, so a smaller maximum alone
    can give the same whole-grade medians)."""
    small = {"n_estimators": 40, "num_leaves": 4, "learning_rate": 0.3, "select_trees": False}
    return {
        "default": train_setup(raw_df, "period2", runs=1),
        "small": train_setup(raw_df, "period2", runs=1, params=small),
    }


def test_compare_two_versions_side_by_side(
    models_db_url: str, scored: dict[str, TrainedVersion], raw_df: pd.DataFrame
) -> None:
    engine = get_engine(models_db_url)
    a = register_trained(engine, scored["default"], created_by="pytest")
    b = register_trained(engine, scored["small"], created_by="pytest")
    with session_scope(engine) as session:
        result = compare_versions(session, a, b, raw_df, settings=get_settings())

    assert (result.a.id, result.b.id) == (a, b)
    assert list(result.metrics.index) == list(METRICS)
    assert result.metrics[["a_mean", "a_std", "b_mean", "b_std"]].notna().all().all()
    assert result.metrics.loc["rmse", "a_mean"] == pytest.approx(scored["default"].metrics["rmse"]["mean"])
    rmse = result.metrics.loc["rmse"]
    assert rmse["better"] == ("a" if rmse["a_mean"] < rmse["b_mean"] else "b")

    assert set(result.importance.index) == set(SETUP_FEATURES["period2"])
    assert (result.importance >= 0).all().all()
    assert result.importance.index[0] == "G2"  # the latest grade dominates both models

    pred_a = scored["default"].estimator.predict_details(raw_df)
    pred_b = scored["small"].estimator.predict_details(raw_df)
    agreement = np.mean((pred_a["p_pass"] >= 0.5) == (pred_b["p_pass"] >= 0.5)) * 100
    assert result.pass_agreement == pytest.approx(agreement)
    assert result.mean_abs_difference == pytest.approx(np.mean(np.abs(pred_a["predicted_g3"] - pred_b["predicted_g3"])))
    assert 0 < result.mean_abs_difference < 2
    assert result.n_reference == len(raw_df)


def test_a_version_compared_with_itself_agrees_fully(models_db_url: str, raw_df: pd.DataFrame) -> None:
    with session_scope(get_engine(models_db_url)) as session:
        active = setup_overview(session, "early").active_id
        result = compare_versions(session, active, active, raw_df, settings=get_settings())
    assert result.pass_agreement == 100.0
    assert result.mean_abs_difference == 0.0
    assert (result.importance["a"] == result.importance["b"]).all()


def test_versions_of_different_setups_show_each_attribute_they_use(models_db_url: str, raw_df: pd.DataFrame) -> None:
    with session_scope(get_engine(models_db_url)) as session:
        early = setup_overview(session, "early").active_id
        period2 = setup_overview(session, "period2").active_id
        result = compare_versions(session, early, period2, raw_df, settings=get_settings())
    assert np.isnan(result.importance.loc["G2", "a"]) and result.importance.loc["G2", "b"] > 0
    assert result.metrics["a_mean"].isna().all()  # the fixture's versions were not scored (runs=0)
    assert (result.metrics["better"] == "").all()


def test_metrics_table_prefers_coverage_near_ninety_and_low_error() -> None:
    a = {"rmse": {"mean": 2.0, "std": 0.1}, "interval_coverage": {"mean": 95.0, "std": 1.0},
         "binary_accuracy": {"mean": 90.0, "std": 1.0}}  # fmt: skip
    b = {"rmse": {"mean": 2.5, "std": 0.1}, "interval_coverage": {"mean": 89.0, "std": 1.0},
         "binary_accuracy": {"mean": 91.0, "std": 1.0}}  # fmt: skip
    table = metrics_table(a, b)
    assert table.loc["rmse", "better"] == "a"
    assert table.loc["interval_coverage", "better"] == "b"
    assert table.loc["binary_accuracy", "better"] == "b"
    assert table.loc["rmse", "difference"] == pytest.approx(0.5)
    assert np.isnan(table.loc["roc_auc", "a_mean"]) and table.loc["roc_auc", "better"] == ""


def test_setup_overview_lists_versions_newest_first_with_the_active_one(
    models_db_url: str, scored: dict[str, TrainedVersion]
) -> None:
    engine = get_engine(models_db_url)
    new = register_trained(engine, scored["small"], created_by="admin-ana")
    with session_scope(engine) as session:
        overview = setup_overview(session, "period2")
    table = overview.versions
    assert list(table["version"])[0] == new
    assert not table.iloc[0]["active"]
    assert table.loc[table["version"] == overview.active_id, "active"].item()
    assert table.iloc[0]["created_by"] == "admin-ana"
    assert table.iloc[0]["runs"] == 1 and "±" in table.iloc[0]["RMSE"]
    assert len(table.iloc[0]["data"]) == 12
    assert overview.previous_id is None


def test_cli_compare_prints_metrics_agreement_and_importance(
    app_db_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    from model.cli.main import main

    with session_scope(get_engine(app_db_url)) as session:
        active = active_version_ids(session)
    assert main(["compare", active["period1"], active["period2"], "--top", "3"]) == 0
    out = capsys.readouterr().out
    assert f"A = {active['period1']}" in out and "same pass/fail call on" in out and "mean |SHAP|" in out
