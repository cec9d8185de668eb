"""The "Upload a class" page, driven through Streamlit's AppTest on a real database and real models."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa
from streamlit.testing.v1 import AppTest

from dashboard.class_charts import grade_histogram, lowering_factors, risk_chart, risk_counts
from dashboard.context import CurrentUser
from model.schema.fields import PASS_MARK
from model.schema.validation import G2_WITHOUT_G1, validate_frame
from model.serving.service import ModelStore, predict_frame
from model.settings import get_settings
from model.store.db import get_engine
from model.store.tables import PredictionLog
from tests.dashboard.conftest import download_labels, signed_in

PAGE = str(Path(__file__).resolve().parents[2] / "pages" / "upload.py")
EVIL_ID = '=HYPERLINK("http://evil.example","click")'
CORRUPTED = {4: ("age", "99"), 10: ("Mjob", "pilot"), 200: ("absences", "-3")}  # data index -> column, value


def open_page(user: CurrentUser | None) -> AppTest:
    at = AppTest.from_file(PAGE, default_timeout=30)
    if user is not None:
        signed_in(at, user)
    return at.run()


def class_file(student_csv_path: Path) -> bytes:
    """The real 395 students with ids, one formula-like id and three corrupted cells."""
    frame = pd.read_csv(student_csv_path, sep=";", dtype=str, keep_default_na=False)
    frame.insert(0, "student_id", [f"S{i:03d}" for i in range(len(frame))])
    frame.loc[0, "student_id"] = EVIL_ID
    for index, (column, value) in CORRUPTED.items():
        frame.loc[index, column] = value
    return frame.to_csv(sep=";", index=False).encode()


def log_rows(url: str) -> pd.DataFrame:
    with get_engine(url).connect() as connection:
        query = sa.select(PredictionLog.request_id, PredictionLog.status, PredictionLog.user_id)
        return pd.DataFrame(connection.execute(query).mappings().all(), columns=["request_id", "status", "user_id"])


@pytest.fixture
def teacher(teacher_account) -> CurrentUser:
    """A real teacher row (created by the dashboard conftest), as the pages see it."""
    return teacher_account.user


def test_class_upload_reports_bad_rows_and_predicts_the_rest(
    app_db_url: str, teacher: CurrentUser, student_csv_path: Path
) -> None:
    at = open_page(teacher)
    assert not at.exception
    assert "20 MB" in " ".join(c.value for c in at.caption)
    inserts: list[str] = []
    sa.event.listen(get_engine(app_db_url), "before_cursor_execute", lambda *args: inserts.append(args[2]))
    at.file_uploader(key="upload_file").upload("class.csv", class_file(student_csv_path), "text/csv")
    at.run()
    assert not at.exception, at.exception

    assert [m.value for m in at.metric] == ["395", "392", "3"]
    report = at.dataframe[0].value
    assert report[["row", "column", "value"]].values.tolist() == [[6, "age", "99"], [12, "Mjob", "pilot"],
                                                                 [202, "absences", "'-3"]]  # fmt: skip
    # (text cells are shown as the CSV downloads write them: "-3" could start a spreadsheet formula)
    assert report["allowed"].tolist() == ["15-22", "teacher, health, services, at_home, other", "0-93"]

    results = at.dataframe[1].value
    assert len(results) == 392
    assert results["p_pass"].is_monotonic_increasing
    assert results["p_no_grade"].between(0.005, 0.995).all()  # the class table shows the risk of no final grade
    assert not set(results["row"]) & {6, 12, 202}
    assert results.loc[results["row"] == 2, "student_id"].item() == "'" + EVIL_ID  # the toolbar's CSV is safe too

    log = log_rows(app_db_url)
    assert len([s for s in inserts if s.lstrip().upper().startswith("INSERT INTO PREDICTION_LOG")]) == 1
    assert log["request_id"].nunique() == 1
    assert log["status"].value_counts().to_dict() == {"ok": 392, "rejected": 3}
    assert set(log["user_id"]) == {teacher.id}

    labels = download_labels(at)
    assert "Download the predictions (CSV)" in labels and "Download the validation report (CSV)" in labels
    downloaded = pd.read_csv(io.BytesIO(at.session_state["upload_result"]["results_csv"]), encoding="utf-8-sig")
    assert downloaded.loc[downloaded["row"] == 2, "student_id"].item() == "'" + EVIL_ID
    assert len(downloaded) == 392
    assert downloaded["p_no_grade"].between(0.005, 0.995).all()


def test_a_row_with_g2_but_no_g1_is_rejected_and_the_others_go_through(
    app_db_url: str, teacher: CurrentUser, student_csv_path: Path
) -> None:
    frame = pd.read_csv(student_csv_path, sep=";", dtype=str, keep_default_na=False).head(5)
    frame.loc[2, "G1"] = ""
    at = open_page(teacher)
    at.file_uploader(key="upload_file").upload("class.csv", frame.to_csv(sep=";", index=False).encode(), "text/csv")
    at.run()
    assert not at.exception, at.exception
    assert [m.value for m in at.metric] == ["5", "4", "1"]
    report = at.dataframe[0].value
    assert report[["row", "column"]].values.tolist() == [[4, "G1"]]
    assert report["problem"].tolist() == [f'row 4, column "G1": {G2_WITHOUT_G1}']
    assert sorted(at.dataframe[1].value["row"]) == [2, 3, 5, 6]
    assert log_rows(app_db_url)["status"].value_counts().to_dict() == {"ok": 4, "rejected": 1}


def test_choosing_a_student_explains_without_predicting_again(
    app_db_url: str, teacher: CurrentUser, student_csv_path: Path
) -> None:
    at = open_page(teacher)
    at.file_uploader(key="upload_file").upload("class.csv", class_file(student_csv_path), "text/csv")
    at.run()
    riskiest = int(at.dataframe[1].value["row"].iloc[0])
    charts_before = len(at.get("plotly_chart"))
    at.selectbox(key="upload_student").set_value(riskiest).run()
    assert not at.exception
    assert len(log_rows(app_db_url)) == 395
    assert len(at.get("plotly_chart")) == charts_before + 1
    sentences = at.session_state["upload_result"]["prediction"].factors[riskiest]
    words = "\n".join(m.value for m in at.markdown)
    assert all(f.sentence in words for f in sentences)
    assert "did not sit the final exam" in words

    at.radio(key="upload_order").set_value("Highest risk of no final grade first").run()
    assert at.dataframe[1].value["p_no_grade"].is_monotonic_decreasing

    at.radio(key="upload_order").set_value("Spreadsheet row").run()
    assert at.dataframe[1].value["row"].is_monotonic_increasing
    assert len(log_rows(app_db_url)) == 395


def test_binary_file_is_rejected_with_one_clear_message(app_db_url: str, teacher: CurrentUser) -> None:
    at = open_page(teacher)
    at.file_uploader(key="upload_file").upload("class.csv", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "text/csv")
    at.run()
    assert [e.value for e in at.error] == [
        "**class.csv** was not accepted: the file is not a text file (it contains NUL bytes); upload a CSV file."
    ]
    assert not at.dataframe
    at.run()
    assert log_rows(app_db_url)["status"].tolist() == ["rejected"]


def test_admin_may_use_the_page_and_anonymous_may_not(admin_account) -> None:
    admin = open_page(admin_account.user)
    assert not admin.exception and not admin.error
    assert admin.title[0].value == "Upload a class"
    anonymous = open_page(None)
    assert [e.value for e in anonymous.error] == ["Please log in to see this page."]
    assert not anonymous.file_uploader


def test_class_charts_count_the_factors_that_lower_grades(app_db_url: str, raw_df: pd.DataFrame) -> None:
    students = raw_df.drop(columns=["G3"]).astype({"G2": object})
    students.loc[:99, "G2"] = None  # the first 100 students only have G1: a class mixing two setups
    prediction = predict_frame(
        ModelStore(get_engine(app_db_url), settings=get_settings()), validate_frame(students).accepted
    )
    assert set(prediction.explanations) == {"period1", "period2"}

    expected: dict[str, list[float]] = {}
    for explanation in prediction.explanations.values():
        for _, contributions in explanation.contributions.iterrows():
            for name, points in contributions.sort_values().head(3).items():
                if points < 0:
                    expected.setdefault(name, []).append(points)
    table = lowering_factors(prediction.explanations).set_index("attribute")
    assert table["students"].to_dict() == {name: len(points) for name, points in expected.items()}
    assert np.allclose(table.loc[list(expected), "mean_points"], [np.mean(p) for p in expected.values()])
    assert table["students"].is_monotonic_decreasing

    counts = risk_counts(prediction.results)
    assert list(counts.index) == ["high", "medium", "low"] and counts.sum() == 395
    assert list(risk_chart(prediction.results).data[0].marker.color) == ["#c62828", "#f9a825", "#2e7d32"]
    assert grade_histogram(prediction.results).layout.shapes[0].x0 == PASS_MARK - 0.5
