"""Fairness in production against fairlearn's MetricFrame, on the real students, on both databases."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa
from fairlearn.metrics import MetricFrame, false_negative_rate, false_positive_rate, selection_rate

from model.monitoring import alerts, fairness
from model.monitoring.queries import Window
from model.monitoring.uncertainty import wilson
from model.schema.fields import ATTRIBUTES, GRADES
from model.serving.predlog.writer import write_log
from model.settings import Settings, get_settings
from model.store import crypto, db
from model.store.tables import Outcome

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
WINDOW = Window(NOW - timedelta(days=30), NOW)


@pytest.fixture
def engine(models_db_url: str) -> Iterator[sa.Engine]:
    yield db.get_engine(models_db_url)
    db.dispose_engines()


def _log_real_students(
    engine: sa.Engine, raw_df: pd.DataFrame, trained_models: dict, with_outcomes: int
) -> pd.DataFrame:
    """The early model's predictions for the 395 real students over two weeks; the real G3 of the first
    ``with_outcomes`` recorded."""
    details = trained_models["early"].estimator.predict_details(raw_df)
    inputs = raw_df[[*ATTRIBUTES, *GRADES]].astype(object)
    inputs = inputs.where(inputs.notna(), None).to_dict("records")
    pairs = enumerate(zip(inputs, details.itertuples(), strict=True))
    rows = [{"request_id": uuid.uuid4().hex, "channel": "ui", "status": "ok", "is_demo": False, "setup": "early",
             "created_at": NOW - timedelta(days=3 + 7 * (i % 2), minutes=i), "student_key": f"r{i}",
             "inputs": record, "p_pass": float(d.p_pass), "risk": d.risk, "predicted_g3": float(d.predicted_g3),
             "band": d.band} for i, (record, d) in pairs]  # fmt: skip
    write_log(engine, get_settings(), rows)
    with engine.begin() as connection:
        outcomes = [{"student_key": f"r{i}", "g3": int(g), "recorded_at": NOW}
                    for i, g in enumerate(raw_df["G3"].iloc[:with_outcomes])]  # fmt: skip
        if outcomes:
            connection.execute(sa.insert(Outcome), outcomes)
    frame = raw_df.assign(flagged=(details["p_pass"] < 0.5).to_numpy(), high=(details["risk"] == "high").to_numpy(),
                          failed=(raw_df["G3"] < 10).to_numpy(), band=raw_df["age"].map(fairness.age_band))  # fmt: skip
    return frame


def test_subgroup_rates_match_fairlearn_on_the_real_students(
    engine: sa.Engine, raw_df: pd.DataFrame, trained_models: dict
) -> None:
    truth = _log_real_students(engine, raw_df, trained_models, with_outcomes=len(raw_df))
    with db.session_scope(engine) as session:
        overall, weekly, found = fairness.fairness_report(session, get_settings(), WINDOW)
        assert fairness.outcome_gaps(session, get_settings(), WINDOW) == found  # the alert's shorter way
    for attribute, column in (("sex", "sex"), ("school", "school"), ("address", "address"), ("age band", "band")):
        frame = MetricFrame(
            metrics={"fnr": false_negative_rate, "fpr": false_positive_rate},
            y_true=truth["failed"], y_pred=truth["flagged"], sensitive_features=truth[column],
        )  # fmt: skip
        high = MetricFrame(metrics=selection_rate, y_true=truth["failed"], y_pred=truth["high"],
                           sensitive_features=truth[column])  # fmt: skip
        ours = overall[overall["attribute"] == attribute].set_index("group")
        for group, expected in frame.by_group.iterrows():
            assert ours.loc[str(group), "fnr"] == pytest.approx(expected["fnr"]), (attribute, group)
            assert ours.loc[str(group), "fpr"] == pytest.approx(expected["fpr"]), (attribute, group)
            assert ours.loc[str(group), "high_risk_rate"] == pytest.approx(high.by_group[group])
        enough = ours[(ours["failed"] >= 30)]
        if len(enough) >= 2:
            gap = next(g for g in found if g.attribute == attribute and g.rate == "fnr")
            assert gap.gap == pytest.approx(enough["fnr"].max() - enough["fnr"].min())
            if len(enough) == len(ours):
                assert gap.gap == pytest.approx(frame.difference()["fnr"])
    female = overall[(overall["attribute"] == "sex") & (overall["group"] == "F")].iloc[0]
    assert (female["fnr_low"], female["fnr_high"]) == pytest.approx(wilson(female["missed"], female["failed"]))
    assert set(weekly["period"].dt.dayofweek) == {0} and weekly.groupby("attribute")["n"].sum().eq(len(raw_df)).all()


def test_rates_without_outcomes_leave_only_the_high_risk_rate(
    engine: sa.Engine, raw_df: pd.DataFrame, trained_models: dict, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MATHSIGHT_DATA_KEY", crypto.generate_key())  # encrypted inputs: decrypted in the wing
    get_settings.cache_clear()
    truth = _log_real_students(engine, raw_df, trained_models, with_outcomes=0)
    with db.session_scope(engine) as session:
        overall, _, found = fairness.fairness_report(session, get_settings(), WINDOW)
        assert fairness.outcome_gaps(session, get_settings(), WINDOW) == []
    sex = overall[overall["attribute"] == "sex"].set_index("group")
    assert sex["high_risk_rate"].to_dict() == pytest.approx(truth.groupby("sex")["high"].mean().to_dict())
    assert sex["fnr"].isna().all() and sex["outcomes"].eq(0).all() and found == []


def test_the_fairness_alert_fires_on_a_gap_beyond_the_limit_with_enough_outcomes(
    engine: sa.Engine, raw_df: pd.DataFrame, trained_models: dict
) -> None:
    _log_real_students(engine, raw_df, trained_models, with_outcomes=len(raw_df))
    with db.session_scope(engine) as session:
        _, _, found = fairness.fairness_report(session, get_settings(), WINDOW)
        widest = max(found, key=lambda g: g.gap)
        below = Settings(alert_fairness_gap=widest.gap - 0.001, alert_max_psi=9)
        above = Settings(alert_fairness_gap=widest.gap + 0.001, alert_max_psi=9)
        fired = [f for f in alerts.check_rules(session, below, NOW) if f.rule.startswith("fairness")]
        quiet = [f for f in alerts.check_rules(session, above, NOW) if f.rule.startswith("fairness")]
        few = Settings(alert_fairness_gap=0.0, alert_min_outcomes=10_000, alert_max_psi=9)
        none = [f for f in alerts.check_rules(session, few, NOW) if f.rule.startswith("fairness")]
    assert f"fairness_gap:{widest.attribute}:{widest.rate}" in {f.rule for f in fired}
    assert quiet == [] and none == []
    assert np.isfinite(widest.gap) and widest.low is not None and widest.low <= widest.gap <= widest.high


def test_the_alerts_gaps_from_outcome_rows_alone_equal_the_reports(
    engine: sa.Engine, raw_df: pd.DataFrame, trained_models: dict
) -> None:
    _log_real_students(engine, raw_df, trained_models, with_outcomes=200)  # half the students have a grade
    settings = Settings(alert_min_outcomes=20)
    with db.session_scope(engine) as session:
        _, _, found = fairness.fairness_report(session, settings, WINDOW)
        assert found and fairness.outcome_gaps(session, settings, WINDOW) == found
