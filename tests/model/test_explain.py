"""Plain-language factors built from SHAP values."""

from __future__ import annotations

import pandas as pd
import pytest

from model.ml.explain import factors_per_row, global_importance, sentence, summary_text, top_factors


def test_sentence_reads_like_the_issue_example() -> None:
    assert sentence("failures", 3, -2.14) == "3 past class failures: \u22122.1 points"
    assert sentence("schoolsup", "yes", 0.5).endswith(": +0.5 points")
    assert ":" not in sentence("schoolsup", "yes", 0.5).split(": +")[0]


def test_top_factors_are_the_largest_in_absolute_value(trained_models: dict, raw_df: pd.DataFrame) -> None:
    explanation = trained_models["early"].estimator.explain(raw_df.head(5))
    row = explanation.contributions.iloc[2]
    factors = top_factors(row, raw_df.iloc[2], top=4)
    assert [f.name for f in factors] == list(row.abs().sort_values(ascending=False).index[:4])
    batch = factors_per_row(explanation, raw_df.head(5), top=4)
    assert [f.name for f in batch[2]] == [f.name for f in factors]
    assert [round(f.points, 6) for f in batch[2]] == [round(f.points, 6) for f in factors]


def test_summary_and_global_importance(trained_models: dict, raw_df: pd.DataFrame) -> None:
    explanation = trained_models["period1"].estimator.explain(raw_df)
    assert global_importance(explanation).index[0] == "G1"
    factors = top_factors(explanation.contributions.iloc[0], raw_df.iloc[0])
    text = summary_text(explanation.raw_prediction[0], explanation.base_value, factors)
    assert text.startswith("An average student is predicted")


def test_what_would_help_uses_safe_levers_only_and_the_real_model(trained_models: dict, raw_df) -> None:
    from model.ml.explain import REVERSE_ASSOCIATION, what_would_help

    model = trained_models["early"].estimator
    details = model.predict_details(raw_df)
    failing = raw_df[(details["p_pass"] < 0.5).to_numpy()].head(25)
    assert len(failing) >= 10
    helped = 0
    for _, row in failing.iterrows():
        record = row.to_dict()
        changes, start = what_would_help(model, record)
        assert not {c.name for c in changes} & set(REVERSE_ASSOCIATION)
        if not changes:
            continue
        helped += 1
        after = model.predict_details(pd.DataFrame([record | {c.name: c.after for c in changes}]))
        assert after["p_pass"].iloc[0] == pytest.approx(changes[-1].p_pass)  # computed with the real model
        assert changes[-1].p_pass > start
        before = model.predict_details(pd.DataFrame([record]))["p_no_grade"].iloc[0]
        assert after["p_no_grade"].iloc[0] <= before + 1e-9
        assert len(changes) == 1 or changes[-1].p_pass >= 0.5  # a set only when it reaches 50%
    assert helped > 0


def test_levers_come_first_and_reverse_associations_are_marked() -> None:
    from model.ml.explain import Factor, grouped, lever_sentence

    factors = [Factor("G1", "G1", 8, -2.0, "G1: −2.0 points", False),
               Factor("schoolsup", "Extra educational support", "yes", -1.1, "Support (yes): −1.1 points", True),
               Factor("age", "Age", 18, 0.1, "Age 18: +0.1 points", False)]  # fmt: skip
    assert [g for g, _ in grouped(factors)] == ["levers", "grades so far", "background"]
    assert "removing it would not help" in lever_sentence(factors[1])
