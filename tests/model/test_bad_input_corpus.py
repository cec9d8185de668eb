"""The bad input corpus (tests/corpus, expectations in expected.json) through the prediction service.

Every broken class file either predicts its good rows and names each bad cell (row, column, value,
what is allowed), or is refused as a whole with a specific message; nothing else ever comes out, as
the fuzz test below checks on mangled real files.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from model.errors import BatchRejected
from model.schema.fields import MAX_ROWS
from model.serving.downloads import FORMULA_PREFIXES, problems_table, results_table, to_csv_bytes
from model.serving.service import ModelStore, Prediction, predict_batch
from model.settings import get_settings
from model.store.db import get_engine
from model.store.tables import PredictionLog

CORPUS = Path(__file__).resolve().parent.parent / "corpus"
EXPECTED: dict[str, dict] = json.loads((CORPUS / "expected.json").read_text("utf-8"))


def _log_by_request(engine: sa.Engine, request_id: str | None = None) -> pd.DataFrame:
    query = sa.select(PredictionLog.request_id, PredictionLog.status, PredictionLog.error_type)
    if request_id is not None:
        query = query.where(PredictionLog.request_id == request_id)
    with engine.connect() as connection:
        return pd.DataFrame(connection.execute(query).all(), columns=["request_id", "status", "error_type"])


def test_every_corpus_file_has_an_expectation() -> None:
    assert {p.name for p in CORPUS.glob("*.csv")} == set(EXPECTED)


def _check_whole_file(engine: sa.Engine, store: ModelStore, data: bytes, message: str) -> None:
    before = len(_log_by_request(engine))
    with pytest.raises(BatchRejected) as caught:
        predict_batch(store, engine, data, channel="ui")
    assert message in str(caught.value)
    log = _log_by_request(engine)
    assert len(log) == before + 1 and log.iloc[-1].tolist()[1:] == ["rejected", "BatchRejected"]


def _check_rows(engine: sa.Engine, prediction: Prediction, expected: dict) -> None:
    assert len(prediction.results) == expected["accepted"]
    bad = {str(p.row): p for p in prediction.problems if p.row is not None}
    assert {row: sorted(p.column for p in prediction.problems if str(p.row) == row) for row in bad} == {
        row: sorted(columns) for row, columns in expected["rejected"].items()
    }
    for problem in prediction.problems:
        assert f'row {problem.row}, column "{problem.column}"' in problem.message
        assert problem.allowed and problem.value is not None
    for row, setup in expected.get("setups", {}).items():
        assert prediction.results.loc[int(row), "setup"] == setup
    if "student_ids" in expected:
        assert prediction.results["student_id"].tolist() == expected["student_ids"]
    log = _log_by_request(engine, prediction.request_id)
    assert log["status"].value_counts().to_dict() == {
        k: v for k, v in (("ok", expected["accepted"]), ("rejected", len(expected["rejected"]))) if v
    }


def test_bad_input_corpus(models_db_url: str, subtests) -> None:
    engine = get_engine(models_db_url)
    store = ModelStore(engine, settings=get_settings())
    for name, expected in EXPECTED.items():
        with subtests.test(file=name, what=expected["what"]):
            data = (CORPUS / name).read_bytes()
            if "whole_file" in expected:
                _check_whole_file(engine, store, data, expected["whole_file"])
            else:
                _check_rows(engine, predict_batch(store, engine, data, channel="ui"), expected)


def _cells(payload: bytes) -> list[list[str]]:
    return list(csv.reader(io.StringIO(payload.decode("utf-8-sig"))))


def test_formulas_are_escaped_in_the_downloads(app_db_url: str) -> None:
    engine = get_engine(app_db_url)
    prediction = predict_batch(
        ModelStore(engine, settings=get_settings()),
        engine,
        (CORPUS / "formula_injection.csv").read_bytes(),
        channel="ui",
    )
    results = _cells(to_csv_bytes(results_table(prediction)))
    ids = [row[results[0].index("student_id")] for row in results[1:]]
    assert ids == ["'" + s for s in EXPECTED["formula_injection.csv"]["student_ids"]]
    problems = _cells(to_csv_bytes(problems_table(prediction.problems)))
    assert problems[1][problems[0].index("value")] == "'=cmd|' /C calc'!A0"
    text_cells = [cell for table in (results, problems) for row in table for cell in row if not _is_number(cell)]
    assert not [cell for cell in text_cells if cell.startswith(FORMULA_PREFIXES)]


def _is_number(cell: str) -> bool:
    try:
        float(cell)
    except ValueError:
        return False
    return True


def _big_file(raw_df: pd.DataFrame, n: int) -> bytes:
    """``n`` real students drawn with replacement, with ids: made at test time, never committed."""
    rng = np.random.default_rng(7)
    frame = raw_df.drop(columns="G3").iloc[rng.integers(0, len(raw_df), n)]
    frame.insert(0, "student_id", [f"S{i:06d}" for i in range(n)])
    return frame.to_csv(index=False, sep=";").encode()


@pytest.mark.slow
def test_a_class_file_of_100k_rows_is_predicted_and_one_more_is_refused(app_db_url: str, raw_df: pd.DataFrame) -> None:
    engine = get_engine(app_db_url)
    store = ModelStore(engine, settings=get_settings())
    data = _big_file(raw_df, MAX_ROWS + 1)
    with pytest.raises(BatchRejected, match="at most 100,000 are allowed|more than 100,000 data rows"):
        predict_batch(store, engine, data, channel="cli", explain=False)
    last_line = data.rstrip(b"\n").rfind(b"\n")
    prediction = predict_batch(store, engine, data[: last_line + 1], channel="cli", explain=False)
    assert len(prediction.results) == MAX_ROWS and not prediction.problems
    assert len(_log_by_request(engine, prediction.request_id)) == MAX_ROWS


# ------------------------------------------------------------------------------------ fuzzing
NASTY = ["", " ", "NA", "null", "=1+1", "9" * 40, "-0", "1.5", "1,0", '"', ";", ",", "\n", "\x00", "\ufeff", "é"]


@st.composite
def mangled_files(draw: st.DrawFn, lines: list[list[str]]) -> bytes:
    """A real class file with cells replaced, columns dropped, separators, line ends, encodings changed."""
    grid = [list(row) for row in lines]
    for _ in range(draw(st.integers(0, 8))):
        i, j = draw(st.integers(0, len(grid) - 1)), draw(st.integers(0, len(grid[0]) - 1))
        grid[i][j] = draw(st.sampled_from(NASTY) | st.text(max_size=12))
    if draw(st.booleans()):
        j = draw(st.integers(0, len(grid[0]) - 1))
        grid = [row[:j] + row[j + 1 :] for row in grid]
    buffer = io.StringIO()
    writer = csv.writer(buffer, delimiter=draw(st.sampled_from([";", ",", "\t", "|"])),
                        lineterminator=draw(st.sampled_from(["\n", "\r\n", "\r"])))  # fmt: skip
    writer.writerows(grid)
    text = buffer.getvalue()
    text = text[: draw(st.integers(0, len(text)))] if draw(st.booleans()) else text
    encoding = draw(st.sampled_from(["utf-8", "utf-8-sig", "utf-16", "latin-1", "cp1252"]))
    return text.encode(encoding, errors="replace") + draw(st.binary(max_size=4))


def _real_lines(raw_df: pd.DataFrame) -> list[list[str]]:
    frame = raw_df.head(4).astype(str)
    frame.insert(0, "student_id", ["A1", "B2", "C3", "D4"])
    return [frame.columns.tolist(), *frame.to_numpy().tolist()]


def test_fuzzed_class_files_give_a_prediction_or_a_rejection(app_db_url: str, raw_df: pd.DataFrame) -> None:
    engine = get_engine(app_db_url)
    store = ModelStore(engine, settings=get_settings())

    @settings(max_examples=80, deadline=None, suppress_health_check=list(HealthCheck))
    @given(data=mangled_files(_real_lines(raw_df)))
    def check(data: bytes) -> None:
        try:
            prediction = predict_batch(store, engine, data, channel="api", top=2)
        except BatchRejected as error:
            assert str(error)
            return
        assert len(prediction.results) + len(prediction.rejected_rows) == prediction.n_rows
        assert all(p.message for p in prediction.problems)

    check()
