"""The API on both databases (SQLite and PostgreSQL): keys, predictions, the log and the shared rate limit."""

from __future__ import annotations

import sqlalchemy as sa
from fastapi.testclient import TestClient

from api.main import create_app
from api.settings import ApiSettings
from model.schema.fields import ATTRIBUTES, EXAMPLE_RECORD
from model.store.db import get_engine
from model.store.tables import PredictionLog
from tests.api.conftest import make_keys


def test_the_api_on_each_database(models_db_url: str) -> None:
    keys = make_keys(models_db_url)
    settings = ApiSettings(database_url=models_db_url, api_rate_limit=3, api_rate_window_seconds=3600,
                           api_rate_limit_storage="database")  # fmt: skip
    with TestClient(create_app(settings)) as client:
        assert client.get("/healthz").status_code == 200
        headers = {"X-API-Key": keys.predict}
        early = {name: EXAMPLE_RECORD[name] for name in ATTRIBUTES}
        one = client.post("/v1/predict", json={"student_id": "S1", **early}, headers=headers)
        assert one.status_code == 200 and one.json()["setup"] == "early"
        batch = client.post("/v1/predict/batch", json=[EXAMPLE_RECORD, {**EXAMPLE_RECORD, "G2": 30}], headers=headers)
        assert batch.status_code == 200 and (batch.json()["n_accepted"], batch.json()["n_rejected"]) == (1, 1)
        assert client.get("/v1/models", headers=headers).status_code == 200
        assert client.get("/v1/models", headers=headers).status_code == 429
        assert client.get("/v1/models", headers={"X-API-Key": keys.admin}).status_code == 200
    with get_engine(models_db_url).connect() as connection:
        rows = connection.execute(sa.select(PredictionLog.channel, PredictionLog.status, PredictionLog.user_id)).all()
    assert sorted(rows) == [("api", "ok", keys.teacher_id)] * 2 + [("api", "rejected", keys.teacher_id)]
