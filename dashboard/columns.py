"""How results look in Streamlit: column configs generated from the result vocabulary
(``model.schema.results``), and the colours of the risk levels.

Every page that shows a table of results takes its configs from :func:`table_columns`, so labels,
formats and help read the same everywhere and a column added to the vocabulary shows up on them.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import Any

import streamlit as st

from model import i18n
from model.i18n import tr
from model.schema.results import COLUMNS, RISK_LABELS, ResultColumn

RISK_COLOURS = {"high": "red", "medium": "orange", "low": "green"}  # Streamlit's colour names


def risk_label(level: str) -> str:
    """'High risk', in this run's language."""
    return tr(RISK_LABELS[level]).capitalize()


def risk_markdown(level: str) -> str:
    """The risk level in its colour, as Markdown (``:red[High risk]``)."""
    return f":{RISK_COLOURS[level]}[{risk_label(level)}]"


PORTUGUESE_DATES = {"YYYY-MM-DD HH:mm": "DD/MM/YYYY HH:mm", "YYYY-MM-DD": "DD/MM/YYYY"}  # not shown to users


def display_format(display: str | None) -> str | None:
    """A column's format for this run's language: English keeps the vocabulary's; Portuguese writes
    dates day first (as :func:`model.i18n.date` does) and decimal figures with Streamlit's
    ``localized`` preset (the browser's decimal comma; printf formats always write a point)."""
    if display is None or i18n.language() == i18n.ENGLISH:
        return display
    if display.startswith("%.") and display.endswith("f"):
        return "localized"
    return PORTUGUESE_DATES.get(display, display)


def column_config(column: ResultColumn) -> Any:
    """The Streamlit config of one result column, by its kind."""
    label, tip, display = tr(column.label), tr(column.help), display_format(column.format.display)
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
