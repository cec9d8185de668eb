"""One result vocabulary (``model.schema.results``): the API's response model, the CSV download and the
dashboard's tables are generated from it, and a column added to it shows up in all three."""

from __future__ import annotations

import json
import typing

import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

from api.models import StudentPrediction, prediction_model
from dashboard.columns import table_columns
from model.schema import results
from model.schema.results import API_COLUMNS, COLUMNS, DOWNLOAD_COLUMNS, ResultColumn
from model.serving.downloads import results_table, to_csv_bytes
from model.serving.service import ModelStore, Prediction, predict_batch
from model.settings import get_settings
from model.store.db import get_engine
from tests.dashboard.conftest import ROOT, TIMEOUT, admin_account, teacher_account

__all__ = ["admin_account", "teacher_account"]  # fixtures shared with the dashboard tests

# What clients read today: these names must not change (grade model v2 added p_no_grade and the band
# probabilities after them).
API_FIELDS = ["row", "student_id", "setup", "model_version", "predicted_g3", "lower", "upper", "likely_g3", "p_pass",
              "band", "risk", "p_no_grade", "p_band_I", "p_band_II", "p_band_III", "p_band_IV", "p_band_V",
              "factors"]  # fmt: skip
CSV_HEADER = ("row,student_id,setup,model_version,predicted_g3,lower,upper,likely_g3,p_pass,band,risk,p_no_grade,"
              "factor_1,factor_2,factor_3")  # fmt: skip
EXTRA = ResultColumn("p_fail", "P(fail)", "probability", "Probability of a final grade below 10")


def _class(raw_df: pd.DataFrame, n: int = 6) -> str:
    frame = raw_df.drop(columns="G3").head(n)
    frame.insert(0, "student_id", [f"V{i}" for i in range(n)])
    return frame.to_csv(index=False, sep=";")


@pytest.fixture
def prediction(app_db_url: str, raw_df: pd.DataFrame) -> Prediction:
    engine = get_engine(app_db_url)
    return predict_batch(ModelStore(engine, settings=get_settings()), engine, _class(raw_df), channel="cli")


def _header(table: pd.DataFrame) -> str:
    return to_csv_bytes(table).decode("utf-8-sig").splitlines()[0]


def test_the_api_model_is_the_vocabulary(prediction: Prediction) -> None:
    fields = StudentPrediction.model_fields
    assert list(fields) == API_FIELDS == [*API_COLUMNS, "factors"]
    for name in API_COLUMNS:
        assert fields[name].description == COLUMNS[name].help
    for name in ("setup", "band", "risk"):
        assert typing.get_args(fields[name].annotation) == COLUMNS[name].values


def test_the_csv_header_is_the_vocabulary(prediction: Prediction) -> None:
    table = results_table(prediction)
    assert _header(table) == CSV_HEADER == ",".join(DOWNLOAD_COLUMNS)
    assert table["predicted_g3"].tolist() == prediction.results["predicted_g3"].round(1).tolist()
    assert table["p_pass"].tolist() == prediction.results["p_pass"].round(3).tolist()


def test_the_upload_page_table_is_the_vocabulary(app_db_url: str, teacher_account, raw_df: pd.DataFrame) -> None:
    at = AppTest.from_file(str(ROOT / "pages" / "upload.py"), default_timeout=TIMEOUT)
    at.session_state["mathsight_user"] = teacher_account.user
    at.run()
    at.file_uploader(key="upload_file").upload("class.csv", _class(raw_df).encode(), "text/csv")
    at.run()
    assert not at.exception, at.exception
    table = at.dataframe[0].proto
    configs = json.loads(table.columns)
    assert sorted(table.column_order) == sorted(DOWNLOAD_COLUMNS)
    shown = {name: (configs[name]["label"], configs[name]["help"]) for name in table.column_order}
    assert shown == {name: (COLUMNS[name].label, COLUMNS[name].help) for name in DOWNLOAD_COLUMNS}
    assert configs["p_pass"]["type_config"]["type"] == "progress"
    assert configs["predicted_g3"]["type_config"]["format"] == COLUMNS["predicted_g3"].format.display


def test_a_column_added_to_the_vocabulary_shows_up_in_all_three(
    prediction: Prediction, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(results.COLUMNS, EXTRA.name, EXTRA)
    prediction.results["p_fail"] = 1 - prediction.results["p_pass"]

    model = prediction_model((*API_COLUMNS, "p_fail"))
    assert model.model_fields["p_fail"].annotation is float
    assert model.model_fields["p_fail"].description == EXTRA.help

    table = results_table(prediction, (*DOWNLOAD_COLUMNS, "p_fail"))
    assert _header(table) == f"{CSV_HEADER},p_fail"
    assert table["p_fail"].tolist() == (1 - prediction.results["p_pass"]).round(3).tolist()

    configs, order = table_columns((*DOWNLOAD_COLUMNS, "p_fail"), first=("row", "p_fail"))
    assert order[:2] == ["row", "p_fail"] and len(order) == len(DOWNLOAD_COLUMNS) + 1
    assert configs["p_fail"]["label"] == "P(fail)" and configs["p_fail"]["type_config"]["type"] == "progress"
