"""The single source of truth for the student data: fields, validation, setups and grade bands.

Every other part of mathsight (the form, the CSV upload, the API model, drift checks, docs) reads
names, kinds, allowed values, ranges, labels and help text from :data:`FIELDS`.

Row numbers
    A :class:`Problem`'s ``row`` is the row number the user sees in a spreadsheet, **counting the
    header line**: the header is row 1 and the first data row is row 2. Blank lines count as rows
    (a spreadsheet shows them) but are skipped, never rejected. Messages read ``row 2, column ...``.
"""

from __future__ import annotations

import csv
import io
import itertools
import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import IO, Annotated, Any, Literal

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, create_model

Kind = Literal["categorical", "ordinal", "int", "binary"]

GROUPS = ("School & person", "Family", "School life", "Habits & health", "Grades")
ID_COLUMN = "student_id"
TARGET = "G3"
GRADES = ("G1", "G2")
PASS_MARK = 10
MAX_ROWS = 100_000
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
_COUNT_NOUNS = {"failures": "past class failure", "absences": "school absence"}


# ---------------------------------------------------------------- problems and exceptions


@dataclass(frozen=True)
class Problem:
    """One thing wrong with the input.

    ``row`` is the spreadsheet row number counting the header line (first data row = 2), ``None`` for
    a single record or a whole-file problem; ``column`` is the field name (``None`` when the problem
    is not about one column); ``value`` the offending text as given; ``allowed`` what may go there.
    """

    row: int | None
    column: str | None
    value: str | None
    message: str
    allowed: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return asdict(self)


class BatchRejected(ValueError):
    """The whole file is unusable (not text, empty, no data rows, missing columns, too many rows)."""

    def __init__(self, message: str) -> None:
        self.problem = Problem(row=None, column=None, value=None, message=message)
        super().__init__(message)


