"""API fixtures: users with keys in a database with active models, a test client, a real uvicorn."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from api.main import create_app
from api.settings import ApiSettings
from model.accounts.apikeys import create_key
from model.accounts.users import create_user
from model.settings import PROJECT_ROOT, Settings, get_settings
from model.store.db import get_engine, session_scope
from tests.servers import free_port, stop_process, wait_healthy

PASSWORD = "correct-horse-battery"


@dataclass(frozen=True)
class Keys:
    """A teacher with a predict key and an admin with an admin key."""

    predict: str
    admin: str
    teacher_id: int
    admin_id: int


def make_user(url: str, username: str, role: str) -> int:
    with session_scope(get_engine(url)) as session:
        return create_user(session, username, PASSWORD, role=role, actor="pytest").id


def make_keys(url: str, settings: Settings | None = None) -> Keys:
    """Two users and their keys, hashed under ``settings`` (default: the process's settings)."""
    teacher_id, admin_id = make_user(url, "teacher1", "teacher"), make_user(url, "admin1", "admin")
    settings = settings or get_settings()
    with session_scope(get_engine(url)) as session:
        return Keys(create_key(session, teacher_id, "predict", settings=settings)[0],
                    create_key(session, admin_id, "admin", settings=settings)[0], teacher_id, admin_id)  # fmt: skip


@pytest.fixture
def keys(app_db_url: str) -> Keys:
    return make_keys(app_db_url)


@pytest.fixture
def make_client(app_db_url: str, keys: Keys) -> Iterator[Callable[..., TestClient]]:
    """Clients on the app database with settings overridden by keyword (e.g. ``api_rate_limit=2``)."""
    clients: list[TestClient] = []

    def make(**overrides: Any) -> TestClient:
        client = TestClient(create_app(ApiSettings(database_url=app_db_url, **overrides)))
        client.__enter__()
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.__exit__(None, None, None)


@pytest.fixture
def client(make_client: Callable[..., TestClient]) -> TestClient:
    return make_client()


@dataclass(frozen=True)
class LiveServer:
    url: str
    keys: Keys
    home: Path


@contextmanager
def running_server(home: Path, template: Path, workers: int = 1, **env_extra: str) -> Iterator[LiveServer]:
    """A real uvicorn on 127.0.0.1 (a subprocess, ``workers`` worker processes) serving a copy of the
    template database in ``home``."""
    db = home / "app.db"
    shutil.copy(template, db)
    env = {**os.environ, "DATABASE_URL": f"sqlite:///{db}", "MATHSIGHT_HOME": str(home), "MATHSIGHT_ENV": "test",
           "MATHSIGHT_SECRET_KEY": "test-secret-key-0123456789abcdef",
           "MATHSIGHT_COOKIE_KEY": "test-cookie-key-0123456789abcdef", **env_extra}  # fmt: skip
    with pytest.MonkeyPatch.context() as patch:
        for name in ("DATABASE_URL", "MATHSIGHT_HOME", "MATHSIGHT_SECRET_KEY"):
            patch.setenv(name, env[name])
        get_settings.cache_clear()
        keys = make_keys(env["DATABASE_URL"])
    get_settings.cache_clear()
    port = free_port()
    command = [sys.executable, "-m", "uvicorn", "api.main:app", "--host", "127.0.0.1", "--port", str(port)]
    if workers > 1:
        command += ["--workers", str(workers)]
    log = (home / "uvicorn.log").open("wb")
    process = subprocess.Popen(command, cwd=PROJECT_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        try:
            wait_healthy(url, process)
        except (RuntimeError, TimeoutError) as error:
            pytest.fail(f"{error}\n{(home / 'uvicorn.log').read_text(errors='replace')[-3000:]}")
        yield LiveServer(url, keys, home)
    finally:
        log.close()
        stop_process(process)


@pytest.fixture(scope="module")
def live_server(tmp_path_factory: pytest.TempPathFactory, _template_sqlite: Path) -> Iterator[LiveServer]:
    """A real uvicorn with a rate limit of 5 requests per minute."""
    with running_server(tmp_path_factory.mktemp("live"), _template_sqlite, MATHSIGHT_API_RATE_LIMIT="5") as server:
        yield server
