"""Shared fixtures: the real data set, a temporary SQLite file and a PostgreSQL schema per session."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
import sqlalchemy as sa

from model.settings import SHARED_DATA_DIR, get_settings

POSTGRES_ADMIN_URL = os.environ.get("MATHSIGHT_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
REQUIRE_POSTGRES = os.environ.get("REQUIRE_POSTGRES") == "1" or os.environ.get("CI") == "true"


@pytest.fixture(scope="session")
def student_csv_path() -> Path:
    path = SHARED_DATA_DIR / "student-mat.csv"
    if not path.is_file():
        pytest.fail(f"the UCI maths file is needed at {path}")
    return path


@pytest.fixture(scope="session")
def raw_df(student_csv_path: Path) -> pd.DataFrame:
    from model.ml.dataset import load_raw

    return load_raw(student_csv_path)


TEST_ENV = {
    "MATHSIGHT_ENV": "test",
    "MATHSIGHT_SECRET_KEY": "test-secret-key-0123456789abcdef",
    "MATHSIGHT_COOKIE_KEY": "test-cookie-key-0123456789abcdef",
}


def _apply_test_env(patch: pytest.MonkeyPatch, home: Path) -> None:
    patch.setenv("MATHSIGHT_HOME", str(home))
    for name, value in TEST_ENV.items():
        patch.setenv(name, value)
    patch.delenv("DATABASE_URL", raising=False)
    get_settings.cache_clear()


@pytest.fixture(scope="session", autouse=True)
def _session_settings(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Session fixtures (trained models, template databases) see the same test secrets as tests."""
    with pytest.MonkeyPatch.context() as patch:
        _apply_test_env(patch, tmp_path_factory.mktemp("session-home"))
        yield
    get_settings.cache_clear()


@pytest.fixture(autouse=True)
def _isolated_settings(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Every test gets its own local state directory and a fixed secret, never the developer's."""
    from model.accounts import users

    _apply_test_env(monkeypatch, tmp_path_factory.mktemp("home"))
    monkeypatch.setattr(users, "CLIENT_THROTTLE", users.DatabaseClientThrottle())  # its state: the test's database
    yield
    get_settings.cache_clear()


def _postgres_schema_url() -> str:
    engine = sa.create_engine(POSTGRES_ADMIN_URL)
    schema = f"t_{uuid.uuid4().hex[:12]}"
    try:
        with engine.begin() as conn:
            conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    except sa.exc.OperationalError as exc:
        engine.dispose()
        if REQUIRE_POSTGRES:
            pytest.fail(f"PostgreSQL is required (REQUIRE_POSTGRES=1/CI) but unreachable: {exc}")
        pytest.skip("PostgreSQL not reachable on 127.0.0.1:5432")
    engine.dispose()
    return f"{POSTGRES_ADMIN_URL}?options=-csearch_path%3D{schema}"


def _drop_postgres_schema(url: str) -> None:
    schema = url.rsplit("%3D", 1)[1]
    engine = sa.create_engine(POSTGRES_ADMIN_URL)
    with engine.begin() as conn:
        conn.execute(sa.text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
    engine.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty database, migrated by the test itself: a fresh SQLite file or PostgreSQL schema."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'test.db'}"
        return
    url = _postgres_schema_url()
    try:
        yield url
    finally:
        from model.store import db

        db.dispose_engines()
        _drop_postgres_schema(url)


@pytest.fixture(scope="session")
def trained_models(raw_df: pd.DataFrame) -> dict:
    """Setup -> a GradeModel fitted on all 395 real students (default parameters, seed 0)."""
    from model.ml.training import train_setup

    return {setup: train_setup(raw_df, setup, runs=0) for setup in ("early", "period1", "period2")}


def register_trained(engine: sa.Engine, trained, created_by: str = "pytest", activate: bool = False) -> str:
    """Register one trained version (activated if asked) in its own transaction, under the test settings."""
    from model.ml.training import register
    from model.store.db import session_scope

    with session_scope(engine) as session:
        return register(session, trained, created_by, activate, settings=get_settings())


def install_models(url: str, trained: dict) -> dict[str, str]:
    """Migrate the database at ``url`` and register + activate the trained versions; setup -> id."""
    from model.ml.training import register
    from model.store.db import get_engine, migrate, session_scope

    engine = get_engine(url)
    migrate(engine)
    settings = get_settings()
    with session_scope(engine) as session:
        return {setup: register(session, version, created_by="pytest", activate=True, settings=settings)
                for setup, version in trained.items()}  # fmt: skip


@pytest.fixture
def models_db_url(db_url: str, trained_models: dict) -> str:
    """``db_url`` (SQLite and PostgreSQL) migrated, with an active model per setup."""
    install_models(db_url, trained_models)
    return db_url


@pytest.fixture(scope="session")
def _template_sqlite(tmp_path_factory: pytest.TempPathFactory, trained_models: dict) -> Path:
    from model.store import db

    path = tmp_path_factory.mktemp("template") / "template.db"
    url = f"sqlite:///{path}"
    install_models(url, trained_models)
    db.get_engine(url).dispose()
    db.dispose_engines()
    return path


@pytest.fixture
def app_db_url(_template_sqlite: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """A fresh SQLite file with active models, set as DATABASE_URL for the code under test."""
    import shutil

    target = tmp_path / "app.db"
    shutil.copy(_template_sqlite, target)
    url = f"sqlite:///{target}"
    monkeypatch.setenv("DATABASE_URL", url)
    get_settings.cache_clear()
    return url


def swap_artifact(url: str, into: str, source: str) -> str:
    """The attack of issue 16: copy the active ``source`` version's artifact, SHA-256 and HMAC into the
    active ``into`` version's row (e.g. the early model under a period2 id); returns the victim's id."""
    import sqlalchemy as sa

    from model.store.db import get_engine, session_scope
    from model.store.registry import active_version_ids, get_version
    from model.store.tables import ModelVersion

    with session_scope(get_engine(url)) as session:
        active = active_version_ids(session)
        donor = get_version(session, active[source])
        stolen = {"artifact": bytes(donor.artifact), "artifact_sha256": donor.artifact_sha256,
                  "artifact_hmac": donor.artifact_hmac}  # fmt: skip
        session.execute(sa.update(ModelVersion).where(ModelVersion.id == active[into]).values(**stolen))
        return active[into]
