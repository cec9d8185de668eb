"""Every table the dashboard shows goes through :func:`show_table`.

``st.dataframe`` has a toolbar whose "Download as CSV" exports the cells as shown, with no escaping:
a student id such as ``=HYPERLINK(...)`` or ``=cmd|' /C calc'!A0`` would run in the spreadsheet that
opens the file. :func:`show_table` shows (and so lets the toolbar export) text cells escaped the way
the page's own CSV downloads are, by the same function (:func:`model.serving.downloads.escape_formulas`:
a leading ``'`` before ``=``, ``+``, ``-``, ``@``, tab or carriage return); numbers, dates and flags are
untouched. A test (``tests/dashboard/test_downloads.py``) fails when a page calls ``st.dataframe`` directly.
"""

from __future__ import annotations

from typing import Any

import pandas as pd
import streamlit as st

from model.serving.downloads import escape_formulas


def show_table(data: pd.DataFrame, **options: Any) -> Any:
    """``st.dataframe(data, **options)`` with every text cell spreadsheet-safe (the toolbar's CSV too)."""
    frame = data if isinstance(data, pd.DataFrame) else pd.DataFrame(data)
    return st.dataframe(escape_formulas(frame), **options)
