"""Exporting model versions: the signed artifact with a JSON sidecar, and the mean head as ONNX.

The artifact file holds the exact bytes stored in the registry (a joblib serialization, encrypted
when ``MATHSIGHT_DATA_KEY`` is set, so such an export opens only where that key is configured); the
sidecar carries its SHA-256, its signature and the version's metadata. The signature binds the bytes
to the version's id, setup, schema version, provenance and metrics (``registry.Signed``), so loading
an export through ``registry.load_artifact_bytes`` refuses, before anything is unpickled, a file
changed in any way, a sidecar whose setup or metrics were edited, and an export signed by another
installation's key. Sidecars of format ``mathsight-artifact/1`` (whose HMAC covered the bytes alone)
are refused: export the version again from an installation that has re-signed it.

The ONNX graph computes the predicted grade: the mean head (one-hot preprocessing + LightGBM)
plus its anchor (G2 in ``period2``, G1 in ``period1``, the training mean in ``early``), clipped to
0-20. One input per attribute, named after it, shaped ``[n, 1]``: strings for categorical
attributes, float32 for the others. The interval, P(pass) and the band are not part of it.
"""

from __future__ import annotations

import io
import json
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy.orm import Session

from model.errors import UserError
from model.ml.grade_model import ANCHOR, GradeModel
from model.schema.fields import CATEGORICAL
from model.settings import Settings
from model.store import registry

SIDECAR_FORMAT = "mathsight-artifact/2"
SIDECAR_FIELDS = (*registry.SIGNED_FIELDS, "created_at", "created_by", "artifact_hmac")
ONNX_OPSET = {"": 17, "ai.onnx.ml": 3}
ONNX_OUTPUT = "predicted_g3"


class ExportError(UserError):
    """An export file is malformed (missing sidecar fields, not a bundle)."""


class OnnxUnavailable(RuntimeError):
    """The ONNX converters (skl2onnx, onnxmltools) are not installed."""


@dataclass(frozen=True)
class ExportedArtifact:
    """A version's artifact bytes and its sidecar metadata."""

    version_id: str
    artifact: bytes
    sidecar: dict[str, Any]

    @property
    def artifact_name(self) -> str:
        return f"{self.version_id}.joblib"

    @property
    def sidecar_name(self) -> str:
        return f"{self.version_id}.json"

    def sidecar_json(self) -> bytes:
        return json.dumps(self.sidecar, indent=2, sort_keys=True).encode("utf-8")

    def to_zip(self) -> bytes:
        """Both files in one zip archive (what the models page offers for download)."""
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
            archive.writestr(self.artifact_name, self.artifact)
            archive.writestr(self.sidecar_name, self.sidecar_json())
        return buffer.getvalue()


def export_version(session: Session, version_id: str, *, settings: Settings) -> ExportedArtifact:
    """The artifact of ``version_id`` with its sidecar; the stored bytes are verified first."""
    version = registry.get_version(session, version_id)
    registry.verify_artifact(version, settings=settings)
    sidecar = {
        "format": SIDECAR_FORMAT,
        "version_id": version.id,
        "setup": version.setup,
        "schema_version": version.schema_version,
        "algorithm": version.algorithm,
        "params": version.params,
        "data_sha256": version.data_sha256,
        "n_rows": version.n_rows,
        "metrics": version.metrics,
        "reference": version.reference,
        "created_at": version.created_at.isoformat(),
        "created_by": version.created_by,
        "artifact_sha256": version.artifact_sha256,
        "artifact_hmac": version.artifact_hmac,
        "artifact_file": f"{version.id}.joblib",
    }
    return ExportedArtifact(version.id, bytes(version.artifact), json.loads(json.dumps(sidecar, default=str)))


