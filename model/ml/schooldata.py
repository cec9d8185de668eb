"""The school's own students as training data: logged inputs joined to the final grades recorded later.

For one setup, :func:`outcome_training_set` takes every student with a recorded final grade (the
latest one recorded), and that student's latest successful, non-demo prediction whose inputs hold
the setup's features (a ``period2`` prediction serves ``early`` too): one row per student, however
often they were predicted. The inputs are decrypted in memory only; the counts say what was found,
matched and dropped. Below ``min_training_outcomes`` students (the threshold table) nothing is
trained or judged on them (:class:`NotEnoughOutcomes`).

A version trained on school data keeps a reference to what it learned from (``training_data``: the
source, the choice and weights, the counts, and the school's rows as gzip CSV sealed under the data
key), so its model card, fairness table and comparisons are computed on those rows; reading them
back checks them against the version's signed data hash.
"""

from __future__ import annotations

import gzip
import io
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.orm import Session, undefer

from model.errors import UserError
from model.i18n import N_, tr
from model.ml.dataset import CSV_NAME, load_raw
from model.ml.training import TRAINING_ROWS_PURPOSE as PURPOSE
from model.ml.training import frame_sha256
from model.schema.fields import CATEGORICAL, SETUP_FEATURES, SETUPS, TARGET
from model.schema.thresholds import Thresholds
from model.settings import Settings
from model.store import crypto
from model.store.tables import Outcome, PredictionLog, TrainingData

SOURCES = {
    "bundled": f"the bundled UCI maths file ({CSV_NAME})",
    "file": N_("a training file"),
    "outcomes": N_("the school's recorded outcomes"),
    "pooled": N_("the school's recorded outcomes pooled with the bundled UCI file"),
}
MAX_WEIGHT = 5
PREDICTED_AT = "predicted_at"


class NotEnoughOutcomes(UserError):
    """Too few students with a recorded final grade to train or judge on them."""


class TrainingDataMismatch(UserError):
    """A version's stored training rows do not hash to its signed data hash."""


@dataclass(frozen=True)
class SchoolSet:
    """One row per student with a recorded final grade: the setup's inputs, G3 and when they were predicted."""

    setup: str
    frame: pd.DataFrame
    counts: dict[str, int] = field(default_factory=dict)

    @property
    def training_rows(self) -> pd.DataFrame:
        """The rows as the model learns from them (the prediction time left out)."""
        return self.frame.drop(columns=[PREDICTED_AT]).reset_index(drop=True)


def _richer_setups(setup: str) -> list[str]:
    needed = set(SETUP_FEATURES[setup])
    return [s for s in SETUPS if needed <= set(SETUP_FEATURES[s])]


def _latest_outcomes() -> sa.Subquery:
    latest = sa.select(Outcome.student_key, sa.func.max(Outcome.id).label("id")).group_by(Outcome.student_key)
    latest = latest.subquery("latest")
    return sa.select(Outcome.student_key, Outcome.g3).join(latest, latest.c.id == Outcome.id).subquery("outcomes")


def _typed(frame: pd.DataFrame, setup: str) -> pd.DataFrame:
    columns = list(SETUP_FEATURES[setup])
    typed = {name: frame[name].astype(str) if name in CATEGORICAL else frame[name].astype("int64") for name in columns}
    return pd.DataFrame(typed | {TARGET: frame[TARGET].astype("int64"), PREDICTED_AT: frame[PREDICTED_AT]})


def outcome_training_set(session: Session, setup: str, *, settings: Settings) -> SchoolSet:
    """The school's students of ``setup`` with a recorded final grade, one row each (see the module)."""
    if setup not in SETUPS:
        raise ValueError(f"unknown setup {setup!r}; expected one of {', '.join(SETUPS)}")
    outcomes = _latest_outcomes()
    log = PredictionLog
    query = (
        sa.select(log.student_key, log.inputs, log.created_at, log.id, outcomes.c.g3)
        .join(outcomes, outcomes.c.student_key == log.student_key)
        .where(
            log.status == "ok", log.is_demo.is_(False), log.inputs.is_not(None), log.setup.in_(_richer_setups(setup))
        )  # fmt: skip
        .order_by(log.student_key, log.created_at, log.id)
    )
    ring = crypto.keyring(settings)
    latest: dict[str, dict[str, Any]] = {}
    matched = 0
    for key, stored, created_at, _, g3 in session.execute(query):
        matched += 1
        latest[key] = {**(ring.decrypt_inputs(stored) or {}), TARGET: g3, PREDICTED_AT: created_at}
    needed = list(SETUP_FEATURES[setup])
    complete = [row for row in latest.values() if all(row.get(name) is not None for name in needed)]
    recorded = session.scalar(sa.select(sa.func.count()).select_from(outcomes)) or 0
    counts = {"students_with_outcome": int(recorded), "predictions_matched": matched, "students": len(complete),
              "duplicates_dropped": matched - len(latest),
              "incomplete_inputs": len(latest) - len(complete)}  # fmt: skip
    frame = pd.DataFrame(complete, columns=[*needed, TARGET, PREDICTED_AT])
    return SchoolSet(setup, _typed(frame, setup) if complete else frame, counts)


