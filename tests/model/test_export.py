"""Exported artifacts: verified on import, refused when tampered; ONNX agrees with the model."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from model.ml import export
from model.ml.training import TrainedVersion
from model.settings import get_settings
from model.store.db import get_engine, session_scope
from model.store.registry import (
    ArtifactIntegrityError,
    active_version_ids,
    get_version,
    list_versions,
    load_artifact,
    sha256_hex,
)
from tests.conftest import register_trained


@pytest.fixture
def exported(models_db_url: str) -> export.ExportedArtifact:
    with session_scope(get_engine(models_db_url)) as session:
        return export.export_version(session, active_version_ids(session)["period2"], settings=get_settings())


def test_export_round_trip_gives_the_same_model(exported: export.ExportedArtifact, raw_df: pd.DataFrame) -> None:
    artifact, sidecar = export.read_bundle(exported.to_zip())
    assert artifact == exported.artifact
    assert sidecar["artifact_sha256"] == sha256_hex(artifact)
    assert sidecar["setup"] == "period2" and sidecar["n_rows"] == 395 and sidecar["format"] == export.SIDECAR_FORMAT
    json.dumps(sidecar)  # plain JSON
    model = export.load_export(artifact, sidecar, settings=get_settings())
    assert np.array_equal(
        model.predict(raw_df),
        export.load_export(exported.artifact, exported.sidecar, settings=get_settings()).predict(raw_df),
    )


def test_tampered_artifact_is_refused(exported: export.ExportedArtifact) -> None:
    tampered = bytearray(exported.artifact)
    tampered[len(tampered) // 2] ^= 0xFF
    with pytest.raises(ArtifactIntegrityError, match="SHA-256"):
        export.load_export(bytes(tampered), exported.sidecar, settings=get_settings())
    # Recomputing the hash is not enough: the HMAC needs the installation's key.
    forged = {**exported.sidecar, "artifact_sha256": sha256_hex(bytes(tampered))}
    with pytest.raises(ArtifactIntegrityError, match="HMAC"):
        export.load_export(bytes(tampered), forged, settings=get_settings())


def test_export_from_another_installation_is_refused(
    exported: export.ExportedArtifact, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MATHSIGHT_SECRET_KEY", "another-installation-key-0123456789")
    get_settings.cache_clear()
    with pytest.raises(ArtifactIntegrityError, match="HMAC"):
        export.load_export(exported.artifact, exported.sidecar, settings=get_settings())


def test_malformed_exports_are_refused_with_a_reason(exported: export.ExportedArtifact) -> None:
    with pytest.raises(export.ExportError, match="not a mathsight export"):
        export.read_bundle(b"not a zip")
    incomplete = {k: v for k, v in exported.sidecar.items() if k != "artifact_hmac"}
    with pytest.raises(export.ExportError, match="artifact_hmac"):
        export.load_export(exported.artifact, incomplete, settings=get_settings())
    with pytest.raises(export.ExportError, match="format"):
        export.load_export(exported.artifact, {**exported.sidecar, "format": "other/9"}, settings=get_settings())


def test_import_registers_a_new_inactive_version(
    models_db_url: str, exported: export.ExportedArtifact, raw_df: pd.DataFrame
) -> None:
    engine = get_engine(models_db_url)
    with session_scope(engine) as session:
        new_id = export.import_export(
            session, exported.artifact, exported.sidecar, created_by="pytest", settings=get_settings()
        )
    with session_scope(engine) as session:
        version = get_version(session, new_id)
        assert active_version_ids(session)["period2"] == exported.version_id
        assert version.notes == f"imported from export of {exported.version_id}"
        assert version.metrics == exported.sidecar["metrics"]
        model = load_artifact(version, settings=get_settings())
    original = export.load_export(exported.artifact, exported.sidecar, settings=get_settings())
    assert np.array_equal(model.predict(raw_df), original.predict(raw_df))


@pytest.mark.parametrize("setup", ["early", "period1", "period2"])
def test_onnx_runtime_matches_the_predicted_grade(
    setup: str, trained_models: dict[str, TrainedVersion], raw_df: pd.DataFrame
) -> None:
    model = trained_models[setup].estimator
    onnx_model = export.to_onnx(model)
    predicted = export.onnx_predict(onnx_model, model, raw_df)
    assert predicted.shape == (len(raw_df),)
    np.testing.assert_allclose(predicted, model.predict(raw_df), atol=1e-4, rtol=0)


def test_an_encrypted_artifact_exports_as_ciphertext_and_imports_with_the_key(
    db_url: str, trained_models: dict[str, TrainedVersion], raw_df: pd.DataFrame, monkeypatch: pytest.MonkeyPatch
) -> None:
    from model.store import crypto
    from model.store.db import migrate

    monkeypatch.setenv("MATHSIGHT_DATA_KEY", crypto.generate_key())
    get_settings.cache_clear()
    engine = get_engine(db_url)
    migrate(engine)
    version_id = register_trained(engine, trained_models["early"], created_by="pytest")
    with session_scope(engine) as session:
        exported = export.export_version(session, version_id, settings=get_settings())
    assert crypto.artifact_key_id(exported.artifact) is not None
    model = export.load_export(exported.artifact, exported.sidecar, settings=get_settings())
    assert np.array_equal(model.predict(raw_df), trained_models["early"].estimator.predict(raw_df))


def test_cli_export_writes_artifact_sidecar_and_onnx(
    app_db_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from model.cli.main import main

    with session_scope(get_engine(app_db_url)) as session:
        version_id = active_version_ids(session)["period1"]
    assert main(["export", version_id, "--output", str(tmp_path), "--onnx"]) == 0
    sidecar = json.loads((tmp_path / f"{version_id}.json").read_text())
    model = export.load_export((tmp_path / f"{version_id}.joblib").read_bytes(), sidecar, settings=get_settings())
    assert (tmp_path / f"{version_id}.onnx").stat().st_size > 0 and model.setup == "period1"
    assert main(["export", "period1-nope", "--output", str(tmp_path)]) == 2
    assert "no model version 'period1-nope'" in capsys.readouterr().err


@pytest.mark.parametrize(
    "edit",
    [
        {"setup": "early"},
        {"metrics": {"rmse": {"mean": 0.5, "std": 0.0}}},
        {"version_id": "period2-forged"},
        {"data_sha256": "0" * 64},
        {"schema_version": 7},
    ],  # fmt: skip
)
def test_an_edited_sidecar_is_refused_on_import(models_db_url: str, exported: export.ExportedArtifact, edit) -> None:
    engine = get_engine(models_db_url)
    with session_scope(engine) as session:
        before = len(list_versions(session))
    refused = pytest.raises(ArtifactIntegrityError, match="HMAC signature does not match its version id, setup")
    with refused, session_scope(engine) as session:
        export.import_export(
            session, exported.artifact, {**exported.sidecar, **edit}, "pytest", settings=get_settings()
        )
    with session_scope(engine) as session:
        assert len(list_versions(session)) == before


def test_an_export_of_the_old_format_is_refused_with_what_to_do(exported: export.ExportedArtifact) -> None:
    old = {**exported.sidecar, "format": "mathsight-artifact/1"}
    with pytest.raises(export.ExportError, match="export the version again"):
        export.load_export(exported.artifact, old, settings=get_settings())
