"""The prediction service end to end on real databases: validate, predict, explain, log."""

from __future__ import annotations

import time

import pandas as pd
import pytest
import sqlalchemy as sa

from model.errors import BatchRejected, InvalidInput
from model.serving.predlog.writer import student_key
from model.serving.service import ModelStore, NoActiveModel, predict_batch, predict_one, refusal_logged
from model.settings import get_settings
from model.store import registry
from model.store.db import get_engine, migrate, session_scope
from model.store.tables import PredictionLog
from tests.conftest import register_trained


def _class_file(student_csv_path, extra_lines: list[str]) -> bytes:
    lines = student_csv_path.read_text().splitlines()
    header = "student_id;" + lines[0]
    rows = [f"S{i:03d};{line}" for i, line in enumerate(lines[1:21], start=1)]
    return "\n".join([header, *rows, *extra_lines]).encode()


def _log(engine) -> pd.DataFrame:
    with engine.connect() as conn:
        return pd.read_sql(sa.select(PredictionLog), conn)


def test_batch_predicts_valid_rows_and_logs_every_row(models_db_url: str, student_csv_path) -> None:
    engine = get_engine(models_db_url)
    bad = 'S999;"GP";"F";30;"U";"GT3";"A";4;4;"doctor";"teacher";"course";"mother";2;2;0;"yes";"no";"no";"no";"yes";"yes";"no";"no";4;3;4;1;1;3;6;5;6;6'  # noqa: E501
    prediction = predict_batch(
        ModelStore(engine, settings=get_settings()),
        engine,
        _class_file(student_csv_path, [bad]),
        channel="cli",
        user_id=None,
    )
    assert len(prediction.results) == 20 and prediction.n_rows == 21
    assert prediction.rejected_rows == [22]
    assert {p.column for p in prediction.problems if p.row == 22} == {"age", "Mjob"}
    assert set(prediction.results["setup"]) == {"period2"}
    assert prediction.results.loc[2, "student_id"] == "S001"
    assert len(prediction.factors[2]) == 5
    log = _log(engine)
    assert len(log) == 21 and log["request_id"].nunique() == 1
    assert (log["status"] == "ok").sum() == 20 and (log["status"] == "rejected").sum() == 1
    assert "S001" not in set(log["student_key"].dropna())
    assert student_key("S001", get_settings()) in set(log["student_key"])
    assert log.loc[log.status == "ok", "inputs"].iloc[0]["Mjob"] in {
        "at_home",
        "health",
        "other",
        "services",
        "teacher",
    }


def test_each_row_uses_the_richest_setup_its_grades_allow(models_db_url: str, raw_df: pd.DataFrame) -> None:
    engine = get_engine(models_db_url)
    frame = raw_df.head(3).drop(columns="G3").astype(object)
    frame.loc[1, "G2"] = None
    frame.loc[2, ["G1", "G2"]] = None
    text = frame.to_csv(index=False, sep=";")
    prediction = predict_batch(ModelStore(engine, settings=get_settings()), engine, text, channel="cli")
    assert list(prediction.results["setup"]) == ["period2", "period1", "early"]


def test_one_student_and_field_named_errors(models_db_url: str, raw_df: pd.DataFrame) -> None:
    engine = get_engine(models_db_url)
    store = ModelStore(engine, settings=get_settings())
    record = raw_df.iloc[0].drop(["G1", "G2", "G3"]).to_dict()
    prediction = predict_one(store, engine, record, channel="ui")
    assert prediction.results.iloc[0]["setup"] == "early"
    with pytest.raises(InvalidInput) as caught:
        predict_one(store, engine, record | {"studytime": 9, "Mjob": "pilot"}, channel="ui")
    assert {p.column for p in caught.value.problems} == {"studytime", "Mjob"}
    statuses = _log(engine)["status"].tolist()
    assert statuses == ["ok", "rejected"]
    predict_one(store, engine, record, channel="ui", log=False)
    assert len(_log(engine)) == 2


def test_rejected_file_is_logged_and_raised(models_db_url: str) -> None:
    engine = get_engine(models_db_url)
    with pytest.raises(BatchRejected):
        predict_batch(ModelStore(engine, settings=get_settings()), engine, b"\x00\x01binary", channel="api")
    log = _log(engine)
    assert list(log["status"]) == ["rejected"] and log["error_type"].iloc[0] == "BatchRejected"


def test_a_refusal_is_logged_once_by_the_one_wrapper_and_raised_again(db_url: str) -> None:
    engine, settings = get_engine(db_url), get_settings()
    migrate(engine)
    logged = {"engine": engine, "settings": settings, "channel": "cli", "user_id": None,
              "started": time.perf_counter()}  # fmt: skip
    with pytest.raises(BatchRejected), refusal_logged(**logged):
        raise BatchRejected("the file has a header but no data rows")
    with pytest.raises(InvalidInput), refusal_logged(**logged, only_if=lambda: False):  # not this block's to log
        raise InvalidInput([])
    with pytest.raises(ZeroDivisionError), refusal_logged(**logged):  # a fault, not a refusal: not logged here
        _ = 1 / 0
    with refusal_logged(**logged):
        pass
    log = _log(engine)
    assert log[["channel", "status", "error_type"]].values.tolist() == [["cli", "rejected", "BatchRejected"]]
    assert log["latency_ms"].iloc[0] > 0


