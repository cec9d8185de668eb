"""Auth, scope, rate limit and every error code: always the JSON error shape, never a stack trace."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from api.main import create_app
from api.settings import ApiSettings
from model.accounts.apikeys import list_keys, revoke_key
from model.schema.fields import EXAMPLE_RECORD
from model.store.db import get_engine, migrate, session_scope
from tests.api.conftest import Keys

ERROR_KEYS = {"error", "message", "details"}


def _is_error(response, status: int, error: str) -> dict:  # noqa: ANN001
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert set(body) >= ERROR_KEYS and body["error"] == error and body["message"]
    assert "Traceback" not in response.text
    return body


@pytest.mark.parametrize("path", ["/v1/schema", "/v1/models"])
def test_no_key_or_a_bad_key_is_a_401(client: TestClient, keys: Keys, path: str) -> None:
    _is_error(client.get(path), 401, "unauthorized")
    for bad in ("nonsense", keys.predict[:-2], keys.predict.replace("ms_", "xx_")):
        body = _is_error(client.get(path, headers={"X-API-Key": bad}), 401, "unauthorized")
        assert "not valid" in body["message"]
    assert client.get(path, headers={"X-API-Key": keys.predict}).status_code == 200


def test_a_revoked_key_is_a_401(client: TestClient, keys: Keys, app_db_url: str) -> None:
    assert client.get("/v1/schema", headers={"X-API-Key": keys.predict}).status_code == 200
    with session_scope(get_engine(app_db_url)) as session:
        revoke_key(session, keys.predict.split("_")[1], actor="pytest")
    _is_error(client.get("/v1/schema", headers={"X-API-Key": keys.predict}), 401, "unauthorized")


def test_a_predict_key_on_an_admin_endpoint_is_a_403(client: TestClient, keys: Keys) -> None:
    body = _is_error(client.get("/metrics", headers={"X-API-Key": keys.predict}), 403, "forbidden")
    assert 'scope "admin"' in body["message"]
    assert client.get("/metrics", headers={"X-API-Key": keys.admin}).status_code == 200
    assert client.get("/metrics", headers={"Authorization": f"Bearer {keys.admin}"}).status_code == 200
    assert client.post("/v1/predict", json=EXAMPLE_RECORD, headers={"X-API-Key": keys.admin}).status_code == 200


def test_a_key_over_its_rate_limit_gets_429_with_retry_after(
    make_client: Callable[..., TestClient], keys: Keys
) -> None:
    client = make_client(api_rate_limit=3, api_rate_window_seconds=3600)
    statuses = [client.get("/v1/schema", headers={"X-API-Key": keys.predict}).status_code for _ in range(3)]
    assert statuses == [200, 200, 200]
    refused = client.get("/v1/schema", headers={"X-API-Key": keys.predict})
    body = _is_error(refused, 429, "rate_limited")
    assert 1 <= int(refused.headers["retry-after"]) <= 3600 and "3 requests per 3600 s" in body["message"]
    assert client.get("/v1/schema", headers={"X-API-Key": keys.admin}).status_code == 200  # per key


def test_a_key_s_use_is_recorded_even_when_the_request_fails(
    make_client: Callable[..., TestClient], keys: Keys, app_db_url: str
) -> None:
    """The key check commits before the route runs: a refused request does not roll the record back."""
    client = make_client(api_rate_limit=1, api_rate_window_seconds=3600)
    _is_error(
        client.post("/v1/predict", json={"age": "old"}, headers={"X-API-Key": keys.predict}), 400, "invalid_input"
    )
    _is_error(client.get("/metrics", headers={"X-API-Key": keys.predict}), 403, "forbidden")
    with session_scope(get_engine(app_db_url)) as session:
        used = {k.prefix: k.last_used_at for k in list_keys(session)}
    assert used[keys.predict.split("_")[1]] is not None and used[keys.admin.split("_")[1]] is None


def test_the_database_limit_is_shared_by_workers(make_client: Callable[..., TestClient], keys: Keys) -> None:
    workers = [make_client(api_rate_limit=4, api_rate_window_seconds=3600, api_rate_limit_storage="database")
               for _ in range(2)]  # fmt: skip
    statuses = [workers[i % 2].get("/v1/schema", headers={"X-API-Key": keys.predict}).status_code for i in range(6)]
    assert statuses == [200, 200, 200, 200, 429, 429]


def test_unknown_path_and_method(client: TestClient) -> None:
    body = _is_error(client.get("/v2/whatever?student=Ana"), 404, "not_found")
    assert body["details"] == []
    _is_error(client.get("/v1/predict"), 405, "method_not_allowed")


def test_an_oversized_body_is_a_413_before_it_is_read(make_client: Callable[..., TestClient], keys: Keys) -> None:
    client = make_client(api_max_body_bytes=2048)
    headers = {"X-API-Key": keys.predict, "Content-Type": "text/csv"}
    body = _is_error(client.post("/v1/predict/batch", content=b"a" * 5000, headers=headers), 413, "payload_too_large")
    assert "2,048 bytes" in body["message"]

    def chunks() -> Iterator[bytes]:  # no Content-Length: counted as it streams in
        for _ in range(10):
            yield b"a" * 1000

    _is_error(client.post("/v1/predict/batch", content=chunks(), headers=headers), 413, "payload_too_large")


@pytest.mark.parametrize(
    ("path", "content_type"),
    [("/v1/predict", "text/csv"), ("/v1/predict", None), ("/v1/predict/batch", "application/xml"),
     ("/v1/predict/batch", "multipart/form-data; boundary=x")],
)  # fmt: skip
def test_a_wrong_content_type_is_a_415(client: TestClient, keys: Keys, path: str, content_type: str | None) -> None:
    headers = {"X-API-Key": keys.predict} | ({"Content-Type": content_type} if content_type else {})
    body = _is_error(client.post(path, content=b"<x/>", headers=headers), 415, "unsupported_media_type")
    assert body["details"][0]["field"] == "Content-Type" and "application/json" in body["details"][0]["allowed"]


def test_request_validation_errors_are_400_not_422(make_client: Callable[..., TestClient]) -> None:
    client = make_client()

    @client.app.get("/probe")  # a route with a typed parameter, to reach FastAPI's own validation
    def probe(n: int) -> dict:
        return {"n": n}

    body = _is_error(client.get("/probe?n=abc"), 400, "invalid_input")
    assert body["details"][0]["field"] == "query.n"


def test_an_internal_error_is_a_500_without_a_stack_trace(client: TestClient, keys: Keys, app_db_url: str) -> None:
    with get_engine(app_db_url).begin() as connection:
        connection.execute(sa.text("ALTER TABLE api_key RENAME TO api_key_gone"))  # a broken database
    response = client.post("/v1/predict", json=EXAMPLE_RECORD, headers={"X-API-Key": keys.predict})
    body = _is_error(response, 500, "internal_error")
    assert response.headers["x-request-id"] in body["message"]
    assert "api_key" not in response.text and "sqlite" not in response.text.lower()


def test_healthz_is_503_without_active_models(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: ANN001
    url = f"sqlite:///{tmp_path / 'empty.db'}"
    migrate(url)
    with TestClient(create_app(ApiSettings(database_url=url))) as client:
        body = _is_error(client.get("/healthz"), 503, "unavailable")
    assert body["models"] == {"early": None, "period1": None, "period2": None}
    assert "no active model for early, period1, period2" in body["message"]


def test_predicting_without_an_active_model_is_a_503(tmp_path, keys: Keys, app_db_url: str) -> None:  # noqa: ANN001
    with get_engine(app_db_url).begin() as connection:
        connection.execute(sa.text("DELETE FROM active_model WHERE setup = 'early'"))
    with TestClient(create_app(ApiSettings(database_url=app_db_url))) as client:
        early = {k: v for k, v in EXAMPLE_RECORD.items() if k not in ("G1", "G2")}
        response = client.post("/v1/predict", json=early, headers={"X-API-Key": keys.predict})
        body = _is_error(response, 503, "unavailable")
        assert "early" in body["message"] and response.headers["retry-after"]
        assert client.get("/healthz").status_code == 503


def test_an_unreachable_database_is_a_503_with_retry_after(client: TestClient, keys: Keys, app_db_url: str) -> None:
    """A key check while the database cannot be reached (here: its file gone from under a fresh pool)."""
    database = Path(app_db_url.removeprefix("sqlite:///"))
    assert client.get("/v1/schema", headers={"X-API-Key": keys.predict}).status_code == 200
    client.app.state.mathsight.engine.dispose()
    database.parent.rename(database.parent.with_name(database.parent.name + "-away"))
    try:
        refused = client.get("/v1/schema", headers={"X-API-Key": keys.predict})
    finally:
        database.parent.with_name(database.parent.name + "-away").rename(database.parent)
    body = _is_error(refused, 503, "unavailable")
    assert refused.headers["retry-after"] == "5" and "database" in body["message"]
    assert client.get("/v1/schema", headers={"X-API-Key": keys.predict}).status_code == 200
