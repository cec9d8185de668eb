"""Drift statistics against scipy on known distributions, and counted by SQL on both databases."""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa
from scipy.stats import chi2_contingency, ks_2samp

from model.monitoring import drift
from model.monitoring.queries import Window
from model.schema.fields import ATTRIBUTES, GRADES
from model.schema.thresholds import DEFAULT_THRESHOLDS
from model.serving.predlog.writer import write_log
from model.settings import get_settings
from model.store import db

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)


def test_psi_matches_its_formula_and_is_zero_for_equal_shares() -> None:
    reference, recent = np.array([50, 30, 20]), np.array([20, 30, 50])
    e, a = reference / 100, recent / 100
    assert drift.psi(reference, recent) == pytest.approx(np.sum((a - e) * np.log(a / e)))
    assert drift.psi([10, 20, 30], [20, 40, 60]) == pytest.approx(0.0)
    assert (
        drift.psi([10, 0], [5, 5]) > DEFAULT_THRESHOLDS.drift_act_psi
    )  # an empty reference bin counts as a tiny share


def test_numeric_drift_is_the_ks_test_of_scipy_on_known_distributions() -> None:
    rng = np.random.default_rng(0)
    reference = rng.poisson(4, 400)
    shifted = rng.poisson(7, 3000)
    result = drift.numeric_drift("absences", reference.tolist(), Counter(shifted.tolist()), DEFAULT_THRESHOLDS)
    expected = ks_2samp(reference, shifted)
    assert result.test == "KS"
    assert result.statistic == pytest.approx(expected.statistic)
    assert result.p_value == pytest.approx(expected.pvalue)
    assert result.n_recent == 3000 and result.status == "act"
    same = drift.numeric_drift(
        "absences", reference.tolist(), Counter(rng.poisson(4, 3000).tolist()), DEFAULT_THRESHOLDS
    )
    assert same.status == "ok" and same.p_value > 0.01


def test_numeric_bins_come_from_the_reference_deciles() -> None:
    reference = list(range(1, 6)) * 20  # studytime-like codes 1..5
    result = drift.numeric_drift("freetime", reference, {5: 10}, DEFAULT_THRESHOLDS)
    assert result.bins == ("≤ 1", "2", "3", "4", "5", "≥ 6")
    assert result.reference_share == pytest.approx((0.2, 0.2, 0.2, 0.2, 0.2, 0.0))
    assert result.recent_share == pytest.approx((0, 0, 0, 0, 1.0, 0))


def test_categorical_drift_is_scipy_s_chi_square_of_the_contingency_table() -> None:
    reference = {"teacher": 40, "health": 30, "services": 90, "at_home": 60, "other": 175}
    recent = {"teacher": 20, "health": 10, "services": 40, "at_home": 120, "other": 60}
    result = drift.categorical_drift("Mjob", reference, recent, DEFAULT_THRESHOLDS)
    table = np.array([[reference[c] for c in result.bins], [recent[c] for c in result.bins]])
    expected = chi2_contingency(table)
    assert result.test == "chi-square"
    assert result.statistic == pytest.approx(expected.statistic)
    assert result.p_value == pytest.approx(expected.pvalue)
    assert result.psi == pytest.approx(drift.psi(table[0], table[1]))


def test_a_category_seen_on_one_side_only_still_gets_a_test() -> None:
    result = drift.categorical_drift("higher", {"yes": 375, "no": 20}, {"no": 50}, DEFAULT_THRESHOLDS)
    assert result.bins == ("yes", "no") and result.p_value < 1e-6 and result.status == "act"
    empty = drift.categorical_drift("higher", {"yes": 375, "no": 20}, {}, DEFAULT_THRESHOLDS)
    assert (empty.statistic, empty.p_value, empty.psi, empty.n_recent) == (0.0, 1.0, 0.0, 0)


@pytest.fixture
def engine(models_db_url: str) -> Iterator[sa.Engine]:
    yield db.get_engine(models_db_url)
    db.dispose_engines()


def log_students(engine: sa.Engine, students: pd.DataFrame, at: datetime = NOW - timedelta(hours=1)) -> None:
    """Write ``students`` (real-data rows) as accepted early predictions."""
    inputs = students[[*ATTRIBUTES, *GRADES]].astype(object)
    inputs = inputs.where(inputs.notna(), None)
    request_id = uuid.uuid4().hex
    write_log(engine, get_settings(), [
        {"request_id": request_id, "channel": "api", "created_at": at, "status": "ok", "setup": "early",
         "inputs": record, "is_demo": False}
        for record in inputs.to_dict("records")
    ])  # fmt: skip


def report_of(engine: sa.Engine, window: Window, **options: object) -> drift.DriftReport | None:
    """The drift report as a front asks for it: one transaction, the configured settings."""
    with db.session_scope(engine) as session:
        return drift.drift_report(session, get_settings(), window, **options)


