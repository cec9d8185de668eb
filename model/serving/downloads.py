"""Tables for download: predictions with their factors, problems, and spreadsheet-safe CSV."""

from __future__ import annotations

import pandas as pd

from model.errors import Problem
from model.serving.service import Prediction

FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


def escape_cell(value: object) -> object:
    """Prefix a text cell that a spreadsheet would run as a formula with a single quote."""
    if isinstance(value, str) and value.startswith(FORMULA_PREFIXES):
        return "'" + value
    return value


def escape_formulas(frame: pd.DataFrame) -> pd.DataFrame:
    """A copy of ``frame`` where no text cell can start a formula (numbers stay numbers)."""
    safe = frame.copy()
    for column in safe.columns:
        if not pd.api.types.is_numeric_dtype(safe[column]):
            safe[column] = safe[column].map(escape_cell)
    safe.columns = [escape_cell(str(c)) for c in safe.columns]
    return safe


def results_table(prediction: Prediction, top: int = 3) -> pd.DataFrame:
    """One row per accepted student: prediction, interval, P(pass), band, risk and top factors."""
    table = prediction.results.copy()
    for column in ("predicted_g3", "lower", "upper", "likely_g3"):
        table[column] = table[column].astype(float).round(1)
    table["p_pass"] = table["p_pass"].astype(float).round(3)
    for i in range(top):
        table[f"factor_{i + 1}"] = prediction.factors.sentences(i, table.index) if len(table) else []
    table.index.name = "row"
    return table.reset_index()


def problems_table(problems: list[Problem]) -> pd.DataFrame:
    """The validation report: row, column, value, problem, allowed."""
    return pd.DataFrame(
        [{"row": p.row, "column": p.column, "value": p.value, "problem": p.message, "allowed": p.allowed}
         for p in problems],
        columns=["row", "column", "value", "problem", "allowed"],
    )  # fmt: skip


def to_csv_bytes(frame: pd.DataFrame) -> bytes:
    """UTF-8 CSV (with BOM, so spreadsheets pick the encoding) of the formula-escaped frame."""
    return escape_formulas(frame).to_csv(index=False).encode("utf-8-sig")
