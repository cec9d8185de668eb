"""Grade model v2 on every student of the real maths file, all three setups: the shown figures agree with
each other and the directions make sense (issue 18). The first model broke every rule here (see README)."""

from __future__ import annotations

import pickle

import numpy as np
import pandas as pd
import pytest

from model.ml.evaluation import COHERENCE_RULES, coherence_counts
from model.ml.grade_model import BAND_COLUMNS, LegacyArtifactError
from model.schema.fields import PASS_MARK, SETUPS
from model.schema.results import percent_text


@pytest.mark.parametrize("setup", SETUPS)
def test_every_coherence_and_direction_rule_holds_on_every_student(
    trained_models: dict, raw_df: pd.DataFrame, setup: str
) -> None:
    counts = coherence_counts(trained_models[setup].estimator, raw_df, setup)
    assert set(counts) == set(COHERENCE_RULES)
    assert counts == dict.fromkeys(COHERENCE_RULES, 0)


@pytest.mark.parametrize("setup", SETUPS)
def test_figures_come_from_one_distribution(trained_models: dict, raw_df: pd.DataFrame, setup: str) -> None:
    details = trained_models[setup].estimator.predict_details(raw_df)
    band_p = details[list(BAND_COLUMNS)].to_numpy()
    np.testing.assert_allclose(band_p.sum(axis=1), 1.0, atol=1e-9)
    # P(pass) is the mass of bands I-IV; P(no grade) sits inside band V.
    np.testing.assert_allclose(band_p[:, :4].sum(axis=1), details["p_pass"], atol=1e-9)
    assert (details["p_no_grade"] <= details["p_band_V"] + 1e-12).all()
    # bounded so no chance reads 0% or 100% (3/395 = 0.8%: the rule of three for the strongest students)
    assert details["p_pass"].between(0.005, 0.995).all() and details["p_no_grade"].between(0.005, 0.995).all()
    assert ((details["predicted_g3"] >= PASS_MARK) == (details["p_pass"] >= 0.5)).all()
    assert (details["predicted_g3"] == np.round(details["predicted_g3"])).all()  # a grade the school gives


def test_the_students_who_did_not_sit_carry_a_higher_no_grade_risk(trained_models: dict, raw_df: pd.DataFrame) -> None:
    details = trained_models["early"].estimator.predict_details(raw_df)
    did_not_sit = raw_df["G3"] == 0
    assert details.loc[did_not_sit, "p_no_grade"].mean() > 2 * details.loc[~did_not_sit, "p_no_grade"].mean()


@pytest.mark.parametrize(("p", "text"), [(0.0, "below 1%"), (0.004, "below 1%"), (0.01, "1%"), (0.5, "50%"),
                                         (0.996, "above 99%"), (1.0, "above 99%"), (0.99, "99%")])  # fmt: skip
def test_probabilities_never_read_0_or_100_percent(p: float, text: str) -> None:
    assert percent_text(p) == text


def test_a_version_of_the_first_grade_model_is_refused_with_a_clear_message(
    trained_models: dict, raw_df: pd.DataFrame
) -> None:
    old = pickle.loads(pickle.dumps(trained_models["period1"].estimator))
    del old.__dict__["nograde_head_"]  # what a v1 artifact holds: no no-grade head
    with pytest.raises(LegacyArtifactError, match=r"grade model v1.*python -m model train --setup period1"):
        old.predict_details(raw_df)


def test_a_version_trained_before_the_fitted_anchor_line_still_loads_and_agrees(
    trained_models: dict, raw_df: pd.DataFrame
) -> None:
    """Versions of the first v2 release hold no anchor line, no chosen interval level and one pooled residual
    spread: they keep giving their own figures (the latest grade as the anchor, the nominal 90% quantiles)."""
    old = pickle.loads(pickle.dumps(trained_models["period1"].estimator))
    for name in ("anchor_line_", "interval_level_", "bandwidth_", "trees_"):
        del old.__dict__[name]
    old.residuals_ = np.sort(np.random.default_rng(0).normal(0.0, 1.5, 300))  # a pooled spread, as they kept
    details = old.predict_details(raw_df)
    explanation = old.explain(raw_df)
    np.testing.assert_allclose(explanation.raw_prediction, old.predict(raw_df), atol=1e-9)
    assert coherence_counts(old, raw_df, "period1") == dict.fromkeys(COHERENCE_RULES, 0)
    assert not details.equals(trained_models["period1"].estimator.predict_details(raw_df))
