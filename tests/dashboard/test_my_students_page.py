"""The "My students" page: one's own latest prediction per student, the latest outcome, filters."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
import pytest
import sqlalchemy as sa
from streamlit.testing.v1 import AppTest

from dashboard.columns import risk_markdown
from dashboard.context import CurrentUser
from model.accounts import users
from model.serving.outcomes import record_outcome
from model.serving.predlog.writer import student_key
from model.serving.service import ModelStore, predict_batch
from model.settings import get_settings
from model.store.db import get_engine, session_scope
from model.store.tables import PredictionLog

PAGE = str(Path(__file__).resolve().parents[2] / "pages" / "my_students.py")
LAST_WEEK = datetime.now(UTC) - timedelta(days=7)


def open_page(user: CurrentUser | None) -> AppTest:
    at = AppTest.from_file(PAGE, default_timeout=30)
    if user is not None:
        at.session_state["mathsight_user"] = user
    return at.run()


def predict_class(url: str, raw_df: pd.DataFrame, user: CurrentUser, ids: list[str], start: int) -> None:
    engine = get_engine(url)
    frame = raw_df.drop(columns=["G3"]).iloc[start : start + len(ids)].copy()
    frame.insert(0, "student_id", ids)
    predict_batch(
        ModelStore(engine, settings=get_settings()),
        engine,
        frame.to_csv(sep=";", index=False),
        channel="ui",
        user_id=user.id,
    )


@pytest.fixture
def classes(app_db_url: str, teacher_account, raw_df: pd.DataFrame) -> dict:
    """Tina predicts S1-S4 last week, then S1 again today; another teacher predicts S1 and X9."""
    tina = teacher_account.user
    with session_scope(get_engine(app_db_url)) as session:
        info = users.create_user(session, "otto", "otto-password-1", role="teacher", name="Otto", actor="pytest")
    otto = CurrentUser(info.id, info.username, info.name, info.role)
    predict_class(app_db_url, raw_df, tina, ["S1", "S2", "S3", "S4"], 0)
    with get_engine(app_db_url).begin() as connection:
        connection.execute(sa.update(PredictionLog).values(created_at=LAST_WEEK))
    predict_class(app_db_url, raw_df, tina, ["S1"], 40)
    predict_class(app_db_url, raw_df, otto, ["S1", "X9"], 80)
    with session_scope(get_engine(app_db_url)) as session:
        record_outcome(session, get_settings(), "S1", 13, otto.id)
    return {"tina": tina, "otto": otto}


def test_shows_own_latest_prediction_per_student_with_the_outcome(app_db_url: str, classes: dict) -> None:
    at = open_page(classes["tina"])
    assert not at.exception
    table = at.dataframe[0].value
    assert sorted(table["student_key"]) == sorted(student_key(s, get_settings())[:10] for s in ("S1", "S2", "S3", "S4"))
    first = table.iloc[0]
    assert first["student_key"] == student_key("S1", get_settings())[:10]
    assert (first["predictions"], first["outcome_g3"]) == (2, 13)
    assert table["outcome_g3"].isna().sum() == 3
    assert at.metric[0].value == "4"
    assert sum(int(m.value) for m in at.metric[1:]) == 4
    assert sorted(table["student_id"]) == ["S1", "S2", "S3", "S4"]  # the ids Tina typed, only hers
    assert "X9" not in table.to_string()
    assert table.iloc[0]["timeline"] == f"student?key={student_key('S1', get_settings())}"
    assert table.set_index("student_id").loc["S1", "student_key"] == student_key("S1", get_settings())[:10]


def test_filters_by_student_id_risk_and_dates(app_db_url: str, classes: dict) -> None:
    at = open_page(classes["tina"])
    at.text_input(key="history_student").input(" S3 ").run()
    assert at.dataframe[0].value["student_key"].tolist() == [student_key("S3", get_settings())[:10]]
    at.text_input(key="history_student").input("X9").run()
    assert not at.dataframe and at.info[0].value == "No predictions match."

    at.text_input(key="history_student").input("").run()
    today = datetime.now(UTC).date()
    at.date_input(key="history_dates").set_value((today, today)).run()
    assert at.dataframe[0].value["student_key"].tolist() == [student_key("S1", get_settings())[:10]]
    at.date_input(key="history_dates").set_value((today - timedelta(days=365), today - timedelta(days=3))).run()
    assert len(at.dataframe[0].value) == 3

    at.date_input(key="history_dates").set_value(()).run()
    counts = {m.label: int(m.value) for m in at.metric}
    for level in ("high", "medium", "low"):
        at.selectbox(key="history_risk").set_value(level).run()
        shown = at.dataframe[0].value if at.dataframe else pd.DataFrame(columns=["risk"])
        assert set(shown["risk"]) <= {level}
        assert len(shown) == counts[risk_markdown(level)]


def test_anonymous_is_refused_admin_sees_own_empty_history(app_db_url: str, admin_account) -> None:
    assert [e.value for e in open_page(None).error] == ["Please log in to see this page."]
    admin = open_page(admin_account.user)
    assert not admin.exception and not admin.error
    assert admin.info[0].value == "You have made no predictions with a student id yet."
