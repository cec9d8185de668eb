"""Table TreeSHAP equals LightGBM's own pred_contrib (and shap's TreeExplainer) value for value."""

from __future__ import annotations

import lightgbm as lgb
import numpy as np
import pandas as pd
import pytest
import shap

from model.ml.grade_model import TABLE_SHAP_MIN_ROWS, GradeModel
from model.ml.treeshap import MAX_SPLITS, TableShap


@pytest.mark.parametrize("setup", ["early", "period1", "period2"])
def test_equals_pred_contrib_on_the_trained_mean_heads(trained_models: dict, raw_df: pd.DataFrame, setup: str) -> None:
    model = trained_models[setup].estimator
    _, Z = model._encode(raw_df)
    booster = model.mean_head_.named_steps["gbm"].booster_
    table = TableShap(booster).contributions(Z)
    np.testing.assert_allclose(table, booster.predict(Z, pred_contrib=True), rtol=0, atol=1e-9)
    explainer = shap.TreeExplainer(model.mean_head_.named_steps["gbm"])
    np.testing.assert_allclose(table[:, :-1], explainer.shap_values(Z), rtol=0, atol=1e-9)
    np.testing.assert_allclose(table[0, -1], explainer.expected_value, rtol=0, atol=1e-9)


@pytest.mark.parametrize("missing", ["nan", "zero", "none"])
def test_equals_pred_contrib_with_missing_values_and_repeated_features(missing: str) -> None:
    """Splits on NaN and on zero (LightGBM's missing types), features split on twice along a path."""
    rng = np.random.default_rng(1)
    X = rng.integers(0, 5, size=(2_000, 6)).astype(float)
    y = X[:, 0] * 2 - X[:, 1] + (X[:, 2] > 2) * 3 + rng.normal(0, 0.5, len(X))
    X[rng.random(X.shape) < 0.15] = np.nan
    params = {"nan": {}, "zero": {"zero_as_missing": True}, "none": {"use_missing": False}}[missing]
    booster = lgb.train({"objective": "l2", "num_leaves": 8, "min_data_in_leaf": 5, "verbose": -1, **params},
                        lgb.Dataset(X, y), num_boost_round=40)  # fmt: skip
    types = {node["missing_type"] for tree in booster.dump_model()["tree_info"] for node in _splits(tree)}
    assert types == {"nan": {"NaN"}, "zero": {"Zero"}, "none": {"None"}}[missing]
    probe = np.vstack([X[:500], np.zeros((5, 6)), np.full((5, 6), np.nan)])
    np.testing.assert_allclose(
        TableShap(booster).contributions(probe), booster.predict(probe, pred_contrib=True), rtol=0, atol=1e-9
    )


def test_large_trees_are_refused_and_the_model_falls_back_to_the_booster(raw_df: pd.DataFrame) -> None:
    model = GradeModel(setup="period1", num_leaves=32, n_estimators=20, cv=2).fit(raw_df, raw_df["G3"])
    booster = model.mean_head_.named_steps["gbm"].booster_
    assert max(tree["num_leaves"] for tree in booster.dump_model()["tree_info"]) - 1 > MAX_SPLITS
    with pytest.raises(ValueError, match="splits"):
        TableShap(booster)
    _, Z = model._encode(raw_df)
    np.testing.assert_allclose(model._contributions(Z), booster.predict(Z, pred_contrib=True), rtol=0, atol=1e-12)


def test_the_model_explains_batches_and_single_rows_alike(trained_models: dict, raw_df: pd.DataFrame) -> None:
    """A batch goes through the table, a few rows through the booster: the same numbers either way."""
    model = trained_models["period1"].estimator
    assert len(raw_df) >= TABLE_SHAP_MIN_ROWS
    batch = model.explain(raw_df).contributions.to_numpy()
    one_by_one = np.vstack([model.explain(raw_df.iloc[[i]]).contributions.to_numpy() for i in range(20)])
    np.testing.assert_allclose(batch[:20], one_by_one, rtol=0, atol=1e-9)


def _splits(tree: dict) -> list[dict]:
    found, stack = [], [tree["tree_structure"]]
    while stack:
        node = stack.pop()
        if "split_index" in node:
            found.append(node)
            stack.extend((node["left_child"], node["right_child"]))
    return found


def test_the_lookup_tables_are_not_saved_with_the_model(trained_models: dict, raw_df: pd.DataFrame) -> None:
    """They are rebuilt from the saved trees on first use, so an artifact never carries stale tables."""
    import pickle

    model = trained_models["early"].estimator
    model.explain(raw_df)
    assert "_table_shap" in model.__dict__
    copy = pickle.loads(pickle.dumps(model))
    assert "_table_shap" not in copy.__dict__ and "_plan" not in copy.__dict__
    np.testing.assert_allclose(copy.explain(raw_df).contributions, model.explain(raw_df).contributions, atol=1e-12)
