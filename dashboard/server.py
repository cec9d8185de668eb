"""The dashboard's ASGI app: ``streamlit run dashboard/server.py`` (or ``uvicorn dashboard.server:app``).

Streamlit's own ``App`` serving ``dashboard/app.py``, plus the routes that set and clear the
``HttpOnly`` sign-in cookie (:mod:`dashboard.session_cookie`) and serve downloads to the session that
made them (:mod:`dashboard.downloads`).
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = str(Path(__file__).resolve().parent.parent)
if ROOT not in sys.path:  # `streamlit run dashboard/server.py` puts only dashboard/ on the path
    sys.path.insert(0, ROOT)

import streamlit as st  # noqa: E402

from dashboard import downloads, metrics, session_cookie  # noqa: E402

# Streamlit serves its own routes under server.baseUrlPath, but not an App's extra ones: mount them there.
_BASE = st.get_option("server.baseUrlPath")
app = st.App(str(Path(__file__).resolve().parent / "app.py"),
             routes=[*session_cookie.routes(_BASE), *downloads.routes(_BASE), *metrics.routes(_BASE)])  # fmt: skip
