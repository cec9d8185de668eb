"""Explanations in words: the top SHAP factors of one prediction as short plain sentences.

Every sentence is built when it is asked for, in the context's language (:func:`model.i18n.tr`): English
for the API and the command line, the user's language in the dashboard. The constants a front shows
itself (:data:`CAVEAT`, :data:`REVERSE_NOTE`, :data:`GROUP_LABELS`) are English marked with ``N_``: show
them as ``tr(CAVEAT)`` (or :func:`group_label`). ``Factor.label`` is the field's English label (the API's).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np
import pandas as pd

from model import i18n
from model.i18n import N_, tr
from model.ml.grade_model import Explanation
from model.schema.fields import FIELDS
from model.schema.results import percent_text
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


def _phrase(name: str, value: Any) -> str:
    return _phrase_in(name, value, i18n.language())


@lru_cache(maxsize=8192)
def _phrase_in(name: str, value: Any, language: str) -> str:
    """The phrase of one value (cached per language: the language is part of the key)."""
    phrase = describe_value(name, value)
    if ": " in phrase:
        label, said = phrase.split(": ", 1)
        phrase = f"{label} ({said})"
    return phrase[0].upper() + phrase[1:]


def sentence(name: str, value: Any, points: float) -> str:
    """'3 past class failures: −2.1 points' (a true minus sign, one decimal)."""
    sign = "+" if points >= 0 else "\u2212"
    return tr("{factor}: {points} points", factor=_phrase(name, _plain(value)), points=sign + i18n.number(abs(points)))


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
        return tr("Predicted grade {grade}.", grade=i18n.number(predicted))
    down = [f.sentence for f in factors if f.points < 0][:3]
    up = [f.sentence for f in factors if f.points > 0][:3]
    parts = [tr("An average student is predicted {average}; this student {grade}.",
                average=i18n.number(base_value), grade=i18n.number(predicted))]  # fmt: skip
    if down:
        parts.append(tr("Lowering the grade: {factors}.", factors="; ".join(down)))
    if up:
        parts.append(tr("Raising it: {factors}.", factors="; ".join(up)))
    return " ".join(parts)


# ---------------------------------------------------------------------- levers, background, grades so far
LEVERS = ("studytime", "absences", "schoolsup", "famsup", "paid", "activities", "goout", "Dalc", "Walc", "internet")
GRADES_SO_FAR = ("G1", "G2", "failures")
# Given because a student struggles (support) or bought by worried families (paid classes): in past students
# these go with lower grades, which says nothing about what they do. Never presented as something to remove.
REVERSE_ASSOCIATION = ("schoolsup", "famsup", "paid")
REVERSE_NOTE = N_("given to students who already struggle, so past students with it did worse; this is not an "
                   "effect of the support, and removing it would not help")  # fmt: skip
CAVEAT = N_("These are associations seen in 395 past students, not promises: changing a factor need not change "
             "this student's grade the way the model says.")  # fmt: skip


GROUP_LABELS = {"levers": N_("Levers"), "grades so far": N_("Grades so far"), "background": N_("Background")}


def group_label(group: str) -> str:
    """A group's heading in this context's language ('Levers', 'Grades so far', 'Background')."""
    return tr(GROUP_LABELS[group])


def group_of(name: str) -> str:
    """'levers' (what a school or family can change), 'grades so far' or 'background'."""
    if name in LEVERS:
        return "levers"
    return "grades so far" if name in GRADES_SO_FAR else "background"


def grouped(factors: list[Factor]) -> list[tuple[str, list[Factor]]]:
    """The factors by group, levers first, each group largest first (empty groups left out)."""
    order = ("levers", "grades so far", "background")
    groups = [(g, [f for f in factors if group_of(f.name) == g]) for g in order]
    return [(g, fs) for g, fs in groups if fs]


def lever_sentence(factor: Factor) -> str:
    """The factor's sentence, with the reverse-association warning where it applies."""
    if factor.name in REVERSE_ASSOCIATION:
        return tr("{sentence} (reverse association: {note})", sentence=factor.sentence, note=tr(REVERSE_NOTE))
    return factor.sentence


