"""The student fields: names, kinds, allowed values, ranges, labels and help; setups and grade bands.

Every other part of mathsight (the form, the CSV upload, the API model, drift checks, docs) reads
names, kinds, allowed values, ranges, labels and help text from :data:`FIELDS`.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Literal

import numpy as np
import pandas as pd

Kind = Literal["categorical", "ordinal", "int", "binary"]

GROUPS = ("School & person", "Family", "School life", "Habits & health", "Grades")
ID_COLUMN = "student_id"
TARGET = "G3"
GRADES = ("G1", "G2")
PASS_MARK = 10
MAX_ROWS = 100_000
SCHEMA_VERSION = 1  # of this catalogue, as a model version records (and signs) it; bump when the inputs change
SEPARATORS = (";", ",")
_SPARE_COLUMNS = 3  # values beyond the header the fast reader tolerates (trailing separators)
BANDS: dict[str, tuple[int, int]] = {
    "I": (16, 20),
    "II": (14, 15),
    "III": (12, 13),
    "IV": (10, 11),
    "V": (0, 9),
}


@dataclass(frozen=True)
class FieldSpec:
    """One column of the data: what it is, what it may hold and how to say it in words.

    ``kind`` is ``categorical`` (named categories), ``binary`` (yes/no), ``ordinal`` (an integer code
    with a label per value) or ``int`` (a count or grade). ``allowed`` holds the categories in codebook
    spelling (``None`` for numbers); ``min``/``max`` the inclusive range of numbers. ``value_labels``
    maps a value to words (``studytime`` 1 -> "<2 hours"). ``actionable`` marks factors a school can
    act on. ``phrase`` is the sentence template of :func:`describe_value` (``{label}``, ``{value}``).
    """

    name: str
    kind: Kind
    group: str
    label: str
    help: str
    allowed: tuple[str, ...] | None = None
    min: int | None = None
    max: int | None = None
    actionable: bool = False
    value_labels: Mapping[str | int, str] = field(default_factory=dict, hash=False)
    phrase: str = "{label}: {value}"
    required: bool = True

    @property
    def is_numeric(self) -> bool:
        """True for integer-valued fields (ordinal codes, counts, grades)."""
        return self.allowed is None

    @property
    def allowed_text(self) -> str:
        """What may go in the field, as shown in messages: ``GP, MS`` or ``15-22``."""
        return ", ".join(self.allowed) if self.allowed is not None else f"{self.min}-{self.max}"

    def value_label(self, value: str | int) -> str:
        """Words for a canonical value (the value itself when it has no label)."""
        return self.value_labels.get(value, str(value))


_YES_NO = ("yes", "no")
_JOBS = ("teacher", "health", "services", "at_home", "other")
_JOB_LABELS = {"health": "health care", "services": "civil services", "at_home": "at home"}
_EDUCATION = {
    0: "none",
    1: "primary education (4th grade)",
    2: "5th to 9th grade",
    3: "secondary education",
    4: "higher education",
}
_LOW_HIGH = {1: "very low", 2: "low", 3: "medium", 4: "high", 5: "very high"}
_BAD_GOOD = {1: "very bad", 2: "bad", 3: "fair", 4: "good"}
_JOB_HELP = '"teacher", "health" care related, civil "services" (e.g. administrative or police), "at_home" or "other"'


def _spec(name: str, kind: Kind, group: str, label: str, help: str, **kw: Any) -> FieldSpec:
    labels = kw.pop("value_labels", {})
    if kind in ("categorical", "binary"):
        labels = {value: labels.get(value, value) for value in kw["allowed"]}
    return FieldSpec(name, kind, group, label, help, value_labels=MappingProxyType(labels), **kw)


def _yes_no(name: str, group: str, label: str, help: str, actionable: bool = False) -> FieldSpec:
    return _spec(name, "binary", group, label, f"{help} (yes or no)", allowed=_YES_NO, actionable=actionable)


def _scale(name: str, label: str, help: str, labels: Mapping[int, str], **kw: Any) -> FieldSpec:
    return _spec(name, "ordinal", "Habits & health", label, help, min=1, max=5, value_labels=labels, **kw)


_P, _F, _S, _H, _G = GROUPS
_SPECS = (
    _spec("school", "categorical", _P, "School",
          "Student's school: GP (Gabriel Pereira) or MS (Mousinho da Silveira)",
          allowed=("GP", "MS"), value_labels={"GP": "Gabriel Pereira", "MS": "Mousinho da Silveira"}),
    _spec("sex", "categorical", _P, "Sex", "Student's sex: F (female) or M (male)",
          allowed=("F", "M"), value_labels={"F": "female", "M": "male"}),
    _spec("age", "int", _P, "Age", "Student's age in years, from 15 to 22", min=15, max=22,
          phrase="age {value}"),
    _spec("address", "categorical", _P, "Home address", "Student's home address type: U (urban) or R (rural)",
          allowed=("U", "R"), value_labels={"U": "urban", "R": "rural"}),
    _spec("famsize", "categorical", _F, "Family size",
          "Family size: LE3 (less or equal to 3) or GT3 (greater than 3)",
          allowed=("LE3", "GT3"), value_labels={"LE3": "3 or fewer", "GT3": "more than 3"}),
    _spec("Pstatus", "categorical", _F, "Parents' cohabitation",
          "Parent's cohabitation status: T (living together) or A (apart)",
          allowed=("T", "A"), value_labels={"T": "living together", "A": "apart"}),
    _spec("Medu", "ordinal", _F, "Mother's education",
          "Mother's education: 0 none, 1 primary education (4th grade), 2 5th to 9th grade, "
          "3 secondary education, 4 higher education", min=0, max=4, value_labels=_EDUCATION),
    _spec("Fedu", "ordinal", _F, "Father's education",
          "Father's education: 0 none, 1 primary education (4th grade), 2 5th to 9th grade, "
          "3 secondary education, 4 higher education", min=0, max=4, value_labels=_EDUCATION),
    _spec("Mjob", "categorical", _F, "Mother's job", f"Mother's job: {_JOB_HELP}",
          allowed=_JOBS, value_labels=_JOB_LABELS),
    _spec("Fjob", "categorical", _F, "Father's job", f"Father's job: {_JOB_HELP}",
          allowed=_JOBS, value_labels=_JOB_LABELS),
    _spec("reason", "categorical", _S, "Reason for choosing the school",
          'Reason to choose this school: close to "home", school "reputation", "course" preference '
          'or "other"',
          allowed=("home", "reputation", "course", "other"),
          value_labels={"home": "close to home", "reputation": "school reputation",
                        "course": "course preference"}),
    _spec("guardian", "categorical", _F, "Guardian", 'Student\'s guardian: "mother", "father" or "other"',
          allowed=("mother", "father", "other")),
    _spec("traveltime", "ordinal", _S, "Travel time to school",
          "Home to school travel time: 1 <15 min, 2 15 to 30 min, 3 30 min to 1 hour, 4 >1 hour",
          min=1, max=4, value_labels={1: "<15 min", 2: "15-30 min", 3: "30 min-1 hour", 4: ">1 hour"},
          phrase="travel time to school {value}"),
    _spec("studytime", "ordinal", _S, "Weekly study time",
          "Weekly study time: 1 <2 hours, 2 2 to 5 hours, 3 5 to 10 hours, 4 >10 hours",
          min=1, max=4, value_labels={1: "<2 hours", 2: "2-5 hours", 3: "5-10 hours", 4: ">10 hours"},
          actionable=True, phrase="weekly study time {value}"),
    _spec("failures", "int", _S, "Past class failures",
          "Number of past class failures (n if 1 <= n < 3, else 4)", min=0, max=4),
    _yes_no("schoolsup", _S, "Extra educational support", "Extra educational support", actionable=True),
    _yes_no("famsup", _S, "Family educational support", "Family educational support", actionable=True),
    _yes_no("paid", _S, "Extra paid classes",
            "Extra paid classes within the course subject (Math or Portuguese)", actionable=True),
    _yes_no("activities", _S, "Extra-curricular activities", "Extra-curricular activities", actionable=True),
    _yes_no("nursery", _S, "Attended nursery school", "Attended nursery school"),
    _yes_no("higher", _S, "Wants higher education", "Wants to take higher education"),
    _yes_no("internet", _S, "Internet access at home", "Internet access at home", actionable=True),
    _yes_no("romantic", _S, "In a romantic relationship", "With a romantic relationship"),
    _spec("famrel", "ordinal", _F, "Quality of family relationships",
          "Quality of family relationships: from 1 (very bad) to 5 (excellent)",
          min=1, max=5, value_labels={**_BAD_GOOD, 5: "excellent"}),
    _scale("freetime", "Free time after school", "Free time after school: from 1 (very low) to 5 (very high)",
           _LOW_HIGH),
    _scale("goout", "Going out with friends", "Going out with friends: from 1 (very low) to 5 (very high)",
           _LOW_HIGH, actionable=True),
    _scale("Dalc", "Workday alcohol consumption",
           "Workday alcohol consumption: from 1 (very low) to 5 (very high)", _LOW_HIGH, actionable=True),
    _scale("Walc", "Weekend alcohol consumption",
           "Weekend alcohol consumption: from 1 (very low) to 5 (very high)", _LOW_HIGH, actionable=True),
    _scale("health", "Current health", "Current health status: from 1 (very bad) to 5 (very good)",
           {**_BAD_GOOD, 5: "very good"}),
    _spec("absences", "int", _H, "School absences", "Number of school absences, from 0 to 93",
          min=0, max=93, actionable=True),
    _spec("G1", "int", _G, "First period grade", "First period grade, from 0 to 20 (optional)",
          min=0, max=20, required=False, phrase="{label}: {value}/20"),
    _spec("G2", "int", _G, "Second period grade", "Second period grade, from 0 to 20 (optional)",
          min=0, max=20, required=False, phrase="{label}: {value}/20"),
    _spec("G3", "int", _G, "Final grade", "Final grade, from 0 to 20: what the model predicts",
          min=0, max=20, required=False, phrase="{label}: {value}/20"),
)  # fmt: skip

FIELDS: dict[str, FieldSpec] = {spec.name: spec for spec in _SPECS}
ATTRIBUTES: tuple[str, ...] = tuple(FIELDS)[:30]
CATEGORICAL: tuple[str, ...] = tuple(n for n in ATTRIBUTES if not FIELDS[n].is_numeric)
NUMERIC: tuple[str, ...] = tuple(n for n in ATTRIBUTES if FIELDS[n].is_numeric)
ACTIONABLE: tuple[str, ...] = tuple(n for n in ATTRIBUTES if FIELDS[n].actionable)
SETUPS = ("early", "period1", "period2")
SETUP_FEATURES: dict[str, tuple[str, ...]] = {
    "early": ATTRIBUTES,
    "period1": (*ATTRIBUTES, "G1"),
    "period2": (*ATTRIBUTES, "G1", "G2"),
}
EXAMPLE_RECORD: dict[str, str | int] = dict(
    zip(
        (*ATTRIBUTES, *GRADES),
        ("GP", "F", 18, "U", "GT3", "A", 4, 4, "at_home", "teacher", "course", "mother", 2, 2, 0,
         "yes", "no", "no", "no", "yes", "yes", "no", "no", 4, 3, 4, 1, 1, 3, 6, 5, 6),
        strict=True,
    )
)  # fmt: skip


def band(g3: float) -> str:
    """The 5-level band of a grade: rounded half up to a whole grade, clipped to 0-20, then I..V."""
    if g3 is None or not math.isfinite(g3):
        raise ValueError(f"no band for {g3!r}")
    grade = min(20, max(0, math.floor(g3 + 0.5)))
    return next(name for name, (lo, hi) in BANDS.items() if lo <= grade <= hi)


def bands(values: Iterable[float] | np.ndarray | pd.Series) -> np.ndarray:
    """:func:`band` for many grades at once."""
    grades = np.clip(np.floor(np.asarray(values, dtype=float) + 0.5), 0, 20)
    if np.isnan(grades).any():
        raise ValueError("no band for a missing grade")
    conditions = [(grades >= lo) & (grades <= hi) for lo, hi in BANDS.values()]
    return np.select(conditions, list(BANDS), default="V")
