"""Checks of the language catalogs, shared by tests/test_translations.py and the page tests.

- :func:`extracted` finds every message the code marks (``tr``, ``tr_n``, ``N_``), as Babel's
  extraction does (``pybabel extract -k tr -k tr_n:1,2 -k N_``).
- :func:`untranslated` lists those the Portuguese catalog lacks (absent, empty, fuzzy, or with other
  placeholders than the English).
- :func:`unmarked_prose` finds prose written in a page or the dashboard without ``tr``: a string
  literal (or the literal parts of an f-string) of two or more words passed to a call or assigned to a
  module constant. Docstrings, ``key=``/``icon=``-like arguments and strings inside ``tr``/``N_``
  are not prose shown to a user, nor is a string on a line marked ``# not shown to users``.
- :func:`english_left` lists the English sentences an AppTest run still shows (for a run in Portuguese).
"""

from __future__ import annotations

import ast
import contextlib
import json
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from babel.messages.extract import extract_from_file
from google.protobuf.json_format import MessageToDict

from model import i18n

ROOT = Path(__file__).resolve().parents[1]
KEYWORDS = {"tr": None, "tr_n": (1, 2), "N_": None}
# Where the messages users read are written: the dashboard's pages and code, and the core (the API
# and CLI stay English: their own files mark nothing).
SOURCES = ("dashboard", "pages", "model")
MARKERS = frozenset(KEYWORDS)
# Arguments that never carry prose (widget keys, icons, mime types, formats, styles, ids).
TECHNICAL_KEYWORDS = frozenset({"key", "icon", "type", "mime", "format", "file_name", "page_icon", "layout",
                                "position", "unsafe_allow_html", "on_click", "on_change", "url", "href",
                                "column_order", "selection_mode", "sep", "encoding", "dtype", "id"})  # fmt: skip
PROSE = re.compile(r"[A-Za-z]{2,}[^A-Za-z{}]+[A-Za-z]{2,}")  # two words of letters
NOT_SHOWN = "# not shown to users"  # on a string's line: it never reaches a page (a log line, a metric's help)
NOT_PROSE = re.compile(r"^\s*<|^[\w.:/-]+$|^%|^SELECT|^INSERT")  # HTML, dotted names, printf, SQL


@dataclass(frozen=True)
class Message:
    """One marked message: its id (a tuple for singular and plural) and where it is."""

    id: str | tuple[str, str]
    path: Path
    line: int


def _name(path: Path) -> str:
    return str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else path.name


def source_files(sources: Iterable[str] = SOURCES) -> Iterator[Path]:
    for folder in sources:
        yield from sorted((ROOT / folder).rglob("*.py"))


def extracted(files: Iterable[Path] | None = None) -> list[Message]:
    """Every marked message of ``files`` (default: all sources)."""
    found = []
    for path in files if files is not None else source_files():
        for line, text, _comments, _context in extract_from_file("python", str(path), keywords=KEYWORDS):
            if isinstance(text, tuple):
                text = tuple(part for part in text if part is not None)
                text = text[0] if len(text) == 1 else text
            if text:
                found.append(Message(text, path, line))
    return found


def placeholders(text: str) -> set[str]:
    return set(i18n.PLACEHOLDER.findall(text))


def untranslated(messages: Iterable[Message], code: str = i18n.PORTUGUESE) -> list[str]:
    """What the catalog of ``code`` lacks for ``messages``, one line each (empty when complete)."""
    catalog = i18n.merged_catalog(code)
    problems = []
    for message in messages:
        where = f"{_name(message.path)}:{message.line}"
        entry = catalog.get(message.id)
        if entry is None:
            problems.append(f"{where}: not in the catalog: {message.id!r}")
            continue
        strings = entry.string if isinstance(entry.string, tuple | list) else (entry.string,)
        ids = message.id if isinstance(message.id, tuple) else (message.id,)
        if entry.fuzzy or not all(strings):
            problems.append(f"{where}: no translation (empty or fuzzy): {message.id!r}")
        elif any(placeholders(s) != placeholders(ids[0]) for s in strings):
            problems.append(f"{where}: the placeholders differ from the English: {message.id!r} -> {entry.string!r}")
    return problems


def _literal_parts(node: ast.AST) -> str | None:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.JoinedStr):
        return " … ".join(v.value for v in node.values if isinstance(v, ast.Constant) and isinstance(v.value, str))
    return None


def _is_prose(text: str) -> bool:
    return bool(PROSE.search(text)) and not NOT_PROSE.search(text)


def _marked(node: ast.Call) -> bool:
    func = node.func
    name = func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else ""
    return name in MARKERS


