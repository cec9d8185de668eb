"""Retention: log rows older than N days go, with their feedback; newer rows, outcomes and audit stay."""

from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa

from model.cli import main as cli
from model.serving.predlog.writer import write_log
from model.settings import get_settings
from model.store import retention
from model.store.db import get_engine, migrate, session_scope
from model.store.tables import Feedback, Outcome, PredictionLog, utcnow

AGES_DAYS = (400, 91, 89, 1, 0)


def _seed(url: str) -> sa.Engine:
    """One log row per age in AGES_DAYS, each with one feedback row, and one outcome."""
    engine = get_engine(url)
    migrate(engine)
    now = utcnow()
    write_log(engine, get_settings(), [{"request_id": f"age-{days}", "channel": "ui", "status": "ok",
                                        "student_key": "k1", "created_at": now - timedelta(days=days, minutes=1)}
                                       for days in AGES_DAYS])  # fmt: skip
    with engine.begin() as connection:
        ids = connection.execute(sa.select(PredictionLog.id)).scalars().all()
        connection.execute(
            sa.insert(Feedback), [{"prediction_id": i, "category": "not_useful", "reason": "looks off"} for i in ids]
        )
        connection.execute(sa.insert(Outcome), [{"student_key": "k1", "g3": 12}])
    return engine


def _left(engine: sa.Engine) -> tuple[list[str], int, int]:
    with engine.connect() as connection:
        requests = connection.execute(sa.select(PredictionLog.request_id).order_by(PredictionLog.id)).scalars().all()
        n_feedback = connection.scalar(sa.select(sa.func.count()).select_from(Feedback))
        n_outcomes = connection.scalar(sa.select(sa.func.count()).select_from(Outcome))
    return list(requests), n_feedback, n_outcomes


def purge_old(engine: sa.Engine, days: int, **options: bool) -> retention.PurgeResult:
    with session_scope(engine) as session:
        return retention.purge_old(session, days, **options)


def test_purge_deletes_old_rows_and_their_feedback_only(db_url: str) -> None:
    engine = _seed(db_url)
    dry = purge_old(engine, 90, dry_run=True)
    assert (dry.log_rows, dry.feedback_rows, dry.dry_run) == (2, 2, True)
    assert len(_left(engine)[0]) == 5
    done = purge_old(engine, 90)
    assert (done.log_rows, done.feedback_rows) == (2, 2)
    assert _left(engine) == (["age-89", "age-1", "age-0"], 3, 1)
    assert purge_old(engine, 90).log_rows == 0
    with pytest.raises(ValueError, match="at least 1 day"):
        purge_old(engine, 0)


def test_retention_command_uses_the_setting(db_url: str, monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    engine = _seed(db_url)
    monkeypatch.setenv("DATABASE_URL", db_url)
    get_settings.cache_clear()
    assert cli.main(["retention"]) == 2
    assert "pass --days N or set MATHSIGHT_RETENTION_DAYS" in capsys.readouterr().err
    assert cli.main(["retention", "--days", "30", "--dry-run"]) == 0
    assert capsys.readouterr().out.startswith("would delete 3 prediction log rows and 3 feedback rows")
    monkeypatch.setenv("MATHSIGHT_RETENTION_DAYS", "2")
    get_settings.cache_clear()
    assert cli.main(["retention"]) == 0
    assert capsys.readouterr().out.startswith("deleted 3 prediction log rows and 3 feedback rows")
    assert _left(engine)[0] == ["age-1", "age-0"]
