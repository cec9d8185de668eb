"""Training data: the one reader and validator of a training file, whatever front it comes from.

A training file is any CSV of the schema (';' or ','), the target G3 required: the bundled UCI maths
file, the Portuguese-course file of the same archive, a school's own export. The models page's
upload and every CLI command's ``--data FILE`` go through :func:`validate_training_data`, so a bad
file gets the same answer everywhere: every problem by row, column, value and what is allowed, and
nothing trained. The SHA-256 check of :mod:`model.ml.dataset` guards only the bundled UCI file (its
download and its cached copy), never a file the user names.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import pandas as pd

from model.errors import Problem, UserError
from model.ml.dataset import load_raw
from model.schema.fields import GRADES, SETUP_FEATURES, SETUPS
from model.schema.validation import validate_batch
from model.settings import Settings

MIN_TRAINING_ROWS = 50


class TrainingDataRejected(UserError):
    """The training data has problems; nothing was trained. ``problems`` name row, column, value."""

    def __init__(self, problems: list[Problem], n_rows: int) -> None:
        super().__init__(f"the training data has {len(problems)} problem(s); fix them and try again", problems)
        self.n_rows = n_rows


class TrainingFileMissing(UserError):
    """The named training file cannot be read."""


def _missing_grade_problems(accepted: pd.DataFrame, setup: str) -> list[Problem]:
    problems = []
    for grade in (g for g in GRADES if g in SETUP_FEATURES[setup]):
        if grade not in accepted.columns:
            problems.append(Problem(None, grade, None, f'column "{grade}" is missing; the {setup} setup needs it to '
                                    "train", "0-20"))  # fmt: skip
            continue
        for row in accepted.index[accepted[grade].isna()]:
            message = f'row {row}, column "{grade}": missing value; the {setup} setup needs it to train'
            problems.append(Problem(int(row), grade, "", message, "0-20"))
    return problems


def richest(setups: Iterable[str]) -> str:
    """The setup of ``setups`` that needs the most inputs (its checks cover the others')."""
    chosen = set(setups)
    return max(chosen, key=lambda s: len(SETUP_FEATURES[s])) if chosen else "early"


def validate_training_data(data: bytes | str, setup: str, min_rows: int = MIN_TRAINING_ROWS) -> pd.DataFrame:
    """The rows of a training CSV, or `TrainingDataRejected` listing every problem.

    The file is checked by the upload schema with the target G3 required, plus the grades the
    setup learns from (G1 for ``period1``, G1 and G2 for ``period2``). Every row must be valid:
    a model is never trained on a silently filtered file. A file unusable as a whole raises
    ``schema.BatchRejected``.
    """
    if setup not in SETUPS:
        raise ValueError(f"unknown setup {setup!r}; expected one of {', '.join(SETUPS)}")
    result = validate_batch(data, require_target=True)
    problems = [p for p in result.problems if p.row is not None or p.column is not None]
    problems += _missing_grade_problems(result.accepted, setup)
    if not problems and len(result.accepted) < min_rows:
        message = f"{len(result.accepted)} rows; at least {min_rows} are needed to train and score a model"
        problems.append(Problem(None, None, None, message))
    if problems:
        raise TrainingDataRejected(problems, result.n_rows)
    return result.accepted


def read_training_file(path: Path | str, setups: Iterable[str]) -> pd.DataFrame:
    """The validated rows of the file at ``path`` for training or scoring every setup of ``setups``."""
    try:
        data = Path(path).read_bytes()
    except OSError as error:
        raise TrainingFileMissing(f"cannot read the training file {path}: {error.strerror or error}") from None
    return validate_training_data(data, richest(setups))


def training_frame(path: Path | str | None, setups: Iterable[str], *, settings: Settings) -> pd.DataFrame:
    """The rows of ``path`` validated for ``setups``, or without a path the bundled UCI file (SHA-256 checked)."""
    if path is None:
        return load_raw(settings=settings)
    return read_training_file(path, setups)
