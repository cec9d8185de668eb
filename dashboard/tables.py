"""Every table the dashboard shows goes through :func:`show_table`.

``st.dataframe`` has a toolbar whose "Download as CSV" exports the cells as shown, with no escaping:
a student id such as ``=HYPERLINK(...)`` or ``=cmd|' /C calc'!A0`` would run in the spreadsheet that
opens the file. :func:`show_table` shows (and so lets the toolbar export) text cells escaped the way
the page's own CSV downloads are (:func:`model.serving.downloads.escape_cell`: a leading ``'`` before
``=``, ``+``, ``-``, ``@``, tab or carriage return); numbers, dates and flags are untouched. A test
(``tests/dashboard/test_tables.py``) fails when a page calls ``st.dataframe`` directly.
"""

from __future__ import annotations

from typing import Any

import pandas as pd
import streamlit as st

from model.serving.downloads import escape_cell


def _escaped_column(values: pd.Series) -> pd.Series:
    if isinstance(values.dtype, pd.CategoricalDtype):
        return values.cat.rename_categories([escape_cell(c) for c in values.cat.categories])
    if pd.api.types.is_object_dtype(values.dtype) or pd.api.types.is_string_dtype(values.dtype):
        return values.map(escape_cell)
    return values


def spreadsheet_safe(frame: pd.DataFrame) -> pd.DataFrame:
    """A copy of ``frame`` in which no text cell or header could start a spreadsheet formula."""
    safe = pd.DataFrame({name: _escaped_column(frame[name]) for name in frame.columns}, index=frame.index)
    safe.columns = [escape_cell(name) if isinstance(name, str) else name for name in frame.columns]
    if pd.api.types.is_object_dtype(frame.index.dtype):  # a shown index (row labels) is exported too
        safe.index = frame.index.map(escape_cell)
    return safe


def show_table(data: pd.DataFrame, **options: Any) -> Any:
    """``st.dataframe(data, **options)`` with every text cell spreadsheet-safe (the toolbar's CSV too)."""
    frame = data if isinstance(data, pd.DataFrame) else pd.DataFrame(data)
    return st.dataframe(spreadsheet_safe(frame), **options)
