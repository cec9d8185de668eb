"""The school's thresholds: stored, audited, checked as a table, and applied by predictions and lists."""

from __future__ import annotations

from datetime import date

import pandas as pd
import pytest
import sqlalchemy as sa

from model.errors import InvalidInput
from model.schema.thresholds import Thresholds
from model.serving.service import ModelStore
from model.settings import get_settings
from model.store.audit import list_audit
from model.store.db import get_engine, session_scope
from model.store.school import load_thresholds, set_school_thresholds, stored_values
from model.store.tables import SchoolSetting


def test_school_values_overlay_the_settings_and_are_audited(db_url: str) -> None:
    from model.store.db import migrate

    engine, settings = get_engine(db_url), get_settings()
    migrate(engine)
    with session_scope(engine) as session:
        assert load_thresholds(session, settings) == Thresholds.from_settings(settings)
        set_school_thresholds(session, settings, "head", None, risk_high_below="0.6", risk_medium_below=0.8,
                              year_end=date(2027, 7, 15))  # fmt: skip
    with session_scope(engine) as session:
        table = load_thresholds(session, settings)
        assert (table.risk_high_below, table.risk_medium_below, table.year_end) == (0.6, 0.8, date(2027, 7, 15))
        assert table.drift_act_psi == Thresholds.from_settings(settings).drift_act_psi  # not a school level
        assert list_audit(session, "school_thresholds_set")[0].detail == {
            "risk_high_below": "0.6", "risk_medium_below": "0.8", "year_end": "2027-07-15"}  # fmt: skip
        set_school_thresholds(session, settings, "head", None, year_end=None)
    with session_scope(engine) as session:
        assert stored_values(session)["year_end"] is None


@pytest.mark.parametrize(
    ("values", "field", "words"),
    [
        ({"risk_high_below": "half"}, "risk_high_below", "'half' is not a number"),
        ({"risk_high_below": 0.9}, "risk_high_below", "risk levels need"),  # above the medium level (0.75)
        ({"attention_risk_rise": 1.5}, "attention_risk_rise", "must be between 0 and 1"),
        ({"year_end": "July"}, "year_end", "'July' is not a date"),
    ],
)
def test_bad_values_name_the_field_and_write_nothing(db_url: str, values: dict, field: str, words: str) -> None:
    from model.store.db import migrate

    engine = get_engine(db_url)
    migrate(engine)
    with session_scope(engine) as session, pytest.raises(InvalidInput) as caught:
        set_school_thresholds(session, get_settings(), "head", None, **values)
    assert [p.column for p in caught.value.problems] == [field] and words in str(caught.value)
    with session_scope(engine) as session:
        assert session.execute(sa.select(sa.func.count()).select_from(SchoolSetting)).scalar_one() == 0
        assert list_audit(session, "school_thresholds_set") == []


def test_a_running_store_follows_the_school_cut_off(models_db_url: str, raw_df: pd.DataFrame) -> None:
    from model.serving.service import predict_batch

    engine, settings = get_engine(models_db_url), get_settings()
    store = ModelStore(engine, refresh_seconds=0, settings=settings)
    students = raw_df.drop(columns=["G3", "G1", "G2"]).head(60).to_csv(sep=";", index=False)
    first = predict_batch(store, engine, students, channel="cli").results
    assert (first["risk"] != "high").any()
    with session_scope(engine) as session:  # every student below 99.9% is high risk by the school's level
        set_school_thresholds(session, settings, "head", None, risk_high_below=0.998, risk_medium_below=0.999)
    again = predict_batch(store, engine, students, channel="cli").results
    assert again["p_pass"].tolist() == first["p_pass"].tolist()
    assert again["risk"].tolist() == [
        "high" if p < 0.998 else "medium" if p < 0.999 else "low" for p in first["p_pass"]
    ]
    assert (again["risk"] == "high").sum() > (first["risk"] == "high").sum()
