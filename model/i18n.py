"""The teachers' language: English (the source language) and European Portuguese, through gettext
catalogs read with Babel.

Every string the dashboard shows is written in English inside :func:`tr` (or :func:`tr_n` for counts).
A constant defined when a module is imported (a field's label, a dict of messages) is marked with
:func:`N_`, which only marks it for extraction, and translated where it is shown, with ``tr(constant)``.

The language belongs to the running context (a ``ContextVar``): the dashboard sets the signed-in
user's language at the start of every run (:func:`set_language`); the weekly digest sets each
recipient's (:func:`use_language`). The REST API, the command line and the logs never set one, so they
stay English, and so does anything the core says to them.

The catalogs are ``locales/<language>/*.po`` in the repository, one file per part of the product.
``make install`` compiles them into ``locales/<language>/LC_MESSAGES/mathsight.mo``
(``python -m model compile-translations``); without a compiled file (or with one older than a ``.po``) the ``.po``
files are read directly, so a checkout always speaks both languages.

Numbers, percentages and dates go through :func:`number`, :func:`percent`, :func:`date` and
:func:`moment`: English keeps the product's plain forms (``97.1%``, ``2026-12-04``); Portuguese takes
Babel's ``pt_PT`` forms (``97,1%``, ``04/12/2026``).
"""

from __future__ import annotations

import datetime as dt
import functools
import re
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path

from babel import Locale
from babel.dates import format_date, format_datetime
from babel.messages.catalog import Catalog
from babel.messages.mofile import read_mo, write_mo
from babel.messages.pofile import read_po
from babel.numbers import format_decimal, format_percent

ENGLISH = "en"
PORTUGUESE = "pt_PT"
LANGUAGES = {ENGLISH: "English", PORTUGUESE: "Português (Portugal)"}  # code -> its own name
DOMAIN = "mathsight"
CATALOGS = Path(__file__).resolve().parent.parent / "locales"
PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)(?:[:!][^{}]*)?\}")

_language: ContextVar[str] = ContextVar("mathsight_language", default=ENGLISH)


def N_(message: str) -> str:  # noqa: N802 (the gettext convention)
    """Mark ``message`` for the catalog without translating it (a constant, translated where shown)."""
    return message


def language() -> str:
    """The language of this context (``en`` unless the front set another)."""
    return _language.get()


def set_language(code: str | None) -> str:
    """Speak ``code`` in this context from now on (anything unknown means English); returns the code used."""
    chosen = code if code in LANGUAGES else ENGLISH
    _language.set(chosen)
    return chosen


@contextmanager
def use_language(code: str | None) -> Iterator[str]:
    """Speak ``code`` inside the ``with`` block only (the digest, per recipient)."""
    token = _language.set(code if code in LANGUAGES else ENGLISH)
    try:
        yield _language.get()
    finally:
        _language.reset(token)


def from_browser(locale: str | None) -> str:
    """The language for a browser's ``navigator.language`` (``pt-PT``, ``pt-BR``, ``en-GB``...): any
    Portuguese means European Portuguese, anything else English."""
    return PORTUGUESE if str(locale or "").lower().replace("_", "-").split("-")[0] == "pt" else ENGLISH


def source_catalogs(code: str) -> list[Path]:
    """The ``.po`` files of ``code`` in the repository."""
    return sorted((CATALOGS / code).glob("*.po"))


def compiled_path(code: str) -> Path:
    return CATALOGS / code / "LC_MESSAGES" / f"{DOMAIN}.mo"


def merged_catalog(code: str) -> Catalog:
    """Every ``.po`` file of ``code`` as one catalog (a message translated in two files keeps the first)."""
    merged = Catalog(locale=code, domain=DOMAIN)
    for path in source_catalogs(code):
        with path.open("rb") as handle:
            for message in read_po(handle, locale=code):
                if message.id and message.id not in merged:
                    merged[message.id] = message
    return merged


