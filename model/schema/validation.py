"""Validating a class file or one record against the fields, and choosing the setup its grades allow.

The grades a record may give are the setups' inputs: none, G1, or G1 and G2. G2 without G1 matches no
setup, so it is a problem naming G1 (the row is rejected), never silently dropped.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import numpy as np
import pandas as pd

from model.errors import LONE_SURROGATE, BatchRejected, InvalidInput, Problem, has_lone_surrogate, shown_value
from model.i18n import N_, tr
from model.schema.fields import ATTRIBUTES, FIELDS, ID_COLUMN, MAX_ROWS, TARGET, FieldSpec
from model.schema.published import StudentRecord
from model.schema.reading import STREAM_CHUNK_ROWS, count_text, read_batch, read_chunks
from model.schema.values import (
    CANONICAL_NAMES,
    NOT_TEXT,
    is_blank,
    missing_reason,
    parse_cell,
    raw_text,
    text_reason,
)

MAX_LISTED = 20
ALLOWED_NAMES = ", ".join((ID_COLUMN, *FIELDS))

G2_WITHOUT_G1 = N_("G2 is given but G1 is missing; give G1 too, or leave both empty for the early prediction")
_IGNORED = {
    "columns": (N_("ignored unknown columns: {names}"), N_("ignored unknown columns: {names} and {count} more")),
    "fields": (N_("ignored unknown fields: {names}"), N_("ignored unknown fields: {names} and {count} more")),
}


def cell_message(row: int, column: str, reason: str) -> str:
    """'row 3, column "age": ...': a problem of one cell of a file."""
    return tr('row {row}, column "{column}": {reason}', row=row, column=column, reason=reason)


def field_message(name: str, reason: str) -> str:
    """'field "age": ...': a problem of one field of a record."""
    return tr('field "{field}": {reason}', field=name, reason=reason)


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


def ignored_note(names: Sequence[str], noun: str) -> Problem:
    """The note (``row=None``, rejecting nothing) listing unknown columns or fields that were ignored.

    One rule for a file, a JSON list and one record: an unknown name is ignored and reported, never
    refused (a spreadsheet often carries columns of its own, such as a name).
    """
    listed = ", ".join(f'"{shown_value(name)}"' for name in names[:MAX_LISTED])
    few, many = _IGNORED[noun]
    more = len(names) - MAX_LISTED
    message = tr(many, names=listed, count=more) if more > 0 else tr(few, names=listed)
    return Problem(None, None, None, message, ALLOWED_NAMES)


def record_notes(record: Mapping[str, Any]) -> list[Problem]:
    """The note on one record's unknown fields (empty when every key is a field name)."""
    unknown = [str(key) for key in record if CANONICAL_NAMES.get(str(key).strip().casefold()) is None]
    return [ignored_note(unknown, "fields")] if unknown else []


def _canonical_columns(columns: Iterable[Any]) -> tuple[dict[str, Any], list[str]]:
    """Map schema names to the user's column labels (case and spaces ignored); list the others."""
    known: dict[str, Any] = {}
    extra: list[str] = []
    for label in columns:
        name = CANONICAL_NAMES.get(str(label).strip().removeprefix("\ufeff").casefold())
        if name is None:
            extra.append(str(label))
        elif name in known:
            raise BatchRejected(tr('the column "{name}" appears more than once', name=name))
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
        raws[i] = raw_text(raw)
        if canon[i] is None and reasons[i] is None and required:
            reasons[i] = missing_reason(spec)
    bad = np.array([r is not None for r in reasons], dtype=bool)
    if not spec.is_numeric:
        typed: Any = pd.array(canon, dtype="str")
    elif required:
        typed = np.where(bad, 0, canon).astype(np.int64)
    else:
        typed = pd.array(canon, dtype="Int64")
    return _Column(np.where(codes < 0, n, codes), typed, bad, reasons, raws)


_as_text = np.frompyfunc(str, 1, 1)