def shifted(raw_df: pd.DataFrame) -> pd.DataFrame:
    """The real students with more absences and more mothers at home."""
    frame = raw_df.copy()
    frame["absences"] = frame["absences"] + 10
    frame.loc[frame.index % 2 == 0, "Mjob"] = "at_home"
    return frame


def test_the_real_data_against_its_own_reference_shows_no_drift(engine: sa.Engine, raw_df: pd.DataFrame) -> None:
    log_students(engine, raw_df)
    report = report_of(engine, Window.last(1, NOW))
    assert report is not None and report.n_recent == len(raw_df)
    assert [a.attribute for a in report.attributes] == list(ATTRIBUTES)
    assert report.max_psi == pytest.approx(0.0, abs=1e-9)
    assert {a.status for a in report.attributes} == {"ok"}
    assert min(a.p_value for a in report.attributes) > 0.99


def test_sql_counts_give_scipy_s_statistics_on_a_known_shift(engine: sa.Engine, raw_df: pd.DataFrame) -> None:
    recent = shifted(raw_df)
    log_students(engine, recent)
    log_students(engine, raw_df, at=NOW - timedelta(days=3))  # outside the window
    report = report_of(engine, Window.last(1, NOW))
    assert report is not None
    absences = report.get("absences")
    expected = ks_2samp(raw_df["absences"], recent["absences"])
    assert (absences.statistic, absences.p_value) == pytest.approx((expected.statistic, expected.pvalue))
    mjob = report.get("Mjob")
    categories = list(mjob.bins)
    table = [raw_df["Mjob"].value_counts().reindex(categories, fill_value=0),
             recent["Mjob"].value_counts().reindex(categories, fill_value=0)]  # fmt: skip
    expected_chi = chi2_contingency(np.array(table))
    assert (mjob.statistic, mjob.p_value) == pytest.approx((expected_chi.statistic, expected_chi.pvalue))
    assert absences.status == mjob.status == "act"
    assert report.table()["attribute"].tolist()[:2] == ["absences", "Mjob"]
    assert report.get("age").status == "ok"


def test_a_setup_report_includes_its_grades_and_only_its_rows(engine: sa.Engine, raw_df: pd.DataFrame) -> None:
    log_students(engine, raw_df)
    assert report_of(engine, Window.last(1, NOW), setup="period2").n_recent == 0
    with engine.begin() as connection:
        connection.execute(sa.text("UPDATE prediction_log SET setup = 'period2'"))
    report = report_of(engine, Window.last(1, NOW), setup="period2")
    assert [a.attribute for a in report.attributes][-2:] == ["G1", "G2"]
    assert report.get("G2").n_recent == len(raw_df) and report.max_psi == pytest.approx(0.0, abs=1e-9)


def test_only_the_most_recent_rows_are_compared(engine: sa.Engine, raw_df: pd.DataFrame) -> None:
    log_students(engine, raw_df, at=NOW - timedelta(hours=2))
    latest = shifted(raw_df).iloc[:100]
    log_students(engine, latest, at=NOW - timedelta(minutes=5))
    report = report_of(engine, Window.last(1, NOW), max_rows=100)
    expected = drift.numeric_drift(
        "absences", raw_df["absences"].tolist(), Counter(latest["absences"].tolist()), DEFAULT_THRESHOLDS
    )
    assert report.n_recent == 100 and report.get("absences") == expected


def test_no_active_model_means_no_report(db_url: str) -> None:
    db.migrate(db_url)
    assert report_of(db.get_engine(db_url), Window.last(1, NOW)) is None


def test_drift_reads_encrypted_inputs_through_the_core(
    engine: sa.Engine, raw_df: pd.DataFrame, monkeypatch: pytest.MonkeyPatch
) -> None:
    from model.store import crypto
    from model.store.tables import PredictionLog

    monkeypatch.setenv("MATHSIGHT_DATA_KEY", crypto.generate_key())
    get_settings.cache_clear()
    recent = shifted(raw_df)
    log_students(engine, recent)
    with engine.connect() as connection:
        stored = connection.execute(sa.select(PredictionLog.inputs).limit(1)).scalar_one()
    assert set(stored) == {"enc"}
    report = report_of(engine, Window.last(1, NOW))
    assert report is not None and report.n_recent == len(raw_df)
    expected = ks_2samp(raw_df["absences"], recent["absences"])
    assert report.get("absences").p_value == pytest.approx(expected.pvalue)


def test_the_encrypted_sample_is_bounded_like_the_sql_one(
    engine: sa.Engine, raw_df: pd.DataFrame, monkeypatch: pytest.MonkeyPatch
) -> None:
    from model.store import crypto

    monkeypatch.setenv("MATHSIGHT_DATA_KEY", crypto.generate_key())
    get_settings.cache_clear()
    log_students(engine, raw_df, at=NOW - timedelta(hours=2))
    latest = shifted(raw_df).iloc[:100]
    log_students(engine, latest, at=NOW - timedelta(minutes=5))
    report = report_of(engine, Window.last(1, NOW), max_rows=100)
    expected = drift.numeric_drift(
        "absences", raw_df["absences"].tolist(), Counter(latest["absences"].tolist()), DEFAULT_THRESHOLDS
    )
    assert report.n_recent == 100 and report.get("absences") == expected


