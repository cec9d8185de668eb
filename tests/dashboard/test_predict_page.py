"""pages/predict.py through AppTest with a real teacher and real students of the UCI file."""

from __future__ import annotations

from typing import Any

import pandas as pd
import pytest
import sqlalchemy as sa
from streamlit.testing.v1 import AppTest

from model.schema.fields import ATTRIBUTES, GRADES
from model.schema.results import COLUMNS, INTERVAL, SETUP_NOTES, percent_text
from model.schema.validation import G2_WITHOUT_G1
from model.serving.service import ModelStore, predict_one
from model.settings import get_settings
from model.store.db import get_engine, session_scope
from model.store.tables import PredictionLog
from tests.conftest import swap_artifact
from tests.dashboard.conftest import ROOT, TIMEOUT, Account, fill_student, page_test, texts


@pytest.fixture
def student(raw_df: pd.DataFrame) -> dict[str, Any]:
    """A real student who studies little and misses school (so the what-if has room to move)."""
    row = raw_df[(raw_df.studytime == 1) & (raw_df.absences >= 6)].iloc[0]
    return {name: row[name].item() if hasattr(row[name], "item") else row[name] for name in (*ATTRIBUTES, *GRADES)}


def _fill(at: AppTest, record: dict[str, Any], grades: tuple[str, ...] = (), student_id: str = "") -> AppTest:
    return _submit(fill_student(at, record, grades, student_id), "Predict")


def _submit(at: AppTest, label: str) -> AppTest:
    return next(b for b in at.form_submit_button if b.label == label).click().run()


def _log(url: str) -> list[PredictionLog]:
    with session_scope(get_engine(url)) as session:
        return list(session.scalars(sa.select(PredictionLog).order_by(PredictionLog.id)))


def test_predicting_a_real_student_shows_the_whole_result_and_logs_once(
    app_db_url: str, teacher_account: Account, student: dict[str, Any]
) -> None:
    at = _fill(page_test("predict.py", teacher_account.user).run(), student, student_id="S-042")
    assert not at.exception
    engine = get_engine(app_db_url)
    expected = predict_one(ModelStore(engine, settings=get_settings()), engine, student | {"G1": None, "G2": None},
                           channel="ui", log=False).results.iloc[0]  # fmt: skip
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Predicted final grade (G3)"] == f"{expected.predicted_g3:.0f} / 20"
    assert metrics["Chance of passing (G3 ≥ 10)"] == percent_text(expected.p_pass)
    assert metrics["Risk of no final grade"] == percent_text(expected.p_no_grade)
    assert metrics["Likely band"] == expected.band
    words = texts(at)
    assert f"90% interval: {expected.lower:.0f} to {expected.upper:.0f}" in words
    assert f"Band {expected.band}:" in words
    assert expected.model_version in words and SETUP_NOTES["early"] in words
    assert "Of 100 past students like this one" in words and "did not sit the final exam" in words
    assert words.count(" points") >= 5 and "not promises" in words
    assert words.index("**Levers**") < min(
        words.index(g) for g in ("**Background**", "**Grades so far**") if g in words
    )
    assert "What would help most" in words
    assert len(at.get("plotly_chart")) == 1
    assert f"{expected.risk} risk of failing" in words
    rows = _log(app_db_url)
    assert len(rows) == 1
    assert (rows[0].channel, rows[0].user_id, rows[0].status) == ("ui", teacher_account.user.id, "ok")
    assert rows[0].student_key and rows[0].student_key != "S-042"


def test_an_invalid_value_is_named_beside_its_field(
    app_db_url: str, teacher_account: Account, student: dict[str, Any]
) -> None:
    at = _fill(page_test("predict.py", teacher_account.user).run(), student | {"age": 25, "absences": -3})
    assert not at.exception
    errors = [e.value for e in at.error]
    assert any('field "age"' in e and "25" in e and "15-22" in e for e in errors), errors
    assert any('field "absences"' in e and "-3" in e and "0-93" in e for e in errors), errors
    assert not at.metric
    assert [row.status for row in _log(app_db_url)] == ["rejected"]


def test_the_setup_follows_the_grades_given(app_db_url: str, teacher_account: Account, student: dict) -> None:
    at = _fill(page_test("predict.py", teacher_account.user).run(), student, grades=("G1", "G2"))
    assert SETUP_NOTES["period2"] in texts(at)
    at = _fill(at, student, grades=("G1",))
    assert SETUP_NOTES["period1"] in texts(at)
    at = _fill(at, student, grades=())
    assert SETUP_NOTES["early"] in texts(at)
    assert [row.setup for row in _log(app_db_url)] == ["period2", "period1", "early"]


