"""Outcomes (real final grades) and "not useful" feedback, on SQLite and PostgreSQL."""

from __future__ import annotations

import pandas as pd
import pytest
import sqlalchemy as sa

from model.errors import BatchRejected, InvalidInput
from model.serving.outcomes import (
    MAX_REASON,
    PredictionNotFound,
    record_feedback,
    record_outcome,
    record_outcomes_csv,
    template_csv,
)
from model.serving.predlog.writer import student_key
from model.serving.service import ModelStore, predict_batch, predict_one
from model.settings import get_settings
from model.store.db import get_engine, session_scope
from model.store.tables import FEEDBACK_CATEGORIES, Feedback, Outcome, PredictionLog, User


def add_user(engine, username: str, role: str = "teacher") -> int:
    with session_scope(engine) as session:
        user = User(username=username, name=username.title(), password_hash="unused-in-this-test", role=role)
        session.add(user)
        session.flush()
        return user.id


def _outcomes(engine) -> pd.DataFrame:
    with engine.connect() as connection:
        return pd.DataFrame(connection.execute(sa.select(Outcome).order_by(Outcome.id)).mappings().all())


def _predict(engine, raw_df: pd.DataFrame, user_id: int, student_id: str) -> int:
    record = raw_df.drop(columns=["G3"]).iloc[0].to_dict() | {"student_id": student_id}
    predict_one(ModelStore(engine, settings=get_settings()), engine, record, channel="ui", user_id=user_id)
    with engine.connect() as connection:
        return connection.execute(sa.select(sa.func.max(PredictionLog.id))).scalar_one()


def _predict_class(engine, raw_df: pd.DataFrame, user_id: int, ids: list[str]) -> None:
    frame = raw_df.drop(columns=["G3"]).head(len(ids)).copy()
    frame.insert(0, "student_id", ids)
    predict_batch(ModelStore(engine, settings=get_settings()), engine, frame.to_csv(sep=";", index=False),
                  channel="ui", user_id=user_id)  # fmt: skip


def test_one_outcome_is_stored_under_the_student_key(models_db_url: str, raw_df: pd.DataFrame) -> None:
    engine = get_engine(models_db_url)
    teacher = add_user(engine, "ana")
    _predict_class(engine, raw_df, teacher, ["S042"])
    with session_scope(engine) as session:
        record_outcome(session, get_settings(), " S042 ", "14", teacher)
    stored = _outcomes(engine)
    assert stored[["student_key", "g3", "recorded_by"]].to_dict("records") == [
        {"student_key": student_key("S042", get_settings()), "g3": 14, "recorded_by": teacher}
    ]
    assert "S042" not in stored.to_string()


@pytest.mark.parametrize(
    ("student_id", "g3", "field", "words"),
    [
        ("S1", 21, "G3", 'field "G3": 21 is out of range 0-20'),
        ("S1", "abc", "G3", 'field "G3": "abc" is not a whole number'),
        ("S1", "12.5", "G3", 'field "G3": "12.5" is not a whole number'),
        ("S1", None, "G3", 'field "G3": missing value; allowed: 0-20'),
        ("  ", 12, "student_id", 'field "student_id": missing value'),
    ],
)
def test_bad_outcome_names_the_field_and_what_is_allowed(
    models_db_url: str, raw_df: pd.DataFrame, student_id: str, g3: object, field: str, words: str
) -> None:
    engine = get_engine(models_db_url)
    teacher = add_user(engine, "ana")
    _predict_class(engine, raw_df, teacher, ["S1"])
    with pytest.raises(InvalidInput) as caught, session_scope(engine) as session:
        record_outcome(session, get_settings(), student_id, g3, teacher)
    (problem,) = caught.value.problems
    assert (problem.column, problem.message) == (field, words)
    assert _outcomes(engine).empty


