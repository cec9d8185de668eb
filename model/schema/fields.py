"""The student fields: names, kinds, allowed values, ranges, labels and help; setups and grade bands.

Every other part of mathsight (the form, the CSV upload, the API model, drift checks, docs) reads
names, kinds, allowed values, ranges, labels and help text from :data:`FIELDS`.

Languages: every word here is English, marked with ``N_`` for the catalog, and stays English on the
objects (the API, the CLI and the published schema read them as they are). A front translates where
it shows them: ``tr(spec.label)``, ``tr(spec.help)``, ``tr(group)`` for a name of :data:`GROUPS`.
Field codes (``G1``, ``studytime``) and the codebook values (``at_home``) are never translated;
:meth:`FieldSpec.value_label` already gives a value's words in the context's language.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Literal

import numpy as np
import pandas as pd

from model.i18n import N_, tr

Kind = Literal["categorical", "ordinal", "int", "binary"]

GROUPS = (N_("School & person"), N_("Family"), N_("School life"), N_("Habits & health"), N_("Grades"))
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
    phrase: str = N_("{label}: {value}")
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
        """Words for a canonical value in this context's language (the value itself when it has no label)."""
        label = self.value_labels.get(value)
        return str(value) if label is None else tr(label)


_YES_NO = ("yes", "no")
_YES_NO_LABELS = {"yes": N_("yes"), "no": N_("no")}
_JOBS = ("teacher", "health", "services", "at_home", "other")
_JOB_LABELS = {"teacher": N_("teacher"), "health": N_("health care"), "services": N_("civil services"),
               "at_home": N_("at home"), "other": N_("other")}  # fmt: skip
_EDUCATION = {
    0: N_("none"),
    1: N_("primary education (4th grade)"),
    2: N_("5th to 9th grade"),
    3: N_("secondary education"),
    4: N_("higher education"),
}
_LOW_HIGH = {1: N_("very low"), 2: N_("low"), 3: N_("medium"), 4: N_("high"), 5: N_("very high")}
_BAD_GOOD = {1: N_("very bad"), 2: N_("bad"), 3: N_("fair"), 4: N_("good")}


def _spec(name: str, kind: Kind, group: str, label: str, help: str, **kw: Any) -> FieldSpec:
    labels = kw.pop("value_labels", {})
    if kind in ("categorical", "binary"):
        labels = {value: labels.get(value, value) for value in kw["allowed"]}
    return FieldSpec(name, kind, group, label, help, value_labels=MappingProxyType(labels), **kw)


def _yes_no(name: str, group: str, label: str, help: str, actionable: bool = False) -> FieldSpec:
    return _spec(name, "binary", group, label, help, allowed=_YES_NO, value_labels=_YES_NO_LABELS,
                 actionable=actionable)  # fmt: skip


def _scale(name: str, label: str, help: str, labels: Mapping[int, str], **kw: Any) -> FieldSpec:
    return _spec(name, "ordinal", "Habits & health", label, help, min=1, max=5, value_labels=labels, **kw)