def _docstrings(tree: ast.AST) -> set[int]:
    ids = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                ids.add(id(first.value))
    return ids


def unmarked_prose(path: Path) -> list[str]:
    """Prose in ``path`` that reaches a user without passing through ``tr``/``N_``."""
    source = path.read_text("utf-8")
    tree = ast.parse(source, str(path))
    skip = _docstrings(tree)
    lines = source.splitlines()
    inside_marker: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and _marked(node):
            inside_marker.update(id(child) for child in ast.walk(node))
    found = []

    def check(value: ast.AST, line: int) -> None:
        parts: set[int] = set()
        for child in ast.walk(value):
            if isinstance(child, ast.JoinedStr):
                parts.update(id(part) for part in child.values)
            if id(child) in skip or id(child) in inside_marker or id(child) in parts:
                continue
            if isinstance(child, ast.Call) and _marked(child):
                continue
            text = _literal_parts(child)
            at = getattr(child, "lineno", line)
            if 0 < at <= len(lines) and NOT_SHOWN in lines[at - 1]:
                continue
            if text is not None and _is_prose(text):
                found.append(f"{_name(path)}:{getattr(child, 'lineno', line)}: {text[:70]!r}")

    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and not _marked(node):
            for arg in node.args:
                if isinstance(arg, ast.Constant | ast.JoinedStr):
                    check(arg, node.lineno)
            for keyword in node.keywords:
                if keyword.arg not in TECHNICAL_KEYWORDS and isinstance(keyword.value, ast.Constant | ast.JoinedStr):
                    check(keyword.value, node.lineno)
    for node in tree.body:  # module constants: strings, and strings inside dicts, lists and tuples
        if isinstance(node, ast.Assign | ast.AnnAssign) and node.value is not None:
            check(node.value, node.lineno)
    return sorted(set(found))


# Words English sentences are made of and Portuguese ones are not (no "a", "no", "de", "for", "at").
ENGLISH_WORDS = frozenset({"the", "and", "your", "with", "this", "which", "you", "is", "are", "of", "to",
                           "has", "have", "will", "be", "from", "than", "there", "their", "what", "who",
                           "when", "it", "its", "by", "on", "or", "an", "not", "been", "was", "were",
                           "should", "would", "can", "cannot", "into", "here", "these", "those"})  # fmt: skip
_TEXT_FIELDS = ("label", "body", "help", "placeholder", "options", "text", "caption", "title", "value",
                "message", "name", "hovertemplate", "defaultValue")  # fmt: skip


def _strings(tree: object, keys: tuple[str, ...] = _TEXT_FIELDS) -> Iterator[str]:
    if isinstance(tree, dict):
        for key, value in tree.items():
            if key == "spec" and isinstance(value, str):
                with contextlib.suppress(ValueError):
                    yield from _strings(json.loads(value))
            elif key in keys:
                if isinstance(value, str):
                    yield value
                else:
                    yield from _strings(value, keys + ("",))
            elif isinstance(value, dict | list):
                yield from _strings(value, keys)
    elif isinstance(tree, list):
        for item in tree:
            if isinstance(item, str) and "" in keys:
                yield item
            else:
                yield from _strings(item, keys)


def _nodes(node: object) -> Iterator[object]:
    yield node
    children = getattr(node, "children", None)
    if isinstance(children, dict):
        for child in children.values():
            yield from _nodes(child)


def shown_texts(at: object) -> list[str]:
    """Every text an AppTest run shows: bodies, labels, help, options, chart titles and hover texts."""
    texts = []
    for node in _nodes(at._tree):  # type: ignore[attr-defined]
        proto = getattr(node, "proto", None)
        if proto is None or not hasattr(proto, "DESCRIPTOR"):
            continue
        data = MessageToDict(proto)
        data.pop("arrowData", None)
        texts.extend(_strings(data))
    return texts


def english_words(text: str) -> set[str]:
    return {word for word in re.findall(r"[A-Za-z']+", re.sub(r"\{[^}]*\}|%\{[^}]*\}", " ", text))
            if word.lower() in ENGLISH_WORDS}  # fmt: skip


def english_left(at: object, allow: Iterable[str] = ()) -> list[str]:
    """The texts of an AppTest run that still read as English (two English words or more), except
    those containing one of ``allow`` (names the test itself typed, say)."""
    allowed = tuple(allow)
    left = []
    for text in shown_texts(at):
        if any(a in text for a in allowed):
            continue
        if len({w.lower() for w in english_words(text)}) >= 2:
            left.append(text[:160])
    return sorted(set(left))
