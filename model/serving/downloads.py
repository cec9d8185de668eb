"""Tables for download: predictions with their factors, problems, and spreadsheet-safe CSV.

Their columns are those of :mod:`model.schema.results` (``DOWNLOAD_COLUMNS``, ``PROBLEM_COLUMNS``).
"""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd

from model.errors import Problem
from model.schema.results import COLUMNS, DOWNLOAD_COLUMNS, FACTOR_COLUMNS, PROBLEM_COLUMNS
from model.serving.service import Prediction

FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


def escape_cell(value: object) -> object:
    """Prefix a text cell that a spreadsheet would run as a formula with a single quote."""
    if isinstance(value, str) and value.startswith(FORMULA_PREFIXES):
        return "'" + value
    return value


def _escaped_column(values: pd.Series) -> pd.Series:
    if isinstance(values.dtype, pd.CategoricalDtype):
        return values.cat.rename_categories([escape_cell(c) for c in values.cat.categories])
    if pd.api.types.is_object_dtype(values.dtype) or pd.api.types.is_string_dtype(values.dtype):
        return values.map(escape_cell)
    return values  # numbers, dates and flags stay as they are


def escape_formulas(frame: pd.DataFrame) -> pd.DataFrame:
    """A copy of ``frame`` in which no text cell, header or text row label could start a spreadsheet formula.

    The one escaping of every CSV download and of every table the dashboard shows (whose toolbar
    exports the cells as shown); categoricals stay categorical, numbers stay numbers."""
    safe = pd.DataFrame({name: _escaped_column(frame[name]) for name in frame.columns}, index=frame.index)
    safe.columns = [escape_cell(name) if isinstance(name, str) else name for name in frame.columns]
    if pd.api.types.is_object_dtype(frame.index.dtype):  # a shown index (row labels) is exported too
        safe.index = frame.index.map(escape_cell)
    return safe


def results_table(prediction: Prediction, columns: Sequence[str] = DOWNLOAD_COLUMNS) -> pd.DataFrame:
    """One row per accepted student: prediction, interval, P(pass), band, risk and top factors (``columns``
    of the result vocabulary, figures rounded as it says)."""
    results = prediction.results
    table = {}
    for name in columns:
        if name == "row":
            values = results.index.to_series(index=results.index)
        elif name in FACTOR_COLUMNS:
            sentences = prediction.factors.sentences(FACTOR_COLUMNS.index(name), results.index) if len(results) else []
            values = pd.Series(sentences, index=results.index, dtype=object)
        else:
            values = results[name]
        table[name] = COLUMNS[name].for_download(values)
    return pd.DataFrame(table, columns=list(columns)).reset_index(drop=True)


def problems_table(problems: list[Problem]) -> pd.DataFrame:
    """The validation report: row, column, value, problem, allowed (``PROBLEM_COLUMNS``)."""
    return pd.DataFrame(
        [(p.row, p.column, p.value, p.message, p.allowed) for p in problems], columns=list(PROBLEM_COLUMNS)
    )


def to_csv_bytes(frame: pd.DataFrame) -> bytes:
    """UTF-8 CSV (with BOM, so spreadsheets pick the encoding) of the formula-escaped frame."""
    return escape_formulas(frame).to_csv(index=False).encode("utf-8-sig")


def to_csv_rows(frame: pd.DataFrame) -> bytes:
    """The rows of :func:`to_csv_bytes` without its BOM and header line: the next part of a CSV written chunk by
    chunk (``to_csv_bytes`` of the first chunk, then this of each other one, gives the bytes of the whole)."""
    return escape_formulas(frame).to_csv(index=False, header=False).encode("utf-8")
