"""How results look in Streamlit: column configs generated from the result vocabulary
(``model.schema.results``), and the colours of the risk levels.

Every page that shows a table of results takes its configs from :func:`table_columns`, so labels,
formats and help read the same everywhere and a column added to the vocabulary shows up on them.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import Any

import streamlit as st

from model.schema.results import COLUMNS, RISK_LABELS, ResultColumn

RISK_COLOURS = {"high": "red", "medium": "orange", "low": "green"}  # Streamlit's colour names
RISK_MARKDOWN = {level: f":{RISK_COLOURS[level]}[{label.capitalize()}]" for level, label in RISK_LABELS.items()}


def column_config(column: ResultColumn) -> Any:
    """The Streamlit config of one result column, by its kind."""
    label, tip, display = column.label, column.help, column.format.display
    if column.kind == "probability":
        return st.column_config.ProgressColumn(label, help=tip, min_value=0.0, max_value=1.0, format=display)
    if column.kind in ("integer", "grade"):
        return st.column_config.NumberColumn(label, help=tip, format=display)
    if column.kind in ("datetime", "date"):
        return st.column_config.DatetimeColumn(label, help=tip, format=display)
    if column.kind == "flag":
        return st.column_config.CheckboxColumn(label, help=tip)
    return st.column_config.Column(label, help=tip)


def table_columns(
    names: Sequence[str], first: Sequence[str] = (), hide: Collection[str] = ()
) -> tuple[dict[str, Any], list[str]]:
    """The configs of a table with the columns ``names`` and the order to show them in: ``first`` lead,
    the others follow in the table's own order, ``hide`` are left out."""
    order = [*first, *(name for name in names if name not in first and name not in hide)]
    return {name: column_config(COLUMNS[name]) for name in order}, order
