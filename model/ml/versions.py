"""The versions of one setup as the models page lists them: provenance, headline protocol metrics, and
which version is active and which one a rollback would return to."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd
from sqlalchemy.orm import Session

from model.store import registry
from model.store.tables import ActiveModel


@dataclass(frozen=True)
class SetupOverview:
    """The versions of one setup as the models page lists them, and its active/previous pointers."""

    versions: pd.DataFrame
    active_id: str | None
    previous_id: str | None


def _cell(metrics: dict, name: str) -> str:
    value = metrics.get(name)
    if not isinstance(value, dict) or value.get("mean") is None:
        return "-"
    return f"{value['mean']:.2f} ± {value['std']:.2f}"


def setup_overview(session: Session, setup: str) -> SetupOverview:
    """Every version of ``setup`` (newest first) with provenance and headline protocol metrics."""
    pointer = session.get(ActiveModel, setup)
    active_id = pointer.version_id if pointer is not None else None
    rows = [
        {"active": v.id == active_id, "version": v.id, "algorithm": v.algorithm, "data": v.data_sha256[:12],
         "rows": v.n_rows, "created_at": v.created_at, "created_by": v.created_by,
         "runs": int(v.metrics.get("protocol_runs", 0)), "pass/fail accuracy %": _cell(v.metrics, "binary_accuracy"),
         "5-level accuracy %": _cell(v.metrics, "five_level_accuracy"), "RMSE": _cell(v.metrics, "rmse"),
         "ROC-AUC": _cell(v.metrics, "roc_auc"), "notes": v.notes}
        for v in registry.list_versions(session, setup)
    ]  # fmt: skip
    return SetupOverview(pd.DataFrame(rows), active_id, pointer.previous_version_id if pointer is not None else None)
