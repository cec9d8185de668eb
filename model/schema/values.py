"""One value of one field: parsing a cell in the codebook's spellings, and describing it in words."""

from __future__ import annotations

import re
from typing import Any

import numpy as np
import pandas as pd

from model.errors import has_lone_surrogate
from model.i18n import N_, tr, tr_n
from model.schema.fields import FIELDS, ID_COLUMN, FieldSpec

_WHOLE = re.compile(r"[+-]?[0-9]+(?:[.,]0*)?")
NOT_TEXT = N_("holds a character that is not valid text (a lone UTF-16 surrogate such as \\ud800)")
# Field names by their case-folded spelling: headers and keys match ignoring case and spaces.
CANONICAL_NAMES = {name.casefold(): name for name in (*FIELDS, ID_COLUMN)}


def _category_key(text: str) -> str:
    """Case, spaces and hyphens do not matter: " At Home " and "AT_HOME" both mean "at_home"."""
    return text.casefold().replace(" ", "_").replace("-", "_")


_CATEGORY_KEYS = {name: {_category_key(v): v for v in spec.allowed} for name, spec in FIELDS.items() if spec.allowed}


def is_blank(value: Any) -> bool:
    """True for a cell that holds nothing: None, NA, NaN or only spaces."""
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


def _out_of_range(value: Any, spec: FieldSpec) -> str:
    return tr("{value} is out of range {allowed}", value=value, allowed=spec.allowed_text)


def _parse_number(spec: FieldSpec, raw: Any) -> tuple[int | None, str | None]:
    if isinstance(raw, bool | np.bool_):
        return None, tr("{value} is not a whole number", value=_quote(str(raw)))
    if isinstance(raw, int | np.integer):
        number = int(raw)
    elif isinstance(raw, float | np.floating):
        if not float(raw).is_integer():
            return None, tr("{value} is not a whole number", value=raw)
        if abs(raw) >= 10**9:  # before int(): 1e300 has 301 digits, and is not echoed in full
            return None, _out_of_range(_quote(str(raw)), spec)
        number = int(raw)
    else:
        text = _unquote(str(raw))
        if not text:
            return None, None
        if not _WHOLE.fullmatch(text):
            return None, tr("{value} is not a whole number", value=_quote(text))
        digits = re.split(r"[.,]", text)[0]
        if len(digits.lstrip("+-").lstrip("0")) > 9:  # int() of huge digit strings is slow or refused
            return None, _out_of_range(_quote(text), spec)
        number = int(digits)
    if not spec.min <= number <= spec.max:  # type: ignore[operator]
        return None, _out_of_range(_quote(str(number)) if abs(number) >= 10**9 else number, spec)
    return number, None


def _parse_category(spec: FieldSpec, raw: Any) -> tuple[str | None, str | None]:
    if isinstance(raw, bool | np.bool_) and spec.kind == "binary":
        return ("yes" if raw else "no"), None
    text = _unquote(str(raw))
    if not text:
        return None, None
    value = _CATEGORY_KEYS[spec.name].get(_category_key(text))
    if value is None:
        return None, tr("{value} is not allowed; allowed: {allowed}", value=_quote(text), allowed=spec.allowed_text)
    return value, None


def text_reason(raw: Any) -> str | None:
    """Why a text cell cannot be taken as it is (a lone surrogate cannot be stored or sent), or None."""
    return tr(NOT_TEXT) if isinstance(raw, str) and has_lone_surrogate(raw) else None


def parse_cell(spec: FieldSpec, raw: Any) -> tuple[Any, str | None]:
    """``(canonical, None)``, ``(None, None)`` for a blank cell, or ``(None, reason)``."""
    if (reason := text_reason(raw)) is not None:
        return None, reason
    if is_blank(raw):
        return None, None
    return _parse_number(spec, raw) if spec.is_numeric else _parse_category(spec, raw)


def missing_reason(spec: FieldSpec) -> str:
    """The reason given for a required value left blank."""
    return tr("missing value; allowed: {allowed}", allowed=spec.allowed_text)


def raw_text(raw: Any) -> str | None:
    """A cell as the user typed it, for a problem report (None for an empty cell)."""
    return None if is_blank(raw) and not isinstance(raw, str) else str(raw)


def describe_value(name: str, value: Any) -> str:
    """A short phrase for a field's value, as used in plain-language explanations, in this context's language.

    ``describe_value("failures", 3) == "3 past class failures"``,
    ``describe_value("studytime", 1) == "weekly study time <2 hours"``,
    ``describe_value("schoolsup", "yes") == "extra educational support: yes"``.
    Raises ``KeyError`` for an unknown field and ``ValueError`` for a value it may not hold.
    """
    spec = FIELDS[name]
    canonical, reason = parse_cell(spec, value)
    if reason is not None:
        raise ValueError(f'field "{name}": {reason}')
    label = tr(spec.label)
    label = label[0].lower() + label[1:]
    if canonical is None:
        return tr("{label}: unknown", label=label)
    if name == "failures":
        if canonical == 0:
            return tr("no past class failures")
        return tr_n("{count} past class failure", "{count} past class failures", canonical)
    if name == "absences":
        if canonical == 0:
            return tr("no school absences")
        return tr_n("{count} school absence", "{count} school absences", canonical)
    return tr(spec.phrase, label=label, value=spec.value_label(canonical))
