"""Encryption at rest: AES-256-GCM artifacts and log inputs, integrity before decryption, key rotation."""

from __future__ import annotations

import logging
from datetime import timedelta

import pandas as pd
import pytest
import sqlalchemy as sa

from model.cli import main as cli
from model.monitoring import samples
from model.monitoring.queries import Window
from model.schema.fields import ATTRIBUTES
from model.serving.service import ModelStore, predict_batch
from model.settings import Settings, get_settings
from model.store import crypto, registry, rotation
from model.store.db import get_engine, session_scope
from model.store.tables import ModelVersion, PredictionLog, utcnow
from tests.conftest import install_models

KEY_A = crypto.generate_key()
KEY_B = crypto.generate_key()


def _use_keys(monkeypatch: pytest.MonkeyPatch, current: str = "", previous: str = "") -> None:
    for name, value in (("MATHSIGHT_DATA_KEY", current), ("MATHSIGHT_DATA_KEY_PREVIOUS", previous)):
        if value:
            monkeypatch.setenv(name, value)
        else:
            monkeypatch.delenv(name, raising=False)
    get_settings.cache_clear()


def _class_file(raw_df: pd.DataFrame, n: int = 12) -> str:
    frame = raw_df.head(n).drop(columns=["G1", "G2", "G3"])  # the "early" setup
    frame.insert(0, "student_id", [f"STU-{i:04d}" for i in range(n)])
    return frame.to_csv(index=False, sep=";")


def rotate_data_key(engine, batch_rows: int = rotation.BATCH_ROWS) -> rotation.RotationResult:
    with session_scope(engine) as session:
        return rotation.rotate_data_key(session, settings=get_settings(), batch_rows=batch_rows)


def _stored(engine, column) -> list:
    with engine.connect() as connection:
        return list(connection.execute(sa.select(column).order_by(PredictionLog.id)).scalars())


def _recent_inputs(engine, since, max_rows: int = 20_000) -> list[dict]:
    """The decrypted inputs monitoring reads (its bounded sample) of the rows logged since ``since``."""
    with session_scope(engine) as session:
        window = Window(since, utcnow() + timedelta(minutes=1))
        return samples.recent_inputs(session, get_settings(), window, max_rows=max_rows)


def _raw_inputs(engine) -> list[str]:
    """The inputs column as the database holds it (text), not through the JSON type."""
    with engine.connect() as connection:
        query = sa.select(sa.cast(PredictionLog.inputs, sa.Text)).where(PredictionLog.status == "ok")
        return list(connection.execute(query).scalars())


# ------------------------------------------------------------------------------------- primitives
def test_bad_keys_are_refused_with_the_setting_named() -> None:
    for text in ("short", "not base64 at all!!", crypto.generate_key()[:-8]):
        with pytest.raises(crypto.DataKeyError, match="MATHSIGHT_DATA_KEY must be base64 of 32"):
            crypto.DataKey.from_text(text)
    urlsafe = KEY_A.replace("+", "-").replace("/", "_").rstrip("=")
    assert crypto.DataKey.from_text(urlsafe).key_id == crypto.DataKey.from_text(KEY_A).key_id


def test_round_trips_and_tampering_is_detected() -> None:
    ring = crypto.Keyring(crypto.DataKey.from_text(KEY_A))
    blob = b"joblib bytes" * 100
    stored = ring.encrypt_artifact(blob)
    assert stored.startswith(crypto.ARTIFACT_MAGIC) and blob not in stored
    assert ring.decrypt_artifact(stored) == blob
    assert ring.encrypt_artifact(blob) != stored  # fresh nonce each time
    with pytest.raises(crypto.DecryptionError, match="failed authentication"):
        ring.decrypt_artifact(stored[:-1] + bytes([stored[-1] ^ 1]))

    inputs = {"Mjob": "teacher", "age": 17, "G1": None}
    sealed = ring.encrypt_inputs(inputs)
    assert set(sealed) == {"enc"} and "teacher" not in sealed["enc"]
    assert ring.decrypt_inputs(sealed) == inputs
    assert ring.decrypt_inputs(inputs) == inputs  # plain rows written before a key pass through
    other = crypto.Keyring(crypto.DataKey.from_text(KEY_B))
    with pytest.raises(crypto.DecryptionError, match="neither MATHSIGHT_DATA_KEY"):
        other.decrypt_inputs(sealed)
    assert crypto.Keyring(None).encrypt_inputs(inputs) == inputs


def test_without_a_key_the_app_says_once_that_data_is_not_encrypted(monkeypatch: pytest.MonkeyPatch) -> None:
    _use_keys(monkeypatch)
    monkeypatch.setattr(crypto, "_warned", False)
    records: list[logging.LogRecord] = []
    handler = logging.Handler()
    handler.emit = records.append  # type: ignore[method-assign]
    crypto.logger.addHandler(handler)
    try:
        assert not crypto.keyring(get_settings()).encrypts
        crypto.keyring(get_settings())
        crypto.keyring(get_settings()).encrypt_inputs({"age": 16})
    finally:
        crypto.logger.removeHandler(handler)
    assert [r.getMessage().split(":")[0] for r in records] == ["data at rest is not encrypted"]
    _use_keys(monkeypatch, KEY_A)
    assert crypto.keyring(get_settings()).encrypts
    assert crypto.keyring(Settings(data_key=KEY_B)).current.key_id == crypto.DataKey.from_text(KEY_B).key_id


# ------------------------------------------------------------------------------- on the databases
@pytest.fixture
def keyed_db(db_url: str, trained_models: dict, monkeypatch: pytest.MonkeyPatch) -> str:
    """``db_url`` with active models registered while MATHSIGHT_DATA_KEY = KEY_A."""
    _use_keys(monkeypatch, KEY_A)
    install_models(db_url, {"early": trained_models["early"]})
    return db_url


