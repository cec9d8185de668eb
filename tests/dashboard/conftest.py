"""Dashboard fixtures: real user accounts in the app database and AppTest helpers."""

from __future__ import annotations

import html
import re
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from dashboard.auth import SESSION_KEY
from dashboard.context import USER_KEY, CurrentUser
from dashboard.language import LANGUAGE_KEY
from model.accounts import users
from model.store.db import get_engine, session_scope

ROOT = Path(__file__).resolve().parents[2]
APP = ROOT / "dashboard" / "app.py"
TIMEOUT = 30


@dataclass(frozen=True)
class Account:
    """A user row created for a test, with the password that signs it in."""

    user: CurrentUser
    password: str


def _create(url: str, username: str, role: str, password: str) -> Account:
    with session_scope(get_engine(url)) as session:
        info = users.create_user(session, username, password, role=role, name=username.title(), actor="pytest")
    return Account(CurrentUser(info.id, info.username, info.name, info.role), password)


@pytest.fixture
def admin_account(app_db_url: str) -> Account:
    """An active admin (so the app creates no first admin of its own)."""
    return _create(app_db_url, "head", "admin", "head-password-1")


@pytest.fixture
def teacher_account(app_db_url: str, admin_account: Account) -> Account:
    """An active teacher."""
    return _create(app_db_url, "tina", "teacher", "tina-password-1")


def app_test() -> AppTest:
    """The whole app (login, navigation), as a browser would open it."""
    return AppTest.from_file(str(APP), default_timeout=TIMEOUT)


def page_test(page: str, user: CurrentUser | None, language: str | None = None) -> AppTest:
    """One page run directly, as ``user`` (the way the entry script leaves the session; None: nobody),
    in ``language`` (``"pt_PT"``; None: the default, English)."""
    at = AppTest.from_file(str(ROOT / "pages" / page), default_timeout=TIMEOUT)
    if language is not None:
        at.session_state[LANGUAGE_KEY] = language
    return at if user is None else signed_in(at, user)


def signed_in(at: AppTest, user: CurrentUser) -> AppTest:
    """``at`` with ``user`` signed in (the user and the sign-in token the entry script leaves)."""
    at.session_state[USER_KEY] = user
    at.session_state[SESSION_KEY] = {"jti": f"pytest-{user.username}", "gen": 0, "exp": time.time() + 3600}
    return at


def download_labels(at: AppTest) -> list[str]:
    """The labels of the page's download links (:func:`dashboard.downloads.download_link`)."""
    bodies = [element.proto.body for element in at.get("html")]
    return [html.unescape(match) for body in bodies for match in re.findall(r'download="[^"]*"[^>]*>([^<]*)</a>', body)]


def log_in(at: AppTest, username: str, password: str) -> AppTest:
    """Fill and submit the real login form."""
    at.text_input[0].input(username)
    at.text_input[1].input(password)
    return at.form_submit_button[0].click().run()


def texts(at: AppTest) -> str:
    """Everything the page says in words (markdown, titles, captions, alerts, metrics)."""
    parts = [e.value for e in (*at.markdown, *at.title, *at.header, *at.subheader, *at.caption)]
    parts += [e.value for e in (*at.error, *at.success, *at.info, *at.warning)]
    parts += [f"{m.label} {m.value}" for m in at.metric]
    return "\n".join(str(p) for p in parts)


def fill_student(at: AppTest, record: dict, grades: tuple[str, ...] = (), student_id: str = "") -> AppTest:
    """Fill the predict page's form with ``record`` (the grades in ``grades`` ticked as known); not submitted."""
    from model.schema.fields import ATTRIBUTES, FIELDS, GRADES

    for name in ATTRIBUTES:
        spec, key = FIELDS[name], f"student:{name}"
        if spec.allowed is not None or (spec.kind == "ordinal" and (spec.min, spec.max) != (1, 5)):
            at.selectbox(key=key).set_value(record[name])
        elif spec.kind == "ordinal":
            at.select_slider(key=key).set_value(record[name])
        else:
            at.number_input(key=key).set_value(record[name])
    for grade in GRADES:
        at.checkbox(key=f"student:{grade}:known").set_value(grade in grades)
        at.number_input(key=f"student:{grade}").set_value(record[grade])
    at.text_input(key="student:student_id").input(student_id)
    return at