@functools.cache
def _translations(code: str) -> dict[object, object]:
    """msgid -> msgstr of ``code`` (plural ids as tuples), from the compiled file when it is current."""
    compiled, sources = compiled_path(code), source_catalogs(code)
    if compiled.exists() and all(compiled.stat().st_mtime >= s.stat().st_mtime for s in sources):
        with compiled.open("rb") as handle:
            catalog = read_mo(handle)
    else:
        catalog = merged_catalog(code)
    table: dict[object, object] = {}
    for message in catalog:
        if not message.id or message.fuzzy or not message.string:
            continue
        if isinstance(message.id, tuple | list):
            strings = tuple(message.string)
            if all(strings):
                table[tuple(message.id)] = strings
        else:
            table[message.id] = message.string
    return table


def _format(text: str, values: dict[str, object]) -> str:
    return text.format(**values) if values else text


def tr(message: str, /, **values: object) -> str:
    """``message`` in this context's language, with ``{name}`` placeholders filled from ``values``."""
    code = _language.get()
    text = message if code == ENGLISH else _translations(code).get(message, message)
    return _format(str(text), values)


def tr_n(singular: str, plural: str, count: int, /, **values: object) -> str:
    """The singular or plural form for ``count`` (``{count}`` is filled in too), in this context's language."""
    code = _language.get()
    values = {"count": count, **values}
    if code != ENGLISH:
        forms = _translations(code).get((singular, plural))
        if isinstance(forms, tuple):
            index = Locale.parse(code).plural_form(abs(count))
            position = {"one": 0}.get(index, 1)
            return _format(str(forms[min(position, len(forms) - 1)]), values)
    return _format(singular if count == 1 else plural, values)


def _babel_locale() -> str | None:
    code = _language.get()
    return None if code == ENGLISH else code


def number(value: float, digits: int = 1) -> str:
    """``value`` with ``digits`` decimals: ``12.5`` in English, ``12,5`` in Portuguese."""
    where = _babel_locale()
    if where is None:
        return f"{value:.{digits}f}"
    pattern = "0." + "0" * digits if digits > 0 else "0"
    return format_decimal(value, format=pattern, locale=where)


def percent(share: float, digits: int = 0) -> str:
    """``share`` (0-1) as a percentage: ``97.1%`` in English, ``97,1%`` in Portuguese."""
    where = _babel_locale()
    if where is None:
        return f"{share:.{digits}%}"
    pattern = "0." + "0" * digits + "%" if digits > 0 else "0%"
    return format_percent(share, format=pattern, locale=where)


def date(day: dt.date | None) -> str:
    """A date: ``2026-12-04`` in English, ``04/12/2026`` in Portuguese; empty for none."""
    if day is None:
        return ""
    where = _babel_locale()
    return f"{day:%Y-%m-%d}" if where is None else format_date(day, format="dd/MM/yyyy", locale=where)


def moment(when: dt.datetime | None) -> str:
    """A date and time to the minute: ``2026-12-04 18:30`` in English, ``04/12/2026 18:30`` in Portuguese."""
    if when is None:
        return ""
    where = _babel_locale()
    if where is None:
        return f"{when:%Y-%m-%d %H:%M}"
    return format_datetime(when, format="dd/MM/yyyy HH:mm", locale=where, tzinfo=when.tzinfo or dt.UTC)


def chart_separators() -> str:
    """Plotly's ``layout.separators`` for this language (decimal mark, then thousands mark)."""
    return ".," if _babel_locale() is None else ", "


def compile_catalogs() -> list[Path]:
    """Compile every language's ``.po`` files into its ``.mo`` (run by ``make install``)."""
    written = []
    for code in LANGUAGES:
        if code == ENGLISH or not source_catalogs(code):
            continue
        target = compiled_path(code)
        target.parent.mkdir(parents=True, exist_ok=True)
        with target.open("wb") as handle:
            write_mo(handle, merged_catalog(code), use_fuzzy=False)
        written.append(target)
    _translations.cache_clear()
    return written