class InvalidInput(ValueError):
    """A single record has problems; ``problems`` lists every one of them."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        super().__init__("; ".join(p.message for p in problems))


@dataclass
class ValidationResult:
    """The outcome of validating a batch.

    ``accepted`` holds every row without a problem, in canonical form: categories as ``str`` in
    codebook spelling, attributes as ``int64``, G1/G2 (and G3 unless required) as nullable
    ``Int64`` (``<NA>`` = unknown), ``student_id`` as ``str`` or ``None``. Its index, named ``row``,
    is the spreadsheet row number (header = row 1). ``problems`` lists every bad cell (each rejects
    its row) plus whole-file notes with ``row=None`` (ignored extra columns), which reject nothing.
    """

    accepted: pd.DataFrame
    problems: list[Problem]
    extra_columns: list[str]
    n_rows: int

    @property
    def rejected_rows(self) -> list[int]:
        """Sorted row numbers that were rejected."""
        return sorted({p.row for p in self.problems if p.row is not None})

    @property
    def ok(self) -> bool:
        """True when every row was accepted."""
        return len(self.accepted) == self.n_rows


# ---------------------------------------------------------------- parsing one value

_WHOLE = re.compile(r"[+-]?[0-9]+(?:[.,]0*)?")
_MISSING = "missing value"
_NAMES = {name.casefold(): name for name in (*FIELDS, ID_COLUMN)}


def _category_key(text: str) -> str:
    """Case, spaces and hyphens do not matter: " At Home " and "AT_HOME" both mean "at_home"."""
    return text.casefold().replace(" ", "_").replace("-", "_")


_CATEGORY_KEYS = {name: {_category_key(v): v for v in spec.allowed} for name, spec in FIELDS.items() if spec.allowed}


def _is_blank(value: Any) -> bool:
    if value is None or value is pd.NA or value is pd.NaT:
        return True
    if isinstance(value, float | np.floating):
        return bool(np.isnan(value))
    return isinstance(value, str) and not value.strip()


def _quote(text: str) -> str:
    shown = "".join(c if c.isprintable() else repr(c)[1:-1] for c in text[:60])
    return f'"{shown}{"..." if len(text) > 60 else ""}"'


def _unquote(text: str) -> str:
    text = text.strip()
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "\"'":
        text = text[1:-1].strip()
    return text


def _parse_number(spec: FieldSpec, raw: Any) -> tuple[int | None, str | None]:
    if isinstance(raw, bool | np.bool_):
        return None, f"{_quote(str(raw))} is not a whole number"
    if isinstance(raw, int | np.integer):
        number = int(raw)
    elif isinstance(raw, float | np.floating):
        if not float(raw).is_integer():
            return None, f"{raw} is not a whole number"
        number = int(raw)
    else:
        text = _unquote(str(raw))
        if not text:
            return None, None
        if not _WHOLE.fullmatch(text):
            return None, f"{_quote(text)} is not a whole number"
        digits = re.split(r"[.,]", text)[0]
        if len(digits.lstrip("+-").lstrip("0")) > 9:  # int() of huge digit strings is slow or refused
            return None, f"{_quote(text)} is out of range {spec.allowed_text}"
        number = int(digits)
    if not spec.min <= number <= spec.max:  # type: ignore[operator]
        return None, f"{number} is out of range {spec.allowed_text}"
    return number, None


def _parse_category(spec: FieldSpec, raw: Any) -> tuple[str | None, str | None]:
    if isinstance(raw, bool | np.bool_) and spec.kind == "binary":
        return ("yes" if raw else "no"), None
    text = _unquote(str(raw))
    if not text:
        return None, None
    value = _CATEGORY_KEYS[spec.name].get(_category_key(text))
    if value is None:
        return None, f"{_quote(text)} is not allowed; allowed: {spec.allowed_text}"
    return value, None


def parse_cell(spec: FieldSpec, raw: Any) -> tuple[Any, str | None]:
    """``(canonical, None)``, ``(None, None)`` for a blank cell, or ``(None, reason)``."""
    if _is_blank(raw):
        return None, None
    return _parse_number(spec, raw) if spec.is_numeric else _parse_category(spec, raw)


def _missing_reason(spec: FieldSpec) -> str:
    return f"{_MISSING}; allowed: {spec.allowed_text}"


def _raw_text(raw: Any) -> str | None:
    return None if _is_blank(raw) and not isinstance(raw, str) else str(raw)


# ---------------------------------------------------------------- reading a file


def _decode(data: bytes) -> str:
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        try:
            return data.decode("utf-16")
        except UnicodeDecodeError as exc:
            raise BatchRejected("the file is not readable text (broken UTF-16)") from exc
    if data.startswith(b"PK\x03\x04"):
        raise BatchRejected("the file looks like an Excel workbook or a zip archive; save it as CSV")
    if b"\x00" in data:
        raise BatchRejected("the file is not a text file (it contains NUL bytes); upload a CSV file")
    for encoding in ("utf-8-sig", "cp1252"):
        try:
            return data.decode(encoding)
        except UnicodeDecodeError:
            continue
    return data.decode("latin-1")


def _to_text(data: bytes | str | Path | IO[Any]) -> str:
    if isinstance(data, Path):
        data = data.read_bytes()
    elif not isinstance(data, bytes | bytearray | memoryview | str):
        getvalue = getattr(data, "getvalue", None)
        data = getvalue() if callable(getvalue) else data.read()
    text = data if isinstance(data, str) else _decode(bytes(data))
    if "\x00" in text:
        raise BatchRejected("the file is not a text file (it contains NUL characters); upload a CSV file")
    return text.removeprefix("\ufeff")


def _sniff_separator(text: str) -> str:
    stripped = text.lstrip()
    header = stripped[: stripped.find("\n")] if "\n" in stripped else stripped
    return ";" if header.count(";") > header.count(",") else ","


def _header(text: str, sep: str) -> tuple[int, list[str]]:
    """The spreadsheet row number of the header (the first non-blank record) and its names."""
    try:
        for number, record in enumerate(csv.reader(io.StringIO(text, newline=""), delimiter=sep), start=1):
            if any(cell.strip() for cell in record):
                return number, [cell.strip() for cell in record]
    except csv.Error as exc:
        raise BatchRejected(f"the file could not be read as CSV: {exc}") from exc
    raise BatchRejected("the file is empty")


def _records(text: str, sep: str, width: int, limit: int) -> pd.DataFrame:
    """All records as object strings, one per spreadsheet row (header and blank lines included).

    pandas' C reader is the fast path; a record longer than ``width + _SPARE_COLUMNS`` makes it
    fail, and then the slower ``csv`` module reads the file, keeping every value of every record.
    """
    try:
        return pd.read_csv(
            io.StringIO(text), sep=sep, header=None, names=range(width + _SPARE_COLUMNS), dtype=object,
            na_filter=False, skip_blank_lines=False, index_col=False, engine="c", nrows=limit,
        )  # fmt: skip
    except pd.errors.ParserError:
        pass
    try:
        records = list(itertools.islice(csv.reader(io.StringIO(text, newline=""), delimiter=sep), limit))
    except csv.Error as exc:
        raise BatchRejected(f"the file could not be read as CSV: {exc}") from exc
    longest = max([width, *map(len, records)])
    return pd.DataFrame([r + [""] * (longest - len(r)) for r in records], dtype=object)


def _overlong_rows(extra: pd.DataFrame, rows: np.ndarray, width: int) -> dict[int, int]:
    """Rows with values beyond the header's columns, and how many values they hold."""
    if extra.shape[1] == 0:
        return {}
    found: dict[int, int] = {}
    for pos in np.flatnonzero((extra.to_numpy() != "").any(axis=1)):
        cells = extra.iloc[pos].tolist()
        used = [i for i, cell in enumerate(cells) if cell.strip()]
        if used:
            found[int(rows[pos])] = width + used[-1] + 1
    return found