_P, _F, _S, _H, _G = GROUPS
_SPECS = (
    _spec("school", "categorical", _P, N_("School"),
          N_("Student's school: GP (Gabriel Pereira) or MS (Mousinho da Silveira)"),
          allowed=("GP", "MS"), value_labels={"GP": "Gabriel Pereira", "MS": "Mousinho da Silveira"}),
    _spec("sex", "categorical", _P, N_("Sex"), N_("Student's sex: F (female) or M (male)"),
          allowed=("F", "M"), value_labels={"F": N_("female"), "M": N_("male")}),
    _spec("age", "int", _P, N_("Age"), N_("Student's age in years, from 15 to 22"), min=15, max=22,
          phrase=N_("age {value}")),
    _spec("address", "categorical", _P, N_("Home address"),
          N_("Student's home address type: U (urban) or R (rural)"),
          allowed=("U", "R"), value_labels={"U": N_("urban"), "R": N_("rural")}),
    _spec("famsize", "categorical", _F, N_("Family size"),
          N_("Family size: LE3 (less or equal to 3) or GT3 (greater than 3)"),
          allowed=("LE3", "GT3"), value_labels={"LE3": N_("3 or fewer"), "GT3": N_("more than 3")}),
    _spec("Pstatus", "categorical", _F, N_("Parents' cohabitation"),
          N_("Parent's cohabitation status: T (living together) or A (apart)"),
          allowed=("T", "A"), value_labels={"T": N_("living together"), "A": N_("apart")}),
    _spec("Medu", "ordinal", _F, N_("Mother's education"),
          N_("Mother's education: 0 none, 1 primary education (4th grade), 2 5th to 9th grade, "
             "3 secondary education, 4 higher education"), min=0, max=4, value_labels=_EDUCATION),
    _spec("Fedu", "ordinal", _F, N_("Father's education"),
          N_("Father's education: 0 none, 1 primary education (4th grade), 2 5th to 9th grade, "
             "3 secondary education, 4 higher education"), min=0, max=4, value_labels=_EDUCATION),
    _spec("Mjob", "categorical", _F, N_("Mother's job"),
          N_('Mother\'s job: "teacher", "health" care related, civil "services" (e.g. administrative or police), '
             '"at_home" or "other"'),
          allowed=_JOBS, value_labels=_JOB_LABELS),
    _spec("Fjob", "categorical", _F, N_("Father's job"),
          N_('Father\'s job: "teacher", "health" care related, civil "services" (e.g. administrative or police), '
             '"at_home" or "other"'),
          allowed=_JOBS, value_labels=_JOB_LABELS),
    _spec("reason", "categorical", _S, N_("Reason for choosing the school"),
          N_('Reason to choose this school: close to "home", school "reputation", "course" preference '
             'or "other"'),
          allowed=("home", "reputation", "course", "other"),
          value_labels={"home": N_("close to home"), "reputation": N_("school reputation"),
                        "course": N_("course preference"), "other": N_("other")}),
    _spec("guardian", "categorical", _F, N_("Guardian"), N_('Student\'s guardian: "mother", "father" or "other"'),
          allowed=("mother", "father", "other"),
          value_labels={"mother": N_("mother"), "father": N_("father"), "other": N_("other")}),
    _spec("traveltime", "ordinal", _S, N_("Travel time to school"),
          N_("Home to school travel time: 1 <15 min, 2 15 to 30 min, 3 30 min to 1 hour, 4 >1 hour"),
          min=1, max=4,
          value_labels={1: N_("<15 min"), 2: N_("15-30 min"), 3: N_("30 min-1 hour"), 4: N_(">1 hour")},
          phrase=N_("travel time to school {value}")),
    _spec("studytime", "ordinal", _S, N_("Weekly study time"),
          N_("Weekly study time: 1 <2 hours, 2 2 to 5 hours, 3 5 to 10 hours, 4 >10 hours"),
          min=1, max=4,
          value_labels={1: N_("<2 hours"), 2: N_("2-5 hours"), 3: N_("5-10 hours"), 4: N_(">10 hours")},
          actionable=True, phrase=N_("weekly study time {value}")),
    _spec("failures", "int", _S, N_("Past class failures"),
          N_("Number of past class failures (n if 1 <= n < 3, else 4)"), min=0, max=4),
    _yes_no("schoolsup", _S, N_("Extra educational support"), N_("Extra educational support (yes or no)"),
            actionable=True),
    _yes_no("famsup", _S, N_("Family educational support"), N_("Family educational support (yes or no)"),
            actionable=True),
    _yes_no("paid", _S, N_("Extra paid classes"),
            N_("Extra paid classes within the course subject (Math or Portuguese) (yes or no)"), actionable=True),
    _yes_no("activities", _S, N_("Extra-curricular activities"), N_("Extra-curricular activities (yes or no)"),
            actionable=True),
    _yes_no("nursery", _S, N_("Attended nursery school"), N_("Attended nursery school (yes or no)")),
    _yes_no("higher", _S, N_("Wants higher education"), N_("Wants to take higher education (yes or no)")),
    _yes_no("internet", _S, N_("Internet access at home"), N_("Internet access at home (yes or no)"),
            actionable=True),
    _yes_no("romantic", _S, N_("In a romantic relationship"), N_("With a romantic relationship (yes or no)")),
    _spec("famrel", "ordinal", _F, N_("Quality of family relationships"),
          N_("Quality of family relationships: from 1 (very bad) to 5 (excellent)"),
          min=1, max=5, value_labels={**_BAD_GOOD, 5: N_("excellent")}),
    _scale("freetime", N_("Free time after school"),
           N_("Free time after school: from 1 (very low) to 5 (very high)"), _LOW_HIGH),
    _scale("goout", N_("Going out with friends"),
           N_("Going out with friends: from 1 (very low) to 5 (very high)"), _LOW_HIGH, actionable=True),
    _scale("Dalc", N_("Workday alcohol consumption"),
           N_("Workday alcohol consumption: from 1 (very low) to 5 (very high)"), _LOW_HIGH, actionable=True),
    _scale("Walc", N_("Weekend alcohol consumption"),
           N_("Weekend alcohol consumption: from 1 (very low) to 5 (very high)"), _LOW_HIGH, actionable=True),
    _scale("health", N_("Current health"), N_("Current health status: from 1 (very bad) to 5 (very good)"),
           {**_BAD_GOOD, 5: N_("very good")}),
    _spec("absences", "int", _H, N_("School absences"), N_("Number of school absences, from 0 to 93"),
          min=0, max=93, actionable=True),
    _spec("G1", "int", _G, N_("First period grade"), N_("First period grade, from 0 to 20 (optional)"),
          min=0, max=20, required=False, phrase=N_("{label}: {value}/20")),
    _spec("G2", "int", _G, N_("Second period grade"), N_("Second period grade, from 0 to 20 (optional)"),
          min=0, max=20, required=False, phrase=N_("{label}: {value}/20")),
    _spec("G3", "int", _G, N_("Final grade"), N_("Final grade, from 0 to 20: what the model predicts"),
          min=0, max=20, required=False, phrase=N_("{label}: {value}/20")),
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