def read_bundle(data: bytes) -> tuple[bytes, dict[str, Any]]:
    """The artifact bytes and sidecar of a zip made by `ExportedArtifact.to_zip`."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            names = archive.namelist()
            sidecar_name = next((n for n in names if n.endswith(".json")), None)
            if sidecar_name is None:
                raise ExportError("the archive holds no .json sidecar")
            sidecar = json.loads(archive.read(sidecar_name))
            artifact_name = sidecar.get("artifact_file")
            if artifact_name not in names:
                raise ExportError(f"the archive holds no artifact file {artifact_name!r}")
            return archive.read(artifact_name), sidecar
    except zipfile.BadZipFile as error:
        raise ExportError(f"not a mathsight export archive: {error}") from None


def _check_sidecar(sidecar: Mapping[str, Any]) -> None:
    if sidecar.get("format") == "mathsight-artifact/1":
        raise ExportError(
            "this export was made before signatures bound the version (format mathsight-artifact/1); export the "
            "version again from its installation after `python -m model migrate`"
        )
    if sidecar.get("format") != SIDECAR_FORMAT:
        raise ExportError(f"unknown sidecar format {sidecar.get('format')!r}; expected {SIDECAR_FORMAT!r}")
    missing = [name for name in SIDECAR_FIELDS if name not in sidecar]
    if missing:
        raise ExportError(f"the sidecar lacks {', '.join(missing)}")


def load_export(artifact: bytes, sidecar: Mapping[str, Any], *, settings: Settings) -> GradeModel:
    """The model in an exported artifact, after its SHA-256 and signature were checked against the sidecar.

    Raises ``registry.ArtifactIntegrityError`` for modified bytes, an edited sidecar or a foreign
    key, `ExportError` for a malformed sidecar.
    """
    _check_sidecar(sidecar)
    label = f"{sidecar['version_id']} (exported file)"
    return registry.load_artifact_bytes(artifact, registry.Signed.of_sidecar(sidecar), sidecar["artifact_hmac"],
                                        label, settings=settings)  # fmt: skip


def import_export(
    session: Session, artifact: bytes, sidecar: Mapping[str, Any], created_by: str, *, settings: Settings
) -> str:
    """Register a verified export as a new inactive version (e.g. from another instance); returns its id."""
    model = load_export(artifact, sidecar, settings=settings)
    version = registry.register_version(
        session,
        model,
        setup=sidecar["setup"],
        algorithm=sidecar["algorithm"],
        params=sidecar["params"],
        schema_version=int(sidecar["schema_version"]),
        data_sha256=sidecar["data_sha256"],
        n_rows=int(sidecar["n_rows"]),
        metrics=sidecar["metrics"],
        reference=sidecar["reference"],
        created_by=created_by,
        notes=f"imported from export of {sidecar['version_id']}",
        settings=settings,
    )
    return version.id


# ---------------------------------------------------------------- ONNX


_converters_registered = False


def _converters() -> tuple[Any, Any, Any]:
    """skl2onnx's converter with onnxmltools' LightGBM converter registered (imported on demand)."""
    global _converters_registered
    try:
        import lightgbm as lgb
        from onnxmltools.convert.lightgbm.operator_converters.LightGbm import convert_lightgbm
        from skl2onnx import convert_sklearn, update_registered_converter
        from skl2onnx.common.data_types import FloatTensorType, StringTensorType
        from skl2onnx.common.shape_calculator import calculate_linear_regressor_output_shapes
    except ImportError as error:
        raise OnnxUnavailable(f"ONNX export needs skl2onnx and onnxmltools: {error}") from None
    if not _converters_registered:
        update_registered_converter(
            lgb.LGBMRegressor, "LightGbmLGBMRegressor", calculate_linear_regressor_output_shapes, convert_lightgbm
        )
        _converters_registered = True
    return convert_sklearn, FloatTensorType, StringTensorType


def to_onnx(model: GradeModel) -> bytes:
    """The predicted-grade graph of a fitted model, serialized as ONNX (see the module docstring)."""
    from onnx import TensorProto, helper

    convert_sklearn, float_type, string_type = _converters()
    inputs = [(name, string_type([None, 1]) if name in CATEGORICAL else float_type([None, 1]))
              for name in model.features_]  # fmt: skip
    onx = convert_sklearn(model.mean_head_, initial_types=inputs, target_opset=ONNX_OPSET)
    graph = onx.graph
    head_output = graph.output[0].name
    anchor = ANCHOR[model.setup]
    if anchor is None:
        graph.initializer.append(helper.make_tensor("anchor", TensorProto.FLOAT, [1], [model.anchor_mean_]))
        anchor = "anchor"
    else:  # intercept + slope x the latest grade (versions before the fitted line: the grade itself)
        intercept, slope = model.__dict__.get("anchor_line_", (0.0, 1.0))
        graph.initializer.extend([
            helper.make_tensor("anchor_slope", TensorProto.FLOAT, [], [slope]),
            helper.make_tensor("anchor_intercept", TensorProto.FLOAT, [], [intercept]),
        ])  # fmt: skip
        graph.node.extend([
            helper.make_node("Mul", [anchor, "anchor_slope"], ["anchor_scaled"], name="scale_anchor"),
            helper.make_node("Add", ["anchor_scaled", "anchor_intercept"], ["anchor_line"], name="shift_anchor"),
        ])  # fmt: skip
        anchor = "anchor_line"
    graph.initializer.extend([
        helper.make_tensor("grade_min", TensorProto.FLOAT, [], [0.0]),
        helper.make_tensor("grade_max", TensorProto.FLOAT, [], [20.0]),
    ])  # fmt: skip
    graph.node.extend([
        helper.make_node("Add", [head_output, anchor], ["anchored"], name="add_anchor"),
        helper.make_node("Clip", ["anchored", "grade_min", "grade_max"], [ONNX_OUTPUT], name="clip_0_20"),
    ])  # fmt: skip
    del graph.output[:]
    graph.output.append(helper.make_tensor_value_info(ONNX_OUTPUT, TensorProto.FLOAT, [None, 1]))
    onx.doc_string = f"mathsight {model.setup} predicted grade (mean head + anchor, clipped to 0-20)"
    return onx.SerializeToString()


def export_onnx(session: Session, version_id: str, *, settings: Settings) -> bytes:
    """The predicted-grade graph of a registered version as ONNX (its artifact verified before loading)."""
    return to_onnx(registry.load_artifact(registry.get_version(session, version_id), settings=settings))


def onnx_feed(model: GradeModel, frame: pd.DataFrame) -> dict[str, np.ndarray]:
    """The ONNX inputs for the rows of ``frame`` (one ``[n, 1]`` array per attribute)."""
    return {
        name: frame[[name]].astype(str).to_numpy() if name in CATEGORICAL else frame[[name]].to_numpy(np.float32)
        for name in model.features_
    }


def onnx_predict(onnx_model: bytes, model: GradeModel, frame: pd.DataFrame) -> np.ndarray:
    """Predicted grades of ``frame`` computed by ONNX Runtime from an exported graph."""
    import onnxruntime

    session = onnxruntime.InferenceSession(onnx_model, providers=["CPUExecutionProvider"])
    return session.run([ONNX_OUTPUT], onnx_feed(model, frame))[0].ravel()
