"""Metrics exposition, models, schema, OpenAPI docs and the JSON access log."""

from __future__ import annotations

import json
from pathlib import Path

from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from model.schema.fields import EXAMPLE_RECORD, FIELDS
from model.schema.published import json_schema
from model.schema.results import COLUMNS
from model.settings import get_settings
from tests.api.conftest import Keys


def _samples(text: str) -> dict[tuple[str, frozenset], float]:
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def test_metrics_count_requests_latency_predictions_and_versions(client: TestClient, keys: Keys) -> None:
    headers = {"X-API-Key": keys.predict}
    client.post("/v1/predict", json=EXAMPLE_RECORD, headers=headers)
    client.post("/v1/predict/batch", json=[EXAMPLE_RECORD, EXAMPLE_RECORD, {"age": 1}], headers=headers)
    client.get("/v1/schema")
    response = client.get("/metrics", headers={"X-API-Key": keys.admin})
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/plain")
    samples = _samples(response.text)
    route = lambda path, status: frozenset({"route": path, "method": "POST" if "predict" in path else "GET",  # noqa: E731
                                            "status": status}.items())  # fmt: skip
    assert samples[("mathsight_api_requests_total", route("/v1/predict", "200"))] == 1
    assert samples[("mathsight_api_requests_total", route("/v1/predict/batch", "200"))] == 1
    assert samples[("mathsight_api_requests_total", route("/v1/schema", "401"))] == 1
    assert samples[("mathsight_api_request_duration_seconds_count", frozenset({"route": "/v1/predict"}.items()))] == 1
    predicted = {k: v for k, v in samples.items() if k[0] == "mathsight_api_predictions_total"}
    assert sum(predicted.values()) == 3 and dict(next(iter(predicted))[1])["setup"] == "period2"
    versions = {dict(labels)["setup"]: dict(labels)["version"] for name, labels in samples
                if name == "mathsight_model_version_info"}  # fmt: skip
    assert set(versions) == {"early", "period1", "period2"} and versions["early"].startswith("early-")


def test_models_lists_the_active_versions_with_metrics(client: TestClient, keys: Keys) -> None:
    body = client.get("/v1/models", headers={"X-API-Key": keys.predict}).json()
    assert [m["setup"] for m in body["models"]] == ["early", "period1", "period2"]
    assert all(m["version"].startswith(m["setup"]) and "metrics" in m and m["n_rows"] == 395 for m in body["models"])


def test_schema_is_the_schema_module(client: TestClient, keys: Keys) -> None:
    assert client.get("/v1/schema", headers={"X-API-Key": keys.predict}).json() == json_schema()


def test_openapi_docs_are_generated_from_the_schema_with_examples(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    body = spec["paths"]["/v1/predict"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert body["properties"]["Mjob"]["enum"] == list(FIELDS["Mjob"].allowed)
    assert body["properties"]["age"]["minimum"] == 15 and body["properties"]["age"]["maximum"] == 22
    assert body["properties"]["studytime"]["description"] == FIELDS["studytime"].help
    assert body["examples"][0]["school"] == EXAMPLE_RECORD["school"]
    assert set(body["required"]) == set(FIELDS) - {"G1", "G2", "G3"}
    batch = spec["paths"]["/v1/predict/batch"]["post"]["requestBody"]["content"]
    assert set(batch) == {"application/json", "text/csv"}
    assert spec["components"]["securitySchemes"]["APIKeyHeader"]["name"] == "X-API-Key"
    assert "ErrorResponse" in spec["components"]["schemas"]
    result = spec["components"]["schemas"]["StudentPrediction"]["properties"]
    for band in ("I", "II", "III", "IV", "V"):  # the band probabilities, documented from the vocabulary
        assert result[f"p_band_{band}"]["type"] == "number"
        assert result[f"p_band_{band}"]["description"] == COLUMNS[f"p_band_{band}"].help
    docs = client.get("/docs")
    assert docs.status_code == 200 and "swagger" in docs.text.lower()


def test_every_call_is_in_the_json_access_log_without_personal_data(client: TestClient, keys: Keys) -> None:
    client.post("/v1/predict", json={"student_id": "Ana Silva", **EXAMPLE_RECORD}, headers={"X-API-Key": keys.predict})
    client.get("/students/Ana%20Silva")
    client.get("/v1/models")
    client.__exit__(None, None, None)  # closes the log file
    log_dir = get_settings().log_dir
    assert log_dir is not None
    text = (Path(log_dir) / "api-access.jsonl").read_text("utf-8")
    lines = [json.loads(line) for line in text.splitlines()]
    assert [(line["route"], line["status"]) for line in lines] == [
        ("/v1/predict", 200), ("(unmatched)", 404), ("/v1/models", 401)]  # fmt: skip
    first = lines[0]
    assert first["key"] == keys.predict.split("_")[1] and first["user_id"] == keys.teacher_id
    assert first["prediction_request_id"] and first["rows"] == 1 and first["duration_ms"] > 0
    assert "Ana" not in text and keys.predict not in text
