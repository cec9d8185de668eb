"""The "Monitoring" and "Alerts" pages (admin): charts after demo traffic, drift table, acknowledging alerts."""

from __future__ import annotations

import pandas as pd
import pytest
import sqlalchemy as sa

from model.monitoring import alerts
from model.monitoring.demo import demo_traffic
from model.serving.service import ModelStore
from model.settings import get_settings
from model.store.db import get_engine, session_scope
from model.store.tables import Alert, Feedback, PredictionLog
from tests.dashboard.conftest import Account, page_test, texts
from tests.model.test_drift import log_students, shifted


@pytest.fixture
def demo(app_db_url: str, raw_df: pd.DataFrame) -> str:
    engine = get_engine(app_db_url)
    summary = demo_traffic(
        engine, ModelStore(engine, settings=get_settings()), raw_df, days=14, rows_per_day=25, seed=3
    )
    assert summary.rows > 200 and summary.outcomes > 0 and summary.rejected > 0
    return app_db_url


def _table(at, column: str) -> pd.DataFrame:
    """The page's one table with ``column``."""
    (found,) = [frame.value for frame in at.dataframe if column in frame.value.columns]
    return found


@pytest.mark.parametrize("page", ["monitoring.py", "alerts.py"])
def test_a_teacher_is_refused(teacher_account: Account, page: str) -> None:
    at = page_test(page, teacher_account.user).run()
    assert "Access refused" in texts(at)
    assert not at.get("plotly_chart") and not at.dataframe


def test_the_admin_sees_every_chart_after_demo_traffic(demo: str, admin_account: Account) -> None:
    at = page_test("monitoring.py", admin_account.user).run()
    assert not at.exception, at.exception
    said = texts(at)
    assert "Demo data" in said and "Rows logged" in said
    assert len(at.get("plotly_chart")) >= 12  # traffic, predictions, drift and realized charts
    drift_table = _table(at, "psi")
    drifted = drift_table["verdict"] == "drifted"
    assert drifted.tolist() == sorted(drifted, reverse=True)  # drifted first, then by PSI
    assert drift_table[~drifted]["psi"].is_monotonic_decreasing and drift_table[drifted]["psi"].is_monotonic_decreasing
    assert {"verdict", "test", "statistic", "p_value", "threshold", "status"} <= set(drift_table.columns)
    assert drift_table.iloc[0]["status"] in ("watch", "act")  # the demo's last week drifts
    assert f"{int(drifted.sum())} of 30 attributes drifted" in said
    realized = _table(at, "roc_auc")
    assert realized["n"].sum() > 0 and {"mae", "rmse", "accuracy", "f1", "roc_auc"} <= set(realized.columns)
    assert all("n = " in text for text in realized["accuracy"])  # every figure with its interval or "too few"
    expected_charts = [c.proto.spec for c in at.get("plotly_chart") if "expected accuracy" in c.proto.spec]
    assert len(expected_charts) == 3  # one per setup's active version
    assert "rely on calibration" in said and "concept drift" in said
    assert "expected accuracy" in said and "week of" in said
    fair = _table(at, "false-negative rate")
    assert set(fair["attribute"]) == {"sex", "school", "address", "age band"}
    assert all("n = " in text for text in fair["false-negative rate"])
    assert "limit" in said or "No gap can be judged yet" in said  # the fairness panel's line in words
    assert any("Fairness over time by sex" in c.proto.spec for c in at.get("plotly_chart"))


