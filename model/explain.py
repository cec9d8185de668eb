"""Explanations in words: the top SHAP factors of one prediction as short plain sentences."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from model.pipelines import Explanation
from model.schema import FIELDS, describe_value


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


def sentence(name: str, value: Any, points: float) -> str:
    """'3 past class failures: −2.1 points' (a true minus sign, one decimal)."""
    sign = "+" if points >= 0 else "\u2212"
    phrase = describe_value(name, _plain(value))
    if ": " in phrase:
        label, said = phrase.split(": ", 1)
        phrase = f"{label} ({said})"
    return f"{phrase[0].upper()}{phrase[1:]}: {sign}{abs(points):.1f} points"


def top_factors(contributions: pd.Series, record: pd.Series | dict[str, Any], top: int = 5) -> list[Factor]:
    """The ``top`` attributes with the largest absolute contribution, largest first."""
    order = contributions.abs().sort_values(ascending=False, kind="stable").index[:top]
    factors = []
    for name in order:
        points = float(contributions[name])
        value = record[name]
        spec = FIELDS[name]
        factors.append(Factor(name, spec.label, _plain(value), points, sentence(name, value, points), spec.actionable))
    return factors


def factors_per_row(explanation: Explanation, records: pd.DataFrame, top: int = 5) -> list[list[Factor]]:
    """``top_factors`` for every row of a batch explanation, in the batch's order."""
    values = explanation.contributions.to_numpy()
    names = explanation.contributions.columns
    k = min(top, len(names))
    best = np.argsort(-np.abs(values), axis=1, kind="stable")[:, :k]
    rows = records[list(names)].to_numpy(dtype=object)
    result = []
    for i in range(len(values)):
        row = []
        for j in best[i]:
            name, points, value = names[j], float(values[i, j]), _plain(rows[i, j])
            spec = FIELDS[name]
            row.append(Factor(name, spec.label, value, points, sentence(name, value, points), spec.actionable))
        result.append(row)
    return result


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
