"""Plain-language factors built from SHAP values."""

from __future__ import annotations

import pandas as pd

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
