"""Artifacts stored before the core moved into wings name ``model.pipelines`` and ``model.treeshap``:
they must still load (a school's registry holds them) and predict exactly as before."""

from __future__ import annotations

import sys

import pandas as pd
import pytest

from model.ml import grade_model, treeshap
from model.settings import get_settings
from model.store import registry

OLD_PATHS = {"model.pipelines": grade_model, "model.treeshap": treeshap}


def _pickled_under_old_paths(estimator: grade_model.GradeModel) -> bytes:
    """The estimator serialized as the flat layout did: its classes under their old module paths."""
    classes = (grade_model.GradeModel, treeshap.TableShap)
    saved = [cls.__module__ for cls in classes]
    grade_model.GradeModel.__module__, treeshap.TableShap.__module__ = "model.pipelines", "model.treeshap"
    try:
        return registry.serialize(estimator)
    finally:
        for cls, module in zip(classes, saved, strict=True):
            cls.__module__ = module


def _load(blob: bytes) -> object:
    settings = get_settings()
    signed = registry.Signed("legacy", "early", 1, "lightgbm", {}, "0" * 64, 1, {}, {}, registry.sha256_hex(blob))
    signature = registry.sign_fields(signed, settings=settings)
    return registry.load_artifact_bytes(blob, signed, signature, "legacy", settings=settings)


def test_an_artifact_pickled_under_the_old_module_paths_loads_and_predicts_the_same(
    trained_models: dict, raw_df: pd.DataFrame
) -> None:
    estimator = trained_models["period1"].estimator
    restored = _load(_pickled_under_old_paths(estimator))
    assert isinstance(restored, grade_model.GradeModel)
    pd.testing.assert_frame_equal(restored.predict_details(raw_df), estimator.predict_details(raw_df))


def test_the_old_paths_are_what_the_artifact_names(trained_models: dict, monkeypatch: pytest.MonkeyPatch) -> None:
    blob = _pickled_under_old_paths(trained_models["early"].estimator)
    for old in OLD_PATHS:
        monkeypatch.delitem(sys.modules, old)
    with pytest.raises(ModuleNotFoundError, match="model.pipelines"):
        _load(blob)


def test_an_active_version_of_grade_model_v1_is_refused_with_a_clear_message(trained_models: dict, tmp_path) -> None:
    import copy
    import dataclasses

    from model.serving.service import LegacyModel, ModelStore, NoActiveModel
    from model.store.db import get_engine
    from tests.conftest import install_models

    old = copy.deepcopy(trained_models["early"].estimator)
    del old.__dict__["nograde_head_"]  # what a v1 artifact holds: mean and median heads, no no-grade head
    url = f"sqlite:///{tmp_path / 'v1.db'}"
    install_models(url, {"early": dataclasses.replace(trained_models["early"], estimator=old)})
    store = ModelStore(get_engine(url), settings=get_settings())
    with pytest.raises(LegacyModel, match=r"grade model v1.*python -m model train --setup early --activate") as error:
        store.get("early")
    assert isinstance(error.value, NoActiveModel)  # every front already shows this error as a message
