"""User-supplied text shown inside Markdown (``st.markdown``, ``st.caption``, ``st.success``, ...).

Streamlit renders these as Markdown (links, images, emphasis, colours such as ``:red[...]``, icons,
LaTeX), so a file name like ``[click](http://evil.example)`` or a display name like ``**admin**``
would be rendered, not shown. :func:`md` makes any such string literal text: every character that
can start a Markdown construct is backslash-escaped and line breaks become spaces.

:func:`count` writes a whole number for the page's language (thousands marks).
"""

from __future__ import annotations

import re
from typing import Any

from babel.numbers import format_decimal

from model import i18n

_SPECIAL = re.compile(r"([\\`*_{}\[\]#|<>~$])")
_BREAKS = re.compile(r"[\r\n\u2028\u2029]+")


def md(value: Any) -> str:
    """``value`` as literal text inside Markdown (see the module docstring)."""
    return _SPECIAL.sub(r"\\\1", _BREAKS.sub(" ", str(value)))


def count(value: int) -> str:
    """A whole number with this language's thousands mark: ``12,345`` in English, ``12 345`` in Portuguese."""
    code = i18n.language()
    return f"{int(value):,}" if code == i18n.ENGLISH else format_decimal(int(value), locale=code)
