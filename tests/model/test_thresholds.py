"""The one threshold table: read from the settings, refused when contradictory, followed by the risk level."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa
from pydantic import ValidationError

from model.ml.grade_model import risk_level
from model.schema.thresholds import DEFAULT_THRESHOLDS, ThresholdError, Thresholds
from model.serving.service import ModelStore, predict_batch, predict_one
from model.settings import Settings, get_settings
from model.store.db import get_engine
from model.store.tables import PredictionLog


def test_the_defaults_are_today_s_levels_and_the_act_level_is_the_drift_alert_s() -> None:
    table = Thresholds.from_settings(Settings())
    assert table == DEFAULT_THRESHOLDS
    assert (table.risk_high_below, table.risk_medium_below) == (0.5, 0.75)
    assert (table.drift_watch_psi, table.drift_act_psi, table.drift_p_value) == (0.1, 0.25, 0.05)
    assert Thresholds.from_settings(Settings(alert_max_psi=0.4)).drift_act_psi == 0.4


def test_settings_from_the_environment_reach_the_table(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MATHSIGHT_RISK_HIGH_BELOW", "0.4")
    monkeypatch.setenv("MATHSIGHT_DRIFT_WATCH_PSI", "0.2")
    monkeypatch.setenv("MATHSIGHT_ALERT_MIN_DRIFT_ROWS", "10")
    get_settings.cache_clear()
    table = Thresholds.from_settings(get_settings())
    assert (table.risk_high_below, table.drift_watch_psi, table.alert_min_drift_rows) == (0.4, 0.2, 10)


@pytest.mark.parametrize(
    ("values", "message"),
    [
        (
            {"risk_high_below": 0.8},
            "0 < MATHSIGHT_RISK_HIGH_BELOW < MATHSIGHT_RISK_MEDIUM_BELOW <= 1, got 0.8 and 0.75",
        ),
        ({"risk_high_below": 0}, "MATHSIGHT_RISK_HIGH_BELOW < MATHSIGHT_RISK_MEDIUM_BELOW"),
        ({"risk_medium_below": 1.2}, "got 0.5 and 1.2"),
        ({"drift_watch_psi": 0.25}, "0 < MATHSIGHT_DRIFT_WATCH_PSI < MATHSIGHT_ALERT_MAX_PSI, got 0.25 and 0.25"),
        ({"alert_max_psi": 0.05}, "MATHSIGHT_ALERT_MAX_PSI, got 0.1 and 0.05"),
        ({"drift_p_value": 1.5}, "MATHSIGHT_DRIFT_P_VALUE must be between 0 and 1"),
    ],
)
def test_contradictory_levels_are_refused_naming_their_settings(values: dict, message: str) -> None:
    with pytest.raises(ValidationError, match=re.escape(message)):
        Settings(**values)
    with pytest.raises(ThresholdError, match=re.escape(message.split(",")[0])):
        Thresholds(**{("drift_act_psi" if k == "alert_max_psi" else k): v for k, v in values.items()})


def test_a_bad_level_in_the_environment_stops_the_settings_with_the_variable_named(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("MATHSIGHT_RISK_MEDIUM_BELOW", "0.4")
    get_settings.cache_clear()
    with pytest.raises(ValidationError, match="MATHSIGHT_RISK_MEDIUM_BELOW"):
        get_settings()


def test_the_risk_level_follows_the_configured_table() -> None:
    p_pass = np.array([0.1, 0.29, 0.3, 0.5, 0.74, 0.75, 0.89, 0.9, 1.0])
    assert list(risk_level(p_pass)) == ["high"] * 3 + ["medium"] * 2 + ["low"] * 4
    table = Thresholds.from_settings(Settings(risk_high_below=0.3, risk_medium_below=0.9))
    assert list(risk_level(p_pass, table)) == ["high"] * 2 + ["medium"] * 5 + ["low"] * 2


def test_predictions_and_their_log_rows_follow_the_store_s_table(models_db_url: str, raw_df: pd.DataFrame) -> None:
    engine = get_engine(models_db_url)
    settings = Settings(risk_high_below=0.3, risk_medium_below=0.95)
    table = Thresholds.from_settings(settings)
    class_file = raw_df.head(60).drop(columns=["G1", "G2", "G3"]).to_csv(index=False, sep=";")
    results = predict_batch(ModelStore(engine, settings=settings), engine, class_file, channel="cli").results
    assert list(results["risk"]) == list(risk_level(results["p_pass"].to_numpy(), table))
    assert list(results["risk"]) != list(risk_level(results["p_pass"].to_numpy()))  # the table made a difference
    with engine.connect() as connection:
        logged = connection.execute(sa.select(PredictionLog.risk).order_by(PredictionLog.id)).scalars().all()
    assert logged == list(results["risk"])
    record = raw_df.iloc[0].drop(["G1", "G2", "G3"]).to_dict()
    one = predict_one(ModelStore(engine, settings=settings), engine, record, channel="ui", log=False).results.iloc[0]
    assert one["risk"] == risk_level(np.array([one["p_pass"]]), table)[0]