def test_g2_without_g1_is_refused_naming_g1(app_db_url: str, teacher_account: Account, student: dict) -> None:
    at = _fill(page_test("predict.py", teacher_account.user).run(), student, grades=("G2",))
    assert not at.exception
    assert f'field "G1": {G2_WITHOUT_G1} (allowed: 0-20)' in [e.value for e in at.error]
    assert not at.metric
    assert [(row.status, row.setup) for row in _log(app_db_url)] == [("rejected", None)]


def test_what_if_shows_the_new_prediction_beside_the_old_one(
    app_db_url: str, teacher_account: Account, student: dict[str, Any]
) -> None:
    at = _fill(page_test("predict.py", teacher_account.user).run(), student)
    at.selectbox(key="whatif:studytime").set_value(4)
    at.number_input(key="whatif:absences").set_value(0)
    at = _submit(at, "Recompute")
    assert not at.exception
    table = at.table[0].value
    assert list(table.columns) == ["As entered", "What if", "Change"]
    engine = get_engine(app_db_url)
    store = ModelStore(engine, settings=get_settings())
    before = predict_one(store, engine, student | {"G1": None, "G2": None}, channel="ui", log=False).results.iloc[0]
    changed = student | {"G1": None, "G2": None, "studytime": 4, "absences": 0}
    after = predict_one(store, engine, changed, channel="ui", log=False).results.iloc[0]
    grade, chance, zero = (COLUMNS[n].heading for n in ("predicted_g3", "p_pass", "p_no_grade"))
    assert list(table.index) == [grade, INTERVAL, chance, zero, COLUMNS["band"].heading, COLUMNS["risk"].heading]
    assert table.loc[grade, "As entered"] == f"{before.predicted_g3:.0f}"
    assert table.loc[grade, "What if"] == f"{after.predicted_g3:.0f}"
    assert table.loc[chance, "What if"] == percent_text(after.p_pass)
    assert table.loc[zero, "What if"] == percent_text(after.p_no_grade)
    assert "not promises" in texts(at)
    assert "Weekly study time: 1 → 4" in texts(at) and f"School absences: {student['absences']} → 0" in texts(at)
    assert len(_log(app_db_url)) == 1  # the what-if is hypothetical: not logged


def test_switching_support_off_in_the_what_if_is_never_presented_as_help(
    teacher_account: Account, student: dict[str, Any]
) -> None:
    at = _fill(page_test("predict.py", teacher_account.user).run(), student | {"schoolsup": "yes"})
    assert "Extra educational support" not in " ".join(m.value for m in at.markdown if "help most" in m.value)
    at.selectbox(key="whatif:schoolsup").set_value("no")
    at = _submit(at, "Recompute")
    assert not at.exception
    assert any("not a reason to stop it" in w.value and "removing it would not help" in w.value for w in at.warning)


def test_a_new_student_resets_the_what_if(teacher_account: Account, student: dict[str, Any]) -> None:
    at = _fill(page_test("predict.py", teacher_account.user).run(), student)
    at.selectbox(key="whatif:studytime").set_value(4)
    at = _submit(at, "Recompute")
    at = _fill(at, student | {"studytime": 2})
    assert at.selectbox(key="whatif:studytime").value == 2
    assert not at.table


def test_without_a_user_the_page_refuses(app_db_url: str) -> None:
    at = AppTest.from_file(str(ROOT / "pages" / "predict.py"), default_timeout=TIMEOUT).run()
    assert any("log in" in e.value for e in at.error)
    assert not at.form_submit_button


def test_a_swapped_artifact_says_the_model_is_unavailable(
    app_db_url: str, teacher_account: Account, student: dict[str, Any]
) -> None:
    swap_artifact(app_db_url, into="early", source="period2")
    at = _fill(page_test("predict.py", teacher_account.user).run(), student)
    assert not at.exception and not at.metric
    (error,) = at.error
    assert error.value.startswith("No model is available for this student: the model for setup 'early' is unavailable")
    assert "HMAC" not in error.value


def test_a_student_with_a_high_no_grade_risk_sees_it_as_its_own_warning(
    teacher_account: Account, raw_df: pd.DataFrame, trained_models: dict
) -> None:
    details = trained_models["period1"].estimator.predict_details(raw_df)
    row = raw_df.loc[details["p_no_grade"].idxmax()]
    record = {name: row[name].item() if hasattr(row[name], "item") else row[name] for name in (*ATTRIBUTES, *GRADES)}
    at = _fill(page_test("predict.py", teacher_account.user).run(), record, grades=("G1",))
    assert not at.exception
    metrics = {m.label: m.value for m in at.metric}
    shown = metrics["Risk of no final grade"]
    assert shown.endswith("%") and int(shown.removesuffix("%").split()[-1]) >= 30, shown
    words = texts(at)
    assert f"The risk of no final grade is {shown}" in words and "different warning from a low grade" in words
