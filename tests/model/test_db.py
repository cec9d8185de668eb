"""The engine factory, session scope, migrations and table types, on SQLite and PostgreSQL."""

from __future__ import annotations

import math
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import pytest
import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from model.settings import PROJECT_ROOT, get_settings
from model.store import db
from model.store.tables import ApiKey, AuditLog, Base, Feedback, PredictionLog, User


@pytest.fixture(autouse=True)
def _fresh_engines() -> Iterator[None]:
    yield
    db.dispose_engines()


@pytest.fixture
def engine(db_url: str) -> sa.Engine:
    db.migrate(db_url)
    return db.get_engine(db_url)


def _user(username: str = "ada", **extra: object) -> User:
    values = {"username": username, "name": "Ada", "password_hash": "x", "role": "teacher", **extra}
    return User(**values)


def test_migrate_builds_the_schema_of_the_metadata(db_url: str) -> None:
    assert db.current_revision(db_url) is None
    assert db.migrate(db_url) == db.head_revision()
    with db.get_engine(db_url).connect() as connection:
        diffs = compare_metadata(MigrationContext.configure(connection), Base.metadata)
    assert diffs == []


def test_migrating_twice_is_a_no_op(engine: sa.Engine) -> None:
    with db.session_scope(engine) as session:
        session.add(_user())
    assert db.migrate(engine) == db.head_revision()
    assert db.current_revision(engine) == db.head_revision()
    with db.session_scope(engine) as session:
        assert session.scalar(sa.select(sa.func.count()).select_from(User)) == 1


