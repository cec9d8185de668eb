"""Hostile and careless input to the prediction endpoints: never a 5xx, always JSON, the field named."""

from __future__ import annotations

import json

import pytest
from fastapi.testclient import TestClient

from model.schema.fields import EXAMPLE_RECORD, FIELDS, ID_COLUMN
from tests.api.conftest import Keys

STUDENT = {ID_COLUMN: "S-1", **EXAMPLE_RECORD}
TEXT_FIELDS = (ID_COLUMN, *FIELDS)
NASTY = {
    "lone high surrogate": "\ud800",
    "lone low surrogate": "\udfff",
    "surrogate in text": "GP\ud83dx",
    "NUL": "GP\x00",
    "RTL override": "\u202eGP",
    "10k chars": "A" * 10_000,
    "emoji": "\U0001f600",
    "combining marks": "G\u0301\u0327P",
    "5000 digits": "9" * 5000,
    "1e300": "1e300",
}


def _raw_json(value: object) -> bytes:
    """JSON text as a client may send it: ``ensure_ascii`` writes a lone surrogate as ``\\ud800``."""
    return json.dumps(value, ensure_ascii=True).encode()


def _post(client: TestClient, keys: Keys, path: str, body: bytes, media: str = "application/json"):
    return client.post(path, content=body, headers={"X-API-Key": keys.predict, "Content-Type": media})


@pytest.mark.parametrize("nasty", NASTY.values(), ids=NASTY.keys())
def test_every_text_field_of_one_student_gets_400_or_200_never_5xx(client: TestClient, keys: Keys, nasty: str) -> None:
    for field in TEXT_FIELDS:
        response = _post(client, keys, "/v1/predict", _raw_json({**STUDENT, field: nasty}))
        assert response.status_code in (200, 400), (field, response.status_code, response.text[:300])
        body = response.json()
        if response.status_code == 400:
            assert field in {d["field"] for d in body["details"]}, (field, body)
            assert all(d["value"] is None or len(d["value"]) <= 80 for d in body["details"]), body


@pytest.mark.parametrize("nasty", NASTY.values(), ids=NASTY.keys())
def test_every_text_field_of_a_json_batch_row_is_named_never_5xx(client: TestClient, keys: Keys, nasty: str) -> None:
    rows = [{**STUDENT, field: nasty} for field in TEXT_FIELDS]
    response = _post(client, keys, "/v1/predict/batch", _raw_json([STUDENT, *rows]))
    assert response.status_code in (200, 400), response.text[:300]
    body = response.json()
    if response.status_code == 200:
        named = {(p["row"], p["field"]) for p in body["problems"]}
        rejected = {row for row, _ in named}
        for row, field in enumerate(TEXT_FIELDS, start=2):
            assert (row, field) in named or row not in rejected, (row, field)
        assert all(p["value"] is None or len(p["value"]) <= 80 for p in body["problems"])


@pytest.mark.parametrize("nasty", NASTY.values(), ids=NASTY.keys())
def test_every_text_field_of_a_csv_row_is_named_never_5xx(client: TestClient, keys: Keys, nasty: str) -> None:
    header = list(STUDENT)
    lines = [",".join(header), ",".join(str(v) for v in STUDENT.values())]
    for field in TEXT_FIELDS:
        lines.append(",".join(nasty if name == field else str(value) for name, value in STUDENT.items()))
    body = "\n".join(lines).encode("utf-8", "surrogatepass")
    response = _post(client, keys, "/v1/predict/batch", body, "text/csv")
    assert response.status_code in (200, 400), response.text[:300]
    response.json()


def test_a_5000_digit_age_is_out_of_range_not_broken_json(client: TestClient, keys: Keys) -> None:
    body = json.dumps(STUDENT).replace(f'"age": {STUDENT["age"]}', '"age": ' + "9" * 5000).encode()
    assert b"9" * 5000 in body
    response = _post(client, keys, "/v1/predict", body)
    assert response.status_code == 400 and response.json()["error"] == "invalid_input", response.text[:300]
    (problem,) = response.json()["details"]
    assert problem["field"] == "age" and "out of range" in problem["message"]
    assert len(response.text) < 2000


def test_age_1e300_is_refused_without_echoing_the_number(client: TestClient, keys: Keys) -> None:
    response = _post(
        client, keys, "/v1/predict", json.dumps(STUDENT).replace(f'"age": {STUDENT["age"]}', '"age": 1e300').encode()
    )
    assert response.status_code == 400
    (problem,) = response.json()["details"]
    assert problem["field"] == "age" and "out of range" in problem["message"]
    assert "0" * 50 not in response.text and len(response.text) < 1000


def test_unknown_fields_follow_one_rule_in_single_and_batch(client: TestClient, keys: Keys) -> None:
    """Ignored and reported as a note (row null) listing the allowed names, in both endpoints."""
    student = {**STUDENT, "agee": 17, "nickname": "Bo"}
    single = _post(client, keys, "/v1/predict", json.dumps(student).encode())
    batch = _post(client, keys, "/v1/predict/batch", json.dumps([student]).encode())
    assert single.status_code == 200 and batch.status_code == 200, (single.text, batch.text)
    (note,) = single.json()["problems"]
    assert batch.json()["problems"][0]["message"].endswith('"agee", "nickname"')
    assert note["row"] is None and note["message"] == 'ignored unknown fields: "agee", "nickname"'
    assert "age" in note["allowed"] and batch.json()["n_accepted"] == 1
    assert _post(client, keys, "/v1/predict", json.dumps(STUDENT).encode()).json()["problems"] == []


def test_text_that_cannot_be_encoded_is_a_400_even_past_the_validator(app_db_url: str, keys: Keys) -> None:
    """The API's safety net: a UnicodeError from anywhere in a route answers 400, never 500."""
    from api.main import create_app
    from api.settings import ApiSettings

    app = create_app(ApiSettings(database_url=app_db_url))

    @app.get("/boom")
    def boom() -> None:
        "\ud800".encode()

    with TestClient(app) as test_client:
        response = test_client.get("/boom")
    assert response.status_code == 400 and response.json()["error"] == "invalid_input"