def _blank_rows(cells: pd.DataFrame) -> np.ndarray:
    """Rows whose every cell is blank, narrowing the candidates one column at a time."""
    candidates = np.arange(len(cells))
    for j in range(cells.shape[1]):
        if not len(candidates):
            break
        candidates = candidates[(cells.iloc[candidates, j].str.strip() == "").to_numpy()]
    blank = np.zeros(len(cells), dtype=bool)
    blank[candidates] = True
    return blank


def _parse_csv(text: str, max_rows: int) -> pd.DataFrame:
    """Raw string cells indexed by spreadsheet row (``row``); ``attrs["overlong_rows"]`` lists the
    rows holding more values than the header has columns."""
    if not text.strip():
        raise BatchRejected("the file is empty")
    sep = _sniff_separator(text)
    header_row, header = _header(text, sep)
    width = len(header)
    limit = header_row + 2 * max_rows + 1
    cells = _records(text, sep, width, limit)
    if len(cells) >= limit:
        raise BatchRejected(f"the file has more than {max_rows:,} data rows; split it into smaller files")
    cells = cells.iloc[header_row:]
    rows = np.arange(header_row + 1, header_row + 1 + len(cells), dtype=np.int64)
    keep = ~_blank_rows(cells)
    cells, rows = cells.iloc[keep], rows[keep]
    if len(cells) > max_rows:
        raise BatchRejected(f"the file has {len(cells):,} data rows; at most {max_rows:,} are allowed")
    names = [name or f"(unnamed column {i})" for i, name in enumerate(header, start=1)]
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        raise BatchRejected(f"the header names these columns more than once: {', '.join(duplicates)}")
    frame = cells.iloc[:, :width].set_axis(names, axis=1).set_axis(pd.Index(rows, name="row"), axis=0)
    frame.attrs["overlong_rows"] = _overlong_rows(cells.iloc[:, width:], rows, width)
    return frame


def read_batch(data: bytes | str | Path | IO[Any], max_rows: int = MAX_ROWS) -> pd.DataFrame:
    """Read a CSV upload into a frame of raw strings, indexed by spreadsheet row number (``row``).

    ``data`` is the file's bytes, its text (a ``str`` is CSV content, not a path), a ``Path`` or a
    file object. The separator (';' or ',') is taken from the header line; quotes, a UTF-8 BOM,
    UTF-16 with BOM and cp1252/Latin-1 text are handled; blank lines are skipped (but counted).
    Raises :class:`BatchRejected` for non-text, empty or too long (``> max_rows``) files and for a
    header naming a column twice.
    """
    return _parse_csv(_to_text(data), max_rows)


# ---------------------------------------------------------------- validating


def _canonical_columns(columns: Iterable[Any]) -> tuple[dict[str, Any], list[str]]:
    """Map schema names to the user's column labels (case and spaces ignored); list the others."""
    known: dict[str, Any] = {}
    extra: list[str] = []
    for label in columns:
        name = _NAMES.get(str(label).strip().removeprefix("\ufeff").casefold())
        if name is None:
            extra.append(str(label))
        elif name in known:
            raise BatchRejected(f'the column "{name}" appears more than once')
        else:
            known[name] = label
    return known, extra