def test_outcomes_csv_stores_good_rows_in_one_insert_and_reports_bad_ones(models_db_url: str, raw_df) -> None:
    engine = get_engine(models_db_url)
    teacher = add_user(engine, "ana")
    _predict_class(engine, raw_df, teacher, ["S1", "S2", "S4", "S6", "S7"])
    data = 'student_id;G3\nS1;12\nS2;25\n;9\nS4;"7"\n\nS6;x\nS7;0\n'
    statements: list[str] = []
    sa.event.listen(engine, "before_cursor_execute", lambda *args: statements.append(args[2]))
    with session_scope(engine) as session:
        result = record_outcomes_csv(session, get_settings(), data.encode(), teacher)
    inserts = [s for s in statements if s.lstrip().upper().startswith("INSERT INTO OUTCOME")]
    assert (result.stored, result.n_rows, result.rejected_rows) == (3, 6, [3, 4, 7])
    assert [(p.row, p.column, p.value, p.allowed) for p in result.problems] == [
        (3, "G3", "25", "0-20"),
        (4, "student_id", "", "the id of a student you predicted"),
        (7, "G3", "x", "0-20"),
    ]
    assert result.problems[0].message == 'row 3, column "G3": 25 is out of range 0-20'
    assert len(inserts) == 1
    stored = _outcomes(engine)
    assert stored["g3"].tolist() == [12, 7, 0]
    assert stored["student_key"].tolist() == [student_key(s, get_settings()) for s in ("S1", "S4", "S7")]


def test_outcomes_csv_template_round_trips_and_comma_works(models_db_url: str, raw_df: pd.DataFrame) -> None:
    engine = get_engine(models_db_url)
    teacher = add_user(engine, "ana")
    _predict_class(engine, raw_df, teacher, ["S001", "A"])
    with session_scope(engine) as session:
        assert record_outcomes_csv(session, get_settings(), template_csv(), teacher).stored == 1
        assert record_outcomes_csv(session, get_settings(), "Student_ID,g3\nA,10\n", teacher).stored == 1


@pytest.mark.parametrize(
    ("data", "words"),
    [
        (b"\x00\x01binary\x00", "not a text file"),
        (b"student_id;grade\nS1;12\n", "missing required columns: G3"),
        (b"student_id,G3\n", "no data rows"),
    ],
)
def test_unusable_outcomes_file_is_rejected_whole(models_db_url: str, data: bytes, words: str) -> None:
    engine = get_engine(models_db_url)
    with pytest.raises(BatchRejected, match=words), session_scope(engine) as session:
        record_outcomes_csv(session, get_settings(), data, add_user(engine, "ana"))
    assert _outcomes(engine).empty


def test_feedback_only_on_own_prediction(models_db_url: str, raw_df: pd.DataFrame) -> None:
    engine = get_engine(models_db_url)
    ana, ben = add_user(engine, "ana"), add_user(engine, "ben")
    anas = _predict(engine, raw_df, ana, "S1")
    with session_scope(engine) as session:
        with pytest.raises(PredictionNotFound, match=f"prediction {anas} is not one of your predictions"):
            record_feedback(session, anas, ben, "wrongly_flagged", "looks wrong")
        with pytest.raises(PredictionNotFound):
            record_feedback(session, 10**9, ana, "not_useful", "no such prediction")
        feedback_id = record_feedback(session, anas, ana, "already_handled", "  She has a tutor since May.  ")
    with engine.connect() as connection:
        rows = connection.execute(sa.select(Feedback)).mappings().all()
    assert [(r["id"], r["prediction_id"], r["user_id"], r["category"], r["reason"]) for r in rows] == [
        (feedback_id, anas, ana, "already_handled", "She has a tutor since May.")
    ]
    with pytest.raises(InvalidInput, match="already has your feedback: already handled"), session_scope(engine) as s:
        record_feedback(s, anas, ana, "useful")


@pytest.mark.parametrize("category", FEEDBACK_CATEGORIES)
def test_every_category_is_stored_and_the_reason_is_optional(
    models_db_url: str, raw_df: pd.DataFrame, category: str
) -> None:
    engine = get_engine(models_db_url)
    ana = add_user(engine, "ana")
    prediction_id = _predict(engine, raw_df, ana, "S1")
    with session_scope(engine) as session:
        record_feedback(session, prediction_id, ana, category, "   ")
    with engine.connect() as connection:
        assert connection.execute(sa.select(Feedback.category, Feedback.reason)).one() == (category, None)


