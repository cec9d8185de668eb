"""Two languages: every marked message has its Portuguese, no prose reaches a page unmarked, and the
language helpers (choice, numbers, dates, plurals, compiled catalogs) behave."""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

import pytest
from babel.messages.pofile import read_po

from model import i18n
from tests.translations import ROOT, extracted, source_files, unmarked_prose, untranslated

# Files of the dashboard and the pages whose prose is not marked yet. Each one leaves this list when
# its strings go through ``tr``; the list must end empty.
PENDING: frozenset[str] = frozenset()


def test_every_marked_message_has_its_portuguese() -> None:
    problems = untranslated(extracted())
    assert not problems, f"{len(problems)} untranslated:\n" + "\n".join(problems[:60])


@pytest.mark.parametrize("path", list(source_files(("dashboard", "pages"))), ids=lambda p: str(p.relative_to(ROOT)))
def test_no_page_string_escapes_the_catalog(path: Path) -> None:
    name = str(path.relative_to(ROOT))
    found = unmarked_prose(path)
    if name in PENDING:
        assert found, f"{name} has no unmarked prose left: take it off PENDING"
        pytest.skip("not marked yet")
    assert not found, "prose shown without tr():\n" + "\n".join(found)


def test_the_same_english_is_translated_the_same_way_in_every_catalog_file() -> None:
    seen: dict[object, tuple[str, object]] = {}
    clashes = []
    for path in i18n.source_catalogs(i18n.PORTUGUESE):
        with path.open("rb") as handle:
            for message in read_po(handle):
                if not message.id:
                    continue
                key = message.id if isinstance(message.id, str) else tuple(message.id)
                earlier = seen.setdefault(key, (path.name, message.string))
                if earlier[1] != message.string:
                    clashes.append(f"{message.id!r}: {earlier[0]} {earlier[1]!r} / {path.name} {message.string!r}")
    assert not clashes, "\n".join(clashes)


def test_the_checks_find_unmarked_prose_and_missing_translations(tmp_path: Path) -> None:
    source = tmp_path / "page.py"
    source.write_text(
        '"""A page."""\nimport streamlit as st\nfrom model.i18n import N_, tr\n'
        'LABEL = "Predicted final grade"\nOK = N_("Chance of passing")\n'
        'st.title(tr("Needs attention"))\nst.caption(f"Your {3} students")\nst.button("Save", key="x y z")\n'
        'st.markdown(tr("Nothing calls for action {when}", when="now"))\n',
        "utf-8",
    )
    problems = [line.split(": ", 1)[1] for line in unmarked_prose(source)]
    assert problems == ["'Predicted final grade'", "'Your  …  students'"]
    ids = [m.id for m in extracted([source])]
    assert ids == ["Chance of passing", "Needs attention", "Nothing calls for action {when}"]
    made_up = [m for m in extracted([source]) if m.id == "Nothing calls for action {when}"]
    assert untranslated(made_up)  # no such message in the catalog: reported


def test_the_language_is_the_contexts_and_english_by_default() -> None:
    assert i18n.language() == i18n.ENGLISH
    with i18n.use_language(i18n.PORTUGUESE):
        assert i18n.language() == i18n.PORTUGUESE
        with i18n.use_language("xx"):  # unknown: English
            assert i18n.language() == i18n.ENGLISH
    assert i18n.language() == i18n.ENGLISH
    assert i18n.tr("no such message {n}", n=3) == "no such message 3"


BROWSERS = [("pt-PT", "pt_PT"), ("pt-BR", "pt_PT"), ("pt", "pt_PT"), ("en-GB", "en"), ("fr-FR", "en"),
            (None, "en"), ("", "en")]  # fmt: skip


@pytest.mark.parametrize(("browser", "expected"), BROWSERS)
def test_the_browsers_language_picks_ours(browser: str | None, expected: str) -> None:
    assert i18n.from_browser(browser) == expected


def test_numbers_percentages_and_dates_follow_the_language() -> None:
    day, moment = dt.date(2026, 12, 4), dt.datetime(2026, 12, 4, 18, 30, tzinfo=dt.UTC)
    assert (i18n.number(12.5), i18n.percent(0.971, 1), i18n.percent(0.5), i18n.date(day), i18n.moment(moment)) == (
        "12.5", "97.1%", "50%", "2026-12-04", "2026-12-04 18:30")  # fmt: skip
    with i18n.use_language(i18n.PORTUGUESE):
        assert (i18n.number(12.5), i18n.percent(0.971, 1), i18n.date(day), i18n.moment(moment)) == (
            "12,5", "97,1%", "04/12/2026", "04/12/2026 18:30")  # fmt: skip
        assert i18n.chart_separators() == ", "
    assert i18n.date(None) == "" and i18n.chart_separators() == ".,"


def test_plurals_and_a_compiled_catalog(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "pt_PT").mkdir()
    (tmp_path / "pt_PT" / "test.po").write_text(
        'msgid ""\nmsgstr ""\n"Language: pt_PT\\n"\n"Plural-Forms: nplurals=2; plural=(n != 1);\\n"\n\n'
        'msgid "Chance of passing"\nmsgstr "Probabilidade de aprovação"\n\n'
        'msgid "{count} student"\nmsgid_plural "{count} students"\n'
        'msgstr[0] "{count} aluno"\nmsgstr[1] "{count} alunos"\n\n'
        '#, fuzzy\nmsgid "Save"\nmsgstr "Guardar talvez"\n',
        "utf-8",
    )
    monkeypatch.setattr(i18n, "CATALOGS", tmp_path)
    i18n._translations.cache_clear()
    try:
        for compiled in (False, True):
            if compiled:
                assert i18n.compile_catalogs() == [i18n.compiled_path("pt_PT")]
                assert i18n.compiled_path("pt_PT").exists()
            with i18n.use_language("pt_PT"):
                assert i18n.tr("Chance of passing") == "Probabilidade de aprovação"
                assert i18n.tr_n("{count} student", "{count} students", 1) == "1 aluno"
                assert i18n.tr_n("{count} student", "{count} students", 5) == "5 alunos"
                assert i18n.tr("Save") == "Save"  # fuzzy: not trusted, English shown
            assert i18n.tr_n("{count} student", "{count} students", 5) == "5 students"
    finally:
        i18n._translations.cache_clear()


def test_the_repository_catalogs_compile(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    copy = tmp_path / "locales"
    shutil.copytree(i18n.CATALOGS, copy, ignore=shutil.ignore_patterns("LC_MESSAGES"))
    monkeypatch.setattr(i18n, "CATALOGS", copy)
    try:
        written = i18n.compile_catalogs()
        assert written == [copy / "pt_PT" / "LC_MESSAGES" / "mathsight.mo"]
    finally:
        i18n._translations.cache_clear()
