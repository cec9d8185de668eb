"""Privacy: a realistic working day leaves no student id, student name or secret in any log.

Logging is configured as the product configures it (JSON lines into ``log_dir``), the root logger
also writes every other logger to a file at DEBUG, and pytest's captured output is checked too.
(SQL echo is left off, as in the product: it would print parameters, e.g. feedback text a teacher
typed; SECURITY.md says so.) The flow: users and an API key, a class upload with a bad row, one
student, outcomes by form and by file, feedback, the CLI, and a database outage (spool warnings).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
import sqlalchemy as sa

from model import logs
from model.accounts import apikeys
from model.accounts.users import check_password, create_user, record_login
from model.cli import main as cli
from model.serving.outcomes import record_feedback, record_outcome, record_outcomes_csv
from model.serving.predlog import spool
from model.serving.predlog.writer import write_log
from model.serving.service import ModelStore, predict_batch, predict_one
from model.settings import get_settings
from model.store import crypto
from model.store.db import get_engine, session_scope
from model.store.tables import PredictionLog

STUDENTS = ["STU-4711-Maria", "STU-4712-Jonas", "STU-4713-Lena", "STU-4714-Emre"]
NAMES = ["Maria", "Jonas", "Lena", "Emre"]
TEACHER_PASSWORD = "Correct-Horse-Battery-4711"
ADMIN_PASSWORD = "Admin-Pass-Staple-0815"
DATA_KEY = crypto.generate_key()


@pytest.fixture
def everything_logged(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """The product's JSON logging into ``tmp_path/logs`` and a DEBUG root log of every other logger."""
    monkeypatch.setenv("MATHSIGHT_LOG_DIR", str(tmp_path / "logs"))
    monkeypatch.setenv("MATHSIGHT_DATA_KEY", DATA_KEY)
    monkeypatch.setenv("MATHSIGHT_ADMIN_PASSWORD", ADMIN_PASSWORD)
    get_settings.cache_clear()
    logs.configure_logging(get_settings())
    root = logging.getLogger()
    handler = logging.FileHandler(tmp_path / "logs" / "root-debug.log", encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s"))
    old_level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    try:
        yield tmp_path / "logs"
    finally:
        root.removeHandler(handler)
        root.setLevel(old_level)
        handler.close()
        get_settings.cache_clear()
        logs.configure_logging(get_settings())  # the next tests log to their own directory again


def _class_file(raw_df: pd.DataFrame) -> str:
    frame = raw_df.head(4).drop(columns="G3").astype(object)
    frame.insert(0, "student_id", STUDENTS)
    frame.loc[1, "Mjob"] = "astronaut"  # Jonas's row is rejected: the problem names row and column only
    return frame.to_csv(index=False, sep=";")


def _working_day(url: str, raw_df: pd.DataFrame, tmp_path: Path) -> list[str]:
    """Everything a school does in a day; returns the secrets that came up on the way."""
    engine = get_engine(url)
    store = ModelStore(engine, settings=get_settings())
    with session_scope(engine) as session:
        teacher = create_user(session, "mteacher", TEACHER_PASSWORD, role="teacher", name="Mia Teacher", actor="pytest")
    with session_scope(engine) as session:
        assert check_password(session, "mteacher", TEACHER_PASSWORD) is not None
        record_login(session, "mteacher", ok=False)
    with session_scope(engine) as session:
        api_key, _ = apikeys.create_key(session, teacher.id, "predict", actor="pytest", settings=get_settings())
    with session_scope(engine) as session:
        assert apikeys.authenticate(session, api_key, settings=get_settings()) is not None

    prediction = predict_batch(store, engine, _class_file(raw_df), channel="ui", user_id=teacher.id)
    assert len(prediction.results) == 3 and prediction.rejected_rows == [3]
    record = raw_df.iloc[5].drop(["G1", "G2", "G3"]).to_dict() | {"student_id": STUDENTS[2]}
    predict_one(store, engine, record, channel="api", user_id=teacher.id)
    outcomes = "student_id;G3\n" + "\n".join(f"{s};{g}" for s, g in zip(STUDENTS, (9, 12, 14, 25), strict=True))
    with session_scope(engine) as session:
        record_outcome(session, get_settings(), STUDENTS[0], 9, teacher.id)
        assert record_outcomes_csv(session, get_settings(), outcomes, teacher.id).stored == 2  # Jonas: rejected
        first = session.scalar(sa.select(sa.func.min(PredictionLog.id)).where(PredictionLog.status == "ok"))
        record_feedback(session, first, teacher.id, "not_useful", f"{NAMES[0]} is doing much better than this")

    class_path = tmp_path / "class.csv"
    class_path.write_text(_class_file(raw_df), "utf-8")
    assert cli.main(["predict", "--input", str(class_path), "--output", str(tmp_path / "out.csv")]) == 3

    dead = sa.create_engine(f"sqlite:///{tmp_path / 'no-such-dir' / 'db.sqlite'}")
    predict_batch(store, dead, _class_file(raw_df), channel="ui", user_id=teacher.id)  # spooled
    write_log(engine, get_settings(), [{"request_id": "after-outage", "channel": "ui", "status": "ok"}])  # replays
    assert spool.pending_files(spool.spool_dir(get_settings())) == []

    settings = get_settings()
    return [settings.secret_key, settings.cookie_key, DATA_KEY, ADMIN_PASSWORD, TEACHER_PASSWORD, api_key]


def test_no_student_id_name_or_secret_reaches_any_log(
    models_db_url: str, raw_df: pd.DataFrame, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capfd, everything_logged
) -> None:
    monkeypatch.setenv("DATABASE_URL", models_db_url)
    monkeypatch.setattr(spool, "_outage_reported", False)  # this outage's first spool warns
    get_settings.cache_clear()
    secrets = _working_day(models_db_url, raw_df, tmp_path)
    assert all(len(s) >= 16 for s in secrets)

    files = sorted(p for p in everything_logged.rglob("*") if p.is_file())
    texts = {str(p): p.read_text("utf-8", errors="replace") for p in files}
    captured = capfd.readouterr()
    texts |= {"captured stdout": captured.out, "captured stderr": captured.err}
    assert '"event": "request"' in texts[str(everything_logged / logs.LOG_FILE)]
    assert "alembic" in texts[str(everything_logged / "root-debug.log")]  # other loggers were recorded
    assert "spooled for replay" in texts[str(everything_logged / logs.LOG_FILE)]

    forbidden = [*STUDENTS, *NAMES, *secrets, secrets[-1].split("_", 2)[2]]  # the API key's secret part
    leaks = {(where, word) for where, text in texts.items() for word in forbidden if word in text}
    assert leaks == set()