@dataclass
class _Column:
    """One validated column, stored per distinct value: ``codes`` index into the ``*_u`` arrays."""

    codes: np.ndarray
    typed_u: Any
    bad_u: np.ndarray
    reasons_u: np.ndarray
    raws_u: np.ndarray

    def take(self, positions: np.ndarray) -> Any:
        return self.typed_u.take(self.codes[positions])


def _check_column(spec: FieldSpec, values: pd.Series, required: bool) -> _Column:
    """Parse each distinct value once; a blank (or NA) cell is slot ``n`` after the ``n`` uniques."""
    codes, uniques = pd.factorize(values, use_na_sentinel=True)
    n = len(uniques)
    canon = np.empty(n + 1, dtype=object)
    reasons = np.empty(n + 1, dtype=object)
    raws = np.empty(n + 1, dtype=object)
    for i, raw in enumerate([*uniques, None]):
        canon[i], reasons[i] = parse_cell(spec, raw)
        raws[i] = _raw_text(raw)
        if canon[i] is None and reasons[i] is None and required:
            reasons[i] = _missing_reason(spec)
    bad = np.array([r is not None for r in reasons], dtype=bool)
    if not spec.is_numeric:
        typed: Any = pd.array(canon, dtype="str")
    elif required:
        typed = np.where(bad, 0, canon).astype(np.int64)
    else:
        typed = pd.array(canon, dtype="Int64")
    return _Column(np.where(codes < 0, n, codes), typed, bad, reasons, raws)


def _id_column(values: pd.Series) -> np.ndarray:
    """Student ids as given (``str``); a blank cell becomes ``None``."""
    text = values.astype("str")
    ids = text.to_numpy(dtype=object)
    ids[(text.isna() | (text.str.strip() == "")).to_numpy()] = None
    return ids


def _row_numbers(df: pd.DataFrame) -> np.ndarray:
    if df.index.name == "row" and pd.api.types.is_integer_dtype(df.index):
        return df.index.to_numpy(dtype=np.int64)
    return np.arange(len(df), dtype=np.int64) + 2


def _check_shape(df: pd.DataFrame, required: set[str], max_rows: int) -> tuple[dict[str, Any], list[str]]:
    known, extra = _canonical_columns(df.columns)
    missing = [name for name in FIELDS if name in required and name not in known]
    if missing:
        hint = "" if len(missing) < len(required) else "no expected column was found (separator ';' or ','); "
        raise BatchRejected(f"{hint}missing required columns: {', '.join(missing)}")
    if len(df) == 0:
        raise BatchRejected("the file has a header but no data rows")
    if len(df) > max_rows:
        raise BatchRejected(f"the file has {len(df):,} data rows; at most {max_rows:,} are allowed")
    unnamed_blank = {c for c in extra if c.startswith("(unnamed column ") and df[c].map(_is_blank).all()}
    return known, [c for c in extra if c not in unnamed_blank]


def validate_frame(df: pd.DataFrame, require_target: bool = False, max_rows: int = MAX_ROWS) -> ValidationResult:
    """Validate a frame column by column; keep every good row, report every bad cell.

    Row numbers come from an integer index named ``row`` (as made by :func:`read_batch`); any other
    frame is numbered as if written to a file under a header line (first row = 2). Cells may be raw
    strings or already typed values. Raises :class:`BatchRejected` naming missing required columns,
    or when there are no rows or more than ``max_rows``.
    """
    required = set(ATTRIBUTES) | ({TARGET} if require_target else set())
    known, extra = _check_shape(df, required, max_rows)
    problems: list[tuple[int, int, Problem]] = []
    if extra:
        listed = ", ".join(f'"{c}"' for c in extra)
        problems.append((0, -1, Problem(None, None, None, f"ignored unknown columns: {listed}")))

    rows = _row_numbers(df)
    bad_rows = np.zeros(len(df), dtype=bool)
    overlong: dict[int, int] = df.attrs.get("overlong_rows", {})
    for pos in np.flatnonzero(np.isin(rows, list(overlong))) if overlong else ():
        row = int(rows[pos])
        bad_rows[pos] = True
        message = f"row {row}: {overlong[row]} values but the header has {len(df.columns)} columns"
        problems.append((row, -1, Problem(row, None, None, message)))

    columns: dict[str, _Column] = {}
    for order, (name, spec) in enumerate(FIELDS.items()):
        if name not in known:
            continue
        column = columns[name] = _check_column(spec, df[known[name]], name in required)
        bad = column.bad_u[column.codes]
        bad_rows |= bad
        for pos in np.flatnonzero(bad):
            code, row = column.codes[pos], int(rows[pos])
            message = f'row {row}, column "{name}": {column.reasons_u[code]}'
            problems.append((row, order, Problem(row, name, column.raws_u[code], message, spec.allowed_text)))

    keep = np.flatnonzero(~bad_rows)
    data: dict[str, Any] = {}
    if ID_COLUMN in known:
        data[ID_COLUMN] = pd.Series(_id_column(df[known[ID_COLUMN]])[keep], index=rows[keep], dtype=object)
    data.update({name: column.take(keep) for name, column in columns.items()})
    index = pd.Index(rows[keep], name="row")
    problems.sort(key=lambda item: (item[0], item[1]))
    return ValidationResult(
        accepted=pd.DataFrame(data, index=index),
        problems=[p for _, _, p in problems],
        extra_columns=extra,
        n_rows=len(df),
    )


