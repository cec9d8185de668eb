"""The settings an app is created with reach the core: key hashes, artifact signatures, the log directory."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from api.main import create_app
from api.settings import ApiSettings
from model.accounts.apikeys import create_key
from model.accounts.users import create_user
from model.ml.training import register
from model.schema.fields import EXAMPLE_RECORD
from model.settings import get_settings
from model.store.db import get_engine, migrate, session_scope
from tests.api.conftest import make_keys

OWN_SECRET = "this-app-s-own-secret-0123456789abcdef"


@pytest.fixture
def url(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'own.db'}"
    migrate(get_engine(url))
    return url


def _app_settings(url: str, tmp_path: Path) -> ApiSettings:
    return ApiSettings(database_url=url, secret_key=OWN_SECRET, log_dir=tmp_path / "own-logs")


def test_keys_are_checked_under_the_secret_of_the_app_not_the_environment(url: str, tmp_path: Path) -> None:
    settings = _app_settings(url, tmp_path)
    assert settings.secret_key != get_settings().local_secret("secret_key")
    ours = make_keys(url, settings)
    with session_scope(get_engine(url)) as session:  # a second admin, keyed under the environment's secret
        admin = create_user(session, "admin2", "correct-horse-battery", role="admin", actor="pytest")
        environment_key, _ = create_key(session, admin.id, "admin", settings=get_settings())
    with TestClient(create_app(settings)) as client:
        assert client.get("/v1/schema", headers={"X-API-Key": ours.predict}).status_code == 200
        assert client.get("/v1/schema", headers={"X-API-Key": ours.admin}).status_code == 200
        refused = client.get("/v1/schema", headers={"X-API-Key": environment_key})
        assert refused.status_code == 401 and "not valid" in refused.json()["message"]
    with TestClient(create_app(ApiSettings(database_url=url))) as client:  # the environment's app: the reverse
        assert client.get("/v1/schema", headers={"X-API-Key": environment_key}).status_code == 200
        assert client.get("/v1/schema", headers={"X-API-Key": ours.predict}).status_code == 401


def test_models_load_under_the_secret_of_the_app_and_requests_log_where_it_says(
    url: str, tmp_path: Path, trained_models: dict, caplog: pytest.LogCaptureFixture
) -> None:
    settings = _app_settings(url, tmp_path)
    with session_scope(get_engine(url)) as session:
        for version in trained_models.values():
            register(session, version, "pytest", activate=True, settings=settings)
    keys = make_keys(url, settings)
    with TestClient(create_app(settings)) as client:
        assert client.get("/healthz").status_code == 200
        answer = client.post("/v1/predict", json=dict(EXAMPLE_RECORD), headers={"X-API-Key": keys.predict})
        assert answer.status_code == 200
    lines = [json.loads(line) for line in (tmp_path / "own-logs" / "mathsight.jsonl").read_text("utf-8").splitlines()]
    assert [line["request_id"] for line in lines if line.get("event") == "request"] == [answer.json()["request_id"]]
    # Signed under the app's secret, the artifacts are refused by an app on the environment's secret: it
    # starts, serves no model (503) and logs why.
    with (
        caplog.at_level("ERROR", logger="model.serving.service"),
        TestClient(create_app(ApiSettings(database_url=url))) as other,
    ):
        health = other.get("/healthz")
    assert health.status_code == 503 and health.json()["models"] == {"early": None, "period1": None, "period2": None}
    assert any("HMAC signature does not match" in r.getMessage() for r in caplog.records)
