"""``create_app(settings)`` serves under those settings: their secret key keys the students, their spool
directory holds the log rows while the database is down, their data key encrypts the logged inputs."""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa
from fastapi.testclient import TestClient

from api.main import create_app
from api.settings import ApiSettings
from model.ml.training import register
from model.schema.fields import EXAMPLE_RECORD
from model.serving.predlog import spool
from model.serving.predlog.writer import prepare_rows, student_key
from model.settings import get_settings
from model.store import crypto
from model.store.db import get_engine, migrate, session_scope
from model.store.tables import PredictionLog
from tests.api.conftest import make_keys

OTHER_SECRET = "another-secret-key-fedcba9876543210"


def test_the_app_keys_students_spools_and_encrypts_under_its_own_settings(tmp_path: Path, trained_models: dict) -> None:
    url, environment = f"sqlite:///{tmp_path / 'own.db'}", get_settings()
    settings = ApiSettings(database_url=url, secret_key=OTHER_SECRET, spool_dir=tmp_path / "own-spool",
                           data_key=crypto.generate_key())  # fmt: skip
    migrate(get_engine(url))
    with session_scope(get_engine(url)) as session:
        for version in trained_models.values():
            register(session, version, "pytest", activate=True, settings=settings)
    keys = make_keys(url, settings)
    waiting = prepare_rows([{"request_id": "spooled-before", "channel": "api", "status": "rejected"}], settings)
    spool.append(spool.spool_dir(settings), waiting)
    spool.append(spool.spool_dir(environment), prepare_rows([{"request_id": "elsewhere", "channel": "api"}], settings))

    with TestClient(create_app(settings)) as client:
        response = client.post("/v1/predict", json={"student_id": "S-7", **EXAMPLE_RECORD},
                               headers={"X-API-Key": keys.predict})  # fmt: skip
    assert response.status_code == 200, response.text

    with get_engine(url).connect() as connection:
        rows = {row.request_id: row for row in connection.execute(sa.select(PredictionLog))}
    logged = rows[response.json()["request_id"]]
    assert logged.student_key == student_key("S-7", settings) != student_key("S-7", environment)
    assert set(logged.inputs) == {"enc"}  # encrypted under the app's data key; the environment sets none
    assert crypto.keyring(settings).decrypt_inputs(logged.inputs)["Mjob"] == EXAMPLE_RECORD["Mjob"]
    assert "spooled-before" in rows and spool.pending_files(spool.spool_dir(settings)) == []  # the app's spool
    assert "elsewhere" not in rows and spool.pending_rows(spool.spool_dir(environment)) == 1