def test_artifacts_are_encrypted_and_hash_checked_before_decryption(
    keyed_db: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    engine = get_engine(keyed_db)
    with session_scope(engine) as session:
        version = registry.active_versions(session)["early"]
    stored = bytes(version.artifact)
    assert crypto.artifact_key_id(stored) == crypto.DataKey.from_text(KEY_A).key_id
    assert registry.sha256_hex(stored) == version.artifact_sha256  # the hash covers the stored bytes
    assert registry.load_artifact(version, settings=get_settings()).setup == "early"

    flipped = stored[:-1] + bytes([stored[-1] ^ 1])
    with pytest.raises(registry.ArtifactIntegrityError, match="SHA-256"):
        registry.load_artifact_bytes(
            flipped, registry.Signed.of(version), version.artifact_hmac, version.id, settings=get_settings()
        )
    _use_keys(monkeypatch)
    with pytest.raises(crypto.DecryptionError):
        registry.load_artifact(version, settings=get_settings())


def test_log_inputs_are_encrypted_and_read_back_by_monitoring(keyed_db: str, raw_df: pd.DataFrame) -> None:
    engine = get_engine(keyed_db)
    since = utcnow() - timedelta(minutes=1)
    prediction = predict_batch(ModelStore(engine, settings=get_settings()), engine, _class_file(raw_df), channel="cli")
    raw = _raw_inputs(engine)
    assert len(raw) == 12
    assert all('"enc"' in text and "teacher" not in text and "Mjob" not in text for text in raw)

    decrypted = _recent_inputs(engine, since, max_rows=100)
    assert len(decrypted) == 12
    expected = prediction.results.index.map(lambda row: raw_df.loc[row - 2, "Mjob"])
    assert sorted(d["Mjob"] for d in decrypted) == sorted(expected)
    counts = samples.value_counts(decrypted, ATTRIBUTES)
    assert counts["school"] == raw_df.head(12)["school"].value_counts().to_dict()
    assert len(_recent_inputs(engine, since, max_rows=5)) == 5


def test_rotation_re_encrypts_everything_under_the_new_key(
    keyed_db: str, raw_df: pd.DataFrame, monkeypatch: pytest.MonkeyPatch
) -> None:
    engine = get_engine(keyed_db)
    since = utcnow() - timedelta(minutes=1)
    predict_batch(
        ModelStore(engine, settings=get_settings()), engine, _class_file(raw_df), channel="cli"
    )  # under KEY_A
    _use_keys(monkeypatch, "", previous=KEY_A)  # reads KEY_A data, writes in clear
    monkeypatch.setattr(crypto, "_warned", True)
    predict_batch(ModelStore(engine, settings=get_settings()), engine, _class_file(raw_df, 5), channel="cli")
    before = sorted(str(sorted(d.items())) for d in _recent_inputs(engine, since))

    _use_keys(monkeypatch, KEY_B, previous=KEY_A)
    result = rotate_data_key(engine, batch_rows=4)  # several batches, one transaction each
    assert (result.artifacts, result.log_rows) == (1, 17)
    assert rotate_data_key(engine).log_rows == 0  # idempotent

    _use_keys(monkeypatch, KEY_B)  # the old key is gone: everything must read under KEY_B alone
    key_b = crypto.DataKey.from_text(KEY_B).key_id
    assert {crypto.inputs_key_id(v) for v in _stored(engine, PredictionLog.inputs) if v is not None} == {key_b}
    assert sorted(str(sorted(d.items())) for d in _recent_inputs(engine, since)) == before
    with session_scope(engine) as session:
        version = registry.active_versions(session)["early"]
        assert crypto.artifact_key_id(version.artifact) == key_b
        assert registry.load_artifact(version, settings=get_settings()).setup == "early"
    assert (
        len(
            predict_batch(
                ModelStore(engine, settings=get_settings()), engine, _class_file(raw_df, 3), channel="cli"
            ).results
        )
        == 3
    )


def test_rotate_key_command(keyed_db: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture) -> None:
    monkeypatch.setenv("DATABASE_URL", keyed_db)
    _use_keys(monkeypatch, KEY_B, previous=KEY_A)
    assert cli.main(["rotate-key"]) == 0
    assert "re-encrypted 1 model artifacts and 0 log rows" in capsys.readouterr().out
    with session_scope(get_engine(keyed_db)) as session:
        stored = session.scalar(sa.select(ModelVersion.artifact))
    assert crypto.artifact_key_id(stored) == crypto.DataKey.from_text(KEY_B).key_id
    _use_keys(monkeypatch, "")
    assert cli.main(["rotate-key"]) == 2
    assert "set MATHSIGHT_DATA_KEY" in capsys.readouterr().err
    assert cli.main(["rotate-key", "--generate"]) == 0
    assert crypto.DataKey.from_text(capsys.readouterr().out.strip())


def test_demo_traffic_is_encrypted_like_real_traffic(keyed_db: str, raw_df: pd.DataFrame, trained_models: dict) -> None:
    from model.monitoring.demo import demo_traffic

    install_models(keyed_db, {s: trained_models[s] for s in ("period1", "period2")})
    engine = get_engine(keyed_db)
    summary = demo_traffic(engine, ModelStore(engine, settings=get_settings()), raw_df, days=3, rows_per_day=10, seed=1)
    raw = _raw_inputs(engine)
    assert len(raw) == summary.rows - summary.rejected > 0
    assert all('"enc"' in text and "Mjob" not in text for text in raw)
    keys = _stored(engine, PredictionLog.idempotency_key)
    assert None not in keys and len(set(keys)) == len(keys)
