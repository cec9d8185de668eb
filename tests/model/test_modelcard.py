"""Model cards: out-of-fold fairness by group on the real data, flagged gaps, Markdown export."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from model.ml.evaluation import cross_validated_details, score
from model.ml.modelcard import Thresholds, age_band, build_model_card, fairness_gaps, group_metrics
from model.schema.fields import TARGET
from model.settings import get_settings
from model.store.db import get_engine, session_scope
from model.store.registry import active_version_ids


@pytest.fixture(scope="module")
def out_of_fold(raw_df: pd.DataFrame) -> pd.DataFrame:
    """One repetition of 10-fold CV of the period1 setup: every student predicted by a model that never saw them."""
    return cross_validated_details(raw_df, "period1", run=0)


def test_age_bands() -> None:
    assert [age_band(a) for a in (15, 16, 17, 18, 19, 22)] == ["15-16", "15-16", "17-18", "17-18", "19+", "19+"]


def test_group_metrics_match_the_protocol_and_a_direct_count(raw_df: pd.DataFrame, out_of_fold: pd.DataFrame) -> None:
    groups = {(g.attribute, g.group): g for g in group_metrics(raw_df, out_of_fold)}
    overall = groups[("all", "all")]
    assert overall.n == len(raw_df)
    assert overall.accuracy == pytest.approx(score(raw_df[TARGET].to_numpy(), out_of_fold)["binary_accuracy"])
    assert {key for key in groups if key[0] == "age band"} == {("age band", b) for b in ("15-16", "17-18", "19+")}
    assert sum(groups[("sex", s)].n for s in ("F", "M")) == len(raw_df)

    girls = raw_df["sex"] == "F"
    failed = girls & (raw_df[TARGET] < 10)
    predicted_pass = out_of_fold["p_pass"] >= 0.5
    f = groups[("sex", "F")]
    assert f.n_failed == failed.sum()
    assert f.false_negative_rate == pytest.approx(predicted_pass[failed].mean() * 100)
    assert f.mean_predicted == pytest.approx(out_of_fold.loc[girls, "predicted_g3"].mean())
    assert f.mean_actual == pytest.approx(raw_df.loc[girls, TARGET].mean())
    assert f.grade_bias == pytest.approx(f.mean_predicted - f.mean_actual)


def test_gaps_are_flagged_above_their_threshold(raw_df: pd.DataFrame, out_of_fold: pd.DataFrame) -> None:
    groups = group_metrics(raw_df, out_of_fold)
    strict = fairness_gaps(groups, Thresholds(accuracy=0, false_negative_rate=0, grade_bias=0))
    lenient = fairness_gaps(groups, Thresholds(accuracy=100, false_negative_rate=100, grade_bias=20))
    measures = ("accuracy", "false_negative_rate", "grade_bias")
    expected = {(a, m) for a in ("sex", "school", "address", "age band") for m in measures}
    assert {(g.attribute, g.measure) for g in strict} == expected
    assert all(g.flagged for g in strict if g.value > 0)
    assert not any(g.flagged for g in lenient)
    by_key = {(g.attribute, g.measure): g for g in strict}
    school = {g.group: g.accuracy for g in groups if g.attribute == "school"}
    assert by_key[("school", "accuracy")].value == pytest.approx(abs(school["GP"] - school["MS"]))


def test_small_groups_are_not_compared(raw_df: pd.DataFrame, out_of_fold: pd.DataFrame) -> None:
    groups = group_metrics(raw_df, out_of_fold)
    gaps = fairness_gaps(groups, Thresholds(min_group=200))
    assert not [g for g in gaps if g.attribute == "sex"]  # only F (208) is large enough: nothing to compare
    assert not [g for g in gaps if g.attribute == "age band"]
    few_failed = fairness_gaps(groups, Thresholds(min_failed=1000))
    assert not [g for g in few_failed if g.measure == "false_negative_rate"]


def test_model_card_markdown_has_use_provenance_metrics_and_flagged_fairness(app_db_url: str) -> None:
    engine = get_engine(app_db_url)
    with session_scope(engine) as session:
        version_id = active_version_ids(session)["period1"]
        card = build_model_card(session, version_id, thresholds=Thresholds(accuracy=1.0), settings=get_settings())
    markdown = card.to_markdown()

    assert card.active and card.data.bundled and card.data.n_rows == 395
    assert markdown.startswith(f"# Model card: {version_id}")
    for section in ("## Intended use", "## Limits", "## Data and provenance", "## Metrics", "## Fairness",
                    "### Gaps between groups"):  # fmt: skip
        assert section in markdown
    assert "never an automatic judgment" in markdown
    assert "Cortez" in markdown and "CC BY 4.0" in markdown and card.data.data_sha256 in markdown
    assert "| attribute | group | students | failed | accuracy % | false-negative rate %" in markdown
    for group in ("| sex | F |", "| school | MS |", "| address | R |", "| age band | 19+ |"):
        assert group in markdown
    assert card.flagged, "a 1-point accuracy threshold flags at least one attribute"
    assert markdown.count("**FLAGGED**") == len(card.flagged)
    flagged = f"{len(card.flagged)} gap{'s' if len(card.flagged) != 1 else ''} flagged"
    assert flagged in markdown
    assert "Not scored by the protocol" in markdown  # the fixture's versions were trained with runs=0
    assert np.isfinite([g.accuracy for g in card.groups]).all()
