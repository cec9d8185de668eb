"""The result vocabulary itself: every table names described columns, the words, the rounding by kind."""

from __future__ import annotations

import math

import pandas as pd

from model.schema import results
from model.schema.fields import BANDS, SETUPS
from model.schema.results import COLUMNS, FORMATS


def test_every_table_names_described_columns_and_categories_name_their_values() -> None:
    tables = [results.RESULT_COLUMNS, results.API_COLUMNS, results.DOWNLOAD_COLUMNS, results.HISTORY_COLUMNS,
              results.RECENT_COLUMNS, results.PROBLEM_COLUMNS]  # fmt: skip
    for table in tables:
        assert len(set(table)) == len(table) and set(table) <= set(COLUMNS)
    assert all(column.label and column.help and column.kind in FORMATS for column in COLUMNS.values())
    assert COLUMNS["setup"].values == SETUPS and COLUMNS["band"].values == tuple(BANDS)
    assert COLUMNS["risk"].values == results.RISKS == ("high", "medium", "low")


def test_the_words_for_risk_bands_and_setups() -> None:
    assert results.risk_text("high") == "high risk of failing"
    assert results.band_text("IV") == "10-11: sufficient (a pass)"
    assert [results.band_text(band).split(":")[0] for band in BANDS] == [f"{lo}-{hi}" for lo, hi in BANDS.values()]
    assert set(results.SETUP_NOTES) == set(SETUPS)
    assert COLUMNS["p_pass"].heading == "Chance of passing (G3 ≥ 10)" and COLUMNS["lower"].heading == "From"


def test_values_are_rounded_and_typed_by_kind() -> None:
    grade, chance, row, student = (COLUMNS[name] for name in ("predicted_g3", "p_pass", "row", "student_id"))
    assert grade.for_json([12.3456]) == [12.35] and chance.for_json([0.123456]) == [0.1235]
    assert grade.for_download(pd.Series([12.3456])).tolist() == [12.3]
    assert chance.for_download(pd.Series([0.123456])).tolist() == [0.123]
    assert row.for_json([pd.Series([7]).iloc[0]]) == [7] and type(row.for_json([7.0])[0]) is int
    assert student.for_json(["S1", None, math.nan]) == ["S1", None, None]