def _id_column(values: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """Student ids as given (``str``; a blank cell becomes ``None``) and which cannot be taken as text.

    Column-wise: object dtype throughout (Arrow strings cannot even hold a lone surrogate), blanks by
    ``isna`` and one ``str.strip``, and the surrogate search once over the whole column joined, per
    cell only when it found one."""
    given = values.astype(object)
    missing = given.isna().to_numpy()
    texts = given.mask(missing, "")
    if pd.api.types.infer_dtype(texts, skipna=False) != "string":  # typed cells (a record's numbers): as text
        texts = pd.Series(_as_text(texts.to_numpy(dtype=object)), index=texts.index, dtype=object)
    blank = missing | texts.str.strip().eq("").to_numpy(dtype=bool)
    bad = np.zeros(len(texts), dtype=bool)
    if has_lone_surrogate("\n".join(texts)):
        bad = texts.str.contains(LONE_SURROGATE.pattern, regex=True).to_numpy(dtype=bool) & ~blank
    ids = np.where(blank, None, texts.to_numpy(dtype=object))
    return ids, bad


def _row_numbers(df: pd.DataFrame) -> np.ndarray:
    if df.index.name == "row" and pd.api.types.is_integer_dtype(df.index):
        return df.index.to_numpy(dtype=np.int64)
    return np.arange(len(df), dtype=np.int64) + 2


def _check_shape(df: pd.DataFrame, required: set[str], max_rows: int) -> tuple[dict[str, Any], list[str]]:
    known, extra = _canonical_columns(df.columns)
    missing = [name for name in FIELDS if name in required and name not in known]
    if missing:
        names = ", ".join(missing)
        if len(missing) < len(required):
            raise BatchRejected(tr("missing required columns: {names}", names=names))
        raise BatchRejected(
            tr("no expected column was found (separator ';' or ','); missing required columns: {names}", names=names)
        )
    if len(df) == 0:
        raise BatchRejected(tr("the file has a header but no data rows"))
    if len(df) > max_rows:
        raise BatchRejected(
            tr(
                "the file has {rows} data rows; at most {limit} are allowed",
                rows=count_text(len(df)),
                limit=count_text(max_rows),
            )
        )
    unnamed_blank = {c for c in extra if c.startswith("(unnamed column ") and df[c].map(is_blank).all()}
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
        problems.append((0, -1, ignored_note(extra, "columns")))

    rows = _row_numbers(df)
    bad_rows = np.zeros(len(df), dtype=bool)
    overlong: dict[int, int] = df.attrs.get("overlong_rows", {})
    for pos in np.flatnonzero(np.isin(rows, list(overlong))) if overlong else ():
        row = int(rows[pos])
        bad_rows[pos] = True
        message = tr(
            "row {row}: {count} values but the header has {columns} columns",
            row=row, count=overlong[row], columns=len(df.columns),
        )  # fmt: skip
        problems.append((row, -1, Problem(row, None, None, message)))

    ids: np.ndarray | None = None
    if ID_COLUMN in known:
        ids, bad_ids = _id_column(df[known[ID_COLUMN]])
        bad_rows |= bad_ids
        for pos in np.flatnonzero(bad_ids):
            row = int(rows[pos])
            message = cell_message(row, ID_COLUMN, tr(NOT_TEXT))
            problems.append((row, -1, Problem(row, ID_COLUMN, ids[pos], message, tr("any text"))))

    columns: dict[str, _Column] = {}
    for order, (name, spec) in enumerate(FIELDS.items()):
        if name not in known:
            continue
        column = columns[name] = _check_column(spec, df[known[name]], name in required)
        bad = column.bad_u[column.codes]
        bad_rows |= bad
        for pos in np.flatnonzero(bad):
            code, row = column.codes[pos], int(rows[pos])
            message = cell_message(row, name, column.reasons_u[code])
            problems.append((row, order, Problem(row, name, column.raws_u[code], message, spec.allowed_text)))

    lone_g2 = _lone_g2(columns.get("G1"), columns.get("G2"), len(df))
    bad_rows |= lone_g2
    g1_order, g1_spec = list(FIELDS).index("G1"), FIELDS["G1"]
    for pos in np.flatnonzero(lone_g2):
        row = int(rows[pos])
        problem = Problem(row, "G1", None, cell_message(row, "G1", tr(G2_WITHOUT_G1)), g1_spec.allowed_text)
        problems.append((row, g1_order, problem))

    keep = np.flatnonzero(~bad_rows)
    data: dict[str, Any] = {}
    if ids is not None:
        data[ID_COLUMN] = pd.Series(ids[keep], index=rows[keep], dtype=object)
    data.update({name: column.take(keep) for name, column in columns.items()})
    index = pd.Index(rows[keep], name="row")
    problems.sort(key=lambda item: (item[0], item[1]))
    return ValidationResult(
        accepted=pd.DataFrame(data, index=index),
        problems=[p for _, _, p in problems],
        extra_columns=extra,
        n_rows=len(df),
    )


def _given(column: _Column | None, n: int) -> np.ndarray:
    """Per row: the cell holds a valid value (not blank, not bad)."""
    if column is None:
        return np.zeros(n, dtype=bool)
    return (~np.asarray(pd.isna(column.typed_u), dtype=bool) & ~column.bad_u)[column.codes]


def _lone_g2(g1: _Column | None, g2: _Column | None, n: int) -> np.ndarray:
    """Per row: G2 is given while G1 is blank (a bad G1 already rejects its row)."""
    if g2 is None:
        return np.zeros(n, dtype=bool)
    g1_blank = np.ones(n, dtype=bool) if g1 is None else ~_given(g1, n) & ~g1.bad_u[g1.codes]
    return _given(g2, n) & g1_blank


def validate_batch(
    data: bytes | str | Path | IO[Any], require_target: bool = False, max_rows: int = MAX_ROWS
) -> ValidationResult:
    """Read (see :func:`read_batch`) and validate (see :func:`validate_frame`) an uploaded CSV."""
    frame = read_batch(data, max_rows=max_rows)
    return validate_frame(frame, require_target=require_target, max_rows=max_rows)


def validate_record(record: Mapping[str, Any], require_target: bool = False) -> dict[str, Any]:
    """Validate one student (form or API) with the batch rules; return canonical values.

    Keys match field names ignoring case and surrounding spaces; unknown keys are ignored (and
    reported by :func:`record_notes`, as a file's unknown columns are by :func:`validate_frame`). The
    result has the 30 attributes, each grade given with a value (a blank grade means unknown and is
    left out) and ``student_id`` when given. Raises :class:`InvalidInput` listing every problem
    (``row=None``; messages read ``field "age": 25 is out of range 15-22``).
    """
    if not isinstance(record, Mapping):
        raise InvalidInput([Problem(None, None, None, tr("expected a mapping of field names to values"))])
    given: dict[str, Any] = {}
    problems: list[Problem] = []
    for key, raw in record.items():
        name = CANONICAL_NAMES.get(str(key).strip().casefold())
        if name in given:
            problems.append(Problem(None, name, None, tr('field "{field}" is given more than once', field=name)))
        elif name is not None:
            given[name] = raw
    result: dict[str, Any] = {}
    if ID_COLUMN in given:
        result[ID_COLUMN] = None if is_blank(given[ID_COLUMN]) else str(given[ID_COLUMN])
        if result[ID_COLUMN] is not None and text_reason(result[ID_COLUMN]) is not None:
            message = field_message(ID_COLUMN, tr(NOT_TEXT))
            problems.append(Problem(None, ID_COLUMN, result[ID_COLUMN], message, tr("any text")))
    for name, spec in FIELDS.items():
        raw = given.get(name)
        value, reason = parse_cell(spec, raw)
        if value is None and reason is None and (spec.required or (require_target and name == TARGET)):
            reason = missing_reason(spec)
        if reason is not None:
            text = None if raw is None else str(raw)
            problems.append(Problem(None, name, text, field_message(name, reason), spec.allowed_text))
        elif value is not None:
            result[name] = value
    if "G2" in result and "G1" not in result and not any(p.column == "G1" for p in problems):
        message = field_message("G1", tr(G2_WITHOUT_G1))
        problems.append(Problem(None, "G1", None, message, FIELDS["G1"].allowed_text))
    if problems:
        raise InvalidInput(problems)
    StudentRecord.model_validate(result)
    return result


def _known_names(columns_or_record: Iterable[Any] | Mapping[str, Any]) -> set[str]:
    if isinstance(columns_or_record, Mapping):
        keys = [k for k, v in columns_or_record.items() if not is_blank(v)]
    else:
        keys = list(columns_or_record)
    return {CANONICAL_NAMES.get(str(k).strip().casefold(), str(k)) for k in keys}


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


def validate_chunks(
    path: Path, chunk_rows: int = STREAM_CHUNK_ROWS, require_target: bool = False
) -> Iterator[ValidationResult]:
    """:func:`validate_batch` for a file of any size, one chunk of at most ``chunk_rows`` rows at a time
    (:func:`~model.schema.reading.read_chunks`), for the command line.

    Row numbers are the whole file's; the whole-file notes (ignored columns) come with the first chunk
    only; chunks without data rows are skipped. An unusable file or header raises
    :class:`BatchRejected` before the first result, a file without any data row once it is read through.
    """
    empty: pd.DataFrame | None = None
    first = True
    for frame in read_chunks(path, chunk_rows):
        if not len(frame):
            empty = frame
            continue
        result = validate_frame(frame, require_target=require_target, max_rows=chunk_rows)
        if not first:
            result.problems = [p for p in result.problems if p.row is not None]
        first = False
        yield result
    if first and empty is not None:
        validate_frame(empty, require_target=require_target)  # raises: missing columns or no data rows