def test_migrate_does_not_depend_on_the_working_directory(
    db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    assert db.migrate(db_url) == db.head_revision()


def test_concurrent_migrations_from_several_processes(db_url: str) -> None:
    code = "import sys; from model.store import db; print(db.migrate(sys.argv[1]))"
    processes = [
        subprocess.Popen([sys.executable, "-c", code, db_url], cwd=PROJECT_ROOT, stdout=subprocess.PIPE, text=True)
        for _ in range(4)
    ]
    outputs = [process.communicate(timeout=120)[0].strip() for process in processes]
    assert [process.returncode for process in processes] == [0] * 4
    assert outputs == [db.head_revision()] * 4
    with db.get_engine(db_url).connect() as connection:
        assert connection.scalar(sa.text("SELECT count(*) FROM alembic_version")) == 1


@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
def test_postgres_search_path_in_the_url_is_honoured(db_url: str) -> None:
    schema = db_url.rsplit("%3D", 1)[1]
    db.migrate(db_url)
    with db.get_engine(db_url).connect() as connection:
        tables = set(
            connection.scalars(
                sa.text("SELECT table_name FROM information_schema.tables WHERE table_schema = :s"),
                {"s": schema},
            )
        )
    assert {"alembic_version", "model_version", "prediction_log", "users"} <= tables


def test_engines_are_cached_per_url_and_disposed(db_url: str) -> None:
    engine = db.get_engine(db_url)
    assert db.get_engine(db_url) is engine
    db.dispose_engines()
    assert db.get_engine(db_url) is not engine


def test_default_url_comes_from_settings_and_sqlite_parent_dir_is_created(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "nested" / "deeper" / "mathsight.db"
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{path}")
    get_settings.cache_clear()
    engine = db.get_engine()
    assert engine.url.database == str(path)
    with engine.connect() as connection:
        connection.execute(sa.text("SELECT 1"))
    assert path.is_file()


def test_sqlite_connections_use_wal_foreign_keys_and_a_busy_timeout(tmp_path: Path) -> None:
    engine = db.get_engine(f"sqlite:///{tmp_path / 'p.db'}")
    with engine.connect() as connection:
        assert connection.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert connection.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
        assert connection.exec_driver_sql("PRAGMA busy_timeout").scalar() == db.SQLITE_BUSY_TIMEOUT_MS


def test_session_scope_commits_on_success_and_rolls_back_on_error(engine: sa.Engine) -> None:
    with db.session_scope(engine) as session:
        session.add(_user("kept"))
    with pytest.raises(RuntimeError), db.session_scope(engine) as session:
        session.add(_user("dropped"))
        session.flush()
        raise RuntimeError("boom")
    with db.session_scope(engine) as session:
        assert list(session.scalars(sa.select(User.username))) == ["kept"]


def test_datetimes_come_back_aware_in_utc(engine: sa.Engine) -> None:
    lisbon_summer = datetime(2026, 6, 1, 14, 30, tzinfo=timezone(timedelta(hours=1)))
    with db.session_scope(engine) as session:
        session.add(_user(locked_until=lisbon_summer))
    with db.session_scope(engine) as session:
        user = session.scalars(sa.select(User)).one()
        assert user.locked_until == lisbon_summer
        assert user.locked_until.tzinfo == UTC
        assert user.locked_until.hour == 13
        assert user.created_at.tzinfo == UTC
        assert abs(datetime.now(UTC) - user.created_at) < timedelta(minutes=1)


def test_naive_datetimes_are_refused(engine: sa.Engine) -> None:
    with pytest.raises(sa.exc.StatementError, match="naive datetime"), db.session_scope(engine) as session:
        session.add(_user(locked_until=datetime(2026, 1, 1)))


def test_json_columns_accept_numpy_values_and_nan(engine: sa.Engine) -> None:
    detail = {"auc": np.float64(0.8), "n": np.int64(3), "cuts": np.array([1.5, 2.5]), "rmse": math.nan}
    with db.session_scope(engine) as session:
        session.add(AuditLog(actor="t", action="test.json", detail=detail))
    with db.session_scope(engine) as session:
        stored = session.scalars(sa.select(AuditLog.detail)).one()
    assert stored == {"auc": 0.8, "n": 3, "cuts": [1.5, 2.5], "rmse": None}


def test_check_constraints_refuse_unknown_enum_values(engine: sa.Engine) -> None:
    with pytest.raises(sa.exc.IntegrityError), db.session_scope(engine) as session:
        session.add(_user(role="superuser"))
    row = {"request_id": "r", "channel": "fax", "status": "ok"}
    with pytest.raises(sa.exc.IntegrityError), db.session_scope(engine) as session:
        session.execute(sa.insert(PredictionLog), [row])


def test_foreign_keys_are_enforced(engine: sa.Engine) -> None:
    with pytest.raises(sa.exc.IntegrityError), db.session_scope(engine) as session:
        session.add(ApiKey(prefix="ms_abc", key_hash="h", user_id=999, scope="predict"))


def test_prediction_log_bulk_insert_autoincrements_and_keys_are_unique(engine: sa.Engine) -> None:
    rows = [{"request_id": "req-1", "channel": "api", "status": "ok", "idempotency_key": f"k-{i}"} for i in range(3)]
    with db.session_scope(engine) as session:
        session.execute(sa.insert(PredictionLog), rows)
    with db.session_scope(engine) as session:
        logged = session.scalars(sa.select(PredictionLog).order_by(PredictionLog.id)).all()
        assert [r.id for r in logged] == sorted({r.id for r in logged})
        assert len(logged) == 3
        assert not any(r.is_demo for r in logged)
        assert all(r.created_at.tzinfo == UTC for r in logged)
    with pytest.raises(sa.exc.IntegrityError), db.session_scope(engine) as session:
        session.execute(sa.insert(PredictionLog), [rows[0]])


def test_binary_not_useful_remarks_migrate_to_the_not_useful_category(db_url: str) -> None:
    engine = db.get_engine(db_url)
    with engine.begin() as connection:
        command.upgrade(db.alembic_config(connection), "0010_grade_v2")
    with engine.begin() as connection:
        (log_id,) = connection.execute(
            sa.insert(PredictionLog).values(request_id="r", channel="ui", status="ok").returning(PredictionLog.id)
        ).one()
        connection.execute(sa.text("INSERT INTO feedback (prediction_id, reason, created_at) VALUES (:p, :r, :t)"),
                           {"p": log_id, "r": "looks off", "t": datetime(2026, 11, 30, tzinfo=UTC)})  # fmt: skip
    db.migrate(db_url)
    with engine.connect() as connection:
        rows = connection.execute(sa.select(Feedback.prediction_id, Feedback.category, Feedback.reason)).all()
    assert [tuple(r) for r in rows] == [(log_id, "not_useful", "looks off")]
    with pytest.raises(sa.exc.IntegrityError), db.session_scope(engine) as session:
        session.execute(sa.insert(Feedback).values(prediction_id=log_id, category="meh"))
