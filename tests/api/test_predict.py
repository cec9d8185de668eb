"""Predictions through the API: one student, JSON and CSV batches, and what lands in the prediction log."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from model.ml.grade_model import risk_level
from model.schema.fields import ATTRIBUTES, EXAMPLE_RECORD
from model.schema.thresholds import Thresholds
from model.schema.validation import G2_WITHOUT_G1
from model.store.db import get_engine
from model.store.tables import PredictionLog
from tests.api.conftest import Keys
from tests.conftest import swap_artifact

STUDENT = {"student_id": "S-42", **EXAMPLE_RECORD}
EARLY = {name: EXAMPLE_RECORD[name] for name in ATTRIBUTES}


def _log(url: str) -> list[PredictionLog]:
    with get_engine(url).connect() as connection:
        return list(connection.execute(sa.select(PredictionLog).order_by(PredictionLog.id)))


def _assert_band_probabilities_agree(result: dict) -> None:
    """The five band probabilities are one distribution with P(pass) and the band shown (JSON rounds to 4 digits)."""
    names = ["I", "II", "III", "IV", "V"]
    chances = [result[f"p_band_{name}"] for name in names]
    assert all(0 < p < 1 for p in chances) and abs(sum(chances) - 1) < 1e-3
    assert abs(result["p_pass"] - (1 - result["p_band_V"])) < 1e-3
    from_fail = np.cumsum(chances[::-1])  # V, IV, ... I: the shown band is where this passes one half
    assert result["band"] == names[::-1][int(np.argmax(from_fail > 0.5))]


def _real_csv(path: Path, n: int) -> list[str]:
    return path.read_text("utf-8").splitlines()[: n + 1]


def test_one_student_gets_grade_interval_pass_band_risk_factors_and_version(
    client: TestClient, keys: Keys, app_db_url: str
) -> None:
    response = client.post("/v1/predict", json=STUDENT, headers={"X-API-Key": keys.predict})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["setup"] == "period2" and body["model_version"].startswith("period2-")
    assert body["student_id"] == "S-42" and body["row"] == 1
    assert body["lower"] <= body["predicted_g3"] <= body["upper"] and 0 <= body["p_pass"] <= 1
    assert body["band"] in {"I", "II", "III", "IV", "V"} and body["risk"] in {"high", "medium", "low"}
    _assert_band_probabilities_agree(body)
    assert len(body["factors"]) == 5
    assert set(body["factors"][0]) == {"name", "label", "value", "points", "sentence", "actionable"}
    assert response.headers["x-request-id"]
    (row,) = _log(app_db_url)
    assert (row.channel, row.status, row.user_id, row.request_id) == ("api", "ok", keys.teacher_id, body["request_id"])
    assert row.student_key and row.student_key != "S-42"


@pytest.mark.parametrize(
    ("grades", "setup"), [({}, "early"), ({"G1": 12}, "period1"), ({"G1": 12, "G2": ""}, "period1")]
)
def test_the_grades_given_choose_the_setup(client: TestClient, keys: Keys, grades: dict, setup: str) -> None:
    response = client.post("/v1/predict", json={**EARLY, **grades}, headers={"X-API-Key": keys.predict})
    assert response.status_code == 200, response.text
    assert response.json()["setup"] == setup and response.json()["student_id"] is None


def test_invalid_student_lists_every_bad_field_like_the_dashboard(
    client: TestClient, keys: Keys, app_db_url: str
) -> None:
    bad = {**STUDENT, "age": 25, "Mjob": "astronaut"}
    del bad["school"]
    response = client.post("/v1/predict", json=bad, headers={"X-API-Key": keys.predict})
    assert response.status_code == 400
    body = response.json()
    assert body["error"] == "invalid_input"
    by_field = {d["field"]: d for d in body["details"]}
    assert set(by_field) == {"school", "age", "Mjob"}
    assert by_field["age"] == {"row": None, "field": "age", "value": "25", "allowed": "15-22",
                               "message": 'field "age": 25 is out of range 15-22'}  # fmt: skip
    assert by_field["Mjob"]["allowed"] == "teacher, health, services, at_home, other"
    assert 'field "age"' in body["message"]
    (row,) = _log(app_db_url)
    assert (row.channel, row.status, row.error_type) == ("api", "rejected", "InvalidInput")


def test_json_batch_returns_results_and_per_row_problems_together(
    client: TestClient, keys: Keys, app_db_url: str
) -> None:
    students = [STUDENT, {**EARLY, "absences": -1}, {**EARLY, "student_id": "S-7"}, {**EARLY, "sex": "X", "age": "old"}]
    response = client.post("/v1/predict/batch", json=students, headers={"X-API-Key": keys.predict})
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["n_rows"], body["n_accepted"], body["n_rejected"]) == (4, 2, 2)
    assert [(r["row"], r["student_id"], r["setup"]) for r in body["results"]] == [
        (1, "S-42", "period2"),
        (3, "S-7", "early"),
    ]
    assert [(p["row"], p["field"], p["value"]) for p in body["problems"]] == [
        (2, "absences", "-1"), (4, "sex", "X"), (4, "age", "old")]  # fmt: skip
    assert body["problems"][1]["allowed"] == "F, M"
    for result in body["results"]:
        _assert_band_probabilities_agree(result)
    rows = _log(app_db_url)
    assert [r.status for r in rows] == ["ok", "ok", "rejected", "rejected"]
    assert {r.request_id for r in rows} == {body["request_id"]} and {r.channel for r in rows} == {"api"}


def test_csv_batch_of_real_students_with_bad_rows(
    client: TestClient, keys: Keys, student_csv_path: Path, app_db_url: str
) -> None:
    lines = _real_csv(student_csv_path, 20)
    lines[3] = lines[3].replace('"GP";"F";', '"GP";"Q";', 1)
    response = client.post("/v1/predict/batch", content="\n".join(lines).encode(),
                           headers={"X-API-Key": keys.predict, "Content-Type": "text/csv; charset=utf-8"})  # fmt: skip
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["n_rows"], body["n_accepted"], body["n_rejected"]) == (20, 19, 1)
    (problem,) = body["problems"]
    assert (problem["row"], problem["field"], problem["value"], problem["allowed"]) == (4, "sex", "Q", "F, M")
    assert problem["message"].startswith('row 4, column "sex": ')
    assert {r["setup"] for r in body["results"]} == {"period2"}  # the file has G1 and G2
    assert len(_log(app_db_url)) == 20


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        ([], "the list is empty"),
        ([EARLY, 3, "x"], "these are not: 2, 3"),
        ([{"age": 16}], "missing required columns: school"),
    ],
)
def test_unusable_json_batches_are_refused_whole(client: TestClient, keys: Keys, body: list, fragment: str) -> None:
    response = client.post("/v1/predict/batch", json=body, headers={"X-API-Key": keys.predict})
    assert response.status_code == 400 and response.json()["error"] == "invalid_input"
    assert fragment in response.json()["message"]
    assert response.json()["details"][0]["row"] is None


def test_unusable_csv_is_refused_whole(client: TestClient, keys: Keys, app_db_url: str) -> None:
    response = client.post("/v1/predict/batch", content=b"\x00\x01\x02\xff" * 10,
                           headers={"X-API-Key": keys.predict, "Content-Type": "text/csv"})  # fmt: skip
    assert response.status_code == 400 and response.json()["error"] == "invalid_input"
    assert [r.status for r in _log(app_db_url)] == ["rejected"]


@pytest.mark.parametrize(
    ("path", "content", "message"),
    [
        ("/v1/predict", b'{"age": ', "the body is not valid JSON"),
        ("/v1/predict", b"[1, 2]", "the body must be a JSON object"),
        ("/v1/predict/batch", b'{"age": 16}', "the body must be a JSON list"),
        ("/v1/predict/batch", b"[" * 100_000, "the body is not valid JSON"),
    ],
)
def test_malformed_json_is_a_400(client: TestClient, keys: Keys, path: str, content: bytes, message: str) -> None:
    response = client.post(
        path, content=content, headers={"X-API-Key": keys.predict, "Content-Type": "application/json"}
    )
    assert response.status_code == 400 and message in response.json()["message"]
    assert response.json()["error"] in {"invalid_json", "invalid_input"}


def test_nested_values_are_reported_not_crashed_on(client: TestClient, keys: Keys) -> None:
    response = client.post("/v1/predict/batch", json=[{**EARLY, "age": {"years": 16}, "sex": [1]}],
                           headers={"X-API-Key": keys.predict})  # fmt: skip
    assert response.status_code == 200
    assert {p["field"] for p in response.json()["problems"]} == {"age", "sex"}
    single = client.post("/v1/predict", json={**EARLY, "age": [16]}, headers={"X-API-Key": keys.predict})
    assert single.status_code == 400 and single.json()["details"][0]["field"] == "age"


def test_the_risk_level_follows_the_app_s_threshold_settings(make_client, keys: Keys) -> None:
    headers = {"X-API-Key": keys.predict}
    default = make_client().post("/v1/predict", json=EARLY, headers=headers).json()
    p_pass = default["p_pass"]
    assert 0.005 <= p_pass < 0.5 and default["risk"] == "high"  # grade model v2: a likely fail at the start of the year
    table = {"risk_high_below": p_pass / 2, "risk_medium_below": (p_pass + 1) / 2}
    configured = make_client(**table).post("/v1/predict", json=EARLY, headers=headers).json()
    assert configured["p_pass"] == p_pass and configured["risk"] == "medium"
    assert 0.005 <= configured["p_no_grade"] <= 0.995  # the API's probabilities are floats bounded by the model
    assert configured["risk"] == risk_level(np.array([p_pass]), Thresholds(**table))[0]


def test_g2_without_g1_is_refused_naming_g1_alone_and_in_a_batch(
    client: TestClient, keys: Keys, app_db_url: str
) -> None:
    headers = {"X-API-Key": keys.predict}
    response = client.post("/v1/predict", json={**EARLY, "G2": 14}, headers=headers)
    assert response.status_code == 400, response.text
    body = response.json()
    assert body["error"] == "invalid_input"
    assert [(d["field"], d["message"]) for d in body["details"]] == [("G1", f'field "G1": {G2_WITHOUT_G1}')]
    response = client.post("/v1/predict/batch", json=[EARLY, {**EARLY, "G1": "", "G2": 14}, STUDENT], headers=headers)
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["n_accepted"], body["n_rejected"]) == (2, 1)
    assert [(r["row"], r["setup"]) for r in body["results"]] == [(1, "early"), (3, "period2")]
    assert [(p["row"], p["field"], p["message"]) for p in body["problems"]] == [
        (2, "G1", f'row 2, column "G1": {G2_WITHOUT_G1}')
    ]
    assert [r.status for r in _log(app_db_url)] == ["rejected", "ok", "ok", "rejected"]


def test_a_swapped_artifact_makes_its_setup_unavailable_with_a_logged_reason(
    app_db_url: str, make_client, keys: Keys, caplog: pytest.LogCaptureFixture
) -> None:
    victim = swap_artifact(app_db_url, into="early", source="period2")
    with caplog.at_level("ERROR", logger="model.serving.service"):
        client = make_client()
        response = client.post("/v1/predict", json=EARLY, headers={"X-API-Key": keys.predict})
    assert response.status_code == 503, response.text
    body = response.json()
    assert body["error"] != "internal_error"
    assert body["message"] == "the model for setup 'early' is unavailable; an admin must check it"
    assert victim not in response.text and "HMAC" not in response.text
    assert any(victim in r.getMessage() and "HMAC signature does not match" in r.getMessage() for r in caplog.records)
    other = client.post("/v1/predict", json=STUDENT, headers={"X-API-Key": keys.predict})
    assert other.status_code == 200 and other.json()["setup"] == "period2"