def require_enough(school: SchoolSet, thresholds: Thresholds) -> None:
    """Raise `NotEnoughOutcomes` when fewer students than ``min_training_outcomes`` have a usable outcome."""
    n, needed = len(school.frame), thresholds.min_training_outcomes
    if n < needed:
        c = school.counts
        raise NotEnoughOutcomes(
            tr("only {count} students of the {setup} setup have a recorded final grade and a prediction with its "
               "inputs ({recorded} outcomes recorded, {incomplete} without the setup's inputs); at least {needed} are "
               "needed (MATHSIGHT_MIN_TRAINING_OUTCOMES)", count=n, setup=school.setup,
               recorded=c.get("students_with_outcome", 0), incomplete=c.get("incomplete_inputs", 0), needed=needed)
        )  # fmt: skip


@dataclass(frozen=True)
class TrainingChoice:
    """What a version is trained on: ``source`` (a key of :data:`SOURCES`) and the weight of the school's rows."""

    source: str
    weight: int = 1
    label: str = ""

    def __post_init__(self) -> None:
        if self.source not in SOURCES:
            raise ValueError(f"unknown training source {self.source!r}; expected one of {', '.join(SOURCES)}")
        if not 1 <= self.weight <= MAX_WEIGHT:
            raise UserError(tr("the weight of the school's rows must be a whole number from 1 to {most}",
                               most=MAX_WEIGHT))  # fmt: skip

    @property
    def uses_school(self) -> bool:
        """Whether the school's recorded outcomes are among the rows."""
        return self.source in ("outcomes", "pooled")

    @property
    def keeps_rows(self) -> bool:
        """Whether the rows are kept with the version (all but the bundled file, which is kept by hash)."""
        return self.source != "bundled"


@dataclass(frozen=True)
class TrainingSet:
    """The rows the protocol scores, the rows the final model is fitted on, the reference kept with it and
    the rows kept with it (``school``: the school's or the file's; None for the bundled file)."""

    protocol: pd.DataFrame
    fit: pd.DataFrame
    reference: dict[str, Any]
    school: pd.DataFrame | None


def pooled(school: pd.DataFrame, bundled: pd.DataFrame, weight: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(rows scored once each, rows fitted with the school's repeated ``weight`` times): school rows first."""
    columns = list(school.columns)
    once = pd.concat([school, bundled[columns]], ignore_index=True)
    weighted = pd.concat([*([school] * weight), bundled[columns]], ignore_index=True)
    return once, weighted


def training_set(
    choice: TrainingChoice, rows: pd.DataFrame, bundled: pd.DataFrame | None = None, counts: dict | None = None
) -> TrainingSet:
    """The training set of ``choice``: ``rows`` are the file's, the bundled file's or the school's rows
    (``bundled`` is needed to pool). The school's weight applies to the final fit only: the protocol
    scores every row once, so a repeated row never sits on both sides of a fold."""
    if choice.source == "pooled":
        if bundled is None:
            raise ValueError("pooling needs the bundled rows")
        once, weighted = pooled(rows, bundled, choice.weight)
    else:
        once = weighted = rows.reset_index(drop=True)
    school = rows.reset_index(drop=True) if choice.keeps_rows else None
    reference = {"source": choice.source, "label": choice.label or SOURCES[choice.source], "rows": len(once),
                 "school_rows": 0 if school is None else len(school),
                 "weight": choice.weight if choice.source == "pooled" else 1, "sha256": frame_sha256(once),
                 "counts": dict(counts or {}),
                 "school_sha256": None if school is None else frame_sha256(school)}  # fmt: skip
    return TrainingSet(once, weighted, reference, school)


def school_training_set(
    session: Session, setup: str, choice: TrainingChoice, *, settings: Settings, bundled: pd.DataFrame | None = None
) -> TrainingSet:
    """The training set of the school's outcomes for ``setup``, alone or pooled with the bundled file.

    Raises `NotEnoughOutcomes` below ``min_training_outcomes`` students."""
    if not choice.uses_school:
        raise ValueError(f"{choice.source!r} is not a training source of school outcomes")
    school = outcome_training_set(session, setup, settings=settings)
    require_enough(school, Thresholds.from_settings(settings))
    if choice.source == "pooled" and bundled is None:
        bundled = load_raw(settings=settings)
    return training_set(choice, school.training_rows, bundled, counts=school.counts)


# ---------------------------------------------------------------- the reference kept with a version


def training_data(session: Session, version_id: str) -> TrainingData | None:
    """The training-data reference of ``version_id`` (None for versions trained before references were kept)."""
    return session.get(TrainingData, version_id)


def kept_rows(session: Session, version_id: str, *, settings: Settings) -> pd.DataFrame | None:
    """The school's (or a file's) rows ``version_id`` learned from, decrypted in memory (None: none kept)."""
    query = sa.select(TrainingData).where(TrainingData.version_id == version_id).options(undefer(TrainingData.rows))
    ref = session.scalars(query).one_or_none()
    if ref is None or ref.rows is None:
        return None
    blob = crypto.keyring(settings).decrypt_blob(ref.rows, ref.rows_key_id, PURPOSE)
    frame = pd.read_csv(io.BytesIO(gzip.decompress(blob)), sep=";", dtype={c: str for c in CATEGORICAL})
    expected = ref.detail.get("school_sha256")
    if expected is not None and frame_sha256(frame) != expected:
        raise TrainingDataMismatch(f"the stored training rows of {version_id} do not match their hash")
    return frame


def split_at(school: SchoolSet, when: datetime) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The school's rows predicted before ``when`` and from ``when`` on (a time split)."""
    before = school.frame[PREDICTED_AT] < pd.Timestamp(when)
    return school.frame[before].drop(columns=[PREDICTED_AT]), school.frame[~before].drop(columns=[PREDICTED_AT])