def test_feedback_is_counted_per_category(demo: str, admin_account: Account) -> None:
    engine = get_engine(demo)
    with engine.begin() as connection:
        remarked = sa.select(Feedback.prediction_id)
        free = connection.execute(
            sa.select(PredictionLog.id).where(PredictionLog.status == "ok", PredictionLog.id.not_in(remarked)).limit(3)
        ).scalars()
        connection.execute(sa.insert(Feedback), [{"prediction_id": i, "category": "useful"} for i in free])
        stored = dict(
            connection.execute(sa.select(Feedback.category, sa.func.count()).group_by(Feedback.category)).all()
        )
    at = page_test("monitoring.py", admin_account.user).run()
    assert not at.exception, at.exception
    table = _table(at, "Counted by the feedback alert")
    assert table["Feedback"].tolist() == [
        "Useful",
        "Not useful",
        "Wrongly flagged",
        "Already handled",
        "Not applicable",
    ]
    assert table["Remarks"].tolist() == [3, stored.get("not_useful", 0), stored.get("wrongly_flagged", 0), 0, 0]
    assert stored.get("not_useful", 0) + stored.get("wrongly_flagged", 0) > 0  # the demo's remarks
    assert table["Counted by the feedback alert"].tolist() == ["no", "yes", "yes", "no", "no"]


def test_demo_rows_can_be_hidden(demo: str, admin_account: Account) -> None:
    at = page_test("monitoring.py", admin_account.user).run()
    at.toggle[0].set_value(False).run()
    assert "No predictions in this time range yet." in texts(at)


def test_the_drift_chart_follows_the_chosen_attribute(demo: str, admin_account: Account) -> None:
    at = page_test("monitoring.py", admin_account.user).run()
    chooser = next(s for s in at.selectbox if s.label == "Distribution of")
    chooser.set_value("Mother's job").run()
    [figure] = [c.proto.spec for c in at.get("plotly_chart") if "training reference" in c.proto.spec]
    assert "Mother's job" in figure and "training reference" in figure and "recent traffic" in figure


def test_open_alerts_are_shown_and_acknowledged(app_db_url: str, admin_account: Account, raw_df: pd.DataFrame) -> None:
    engine = get_engine(app_db_url)
    log_students(engine, shifted(raw_df), at=pd.Timestamp.now(tz="UTC").to_pydatetime())
    with session_scope(engine) as session:
        assert [f.rule for f in alerts.evaluate_alerts(session, get_settings())] == ["max_psi"]
    at = page_test("alerts.py", admin_account.user).run()
    assert "1 open alert" in texts(at) and "max_psi" in texts(at)
    monitoring_page = page_test("monitoring.py", admin_account.user).run()
    assert "1 open alert" in texts(monitoring_page)  # the banner on the monitoring page too
    at.form_submit_button[0].click().run()
    assert "Acknowledged #" in texts(at) or "open alert" not in texts(at)
    with session_scope(engine) as session:
        [alert] = session.scalars(sa.select(Alert)).all()
        assert alert.acknowledged_by == admin_account.user.username
    at.run()
    assert "open alert" not in texts(at)
    assert at.dataframe[0].value["acknowledged by"].tolist() == [admin_account.user.username]


def test_a_changed_act_level_changes_the_page_s_verdict_and_the_alert_s(
    app_db_url: str, admin_account: Account, raw_df: pd.DataFrame, monkeypatch: pytest.MonkeyPatch
) -> None:
    engine = get_engine(app_db_url)
    earlier = pd.Timestamp.now(tz="UTC") - pd.Timedelta(minutes=5)  # the page's window ends at the current minute
    log_students(engine, shifted(raw_df), at=earlier.to_pydatetime())
    at = page_test("monitoring.py", admin_account.user).run()
    top = _table(at, "psi").iloc[0]
    assert top["status"] == "act" and "PSI 0.1 = watch, 0.25 = act" in texts(at)

    act = round(float(top["psi"]) + 0.5, 2)
    monkeypatch.setenv("MATHSIGHT_ALERT_MAX_PSI", str(act))
    get_settings.cache_clear()
    at = page_test("monitoring.py", admin_account.user).run()
    assert not at.exception, at.exception
    assert _table(at, "psi").iloc[0]["status"] == "watch" and f"PSI 0.1 = watch, {act} = act" in texts(at)
    with session_scope(engine) as session:
        assert alerts.evaluate_alerts(session, get_settings()) == []
    alerts_page = page_test("alerts.py", admin_account.user).run()
    rules = alerts_page.dataframe[-1].value.set_index("setting")["value"]
    assert rules["MATHSIGHT_ALERT_MAX_PSI"] == str(act)