def test_the_verdicts_follow_the_configured_threshold_table(
    engine: sa.Engine, raw_df: pd.DataFrame, monkeypatch: pytest.MonkeyPatch
) -> None:
    log_students(engine, shifted(raw_df))
    absences = report_of(engine, Window.last(1, NOW)).get("absences")
    assert (absences.status, absences.test_drift) == ("act", True)
    monkeypatch.setenv("MATHSIGHT_DRIFT_WATCH_PSI", str(absences.psi / 2))
    monkeypatch.setenv("MATHSIGHT_ALERT_MAX_PSI", str(absences.psi * 2))
    monkeypatch.setenv("MATHSIGHT_DRIFT_P_VALUE", str(absences.p_value / 2))
    get_settings.cache_clear()
    relaxed = report_of(engine, Window.last(1, NOW))
    judged = relaxed.get("absences")
    assert judged.psi == absences.psi and (judged.status, judged.test_drift) == ("watch", False)
    row = relaxed.table().set_index("attribute").loc["absences"]
    assert row["threshold"] == f"PSI {absences.psi / 2} watch / {absences.psi * 2} act"
    assert (row["status"], row["test_drift"]) == ("watch", False)


def test_one_verdict_per_attribute_drifted_first_with_the_dataset_line(engine: sa.Engine, raw_df: pd.DataFrame) -> None:
    """A known shift on the real students: the shifted columns are 'drifted' (PSI at act and scipy's test
    rejecting), the others not; the dataset line counts them; the alert names the same columns."""
    recent = shifted(raw_df)
    log_students(engine, recent)
    report = report_of(engine, Window.last(1, NOW))
    expected = set()
    for name in ATTRIBUTES:
        judged = report.get(name)
        if judged.kind == "numeric":
            p_value = ks_2samp(raw_df[name], recent[name]).pvalue
        else:
            cats = list(judged.bins)
            table = np.array([raw_df[name].value_counts().reindex(cats, fill_value=0),
                              recent[name].value_counts().reindex(cats, fill_value=0)])  # fmt: skip
            table = table[:, table.sum(axis=0) > 0]
            p_value = chi2_contingency(table).pvalue if table.shape[1] >= 2 else 1.0
        if judged.psi >= DEFAULT_THRESHOLDS.drift_act_psi and p_value < DEFAULT_THRESHOLDS.drift_p_value:
            expected.add(name)
    assert expected == {"absences", "Mjob"}
    assert {a.attribute for a in report.drifted} == expected
    assert report.summary() == f"2 of {len(ATTRIBUTES)} attributes drifted" == "2 of 30 attributes drifted"
    table = report.table()
    assert set(table["verdict"]) <= set(drift.VERDICTS)
    assert table["verdict"].tolist()[:2] == ["drifted", "drifted"] and "drifted" not in table["verdict"].tolist()[2:]
    from model.monitoring.alerts import check_rules

    with db.session_scope(engine) as session:
        [firing] = [f for f in check_rules(session, get_settings(), NOW) if f.rule == "max_psi"]
    assert firing.detail["drifted"] == sorted(expected) and "2 of 30 attributes drifted" in firing.message


def test_too_few_rows_give_no_verdict_and_a_large_sample_is_judged_by_psi(
    engine: sa.Engine, raw_df: pd.DataFrame, monkeypatch: pytest.MonkeyPatch
) -> None:
    log_students(engine, shifted(raw_df).iloc[:150])
    report = report_of(engine, Window.last(1, NOW))
    assert report.too_few_rows and {a.verdict for a in report.attributes} == {"too few rows"}
    assert report.summary().startswith("No verdict: 150 recent rows")
    from model.monitoring.alerts import check_rules

    with db.session_scope(engine) as session:
        assert [f for f in check_rules(session, get_settings(), NOW) if f.rule == "max_psi"] == []
    # the same rows as a "large" sample: the PSI alone decides, whatever the test's p-value
    monkeypatch.setenv("MATHSIGHT_ALERT_MIN_DRIFT_ROWS", "100")
    monkeypatch.setenv("MATHSIGHT_DRIFT_LARGE_ROWS", "120")
    monkeypatch.setenv("MATHSIGHT_DRIFT_P_VALUE", "1e-300")
    get_settings.cache_clear()
    large = report_of(engine, Window.last(1, NOW))
    assert {a.attribute for a in large.drifted} == {a.attribute for a in large.to_act_on} >= {"absences"}
    assert all("large sample" in a.decided_by for a in large.attributes)
