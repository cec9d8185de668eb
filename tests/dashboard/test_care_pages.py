"""The "Needs attention" and "Student timeline" pages: listing, reasons, links, interventions, outcome."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pandas as pd
import pytest
import sqlalchemy as sa

from dashboard.context import CurrentUser
from dashboard.downloads import _LINKS_KEY
from model.accounts import users
from model.serving.interventions import list_interventions
from model.serving.predlog.writer import student_key
from model.serving.service import ModelStore, predict_batch
from model.settings import get_settings
from model.store.db import get_engine, session_scope
from model.store.tables import Outcome, PredictionLog
from tests.dashboard.conftest import download_labels, page_test, texts


def _predict(url: str, raw_df: pd.DataFrame, user: CurrentUser, ids: list[str], start: int) -> None:
    engine = get_engine(url)
    frame = raw_df.drop(columns=["G3"]).iloc[start : start + len(ids)].copy()
    frame.insert(0, "student_id", ids)
    predict_batch(ModelStore(engine, settings=get_settings()), engine, frame.to_csv(sep=";", index=False),
                  channel="ui", user_id=user.id)  # fmt: skip


@pytest.fixture
def classes(app_db_url: str, teacher_account, raw_df: pd.DataFrame) -> dict:
    """Tina predicts S1 (made high risk) and S2 (low) twice; Otto predicts X9 (high risk)."""
    tina, settings = teacher_account.user, get_settings()
    with session_scope(get_engine(app_db_url)) as session:
        info = users.create_user(session, "otto", "otto-password-1", role="teacher", name="Otto", actor="pytest")
    otto = CurrentUser(info.id, info.username, info.name, info.role)
    _predict(app_db_url, raw_df, tina, ["S1", "S2"], 0)
    with get_engine(app_db_url).begin() as connection:
        connection.execute(sa.update(PredictionLog).values(created_at=datetime.now(UTC) - timedelta(days=30)))
    _predict(app_db_url, raw_df, tina, ["S1", "S2"], 0)
    _predict(app_db_url, raw_df, otto, ["X9"], 50)
    chances = {"S1": 0.2, "S2": 0.95, "X9": 0.1}
    with get_engine(app_db_url).begin() as connection:
        for sid, p_pass in chances.items():
            connection.execute(sa.update(PredictionLog).where(PredictionLog.student_key == student_key(sid, settings))
                               .values(p_pass=p_pass))  # fmt: skip
    return {"tina": tina, "otto": otto}


def test_needs_attention_lists_my_high_risk_student_with_the_reason_and_a_link(app_db_url: str, classes: dict) -> None:
    at = page_test("needs_attention.py", classes["tina"]).run()
    assert not at.exception
    table = at.dataframe[0].value
    assert table["student"].tolist() == ["S1"]
    assert table["why"].tolist() == ["High risk (P(pass) 20%) and no intervention planned"]
    assert table["open"].tolist() == [f"student?key={student_key('S1', get_settings())}"]
    assert "X9" not in texts(at) and "X9" not in table.to_string()
    link = f"[S1: High risk (P(pass) 20%) and no intervention planned](student?key={student_key('S1', get_settings())})"
    assert link in texts(at)


def test_the_timeline_records_an_intervention_and_an_outcome(app_db_url: str, classes: dict) -> None:
    settings, tina = get_settings(), classes["tina"]
    at = page_test("student.py", tina)
    at.query_params["key"] = student_key("S1", settings)
    at.run()
    assert not at.exception
    assert [m.value for m in at.metric][:2] == ["S1", "20%"]
    assert len(at.get("plotly_chart")) == 1
    assert any(line.startswith("- ") for line in texts(at).splitlines())  # the latest prediction's factors
    assert at.info[0].value == "No intervention recorded for this student yet."

    at.selectbox(key="iv_kind").set_value("tutoring")
    at.selectbox(key="iv_status").set_value("active")
    at.date_input(key="iv_review").set_value(date.today() - timedelta(days=1))  # before the start: refused
    at.text_input(key="iv_note").input("after school")
    at.button[0].click().run()  # the form's submit button
    assert any('field "review_date"' in error.value for error in at.error)
    at.date_input(key="iv_review").set_value(date.today() + timedelta(days=14))
    at.button[0].click().run()
    assert not at.exception and not at.error
    with session_scope(get_engine(app_db_url)) as session:
        plans = list_interventions(session, settings, tina.id)
    assert plans[["student_id", "kind", "status", "note"]].values.tolist() == [["S1", "tutoring", "active",
                                                                                "after school"]]  # fmt: skip
    assert at.dataframe[0].value["kind"].tolist() == ["Tutoring"]

    at.number_input(key="g3").set_value(8)
    next(b for b in at.button if b.label == "Record final grade").click().run()
    assert not at.exception
    with get_engine(app_db_url).connect() as connection:
        assert connection.execute(sa.select(Outcome.g3, Outcome.student_key)).all() == [
            (8, student_key("S1", settings))
        ]
    assert "8 / 20" in texts(at)

    listed = page_test("needs_attention.py", tina).run()
    assert listed.success  # S1 has an active plan now: nothing calls for action


def test_the_interventions_csv_is_built_only_when_asked(app_db_url: str, classes: dict) -> None:
    at = page_test("student.py", classes["tina"])
    at.query_params["key"] = student_key("S1", get_settings())
    at.run()
    assert not at.exception and download_labels(at) == [] and _LINKS_KEY not in at.session_state
    next(b for b in at.button if b.label == "Prepare all my interventions (CSV)").click().run()
    assert not at.exception and download_labels(at) == ["Download all my interventions (CSV)"]
    assert _LINKS_KEY in at.session_state  # the file is held for this session only
    at.run()  # any other rerun (a form, a click) builds and hashes nothing
    assert download_labels(at) == []


def test_the_timeline_draws_p_pass_and_the_risk_of_no_final_grade(app_db_url: str, classes: dict) -> None:
    from dashboard.timeline_chart import timeline_figure
    from model.serving.timeline import student_timeline

    settings = get_settings()
    with session_scope(get_engine(app_db_url)) as session:
        timeline = student_timeline(session, settings, classes["tina"].id, student_key("S2", settings))
    figure = timeline_figure(timeline, high_below=0.5)
    lines = {trace.name: list(trace.y) for trace in figure.data}
    assert lines["P(pass)"] == [0.95, 0.95]
    no_grade = timeline.predictions["p_no_grade"].tolist()
    assert len(no_grade) == 2 and all(0 < p < 1 for p in no_grade)  # logged by grade model v2
    assert lines["Risk of no final grade"] == no_grade


def test_another_teachers_student_is_not_shown(app_db_url: str, classes: dict) -> None:
    at = page_test("student.py", classes["otto"])
    at.query_params["key"] = student_key("S1", get_settings())
    at.run()
    assert not at.exception and not at.metric and not at.get("plotly_chart")
    assert at.error[0].value.startswith("this student is not one of yours")
    at.text_input(key="student_lookup").input("S2").run()
    assert at.error[0].value.startswith("this student is not one of yours")


def test_an_admin_raises_the_high_risk_cut_off_and_the_teachers_list_grows(
    app_db_url: str, classes: dict, admin_account
) -> None:
    assert page_test("needs_attention.py", classes["tina"]).run().dataframe[0].value["student"].tolist() == ["S1"]
    at = page_test("school_settings.py", admin_account.user).run()
    assert not at.exception
    at.number_input(key="risk_high_below").set_value(0.9)  # above the medium level: refused, naming the field
    at.button[0].click().run()
    assert at.error and 'field "risk_high_below"' in at.error[0].value
    at.number_input(key="risk_medium_below").set_value(0.99)
    at.number_input(key="risk_high_below").set_value(0.97)
    at.button[0].click().run()
    assert not at.error and at.success[0].value.startswith("Saved")
    caption = next(c.value for c in at.caption if c.value.startswith("Set by the school"))
    assert "risk_high_below = 0.97" in caption and "year_end" not in caption  # left blank: not listed
    listed = page_test("needs_attention.py", classes["tina"]).run().dataframe[0].value
    assert listed["student"].tolist() == ["S1", "S2"]  # S2's 95% is high risk by the school's level
    assert "below 97%" in texts(page_test("needs_attention.py", classes["tina"]).run())


def test_did_acting_help_shows_the_caveat_and_no_rate_for_small_groups(
    app_db_url: str, classes: dict, admin_account
) -> None:
    from model.serving.interventions import record_intervention
    from model.serving.outcomes import record_outcome

    settings, tina = get_settings(), classes["tina"]
    at = page_test("acting.py", admin_account.user).run()
    assert not at.exception and at.info[0].value.startswith("No student with an intervention")
    with session_scope(get_engine(app_db_url)) as session:
        record_intervention(session, settings, tina.id, "tina", student_id="S1", kind="tutoring",
                            start_date="2026-10-01", review_date="2026-11-01")  # fmt: skip
        record_outcome(session, settings, "S1", 11, tina.id)
    at = page_test("acting.py", admin_account.user).run()
    assert at.warning[0].value.startswith("Association, not effect")
    row = at.dataframe[0].value.iloc[0]
    assert (row["kind"], row["students"], row["passed"]) == ("Tutoring", 1, 1)
    assert pd.isna(row["pass_rate"])  # one student: below the minimum group size
    assert "S1" not in at.dataframe[0].value.to_string()