def validate_batch(
    data: bytes | str | Path | IO[Any], require_target: bool = False, max_rows: int = MAX_ROWS
) -> ValidationResult:
    """Read (see :func:`read_batch`) and validate (see :func:`validate_frame`) an uploaded CSV."""
    frame = read_batch(data, max_rows=max_rows)
    return validate_frame(frame, require_target=require_target, max_rows=max_rows)


def validate_record(record: Mapping[str, Any], require_target: bool = False) -> dict[str, Any]:
    """Validate one student (form or API) with the batch rules; return canonical values.

    Keys match field names ignoring case and surrounding spaces; unknown keys are ignored. The
    result has the 30 attributes, each grade given with a value (a blank grade means unknown and is
    left out) and ``student_id`` when given. Raises :class:`InvalidInput` listing every problem
    (``row=None``; messages read ``field "age": 25 is out of range 15-22``).
    """
    if not isinstance(record, Mapping):
        raise InvalidInput([Problem(None, None, None, "expected a mapping of field names to values")])
    given: dict[str, Any] = {}
    problems: list[Problem] = []
    for key, raw in record.items():
        name = _NAMES.get(str(key).strip().casefold())
        if name in given:
            problems.append(Problem(None, name, None, f'field "{name}" is given more than once'))
        elif name is not None:
            given[name] = raw
    result: dict[str, Any] = {}
    if ID_COLUMN in given:
        result[ID_COLUMN] = None if _is_blank(given[ID_COLUMN]) else str(given[ID_COLUMN])
    for name, spec in FIELDS.items():
        raw = given.get(name)
        value, reason = parse_cell(spec, raw)
        if value is None and reason is None and (spec.required or (require_target and name == TARGET)):
            reason = _missing_reason(spec)
        if reason is not None:
            text = None if raw is None else str(raw)
            problems.append(Problem(None, name, text, f'field "{name}": {reason}', spec.allowed_text))
        elif value is not None:
            result[name] = value
    if problems:
        raise InvalidInput(problems)
    StudentRecord.model_validate(result)
    return result


# ---------------------------------------------------------------- setups, bands, words


def _known_names(columns_or_record: Iterable[Any] | Mapping[str, Any]) -> set[str]:
    if isinstance(columns_or_record, Mapping):
        keys = [k for k, v in columns_or_record.items() if not _is_blank(v)]
    else:
        keys = list(columns_or_record)
    return {_NAMES.get(str(k).strip().casefold(), str(k)) for k in keys}


def setup_for(columns_or_record: Iterable[Any] | Mapping[str, Any]) -> str:
    """The richest setup the inputs allow: 'period2' with G1 and G2, 'period1' with G1, else 'early'.

    Given a mapping (one record), only grades with a non-blank value count; given column names
    (or a DataFrame), presence counts; use :func:`row_setups` for per-row setups of a frame.
    """
    known = _known_names(columns_or_record)
    if "G1" in known:
        return "period2" if "G2" in known else "period1"
    return "early"


