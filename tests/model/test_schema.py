"""model.schema.fields: the field catalogue, the batch and record validators, setups, bands and words."""

from __future__ import annotations

import csv
import io
import json
import string
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from model.errors import BatchRejected, InvalidInput, Problem
from model.schema.fields import (
    ACTIONABLE,
    ATTRIBUTES,
    BANDS,
    CATEGORICAL,
    EXAMPLE_RECORD,
    FIELDS,
    GRADES,
    GROUPS,
    ID_COLUMN,
    MAX_ROWS,
    NUMERIC,
    PASS_MARK,
    SETUP_FEATURES,
    SETUPS,
    TARGET,
    band,
    bands,
)
from model.schema.published import StudentRecord, json_schema, template_csv
from model.schema.reading import read_batch, read_chunks
from model.schema.validation import (
    G2_WITHOUT_G1,
    ValidationResult,
    row_setups,
    setup_for,
    validate_batch,
    validate_chunks,
    validate_frame,
    validate_record,
)
from model.schema.values import describe_value

PROPERTY = settings(deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def make_csv(
    rows: list[dict[str, Any]],
    sep: str = ",",
    columns: list[str] | None = None,
    quoting: int = csv.QUOTE_MINIMAL,
) -> str:
    columns = columns or list(rows[0])
    out = io.StringIO()
    writer = csv.writer(out, delimiter=sep, lineterminator="\n", quoting=quoting)
    writer.writerow(columns)
    writer.writerows([[row.get(c, "") for c in columns] for row in rows])
    return out.getvalue()


def example(**changes: Any) -> dict[str, Any]:
    return {**EXAMPLE_RECORD, **changes}


# ---------------------------------------------------------------- the catalogue


def test_fields_follow_the_file_column_order(student_csv_path: Path) -> None:
    header = student_csv_path.read_text().splitlines()[0].split(";")
    assert list(FIELDS) == header
    assert tuple(header[:30]) == ATTRIBUTES
    assert GRADES == ("G1", "G2") and TARGET == "G3"
    assert set(CATEGORICAL) | set(NUMERIC) == set(ATTRIBUTES)
    assert not set(CATEGORICAL) & set(NUMERIC)
    assert len(CATEGORICAL) == 17


def test_groups_follow_design() -> None:
    assert GROUPS == ("School & person", "Family", "School life", "Habits & health", "Grades")
    by_group = {g: [n for n, f in FIELDS.items() if f.group == g] for g in GROUPS}
    assert by_group["School & person"] == ["school", "sex", "age", "address"]
    assert set(by_group["Family"]) == {
        "famsize",
        "Pstatus",
        "Medu",
        "Fedu",
        "Mjob",
        "Fjob",
        "guardian",
        "famrel",
    }
    assert set(by_group["Habits & health"]) == {"freetime", "goout", "Dalc", "Walc", "health", "absences"}
    assert by_group["Grades"] == ["G1", "G2", "G3"]
    assert len(by_group["School life"]) == 12


def test_kinds_ranges_and_allowed_values() -> None:
    assert FIELDS["Mjob"].allowed == ("teacher", "health", "services", "at_home", "other")
    assert FIELDS["reason"].allowed == ("home", "reputation", "course", "other")
    assert FIELDS["schoolsup"].kind == "binary" and FIELDS["schoolsup"].allowed == ("yes", "no")
    assert FIELDS["school"].kind == "categorical" and FIELDS["school"].allowed == ("GP", "MS")
    assert (FIELDS["age"].min, FIELDS["age"].max) == (15, 22)
    assert (FIELDS["absences"].min, FIELDS["absences"].max) == (0, 93)
    for name in ("G1", "G2", "G3"):
        assert (FIELDS[name].min, FIELDS[name].max, FIELDS[name].required) == (0, 20, False)
    assert all(FIELDS[n].required for n in ATTRIBUTES)
    for spec in FIELDS.values():
        assert spec.label and spec.help and spec.group in GROUPS
        assert (spec.allowed is None) == (spec.min is not None) == spec.is_numeric


def test_ordinal_value_labels() -> None:
    assert dict(FIELDS["studytime"].value_labels) == {
        1: "<2 hours",
        2: "2-5 hours",
        3: "5-10 hours",
        4: ">10 hours",
    }
    assert FIELDS["Medu"].value_labels[0] == "none"
    assert FIELDS["Medu"].value_labels[4] == "higher education"
    assert FIELDS["traveltime"].value_labels[1] == "<15 min"
    assert FIELDS["goout"].value_labels[1] == "very low" and FIELDS["goout"].value_labels[5] == "very high"
    assert FIELDS["famrel"].value_labels[5] == "excellent"
    for spec in FIELDS.values():
        if spec.kind == "ordinal":
            assert set(spec.value_labels) == set(range(spec.min, spec.max + 1)), spec.name


def test_actionable_factors() -> None:
    expected = {
        "studytime",
        "absences",
        "schoolsup",
        "famsup",
        "paid",
        "goout",
        "Dalc",
        "Walc",
        "activities",
        "internet",
    }
    assert set(ACTIONABLE) == expected
    assert {n for n, f in FIELDS.items() if f.actionable} == expected


def test_setups_bands_and_pass_mark() -> None:
    assert SETUPS == ("early", "period1", "period2")
    assert SETUP_FEATURES["early"] == ATTRIBUTES
    assert SETUP_FEATURES["period1"] == (*ATTRIBUTES, "G1")
    assert SETUP_FEATURES["period2"] == (*ATTRIBUTES, "G1", "G2")
    assert BANDS == {"I": (16, 20), "II": (14, 15), "III": (12, 13), "IV": (10, 11), "V": (0, 9)}
    assert PASS_MARK == 10


@pytest.mark.parametrize(
    ("grade", "expected"),
    [(20, "I"), (16, "I"), (15.5, "I"), (15.49, "II"), (14, "II"), (13.7, "II"), (12, "III"),
     (11.2, "IV"), (10, "IV"), (9.5, "IV"), (9.49, "V"), (0, "V"), (-2.0, "V"), (21.3, "I")],
)  # fmt: skip
def test_band(grade: float, expected: str) -> None:
    assert band(grade) == expected
    assert bands([grade]).tolist() == [expected]


def test_band_rejects_missing() -> None:
    with pytest.raises(ValueError):
        band(float("nan"))
    with pytest.raises(ValueError):
        bands([1.0, np.nan])


def test_setup_for() -> None:
    assert setup_for(ATTRIBUTES) == "early"
    assert setup_for([*ATTRIBUTES, "G1"]) == "period1"
    assert setup_for([*ATTRIBUTES, "G1", "G2", "G3"]) == "period2"
    assert setup_for([*ATTRIBUTES, "G2"]) == "early"
    assert setup_for(example(G1=5, G2=None)) == "period1"
    assert setup_for(example(G1="", G2=7)) == "early"
    assert setup_for(example()) == "period2"
    assert setup_for(pd.DataFrame(columns=[*ATTRIBUTES, "g1"])) == "period1"


def test_describe_value() -> None:
    assert describe_value("failures", 3) == "3 past class failures"
    assert describe_value("failures", 1) == "1 past class failure"
    assert describe_value("failures", 0) == "no past class failures"
    assert describe_value("studytime", 1) == "weekly study time <2 hours"
    assert describe_value("schoolsup", "yes") == "extra educational support: yes"
    assert describe_value("schoolsup", "Yes") == "extra educational support: yes"
    assert describe_value("Medu", np.int64(4)) == "mother's education: higher education"
    assert describe_value("absences", 12.0) == "12 school absences"
    assert describe_value("Mjob", "at_home") == "mother's job: at home"
    assert describe_value("age", 17) == "age 17"
    assert describe_value("G1", 12) == "first period grade: 12/20"
    assert describe_value("G1", None) == "first period grade: unknown"
    for name, spec in FIELDS.items():
        values = spec.allowed or range(spec.min, spec.max + 1)
        assert all(describe_value(name, v) for v in values)
    with pytest.raises(ValueError, match="out of range"):
        describe_value("age", 40)
    with pytest.raises(KeyError):
        describe_value("nope", 1)


def test_json_schema_is_json_and_complete() -> None:
    doc = json.loads(json.dumps(json_schema()))
    fields = {f["name"]: f for f in doc["fields"]}
    assert list(fields) == list(FIELDS)
    assert fields["Mjob"]["allowed"] == list(FIELDS["Mjob"].allowed)
    assert fields["Mjob"]["type"] == "string"
    age = {k: fields["age"][k] for k in ("type", "min", "max", "label")}
    assert age == {"type": "integer", "min": 15, "max": 22, "label": "Age"}
    assert fields["studytime"]["value_labels"]["1"] == "<2 hours"
    assert fields["G1"]["required"] is False and fields["school"]["required"] is True
    assert all({"name", "type", "allowed", "min", "max", "label", "help"} <= set(f) for f in fields.values())
    assert doc["setups"]["period1"][-1] == "G1" and doc["pass_mark"] == 10


def test_template_validates_and_names_every_input() -> None:
    text = template_csv()
    header = text.splitlines()[0].split(",")
    assert header == [ID_COLUMN, *ATTRIBUTES, *GRADES]
    result = validate_batch(text)
    assert result.problems == [] and len(result.accepted) == 1
    assert result.accepted.loc[2, ID_COLUMN] == "S001"
    assert validate_batch(template_csv(sep=";")).problems == []


def test_student_record_model_matches_the_schema() -> None:
    record = validate_record(example(student_id="a"))
    assert StudentRecord.model_validate(record).model_dump(exclude_none=True) == record
    props = StudentRecord.model_json_schema()["properties"]
    assert props["Mjob"]["enum"] == list(FIELDS["Mjob"].allowed)
    assert (props["age"]["minimum"], props["age"]["maximum"]) == (15, 22)


# ---------------------------------------------------------------- the real file


def test_real_file_validates(student_csv_path: Path, raw_df: pd.DataFrame) -> None:
    result = validate_batch(student_csv_path, require_target=True)
    assert isinstance(result, ValidationResult)
    assert result.problems == [] and result.extra_columns == []
    assert result.n_rows == 395 and len(result.accepted) == 395 and result.ok
    assert result.accepted.index.tolist() == list(range(2, 397))
    accepted = result.accepted
    assert list(accepted.columns) == list(FIELDS)
    assert all(pd.api.types.is_string_dtype(accepted[c]) for c in CATEGORICAL)
    assert all(accepted[c].dtype == "int64" for c in [*NUMERIC, TARGET])
    assert all(accepted[c].dtype == "Int64" for c in GRADES)
    pd.testing.assert_frame_equal(accepted.reset_index(drop=True), raw_df, check_dtype=False)


def test_typed_frame_validates(raw_df: pd.DataFrame) -> None:
    result = validate_frame(raw_df)
    assert result.problems == [] and len(result.accepted) == 395
    assert result.accepted.index[0] == 2  # numbered as if written out under a header line
    assert result.accepted["G3"].dtype == "Int64"


# ---------------------------------------------------------------- accepted variants


def test_semicolon_comma_quotes_and_bom() -> None:
    rows = [example(), example(age=17, Mjob="health")]
    for sep in (";", ","):
        for quoting in (csv.QUOTE_MINIMAL, csv.QUOTE_ALL, csv.QUOTE_NONNUMERIC):
            text = make_csv(rows, sep=sep, quoting=quoting)
            for data in (text, "\ufeff" + text, text.encode("utf-8-sig"), text.encode()):
                result = validate_batch(data)
                assert result.problems == [], (sep, quoting)
                assert result.accepted["age"].tolist() == [18, 17]
                assert result.accepted["Mjob"].tolist() == ["at_home", "health"]


def test_input_types(tmp_path: Path) -> None:
    text = make_csv([example()])
    path = tmp_path / "batch.csv"
    path.write_text(text)
    for data in (text, text.encode(), path, io.BytesIO(text.encode()), io.StringIO(text)):
        assert len(validate_batch(data).accepted) == 1


def test_category_case_and_space_variants() -> None:
    row = example(
        school=" gp ", sex="f", schoolsup="Yes", famsup="NO", Mjob="AT_HOME", Fjob=" Teacher", reason="Course"
    )
    row |= {"guardian": "MOTHER", "famsize": "gt3", "address": " u"}
    result = validate_batch(make_csv([row]))
    assert result.problems == []
    got = result.accepted.iloc[0]
    assert (got["school"], got["sex"], got["schoolsup"], got["famsup"]) == ("GP", "F", "yes", "no")
    assert (got["Mjob"], got["Fjob"], got["reason"], got["guardian"]) == (
        "at_home",
        "teacher",
        "course",
        "mother",
    )
    assert (got["famsize"], got["address"]) == ("GT3", "U")


def test_whole_numbers_with_zero_fraction_accepted_others_rejected() -> None:
    rows = [example(age="17.0", absences=" 4 ", G1="12.00"), example(age="17.5"), example(absences="abc")]
    result = validate_batch(make_csv(rows))
    assert result.accepted.index.tolist() == [2]
    assert result.accepted.loc[2, ["age", "absences", "G1"]].tolist() == [17, 4, 12]
    assert [p.message for p in result.problems] == [
        'row 3, column "age": "17.5" is not a whole number',
        'row 4, column "absences": "abc" is not a whole number',
    ]


def test_extra_columns_are_ignored_and_reported() -> None:
    rows = [example(notes="likes maths", Extra=1)]
    result = validate_batch(make_csv(rows))
    assert result.extra_columns == ["notes", "Extra"]
    assert len(result.accepted) == 1 and "notes" not in result.accepted
    assert len(result.problems) == 1
    problem = result.problems[0]
    assert problem.row is None and '"notes"' in problem.message and '"Extra"' in problem.message


def test_column_names_ignore_case_and_spaces() -> None:
    text = make_csv([example()])
    header, body = text.split("\n", 1)
    header = ",".join(f" {name.upper()} " for name in header.split(","))
    result = validate_batch(header + "\n" + body)
    assert result.problems == [] and list(result.accepted.columns) == [*ATTRIBUTES, *GRADES]


def test_student_id_passes_through() -> None:
    rows = [{ID_COLUMN: "007", **example()}, {ID_COLUMN: "", **example()}, {ID_COLUMN: "Ana B.", **example()}]
    result = validate_batch(make_csv(rows))
    assert result.problems == []
    assert result.accepted[ID_COLUMN].tolist() == ["007", None, "Ana B."]
    assert result.accepted.columns[0] == ID_COLUMN


def test_typed_and_blank_student_ids_are_taken_as_text_and_a_lone_surrogate_is_named() -> None:
    given = ["007", 7, 7.5, None, np.nan, pd.NA, "   ", "\u3000", "A\ud800", " \udfff ", True]
    frame = pd.DataFrame([example() for _ in given]).assign(**{ID_COLUMN: pd.Series(given, dtype=object)})
    result = validate_frame(frame[[ID_COLUMN, *ATTRIBUTES]])
    shown = [(10, ID_COLUMN, "A\\ud800"), (11, ID_COLUMN, " \\udfff ")]  # the values shown escaped
    assert [(p.row, p.column, p.value) for p in result.problems] == shown
    assert all(p.message.endswith("(a lone UTF-16 surrogate such as \\ud800)") for p in result.problems)
    assert result.accepted[ID_COLUMN].tolist() == ["007", "7", "7.5", None, None, None, None, None, "True"]


def test_grades_are_optional_and_blank_means_unknown() -> None:
    no_grades = {k: v for k, v in example().items() if k not in GRADES}
    result = validate_batch(make_csv([no_grades]))
    assert result.problems == [] and not set(GRADES) & set(result.accepted.columns)
    assert row_setups(result.accepted).tolist() == ["early"]

    rows = [example(), example(G2=""), example(G1="", G2="")]
    result = validate_batch(make_csv(rows))
    assert result.problems == []
    assert result.accepted["G1"].dtype == "Int64" and result.accepted["G2"].dtype == "Int64"
    assert result.accepted["G1"].isna().tolist() == [False, False, True]
    assert row_setups(result.accepted).tolist() == ["period2", "period1", "early"]


def test_g2_without_g1_rejects_its_row_naming_g1() -> None:
    rows = [example(), example(G1="", G2=3), example(G1="", G2=""), example(G1="x", G2=3)]
    result = validate_batch(make_csv(rows))
    assert result.accepted.index.tolist() == [2, 4]
    assert [(p.row, p.column, p.value) for p in result.problems] == [(3, "G1", None), (5, "G1", "x")]
    assert result.problems[0].message == f'row 3, column "G1": {G2_WITHOUT_G1}'
    assert "give G1 too" in G2_WITHOUT_G1 and result.problems[0].allowed == "0-20"
    no_g1_column = [{k: v for k, v in example(G2=v).items() if k != "G1"} for v in (3, "")]
    result = validate_batch(make_csv(no_g1_column))
    assert result.rejected_rows == [2] and result.accepted.index.tolist() == [3]
    with pytest.raises(InvalidInput) as info:
        validate_record(example(G1="", G2=3))
    assert [(p.column, p.message) for p in info.value.problems] == [("G1", f'field "G1": {G2_WITHOUT_G1}')]
    with pytest.raises(InvalidInput) as info:
        validate_record(example(G1=" ", G2=3, age=30))
    assert [p.column for p in info.value.problems] == ["age", "G1"]


def test_target_optional_unless_required() -> None:
    rows = [example(G3=12), example(G3="")]
    result = validate_batch(make_csv(rows))
    assert result.problems == [] and result.accepted["G3"].isna().tolist() == [False, True]
    result = validate_batch(make_csv(rows), require_target=True)
    assert result.accepted.index.tolist() == [2]
    assert result.accepted["G3"].dtype == "int64"
    assert [p.message for p in result.problems] == ['row 3, column "G3": missing value; allowed: 0-20']
    with pytest.raises(BatchRejected, match="missing required columns: G3"):
        validate_batch(make_csv([example()]), require_target=True)


def test_blank_lines_count_as_rows_but_are_skipped() -> None:
    text = make_csv([example(), example(age=30)])
    header, first, second = text.strip().split("\n")
    blank_like = "," * (len(header.split(",")) - 1)
    result = validate_batch("\n".join([header, first, "", blank_like, "  ", second]) + "\n\n")
    assert result.n_rows == 2
    assert result.accepted.index.tolist() == [2]
    assert [(p.row, p.column) for p in result.problems] == [(6, "age")]


def test_multi_line_quoted_cell_is_one_spreadsheet_row() -> None:
    rows = [{ID_COLUMN: "line one\nline two", **example()}, {ID_COLUMN: "b", **example(sex="X")}]
    result = validate_batch(make_csv(rows))
    assert result.accepted[ID_COLUMN].tolist() == ["line one\nline two"]
    assert result.problems[0].row == 3


def test_trailing_separators_tolerated_but_extra_values_rejected() -> None:
    text = make_csv([example(), example(), example()])
    header, a, b, c = text.strip().split("\n")
    result = validate_batch("\n".join([header, a + ",,", b + "," * 8 + "surplus,", c]))
    assert result.accepted.index.tolist() == [2, 4]
    assert [(p.row, p.column) for p in result.problems] == [(3, None)]
    assert result.problems[0].message == f"row 3: {len(header.split(',')) + 8} values but the header has 32 columns"


def test_cp1252_latin1_and_utf16() -> None:
    text = make_csv([{ID_COLUMN: "José Müller", **example()}])
    for data in (text.encode("cp1252"), text.encode("latin-1"), text.encode("utf-16")):
        result = validate_batch(data)
        assert result.accepted[ID_COLUMN].tolist() == ["José Müller"]
    undefined_in_cp1252 = make_csv([{ID_COLUMN: "x", **example()}]).encode().replace(b"\nx,", b"\n\x81,")
    assert validate_batch(undefined_in_cp1252).accepted[ID_COLUMN].tolist() == ["\x81"]


def test_read_batch_gives_raw_strings_indexed_by_row() -> None:
    frame = read_batch(make_csv([example(age=" 17 ")], sep=";"))
    assert frame.index.name == "row" and frame.index.tolist() == [2]
    assert frame.loc[2, "age"] == " 17 " and frame.loc[2, "school"] == "GP"


def _district(rows: int) -> str:
    """A class file with blank lines, a bad cell every 7 rows, an overlong row and a quoted line break."""
    students = [example(student_id=f"S{i}", age=99 if i % 7 == 3 else 16) for i in range(rows)]
    students[10]["Mjob"] = "at\nhome"  # a record over two lines (rejected: not an allowed value)
    text = make_csv(students, sep=";", columns=[ID_COLUMN, *EXAMPLE_RECORD])
    lines = text.split("\n")
    lines[20] += ";extra;values;beyond;the;spare;columns"  # too long for pandas' C reader
    return "\n\n".join(lines[:5]) + "\n" + "\n".join(lines[5:40]) + "\n\n\n" + "\n".join(lines[40:])


@pytest.mark.parametrize("encoding", ["utf-8", "cp1252", "utf-16"])
@pytest.mark.parametrize("chunk_rows", [1, 7, 25, 1000])
def test_read_chunks_gives_the_frames_of_read_batch(tmp_path: Path, encoding: str, chunk_rows: int) -> None:
    text = _district(60).replace("S1;", "Sé;")
    path = tmp_path / "class.csv"
    path.write_bytes(text.encode(encoding))
    whole = read_batch(path)
    chunks = list(read_chunks(path, chunk_rows))
    assert max(len(c) for c in chunks) <= chunk_rows
    joined = pd.concat(chunks)
    pd.testing.assert_frame_equal(joined, whole)
    overlong = {row: n for chunk in chunks for row, n in chunk.attrs["overlong_rows"].items()}
    assert overlong == whole.attrs["overlong_rows"] != {}


def test_validate_chunks_numbers_rows_of_the_whole_file_and_has_no_row_limit(tmp_path: Path) -> None:
    path = tmp_path / "class.csv"
    path.write_text(_district(60) + "\n", encoding="utf-8")
    with pytest.raises(BatchRejected, match="at most 50"):
        validate_batch(path, max_rows=50)
    whole = validate_batch(path)
    chunks = list(validate_chunks(path, chunk_rows=9))
    assert len(chunks) > 6
    assert sum(c.n_rows for c in chunks) == whole.n_rows == 60
    assert [p for c in chunks for p in c.problems] == whole.problems
    assert [r for c in chunks for r in c.rejected_rows] == whole.rejected_rows
    pd.testing.assert_frame_equal(pd.concat([c.accepted for c in chunks]), whole.accepted)


def test_validate_chunks_refuses_what_validate_batch_refuses(tmp_path: Path) -> None:
    path = tmp_path / "class.csv"
    for content in (b"", b"  \n\n", b"PK\x03\x04zip", b"a;b\x00;c\n", make_csv([example()]).split("\n")[0].encode()):
        path.write_bytes(content)
        with pytest.raises(BatchRejected) as whole:
            validate_batch(path)
        with pytest.raises(BatchRejected) as streamed:
            list(validate_chunks(path, chunk_rows=3))
        assert str(streamed.value) == str(whole.value)


def test_typed_frame_values() -> None:
    frame = pd.DataFrame([example(), example()])
    frame["age"] = [17.0, 17.5]
    frame["schoolsup"] = [True, "yes"]
    result = validate_frame(frame)
    assert result.accepted.index.tolist() == [2]
    assert [p.message for p in result.problems] == [
        'row 3, column "age": 17.5 is not a whole number',
    ]


# ---------------------------------------------------------------- mixed batches and messages


def test_mixed_batch_keeps_good_rows_with_their_numbers() -> None:
    rows = [
        example(),
        example(),
        example(age=25),
        example(),
        example(),
        example(Mjob="doctor", studytime=0),
        example(sex=""),
        example(),
    ]
    result = validate_batch(make_csv(rows, sep=";"))
    assert result.n_rows == 8
    assert result.accepted.index.tolist() == [2, 3, 5, 6, 9]
    assert result.rejected_rows == [4, 7, 8]
    assert not result.ok
    assert [p.message for p in result.problems] == [
        'row 4, column "age": 25 is out of range 15-22',
        'row 7, column "Mjob": "doctor" is not allowed; allowed: teacher, health, services, at_home, other',
        'row 7, column "studytime": 0 is out of range 1-4',
        'row 8, column "sex": missing value; allowed: F, M',
    ]
    mjob = result.problems[1]
    assert (mjob.row, mjob.column, mjob.value, mjob.allowed) == (
        7,
        "Mjob",
        "doctor",
        "teacher, health, services, at_home, other",
    )
    assert result.problems[3].value == ""
    assert mjob.to_dict()["column"] == "Mjob"


def test_absurd_numbers_are_out_of_range() -> None:
    result = validate_batch(make_csv([example(absences="9" * 5000)]))
    assert result.problems[0].message.endswith("is out of range 0-93")


# ---------------------------------------------------------------- whole-file rejections


def reject(data: Any, **kw: Any) -> str:
    with pytest.raises(BatchRejected) as info:
        validate_batch(data, **kw)
    assert isinstance(info.value.problem, Problem) and info.value.problem.row is None
    return str(info.value)


def test_missing_required_columns_are_named() -> None:
    rows = [{k: v for k, v in example().items() if k not in ("Mjob", "absences")}]
    message = reject(make_csv(rows))
    assert message == "missing required columns: Mjob, absences"


def test_wrong_separator_is_explained() -> None:
    message = reject(make_csv([example()], sep="\t"))
    assert "no expected column was found" in message and "school" in message


@pytest.mark.parametrize(
    ("data", "fragment"),
    [
        (b"", "empty"),
        (b"\n \n\r\n", "empty"),
        ("\ufeff", "empty"),
        (b"school,sex\x00\x01\x02", "not a text file"),
        (b"PK\x03\x04\x14\x00\x06\x00", "Excel"),
        (",".join(ATTRIBUTES) + "\n", "no data rows"),
        (",".join(ATTRIBUTES) + "\n\n,,,\n", "no data rows"),
    ],
)
def test_unusable_files_are_rejected(data: Any, fragment: str) -> None:
    assert fragment in reject(data)


def test_duplicate_columns_are_rejected() -> None:
    text = make_csv([example()])
    header, body = text.split("\n", 1)
    assert "age" in reject(header + ",Age\n" + body.replace("\n", ",17\n", 1))
    assert "age" in reject(header + ",age\n" + body.replace("\n", ",17\n", 1))


def test_too_many_rows_are_rejected() -> None:
    assert reject(make_csv([example()] * 11), max_rows=10) == "the file has 11 data rows; at most 10 are allowed"
    assert reject(make_csv([example()] * 25), max_rows=10).startswith("the file has more than 10 data rows")
    assert len(validate_batch(make_csv([example()] * 11), max_rows=11).accepted) == 11
    with pytest.raises(BatchRejected, match="at most 10"):
        validate_frame(pd.DataFrame([example()] * 11), max_rows=10)


def test_all_rows_bad_gives_an_empty_accepted_frame() -> None:
    rows = [{ID_COLUMN: "a", **example(age=99)}, {ID_COLUMN: "b", **example(sex="?")}]
    result = validate_batch(make_csv(rows))
    assert result.accepted.empty and list(result.accepted.columns) == [ID_COLUMN, *ATTRIBUTES, *GRADES]
    assert result.rejected_rows == [2, 3] and result.n_rows == 2


def test_default_row_limit() -> None:
    assert MAX_ROWS == 100_000


# ---------------------------------------------------------------- single records


def test_validate_record_canonicalises() -> None:
    record = example(school=" gp ", age="17.0", schoolsup=True, internet=False, G2="", junk="x", student_id=" 9 ")
    got = validate_record(record)
    assert got["school"] == "GP" and got["age"] == 17
    assert got["schoolsup"] == "yes" and got["internet"] == "no"
    assert "G2" not in got and got["G1"] == 5 and "junk" not in got
    assert got[ID_COLUMN] == " 9 "
    assert list(got) == [ID_COLUMN, *ATTRIBUTES, "G1"]


def test_validate_record_reports_every_problem() -> None:
    record = example(age=25, Mjob="doctor", G1="abc")
    del record["sex"]
    with pytest.raises(InvalidInput) as info:
        validate_record(record)
    problems = info.value.problems
    assert all(p.row is None for p in problems)
    assert [(p.column, p.message) for p in problems] == [
        ("sex", 'field "sex": missing value; allowed: F, M'),
        ("age", 'field "age": 25 is out of range 15-22'),
        ("Mjob", 'field "Mjob": "doctor" is not allowed; allowed: teacher, health, services, at_home, other'),
        ("G1", 'field "G1": "abc" is not a whole number'),
    ]


def test_validate_record_target_and_type() -> None:
    with pytest.raises(InvalidInput, match='"G3": missing value'):
        validate_record(example(), require_target=True)
    assert validate_record(example(G3="11"), require_target=True)["G3"] == 11
    with pytest.raises(InvalidInput):
        validate_record(["not", "a", "mapping"])  # type: ignore[arg-type]
    with pytest.raises(InvalidInput, match="more than once"):
        validate_record({**example(), "AGE": 17})


# ---------------------------------------------------------------- properties


def _spelling(spec_name: str, value: Any, draw: st.DrawFn) -> str:
    spec = FIELDS[spec_name]
    pad = draw(st.sampled_from(["", " ", "  "]))
    if spec.is_numeric:
        text = draw(st.sampled_from([str(value), f"{value}.0", f"+{value}", f"{value}.00"]))
    else:
        text = draw(st.sampled_from([str.lower, str.upper, str.title, str]))(value)
    return f"{pad}{text}{draw(st.sampled_from(['', ' ']))}"


@st.composite
def canonical_rows(draw: st.DrawFn, grades: tuple[str, ...] = GRADES) -> dict[str, Any]:
    row: dict[str, Any] = {}
    for name in (*ATTRIBUTES, *grades):
        spec = FIELDS[name]
        row[name] = draw(
            st.sampled_from(spec.allowed) if spec.allowed else st.integers(spec.min, spec.max)  # type: ignore[arg-type]
        )
    return row


@PROPERTY
@given(data=st.data(), sep=st.sampled_from([";", ","]), bom=st.booleans(), n=st.integers(1, 4))
def test_allowed_values_round_trip(data: st.DataObject, sep: str, bom: bool, n: int) -> None:
    rows = [data.draw(canonical_rows()) for _ in range(n)]
    spelled = [{k: _spelling(k, v, data.draw) for k, v in row.items()} for row in rows]
    quoting = data.draw(st.sampled_from([csv.QUOTE_MINIMAL, csv.QUOTE_ALL]))
    text = ("\ufeff" if bom else "") + make_csv(spelled, sep=sep, quoting=quoting)
    result = validate_batch(text.encode())
    assert result.problems == []
    assert result.accepted.index.tolist() == list(range(2, n + 2))
    assert [{k: _plain(v) for k, v in r.items()} for r in result.accepted.to_dict("records")] == rows
    for row, original in zip(spelled, rows, strict=True):
        assert validate_record(row) == original


def _plain(value: Any) -> Any:
    return int(value) if isinstance(value, np.integer) else value


def _category_key(text: str) -> str:
    return text.strip().casefold().replace(" ", "_").replace("-", "_")


def corruptions(name: str) -> st.SearchStrategy[str]:
    spec = FIELDS[name]
    blank = [st.just("")] if spec.required else []
    if spec.allowed:
        keys = {_category_key(v) for v in spec.allowed}
        text = st.text(string.ascii_letters + string.digits + " _-.", min_size=1, max_size=8)
        return st.one_of(*blank, text.filter(lambda t: t.strip() and _category_key(t) not in keys))
    below = st.integers(spec.min - 10_000, spec.min - 1)  # type: ignore[operator]
    above = st.integers(spec.max + 1, spec.max + 10_000)  # type: ignore[operator]
    return st.one_of(
        *blank,
        below.map(str),
        above.map(str),
        st.integers(spec.min, spec.max).map(lambda v: f"{v}.5"),
        st.text(string.ascii_letters + "?!/ ", min_size=1, max_size=6).filter(str.strip),
    )


@PROPERTY
@given(data=st.data(), n=st.integers(1, 6), sep=st.sampled_from([";", ","]))
def test_one_corrupted_cell_gives_one_problem(data: st.DataObject, n: int, sep: str) -> None:
    rows = [data.draw(canonical_rows()) for _ in range(n)]
    bad_pos = data.draw(st.integers(0, n - 1))
    column = data.draw(st.sampled_from([*ATTRIBUTES, *GRADES]))
    bad_value = data.draw(corruptions(column))
    rows[bad_pos][column] = bad_value
    result = validate_batch(make_csv(rows, sep=sep))
    assert len(result.problems) == 1
    problem = result.problems[0]
    assert (problem.row, problem.column) == (bad_pos + 2, column)
    assert problem.message.startswith(f'row {bad_pos + 2}, column "{column}": ')
    assert result.accepted.index.tolist() == [i + 2 for i in range(n) if i != bad_pos]
    with pytest.raises(InvalidInput) as info:
        validate_record(rows[bad_pos])
    assert [p.column for p in info.value.problems] == [column]


@PROPERTY
@given(st.binary(max_size=3000))
def test_arbitrary_bytes_never_crash(data: bytes) -> None:
    try:
        result = validate_batch(data)
    except BatchRejected as exc:
        assert exc.problem.message
    else:
        assert isinstance(result, ValidationResult)


@PROPERTY
@given(st.binary(max_size=2000), st.sampled_from([";", ","]))
def test_arbitrary_bytes_after_a_good_header_never_crash(body: bytes, sep: str) -> None:
    header = sep.join([ID_COLUMN, *ATTRIBUTES, *GRADES]).encode()
    try:
        result = validate_batch(header + b"\n" + body)
    except BatchRejected as exc:
        assert exc.problem.message
    else:
        assert len(result.accepted) + len(result.rejected_rows) == result.n_rows


@PROPERTY
@given(st.text(alphabet=st.characters(codec="utf-8"), max_size=1000))
def test_arbitrary_text_never_crashes(text: str) -> None:
    header = ",".join(ATTRIBUTES)
    try:
        validate_batch(header + "\n" + text)
    except BatchRejected as exc:
        assert exc.problem.message


# ---------------------------------------------------------------- size


def test_hundred_thousand_rows_in_one_call(student_csv_path: Path) -> None:
    """Shape and speed smoke test: the real rows repeated (not a quality test; no time asserted)."""
    header, *body = student_csv_path.read_text().splitlines()
    lines = [header] + [body[i % len(body)] for i in range(MAX_ROWS)]
    result = validate_batch("\n".join(lines).encode(), require_target=True)
    assert result.n_rows == MAX_ROWS and len(result.accepted) == MAX_ROWS
    assert result.problems == []
    assert result.accepted.index[-1] == MAX_ROWS + 1