def test_store_follows_a_promotion(models_db_url: str, trained_models: dict, raw_df: pd.DataFrame) -> None:
    engine = get_engine(models_db_url)
    store = ModelStore(engine, settings=get_settings(), refresh_seconds=0)
    before = store.get("early").version_id
    new_id = register_trained(engine, trained_models["early"], created_by="pytest")
    assert store.get("early").version_id == before
    with session_scope(engine) as session:
        registry.promote(session, new_id, by="pytest", settings=get_settings())
    assert store.get("early").version_id == new_id
    record = raw_df.iloc[0].drop(["G1", "G2", "G3"]).to_dict()
    assert predict_one(store, engine, record, channel="ui").results.iloc[0]["model_version"] == new_id


def test_no_active_model_is_a_clear_error(db_url: str, raw_df: pd.DataFrame) -> None:
    from model.store.db import migrate

    engine = get_engine(db_url)
    migrate(engine)
    with pytest.raises(NoActiveModel, match="python -m model train"):
        predict_one(
            ModelStore(engine, settings=get_settings()),
            engine,
            raw_df.iloc[0].drop(["G3"]).to_dict(),
            channel="ui",
            log=False,
        )


def test_logged_batch_rows_hold_exactly_what_was_predicted(models_db_url: str, raw_df: pd.DataFrame) -> None:
    """The column-wise driver insert stores the same values SQLAlchemy's own binding would."""
    from datetime import UTC, datetime, timedelta

    engine = get_engine(models_db_url)
    frame = raw_df.head(80).drop(columns="G3")
    frame.insert(0, "student_id", [f"R{i}" for i in range(80)])
    before = datetime.now(UTC)
    prediction = predict_batch(
        ModelStore(engine, settings=get_settings()), engine, frame.to_csv(index=False, sep=";"), channel="api"
    )
    log = _log(engine).sort_values("id").reset_index(drop=True)
    results = prediction.results.reset_index(drop=True)
    assert list(log["idempotency_key"]) == [f"{prediction.request_id}:{i}" for i in range(80)]
    for column in ("predicted_g3", "lower", "upper", "p_pass"):
        pd.testing.assert_series_equal(log[column], results[column].astype(float), check_names=False)
    assert list(log["band"]) == list(results["band"]) and list(log["risk"]) == list(results["risk"])
    assert list(log["student_key"]) == [student_key(f"R{i}", get_settings()) for i in range(80)]
    assert log["inputs"][3] == {k: (int(v) if not isinstance(v, str) else v) for k, v in frame.iloc[3, 1:].items()}
    assert not log["is_demo"].any() and set(log["channel"]) == {"api"}
    created = pd.to_datetime(log["created_at"], utc=True)
    assert created.nunique() == 1 and before - timedelta(seconds=1) <= created[0] <= datetime.now(UTC)
    assert log["latency_ms"].sum() == pytest.approx(prediction.latency_ms)


@pytest.mark.parametrize("grades", [["G1", "G2"], ["G1"], []])
def test_one_student_is_row_one_of_the_class_path(models_db_url: str, raw_df: pd.DataFrame, grades: list[str]) -> None:
    """The same student alone and in a class file: the same figures, factors, SHAP values and log row."""
    engine = get_engine(models_db_url)
    store = ModelStore(engine, settings=get_settings())
    student = raw_df.drop(columns=["G3", *{"G1", "G2"} - set(grades)]).iloc[7]
    record = student.to_dict() | {"student_id": "S-8"}
    one = predict_one(store, engine, record, channel="api")
    batch = predict_batch(store, engine, pd.DataFrame([record]).to_csv(index=False, sep=";"), channel="api")
    assert one.results.index.tolist() == [1] and batch.results.index.tolist() == [2]  # the spreadsheet row
    pd.testing.assert_frame_equal(one.results.reset_index(drop=True), batch.results.reset_index(drop=True))
    assert [f.as_dict() for f in one.factors[1]] == [f.as_dict() for f in batch.factors[2]]
    (setup,) = one.explanations
    mine, theirs = one.explanations[setup], batch.explanations[setup]
    assert mine.base_value == theirs.base_value and list(mine.raw_prediction) == list(theirs.raw_prediction)
    assert mine.contributions.to_numpy().tolist() == theirs.contributions.to_numpy().tolist()
    log = _log(engine).sort_values("id")
    assert log["request_id"].tolist() == [one.request_id, batch.request_id]
    same = log.drop(columns=["id", "request_id", "idempotency_key", "created_at", "latency_ms"])
    assert same.iloc[0].to_dict() == same.iloc[1].to_dict()
