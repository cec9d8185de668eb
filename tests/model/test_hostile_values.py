"""Any text in any field: the validator answers with values or problems that can always be sent."""

from __future__ import annotations

import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

from model.errors import MAX_SHOWN, InvalidInput, Problem
from model.schema.fields import EXAMPLE_RECORD, FIELDS, ID_COLUMN
from model.schema.validation import validate_frame, validate_record

NAMES = (ID_COLUMN, *FIELDS)
TEXT = st.one_of(st.text(max_size=300), st.sampled_from(["\ud800", "\udfff", "a\ud83d", "\u202e", "9" * 5000]))


def _sendable(problem: Problem) -> None:
    (problem.message + (problem.value or "")).encode("utf-8")
    assert problem.value is None or len(problem.value) <= MAX_SHOWN + 3


@settings(max_examples=300, deadline=None)
@given(name=st.sampled_from(NAMES), text=TEXT)
def test_one_record(name: str, text: str) -> None:
    try:
        clean = validate_record({**EXAMPLE_RECORD, ID_COLUMN: "S1", name: text})
    except InvalidInput as error:
        assert {p.column for p in error.problems} == {name}
        for problem in error.problems:
            _sendable(problem)
    else:
        "".join(str(v) for v in clean.values()).encode("utf-8")


@settings(max_examples=100, deadline=None)
@given(cells=st.lists(st.tuples(st.sampled_from(NAMES), TEXT), min_size=1, max_size=5))
def test_a_frame(cells: list[tuple[str, str]]) -> None:
    rows = [{**EXAMPLE_RECORD, ID_COLUMN: "S1", name: text} for name, text in cells]
    result = validate_frame(pd.DataFrame(rows, dtype=object))
    for problem in result.problems:
        _sendable(problem)
    assert {p.row for p in result.problems if p.row is not None} | set(result.accepted.index) == set(
        range(2, len(rows) + 2)
    )