def test_an_unknown_category_names_the_allowed_ones(models_db_url: str, raw_df: pd.DataFrame) -> None:
    engine = get_engine(models_db_url)
    ana = add_user(engine, "ana")
    prediction_id = _predict(engine, raw_df, ana, "S1")
    with pytest.raises(InvalidInput) as caught, session_scope(engine) as session:
        record_feedback(session, prediction_id, ana, "meh")
    (problem,) = caught.value.problems
    assert problem.column == "category" and problem.value == "meh"
    assert problem.message == (
        'field "category": "meh" is not a feedback category; allowed: '
        "useful, not_useful, wrongly_flagged, already_handled, not_applicable"
    )
    with engine.connect() as connection:
        assert connection.scalar(sa.select(sa.func.count()).select_from(Feedback)) == 0


def test_feedback_reason_has_a_length_limit(models_db_url: str, raw_df: pd.DataFrame) -> None:
    engine = get_engine(models_db_url)
    ana = add_user(engine, "ana")
    prediction_id = _predict(engine, raw_df, ana, "S1")
    with pytest.raises(InvalidInput, match="at most 500") as caught, session_scope(engine) as session:
        record_feedback(session, prediction_id, ana, "not_useful", "x" * (MAX_REASON + 1))
    assert caught.value.problems[0].column == "reason"


def test_outcomes_only_for_students_the_recorder_predicted(models_db_url: str, raw_df: pd.DataFrame) -> None:
    engine = get_engine(models_db_url)
    ana, ben, head = add_user(engine, "ana"), add_user(engine, "ben"), add_user(engine, "head", role="admin")
    _predict_class(engine, raw_df, ana, ["S1", "S2"])
    _predict_class(engine, raw_df, ben, ["B1"])
    for intruder in (ben, head):
        with pytest.raises(InvalidInput) as caught, session_scope(engine) as session:
            record_outcome(session, get_settings(), "S1", 20, intruder)
        (problem,) = caught.value.problems
        assert (problem.column, problem.value) == ("student_id", "S1")
        assert problem.message.startswith('field "student_id": no prediction of yours for student id "S1"')
    with pytest.raises(InvalidInput, match='no prediction of yours for student id "S9"'), session_scope(engine) as s:
        record_outcome(s, get_settings(), "S9", 20, ana)  # nobody predicted S9
    assert _outcomes(engine).empty
    with session_scope(engine) as session:
        result = record_outcomes_csv(session, get_settings(), "student_id;G3\nS1;20\nB1;9\nS2;x\n", ben)
    assert (result.stored, result.rejected_rows) == (1, [2, 4])
    assert [(p.row, p.column, p.value) for p in result.problems] == [(2, "student_id", "S1"), (4, "student_id", "S2"),
                                                                     (4, "G3", "x")]  # fmt: skip
    assert result.problems[0].message.startswith('row 2, column "student_id": no prediction of yours for student id')
    with session_scope(engine) as session:
        record_outcome(session, get_settings(), " S1 ", 12, ana)
    stored = _outcomes(engine)
    assert stored[["student_key", "g3", "recorded_by"]].values.tolist() == [
        [student_key("B1", get_settings()), 9, ben], [student_key("S1", get_settings()), 12, ana]]  # fmt: skip


def test_a_rejected_prediction_does_not_make_the_student_yours(models_db_url: str, raw_df: pd.DataFrame) -> None:
    engine = get_engine(models_db_url)
    ana = add_user(engine, "ana")
    frame = raw_df.drop(columns=["G3"]).head(1).astype(object)
    frame.insert(0, "student_id", ["S1"])
    frame.loc[0, "age"] = 99
    predict_batch(ModelStore(engine, settings=get_settings()), engine, frame.to_csv(sep=";", index=False),
                  channel="ui", user_id=ana)  # fmt: skip
    with pytest.raises(InvalidInput, match="no prediction of yours"), session_scope(engine) as session:
        record_outcome(session, get_settings(), "S1", 10, ana)
