"""The "Record outcomes" page: one grade, a CSV of grades, and "not useful" on one's own predictions."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import sqlalchemy as sa
from streamlit.testing.v1 import AppTest

from dashboard.context import CurrentUser
from dashboard.text import md
from model.serving.predlog.writer import student_key
from model.serving.service import ModelStore, predict_batch, predict_one
from model.settings import get_settings
from model.store.db import get_engine
from model.store.tables import Feedback, Outcome
from tests.dashboard.conftest import download_labels, signed_in

ONLY_YOURS = "only students you predicted can be named here"
PAGE = str(Path(__file__).resolve().parents[2] / "pages" / "outcomes.py")


def open_page(user: CurrentUser | None) -> AppTest:
    at = AppTest.from_file(PAGE, default_timeout=30)
    if user is not None:
        signed_in(at, user)
    return at.run()


def outcomes(url: str) -> list[tuple[str, int, int | None]]:
    with get_engine(url).connect() as connection:
        query = sa.select(Outcome.student_key, Outcome.g3, Outcome.recorded_by).order_by(Outcome.id)
        return [tuple(row) for row in connection.execute(query)]


def predict(url: str, raw_df: pd.DataFrame, user: CurrentUser, student_id: str) -> None:
    engine = get_engine(url)
    record = raw_df.drop(columns=["G3"]).iloc[3].to_dict() | {"student_id": student_id}
    predict_one(ModelStore(engine, settings=get_settings()), engine, record, channel="ui", user_id=user.id)


def predict_class(url: str, raw_df: pd.DataFrame, user: CurrentUser, ids: list[str]) -> None:
    engine = get_engine(url)
    frame = raw_df.drop(columns=["G3"]).head(len(ids)).copy()
    frame.insert(0, "student_id", ids)
    predict_batch(ModelStore(engine, settings=get_settings()), engine, frame.to_csv(sep=";", index=False),
                  channel="ui", user_id=user.id)  # fmt: skip


def test_one_outcome_is_recorded_and_a_blank_id_is_refused(
    app_db_url: str, teacher_account, raw_df: pd.DataFrame
) -> None:
    teacher = teacher_account.user
    predict(app_db_url, raw_df, teacher, "S042")
    at = open_page(teacher)
    assert not at.exception
    at.text_input(key="outcome_student").input("S042")
    at.number_input(key="outcome_g3").set_value(14)
    at.button[0].click().run()
    assert [s.value for s in at.success] == ["Recorded final grade 14 for student S042."]
    assert outcomes(app_db_url) == [(student_key("S042", get_settings()), 14, teacher.id)]

    at.text_input(key="outcome_student").input("   ")
    at.button[0].click().run()
    assert [e.value for e in at.error] == [md('field "student_id": missing value')]  # shown as literal text
    assert len(outcomes(app_db_url)) == 1


def test_outcomes_csv_stores_good_rows_and_lists_the_bad_one(
    app_db_url: str, teacher_account, raw_df: pd.DataFrame
) -> None:
    predict_class(app_db_url, raw_df, teacher_account.user, ["S1", "S2", "S3"])
    at = open_page(teacher_account.user)
    assert "Download the outcomes template" in download_labels(at)
    at.file_uploader(key="outcomes_file").upload("grades.csv", b"student_id;G3\nS1;12\nS2;21\nS3;9\n", "text/csv")
    at.run()
    assert not at.exception
    assert "stored 2 of 3 grades" in at.success[0].value
    report = at.dataframe[0].value
    assert report[["row", "column", "value", "allowed"]].values.tolist() == [[3, "G3", "21", "0-20"]]
    at.run()
    assert [g3 for _, g3, _ in outcomes(app_db_url)] == [12, 9]


def test_binary_outcomes_file_is_refused(app_db_url: str, teacher_account) -> None:
    at = open_page(teacher_account.user)
    at.file_uploader(key="outcomes_file").upload("grades.csv", b"\x00\xff\x00binary", "text/csv")
    at.run()
    assert len(at.error) == 1 and "not a text file" in at.error[0].value
    assert outcomes(app_db_url) == []


def test_feedback_lists_only_own_predictions_and_stores_the_category(
    app_db_url: str, teacher_account, admin_account, raw_df: pd.DataFrame
) -> None:
    teacher, admin = teacher_account.user, admin_account.user
    predict(app_db_url, raw_df, admin, "A1")
    predict(app_db_url, raw_df, teacher, "T1")
    at = open_page(teacher)
    table = at.dataframe[0].value
    assert len(table) == 1 and table["student_key"].item() == student_key("T1", get_settings())[:10]
    own = int(table["prediction_id"].item())
    (option,) = at.selectbox(key="feedback_id").options
    assert option.startswith(f"#{own} · ") and "T1" not in option
    assert at.radio(key="feedback_category").options == [
        "Useful", "Not useful", "Wrongly flagged", "Already handled", "Not applicable"
    ]  # fmt: skip
    at.selectbox(key="feedback_id").set_value(own)
    at.button[1].click().run()
    assert at.error[-1].value == "Choose the prediction and what it was first."

    at.selectbox(key="feedback_id").set_value(own)
    at.radio(key="feedback_category").set_value("wrongly_flagged")
    at.text_area(key="feedback_reason").input("The student changed class.")
    at.button[1].click().run()
    assert not at.exception
    assert at.success[-1].value.startswith(f"Prediction #{own} marked wrongly flagged")
    with get_engine(app_db_url).connect() as connection:
        rows = connection.execute(
            sa.select(Feedback.prediction_id, Feedback.user_id, Feedback.category, Feedback.reason)
        ).all()
    assert [tuple(r) for r in rows] == [(own, teacher.id, "wrongly_flagged", "The student changed class.")]
    assert at.dataframe[0].value["feedback"].tolist() == ["Wrongly flagged"]

    at.selectbox(key="feedback_id").set_value(own)
    at.radio(key="feedback_category").set_value("useful")
    at.button[1].click().run()
    assert at.error[-1].value == f"prediction {own} already has your feedback: wrongly flagged"


def test_anonymous_is_refused_and_admin_allowed(app_db_url: str, admin_account) -> None:
    assert [e.value for e in open_page(None).error] == ["Please log in to see this page."]
    admin = open_page(admin_account.user)
    assert not admin.exception and not admin.error
    assert admin.info[-1].value == "You have no predictions yet."


def test_grades_of_students_someone_else_predicted_are_refused_by_id(
    app_db_url: str, teacher_account, admin_account, raw_df: pd.DataFrame
) -> None:
    teacher, admin = teacher_account.user, admin_account.user
    predict_class(app_db_url, raw_df, admin, ["A1", "A2"])
    predict_class(app_db_url, raw_df, teacher, ["T1"])
    at = open_page(teacher)
    at.text_input(key="outcome_student").input("A1")
    at.number_input(key="outcome_g3").set_value(20)
    at.button[0].click().run()
    assert not at.exception and not at.success
    (error,) = at.error
    assert error.value == md(f'field "student_id": no prediction of yours for student id "A1"; {ONLY_YOURS}')
    at.file_uploader(key="outcomes_file").upload("grades.csv", b"student_id;G3\nA2;20\nT1;11\n", "text/csv")
    at.run()
    assert "stored 1 of 2 grades" in at.success[0].value
    assert at.dataframe[0].value[["row", "column", "value"]].values.tolist() == [[2, "student_id", "A2"]]
    assert outcomes(app_db_url) == [(student_key("T1", get_settings()), 11, teacher.id)]
