"""``python -m dashboard.users`` as a script would run it: password on standard input, exit codes."""

from __future__ import annotations

import os
import subprocess
import sys

from model.accounts import users
from model.store.db import get_engine, session_scope
from tests.dashboard.conftest import ROOT


def _cli(db_url: str, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DATABASE_URL": db_url}
    return subprocess.run([sys.executable, "-m", "dashboard.users", *args], input=stdin, capture_output=True,
                          text=True, cwd=ROOT, env=env, timeout=120)  # fmt: skip


def test_add_list_deactivate_from_the_command_line(db_url: str) -> None:
    added = _cli(db_url, "add", "Ann", "--role", "teacher", "--name", "Ann Teacher", stdin="ann-password-1\n")
    assert (added.returncode, added.stdout.strip()) == (0, "added teacher ann"), added.stderr
    assert "ann-password-1" not in added.stdout + added.stderr
    with session_scope(get_engine(db_url)) as session:
        assert users.check_password(session, "ann", "ann-password-1") is not None
    listed = _cli(db_url, "list")
    assert "ann" in listed.stdout and "Ann Teacher" in listed.stdout and "$2" not in listed.stdout
    assert _cli(db_url, "deactivate", "ann").returncode == 0
    with session_scope(get_engine(db_url)) as session:
        assert users.check_password(session, "ann", "ann-password-1") is None


def test_refusals_exit_with_code_2_and_a_reason(db_url: str) -> None:
    weak = _cli(db_url, "add", "ann", "--role", "teacher", stdin="short\n")
    assert weak.returncode == 2 and "at least 10" in weak.stderr
    missing = _cli(db_url, "deactivate", "ghost")
    assert missing.returncode == 2 and 'no user "ghost"' in missing.stderr
