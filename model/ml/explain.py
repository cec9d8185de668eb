"""Explanations in words: the top SHAP factors of one prediction as short plain sentences."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np
import pandas as pd

from model.ml.grade_model import Explanation
from model.schema.fields import FIELDS
from model.schema.values import describe_value


@dataclass(frozen=True)
class Factor:
    """One attribute's signed contribution (grade points) to one prediction."""

    name: str
    label: str
    value: Any
    points: float
    sentence: str
    actionable: bool

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "label": self.label, "value": _plain(self.value), "points": round(self.points, 2),
                "sentence": self.sentence, "actionable": self.actionable}  # fmt: skip


def _plain(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if value is None or (isinstance(value, float) and np.isnan(value)) or value is pd.NA:
        return None
    return value


@lru_cache(maxsize=4096)
def _phrase(name: str, value: Any) -> str:
    phrase = describe_value(name, value)
    if ": " in phrase:
        label, said = phrase.split(": ", 1)
        phrase = f"{label} ({said})"
    return phrase[0].upper() + phrase[1:]


def sentence(name: str, value: Any, points: float) -> str:
    """'3 past class failures: −2.1 points' (a true minus sign, one decimal)."""
    sign = "+" if points >= 0 else "\u2212"
    return f"{_phrase(name, _plain(value))}: {sign}{abs(points):.1f} points"


def top_factors(contributions: pd.Series, record: pd.Series | dict[str, Any], top: int = 5) -> list[Factor]:
    """The ``top`` attributes with the largest absolute contribution, largest first."""
    order = contributions.abs().sort_values(ascending=False, kind="stable").index[:top]
    return [_factor(name, record[name], float(contributions[name])) for name in order]


def _factor(name: str, value: Any, points: float) -> Factor:
    spec = FIELDS[name]
    value = _plain(value)
    return Factor(name, spec.label, value, points, sentence(name, value, points), spec.actionable)


class FactorTable(Mapping[Any, list[Factor]]):
    """The top factors of every row of a batch, kept as arrays; ``table[row]`` builds that row's list.

    Building 100,000 lists of objects up front costs more than the whole prediction, so rows are
    materialised on access and :meth:`sentences` renders one rank for all rows at once.
    """

    def __init__(self, index: pd.Index, names: np.ndarray, points: np.ndarray, values: np.ndarray) -> None:
        self.index, self.names, self.points, self.values = index, names, points, values
        self._position = {row: i for i, row in enumerate(index)}

    @classmethod
    def build(cls, explanation: Explanation, records: pd.DataFrame, top: int = 5) -> FactorTable:
        names = list(explanation.contributions.columns)
        columns = {name: records[name].to_numpy(dtype=object) for name in names}
        return cls.largest(records.index, names, explanation.contributions.to_numpy(), columns, top)

    @classmethod
    def largest(
        cls, index: Any, names: list[str], contributions: np.ndarray, columns: Mapping[str, np.ndarray], top: int = 5
    ) -> FactorTable:
        """The ``top`` largest absolute ``contributions`` (rows x ``names``) of each row, with the input
        values from ``columns`` (name -> array over the rows); only the values shown are gathered."""
        k = min(top, len(names))
        best = np.argsort(-np.abs(contributions), axis=1, kind="stable")[:, :k]
        values = np.empty(best.shape, dtype=object)
        for position, name in enumerate(names):
            rows, ranks = np.nonzero(best == position)
            if len(rows):
                values[rows, ranks] = np.asarray(columns[name])[rows]
        shown = np.asarray(names, dtype=object)[best]
        return cls(pd.Index(index), shown, np.take_along_axis(contributions, best, axis=1), values)

    @classmethod
    def concat(cls, tables: list[FactorTable]) -> FactorTable:
        if not tables:
            empty = np.empty((0, 0))
            return cls(pd.Index([]), empty.astype(object), empty, empty.astype(object))
        width = min(t.names.shape[1] for t in tables)
        return cls(
            pd.Index(np.concatenate([np.asarray(t.index) for t in tables])),
            np.concatenate([t.names[:, :width] for t in tables]),
            np.concatenate([t.points[:, :width] for t in tables]),
            np.concatenate([t.values[:, :width] for t in tables]),
        )

    def __getitem__(self, row: Any) -> list[Factor]:
        i = self._position[row]
        return [_factor(n, v, float(p)) for n, v, p in zip(self.names[i], self.values[i], self.points[i], strict=True)]

    def __iter__(self) -> Iterator[Any]:
        return iter(self.index)

    def __len__(self) -> int:
        return len(self.index)

    def sentences(self, rank: int, rows: Iterable[Any] | None = None) -> list[str]:
        """The ``rank``-th (0-based) factor sentence of each row (of ``rows``, default all), '' if none."""
        if rank >= self.names.shape[1]:
            return [""] * (len(self) if rows is None else len(list(rows)))
        positions = range(len(self)) if rows is None else [self._position[r] for r in rows]
        names, values, points = self.names[:, rank], self.values[:, rank], self.points[:, rank]
        return [sentence(names[i], values[i], points[i]) for i in positions]


def factors_per_row(explanation: Explanation, records: pd.DataFrame, top: int = 5) -> list[list[Factor]]:
    """``top_factors`` for every row of a batch explanation, in the batch's order."""
    table = FactorTable.build(explanation, records, top)
    return [table[row] for row in table]


def global_importance(explanation: Explanation) -> pd.Series:
    """Mean absolute contribution per attribute, largest first (the model's global SHAP importance)."""
    return explanation.contributions.abs().mean().sort_values(ascending=False)


def summary_text(predicted: float, base_value: float, factors: list[Factor]) -> str:
    """One paragraph: where the average student lands and what moves this one most."""
    if not factors:
        return f"Predicted grade {predicted:.1f}."
    down = [f.sentence for f in factors if f.points < 0][:3]
    up = [f.sentence for f in factors if f.points > 0][:3]
    parts = [f"An average student is predicted {base_value:.1f}; this student {predicted:.1f}."]
    if down:
        parts.append("Lowering the grade: " + "; ".join(down) + ".")
    if up:
        parts.append("Raising it: " + "; ".join(up) + ".")
    return " ".join(parts)