def row_setups(frame: pd.DataFrame) -> pd.Series:
    """The setup of each row of a validated frame: a blank grade cell means that grade is unknown."""
    has_g1 = frame["G1"].notna().to_numpy() if "G1" in frame else np.zeros(len(frame), dtype=bool)
    has_g2 = frame["G2"].notna().to_numpy() if "G2" in frame else np.zeros(len(frame), dtype=bool)
    setups = np.where(has_g1 & has_g2, "period2", np.where(has_g1, "period1", "early"))
    return pd.Series(setups, index=frame.index, name="setup", dtype="str")


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


def describe_value(name: str, value: Any) -> str:
    """A short phrase for a field's value, as used in plain-language explanations.

    ``describe_value("failures", 3) == "3 past class failures"``,
    ``describe_value("studytime", 1) == "weekly study time <2 hours"``,
    ``describe_value("schoolsup", "yes") == "extra educational support: yes"``.
    Raises ``KeyError`` for an unknown field and ``ValueError`` for a value it may not hold.
    """
    spec = FIELDS[name]
    canonical, reason = parse_cell(spec, value)
    if reason is not None:
        raise ValueError(f'field "{name}": {reason}')
    label = spec.label[0].lower() + spec.label[1:]
    if canonical is None:
        return f"{label}: unknown"
    if name in _COUNT_NOUNS:
        noun = _COUNT_NOUNS[name]
        return f"no {noun}s" if canonical == 0 else f"{canonical} {noun}{'' if canonical == 1 else 's'}"
    return spec.phrase.format(label=label, value=spec.value_label(canonical))


# ---------------------------------------------------------------- templates and published schema


def template_csv(sep: str = ",") -> str:
    """A CSV template: the header (student_id, the 30 attributes, G1, G2) and one example row."""
    if sep not in SEPARATORS:
        raise ValueError(f"sep must be one of {SEPARATORS}")
    out = io.StringIO()
    writer = csv.writer(out, delimiter=sep, lineterminator="\n")
    writer.writerow([ID_COLUMN, *EXAMPLE_RECORD])
    writer.writerow(["S001", *EXAMPLE_RECORD.values()])
    return out.getvalue()


def _field_json(spec: FieldSpec) -> dict[str, Any]:
    return {
        "name": spec.name,
        "type": "integer" if spec.is_numeric else "string",
        "kind": spec.kind,
        "group": spec.group,
        "label": spec.label,
        "help": spec.help,
        "allowed": list(spec.allowed) if spec.allowed is not None else None,
        "min": spec.min,
        "max": spec.max,
        "value_labels": {str(k): v for k, v in spec.value_labels.items()},
        "required": spec.required,
        "actionable": spec.actionable,
    }


def json_schema() -> dict[str, Any]:
    """A JSON-ready description of the fields and rules (for the API's /v1/schema and the docs)."""
    return {
        "fields": [_field_json(spec) for spec in FIELDS.values()],
        "groups": list(GROUPS),
        "id_column": ID_COLUMN,
        "target": TARGET,
        "setups": {name: list(features) for name, features in SETUP_FEATURES.items()},
        "bands": {name: {"min": lo, "max": hi} for name, (lo, hi) in BANDS.items()},
        "pass_mark": PASS_MARK,
        "separators": list(SEPARATORS),
        "max_rows": MAX_ROWS,
        "row_numbers": "spreadsheet rows counting the header line: the first data row is row 2",
    }


def pydantic_field(spec: FieldSpec, example: Any = None) -> tuple[Any, Any]:
    """The pydantic (type, Field) of ``spec``, for typed models and OpenAPI docs built from the schema."""
    info: dict[str, Any] = {"title": spec.label, "description": spec.help}
    if example is not None:
        info["examples"] = [example]
    if spec.allowed is not None:
        return Literal[spec.allowed], Field(**info)  # type: ignore[valid-type]
    number = Annotated[int, Field(ge=spec.min, le=spec.max)]
    if spec.required:
        return number, Field(**info)
    return number | None, Field(default=None, **info)


StudentRecord: type[BaseModel] = create_model(  # type: ignore[call-overload]
    "StudentRecord",
    __config__=ConfigDict(extra="ignore"),
    __doc__="One student in canonical form (the output of validate_record; for typing and OpenAPI docs).",
    student_id=(str | None, Field(default=None, title="Student id", description="Optional, passed through")),
    **{name: pydantic_field(spec) for name, spec in FIELDS.items()},
)