def chances_text(p_pass: float, p_no_grade: float) -> str:
    """P(pass) and P(no grade) in plain words."""
    return tr("Of 100 past students like this one, about {passed} passed (chance of passing {p_pass}). The risk "
              "of no final grade is {p_no_grade}: about {absent} in 100 did not sit the final exam, which is a "
              "different warning from a low grade (it often follows disengagement rather than difficulty).",
              passed=_count(p_pass), p_pass=percent_text(p_pass), p_no_grade=percent_text(p_no_grade),
              absent=_count(p_no_grade))  # fmt: skip


def _count(p: float) -> str:
    n = round(p * 100)
    return tr("fewer than 1") if n < 1 else (tr("more than 99") if n > 99 else str(n))


@dataclass(frozen=True)
class Change:
    """One realistic change of a lever and the model's P(pass) and P(no grade) after it."""

    name: str
    before: Any
    after: Any
    p_pass: float
    p_no_grade: float

    @property
    def text(self) -> str:
        """'Weekly study time: 2 → 3' in this context's language (yes/no in words, numbers as codes)."""
        spec = FIELDS[self.name]
        before, after = (spec.value_label(self.before), spec.value_label(self.after)) if spec.kind == "binary" else (
            self.before, self.after)  # fmt: skip
        return tr("{field}: {before} → {after}", field=tr(spec.label), before=before, after=after)


def _steps(record: Mapping[str, Any]) -> list[tuple[str, Any]]:
    """Realistic one-step changes of the levers that are not reverse-associated."""
    steps: list[tuple[str, Any]] = []
    value = record.get
    if value("studytime") is not None and int(value("studytime")) < 4:
        steps.append(("studytime", int(value("studytime")) + 1))
    for name in ("goout", "Dalc", "Walc"):
        if value(name) is not None and int(value(name)) > 1:
            steps.append((name, int(value(name)) - 1))
    if value("absences") is not None and int(value("absences")) > 0:
        steps.append(("absences", max(0, int(value("absences")) - 5)))
    for name in ("activities", "internet"):
        if value(name) == "no":
            steps.append((name, "yes"))
    return steps


def what_would_help(estimator: Any, record: Mapping[str, Any], most: int = 3) -> tuple[list[Change], float]:
    """The smallest set (greedy, up to ``most``) of realistic lever changes that lifts P(pass) above 50%, or
    else the best single change, computed with the real model; changes that raise the risk of no final
    grade or do not raise P(pass) are left out. Returns the changes (cumulative figures) and today's P(pass)."""
    current = dict(record)
    base = estimator.predict_details(pd.DataFrame([current]))
    start, start_zero = float(base["p_pass"].iloc[0]), float(base["p_no_grade"].iloc[0])
    chosen: list[Change] = []
    p_now, zero_now = start, start_zero
    while len(chosen) < most and (p_now < 0.5 or not chosen):
        steps = [(n, v) for n, v in _steps(current) if n not in {c.name for c in chosen}]
        if not steps:
            break
        trial = pd.DataFrame([{**current, name: v} for name, v in steps])
        details = estimator.predict_details(trial)
        gains = details["p_pass"].to_numpy(float) - p_now
        safe = (gains > 1e-6) & (details["p_no_grade"].to_numpy(float) <= zero_now + 1e-9)
        if not safe.any():
            break
        best = int(np.argmax(np.where(safe, gains, -np.inf)))
        name, v = steps[best]
        p_now, zero_now = float(details["p_pass"].iloc[best]), float(details["p_no_grade"].iloc[best])
        chosen.append(Change(name, current[name], v, p_now, zero_now))
        current[name] = v
        if start >= 0.5:
            break
    if chosen and chosen[-1].p_pass < 0.5:  # no set reaches 50%: the best single change only
        chosen = chosen[:1]
    return chosen, start
