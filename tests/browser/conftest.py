"""Real-browser fixtures: the dashboard started for real on a free port, and headless Debian Chromium.

The app runs as ``python -m streamlit run dashboard/server.py`` with its own MATHSIGHT_HOME and a
temporary SQLite database holding active models (a copy of the session's template) and two teachers;
the first admin is created by the app itself from ``MATHSIGHT_ADMIN_PASSWORD``. Chromium is Debian's
(``/usr/bin/chromium``) driven by Playwright; without it these tests skip, except in CI
(``CI=true`` or ``REQUIRE_POSTGRES=1``) where they fail.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright

from tests.browser.ui import ADMIN, ROOT, SECOND_TEACHER, TEACHER, TIMEOUT_MS, Account
from tests.conftest import TEST_ENV
from tests.servers import free_port, stop_process

CHROMIUM = Path(os.environ.get("MATHSIGHT_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]  # fmt: skip
REQUIRED = os.environ.get("CI") == "true" or os.environ.get("REQUIRE_POSTGRES") == "1"
STARTUP_SECONDS = 90
VIEWPORT = {"width": 1400, "height": 1000}
LOG_TAIL = 6_000

expect.set_options(timeout=TIMEOUT_MS)


@dataclass
class LiveApp:
    """The running dashboard: its address, database, environment and server log."""

    url: str
    database_url: str
    env: dict[str, str]
    log_path: Path
    process: subprocess.Popen

    def log_tail(self) -> str:
        """The end of the server's output (stdout and stderr)."""
        text = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
        return text[-LOG_TAIL:]

    def run_cli(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
        """Run ``python -m model ARGS`` against the app's database and home; fails the test on a non-zero exit."""
        done = subprocess.run([sys.executable, "-m", "model", *args], cwd=ROOT, env=self.env, capture_output=True,
                              text=True, timeout=timeout)  # fmt: skip
        assert done.returncode == 0, f"python -m model {' '.join(args)} exited {done.returncode}:\n{done.stderr}"
        return done


def create_users(database_url: str, accounts: list[Account]) -> None:
    from model.accounts import users
    from model.store.db import get_engine, session_scope

    engine = get_engine(database_url)
    with session_scope(engine) as session:
        for account in accounts:
            users.create_user(session, account.username, account.password, role="teacher", name=account.name,
                              actor="pytest")  # fmt: skip
    engine.dispose()


def _healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as response:  # noqa: S310 (local http)
            return response.status == 200
    except (urllib.error.URLError, ConnectionError, TimeoutError):
        return False


def _wait_until_healthy(app: LiveApp) -> None:
    """Poll the health endpoint until it answers, the server dies or the deadline passes."""
    deadline = time.monotonic() + STARTUP_SECONDS
    while not _healthy(app.url):
        try:
            code = app.process.wait(timeout=0.25)  # doubles as the poll interval; returns at once if it died
        except subprocess.TimeoutExpired:
            code = None
        if code is not None:
            pytest.fail(f"the dashboard exited with code {code} while starting:\n{app.log_tail()}")
        if time.monotonic() > deadline:
            pytest.fail(f"the dashboard did not answer /_stcore/health within {STARTUP_SECONDS} s:\n{app.log_tail()}")


@pytest.fixture(scope="session")
def chromium() -> Path:
    """Debian's Chromium; skips the browser tests when missing, except in CI."""
    if not CHROMIUM.is_file():
        message = f"{CHROMIUM} is missing (apt-get install chromium, or `make browser`)"
        if REQUIRED:
            pytest.fail(f"browser tests are required in CI but {message}")
        pytest.skip(message)
    return CHROMIUM


def start_dashboard(database_url: str, where: Path, secrets_file: Path | None = None) -> LiveApp:
    """``streamlit run dashboard/server.py`` on a free 127.0.0.1 port over ``database_url``, state in ``where``
    (and Streamlit's secrets from ``secrets_file``, e.g. an ``[auth]`` table); returns once it answers its
    health check."""
    env = {**os.environ, **TEST_ENV, "MATHSIGHT_HOME": str(where / "home"), "DATABASE_URL": database_url,
           "MATHSIGHT_ADMIN_PASSWORD": ADMIN.password, "PYTHONUNBUFFERED": "1"}  # fmt: skip
    port = free_port()
    log_path = where / "server.log"
    command = [sys.executable, "-m", "streamlit", "run", "dashboard/server.py", "--server.port", str(port),
               "--server.address", "127.0.0.1", "--server.headless", "true", "--server.fileWatcherType", "none",
               "--browser.gatherUsageStats", "false"]  # fmt: skip
    if secrets_file is not None:
        command += ["--secrets.files", str(secrets_file)]
    with log_path.open("wb") as log:
        process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    app = LiveApp(f"http://127.0.0.1:{port}", database_url, env, log_path, process)
    try:
        _wait_until_healthy(app)
    except BaseException:
        stop_process(process, timeout=15)
        raise
    return app


@pytest.fixture(scope="session")
def live_app(chromium: Path, _template_sqlite: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveApp]:
    """The dashboard served on a free 127.0.0.1 port, with active models, an admin and two teachers."""
    where = tmp_path_factory.mktemp("live-app")
    shutil.copy(_template_sqlite, where / "app.db")
    database_url = f"sqlite:///{where / 'app.db'}"
    create_users(database_url, [TEACHER, SECOND_TEACHER])
    app = start_dashboard(database_url, where)
    try:
        yield app
    finally:
        stop_process(app.process, timeout=15)


@pytest.fixture(scope="session")
def browser(chromium: Path) -> Iterator[Browser]:
    """One headless Chromium for the session."""
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(chromium), args=CHROMIUM_ARGS, headless=True)
        yield browser
        browser.close()


@pytest.fixture
def new_page(browser: Browser, live_app: LiveApp) -> Iterator[Callable[..., Page]]:
    """A factory of pages, each in its own browser context (its own cookies: one person each)."""
    contexts = []

    def make(locale: str = "en-US") -> Page:
        """A page in a browser whose language is ``locale`` (``navigator.language``; pt-PT: Portuguese)."""
        context = browser.new_context(base_url=live_app.url, viewport=VIEWPORT, accept_downloads=True, locale=locale)
        context.set_default_timeout(TIMEOUT_MS)
        contexts.append(context)
        return context.new_page()

    yield make
    for context in contexts:
        context.close()


@pytest.fixture
def page(new_page: Callable[[], Page]) -> Page:
    """A fresh page on the live app (nobody signed in)."""
    return new_page()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> Iterator[None]:
    """On a failed browser test, add the end of the server's log to the report."""
    report = yield
    app = item.funcargs.get("live_app") if hasattr(item, "funcargs") else None
    if report.failed and isinstance(app, LiveApp):
        report.sections.append(("mathsight server log (tail)", app.log_tail()))
    return report
