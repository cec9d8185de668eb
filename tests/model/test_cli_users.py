"""``python -m model users ...`` and its old entry ``python -m dashboard.users ...`` (a forwarder), as a
script would run them: password on standard input, exit codes."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from collections.abc import Callable, Sequence

import pytest

from dashboard.users import main as old_main
from model.accounts import users
from model.cli.main import main as cli_main
from model.settings import PROJECT_ROOT, get_settings
from model.store.db import get_engine, session_scope

ENTRIES = {"model users": ["model", "users"], "dashboard.users": ["dashboard.users"]}
IN_PROCESS: dict[str, Callable[[Sequence[str]], int]] = {
    "model users": lambda argv: cli_main(["users", *argv]),
    "dashboard.users": old_main,
}


def _script(entry: str, db_url: str, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DATABASE_URL": db_url}
    return subprocess.run([sys.executable, "-m", *ENTRIES[entry], *args], input=stdin, capture_output=True,
                          text=True, cwd=PROJECT_ROOT, env=env, timeout=120)  # fmt: skip


@pytest.fixture
def configured(db_url: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """``db_url`` as the configured database of commands run in this process."""
    monkeypatch.setenv("DATABASE_URL", db_url)
    get_settings.cache_clear()
    return db_url


def _run(entry: str, monkeypatch: pytest.MonkeyPatch, *args: str, stdin: str = "") -> int:
    monkeypatch.setattr(sys, "stdin", io.StringIO(stdin))
    return IN_PROCESS[entry](list(args))


@pytest.mark.parametrize("entry", ENTRIES)
def test_add_list_deactivate_from_the_command_line(entry: str, db_url: str) -> None:
    added = _script(entry, db_url, "add", "Ann", "--role", "teacher", "--name", "Ann Teacher", stdin="ann-password-1\n")
    assert (added.returncode, added.stdout.strip()) == (0, "added teacher ann"), added.stderr
    assert "ann-password-1" not in added.stdout + added.stderr
    with session_scope(get_engine(db_url)) as session:
        assert users.check_password(session, "ann", "ann-password-1") is not None
    listed = _script(entry, db_url, "list")
    assert "ann" in listed.stdout and "Ann Teacher" in listed.stdout and "$2" not in listed.stdout
    assert _script(entry, db_url, "deactivate", "ann").returncode == 0
    with session_scope(get_engine(db_url)) as session:
        assert users.check_password(session, "ann", "ann-password-1") is None


@pytest.mark.parametrize("entry", ENTRIES)
def test_refusals_exit_with_code_2_and_a_reason(
    entry: str, configured: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _run(entry, monkeypatch, "add", "ann", "--role", "teacher", stdin="short\n") == 2
    assert "at least 10" in capsys.readouterr().err
    assert _run(entry, monkeypatch, "add", "ann", "--role", "teacher", stdin="password12\n") == 2
    common = capsys.readouterr().err
    assert "too easy to guess: This is a very common password" in common and "Traceback" not in common
    assert _run(entry, monkeypatch, "deactivate", "ghost") == 2
    assert 'no user "ghost"' in capsys.readouterr().err


def test_set_password_and_reactivate(configured: str, monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    assert _run("model users", monkeypatch, "add", "bob", "--role", "teacher", stdin="bob-password-1\n") == 0
    assert _run("model users", monkeypatch, "set-password", "bob", stdin="bob-password-2\r\n") == 0
    assert _run("model users", monkeypatch, "deactivate", "bob") == 0
    assert _run("model users", monkeypatch, "activate", "bob") == 0
    said = capsys.readouterr().out.splitlines()
    assert said == ["added teacher bob", "password of bob replaced", "bob deactivated", "bob reactivated"]
    with session_scope(get_engine(configured)) as session:
        assert users.check_password(session, "bob", "bob-password-1") is None
        assert users.check_password(session, "bob", "bob-password-2") is not None
