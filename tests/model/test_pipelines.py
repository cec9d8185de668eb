"""The grade model on the real data: estimator contract, outputs, interval, calibration, SHAP sums."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone

from model.ml.grade_model import DEFAULT_PARAMS, GradeModel, risk_level
from model.schema.fields import ATTRIBUTES, BANDS


def test_estimator_contract_params_stored_as_given() -> None:
    model = GradeModel(setup="period1", n_estimators=7, floor=0.05)
    assert model.get_params()["n_estimators"] == 7
    copy = clone(model)
    assert copy.get_params() == model.get_params()
    assert not hasattr(copy, "mean_head_")


@pytest.mark.parametrize("setup", ["early", "period1", "period2"])
def test_outputs_are_in_range_and_consistent(trained_models: dict, raw_df: pd.DataFrame, setup: str) -> None:
    details = trained_models[setup].estimator.predict_details(raw_df)
    assert list(details.index) == list(raw_df.index)
    for column in ("predicted_g3", "lower", "upper", "likely_g3"):
        assert details[column].between(0, 20).all()
    assert (details["lower"] <= details["predicted_g3"]).all() and (details["predicted_g3"] <= details["upper"]).all()
    assert details["p_pass"].between(0, 1).all()
    assert set(details["band"]) <= set(BANDS)
    assert set(details["risk"]) <= {"high", "medium", "low"}
    np.testing.assert_array_equal(details["risk"].to_numpy(), risk_level(details["p_pass"].to_numpy()))


def test_p_pass_agrees_with_the_likely_grade(trained_models: dict, raw_df: pd.DataFrame) -> None:
    details = trained_models["period2"].estimator.predict_details(raw_df)
    assert ((details["likely_g3"] >= 10) == (details["p_pass"] >= 0.5)).all()


def test_period_setups_need_their_grades(trained_models: dict, raw_df: pd.DataFrame) -> None:
    with pytest.raises(ValueError, match="G2"):
        trained_models["period2"].estimator.predict(raw_df[list(ATTRIBUTES) + ["G1"]])


@pytest.mark.parametrize("setup", ["early", "period2"])
def test_shap_contributions_add_up_to_the_prediction(trained_models: dict, raw_df: pd.DataFrame, setup: str) -> None:
    model = trained_models[setup].estimator
    explanation = model.explain(raw_df)
    total = explanation.base_value + explanation.contributions.sum(axis=1).to_numpy()
    np.testing.assert_allclose(total, explanation.raw_prediction, atol=1e-6)
    np.testing.assert_allclose(np.clip(explanation.raw_prediction, 0, 20), model.predict(raw_df), atol=1e-6)
    assert list(explanation.contributions.columns) == model.features_


def test_grades_dominate_the_period2_explanation(trained_models: dict, raw_df: pd.DataFrame) -> None:
    importance = trained_models["period2"].estimator.explain(raw_df).contributions.abs().mean()
    assert importance.idxmax() == "G2"


def test_interval_covers_about_ninety_percent_out_of_sample(raw_df: pd.DataFrame) -> None:
    train, test = raw_df.iloc[:300], raw_df.iloc[300:]
    model = GradeModel(setup="period1", **DEFAULT_PARAMS["period1"]).fit(train, train["G3"])
    details = model.predict_details(test)
    covered = ((details["lower"] <= test["G3"]) & (test["G3"] <= details["upper"])).mean()
    assert 0.8 <= covered <= 1.0


def test_fitting_is_deterministic(raw_df: pd.DataFrame) -> None:
    first = GradeModel(setup="early", random_state=3).fit(raw_df, raw_df["G3"]).predict(raw_df)
    second = GradeModel(setup="early", random_state=3).fit(raw_df, raw_df["G3"]).predict(raw_df)
    np.testing.assert_array_equal(first, second)


@pytest.mark.parametrize("setup", ["early", "period2"])
def test_fast_encoding_equals_the_saved_preprocessor(trained_models: dict, raw_df: pd.DataFrame, setup: str) -> None:
    model = trained_models[setup].estimator
    _, fast = model._encode(raw_df)
    reference = model.mean_head_.named_steps["pre"].transform(GradeModel._inputs(raw_df, model.features_))
    np.testing.assert_array_equal(fast, reference)
