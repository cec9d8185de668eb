"""Login protection: per-client back-off (core with an injected clock, and through the real login
form), audited; XSRF protection and the upload limit in the Streamlit configuration."""

from __future__ import annotations

import tomllib
from collections.abc import Iterator
from pathlib import Path

import pytest

from dashboard import auth, session_cookie
from dashboard.context import USER_KEY
from model.accounts import users
from model.store.audit import list_audit
from model.store.db import dispose_engines, get_engine, migrate, session_scope
from tests.conftest import _drop_postgres_schema, _postgres_schema_url
from tests.dashboard.conftest import Account, admin_account, app_test, log_in, teacher_account

__all__ = ["admin_account", "teacher_account"]  # fixtures shared with the dashboard tests

CONFIG = Path(__file__).resolve().parents[1] / ".streamlit" / "config.toml"


class Clock:
    """A clock the test moves by hand (seconds)."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture(params=["memory", "sqlite", "postgresql"])
def throttle(
    request: pytest.FixtureRequest, clock: Clock, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> Iterator[users.ClientThrottle]:
    """A fresh process-wide throttle on the test's clock (the app reads ``users.CLIENT_THROTTLE``):
    in memory, or in the ``login_failure`` table of a fresh SQLite or PostgreSQL database."""
    url = None
    if request.param == "memory":
        fresh = users.ClientThrottle(clock=clock)
    else:
        url = f"sqlite:///{tmp_path / 'throttle.db'}" if request.param == "sqlite" else _postgres_schema_url()
        migrate(get_engine(url))
        fresh = users.DatabaseClientThrottle(get_engine(url), clock=clock)
    monkeypatch.setattr(users, "CLIENT_THROTTLE", fresh)
    yield fresh
    if request.param == "postgresql":
        dispose_engines()
        _drop_postgres_schema(url)


def test_replicas_share_the_database_throttle(db_url: str, clock: Clock) -> None:
    """Two processes' throttles on one database: failures counted by one make the other wait."""
    migrate(get_engine(db_url))
    first, second = (users.DatabaseClientThrottle(get_engine(db_url), clock=clock) for _ in range(2))
    for i in range(users.CLIENT_MAX_FAILURES - 1):
        (first if i % 2 else second).failed("10.0.0.9")
    assert second.failed("10.0.0.9") == 1.0 and first.wait_seconds("10.0.0.9") == 1.0
    assert second.wait_seconds("10.0.0.10") == 0.0


def test_four_failures_cost_nothing_the_fifth_one_second_then_doubling(
    throttle: users.ClientThrottle, clock: Clock
) -> None:
    waits = [throttle.failed("10.0.0.7") for _ in range(users.CLIENT_MAX_FAILURES - 1)]
    assert waits == [0.0] * 4 and throttle.wait_seconds("10.0.0.7") == 0.0
    assert throttle.failed("10.0.0.7") == 1.0
    clock.now += 0.4
    assert throttle.wait_seconds("10.0.0.7") == pytest.approx(0.6)
    assert throttle.wait_seconds("10.0.0.8") == 0.0  # another client is not affected
    clock.now += 0.6
    assert throttle.wait_seconds("10.0.0.7") == 0.0
    assert [throttle.failed("10.0.0.7") for _ in range(3)] == [2.0, 4.0, 8.0]


def test_the_wait_is_capped_and_failures_expire_after_the_window(throttle: users.ClientThrottle, clock: Clock) -> None:
    for _ in range(40):
        wait = throttle.failed("10.0.0.7")
    assert wait == users.CLIENT_MAX_WAIT_SECONDS
    clock.now += users.CLIENT_WINDOW_SECONDS + 1
    assert throttle.wait_seconds("10.0.0.7") == 0.0
    assert throttle.failed("10.0.0.7") == 0.0  # a fresh start


def test_a_throttled_attempt_is_audited_with_the_client_and_the_wait(models_db_url: str) -> None:
    with session_scope(get_engine(models_db_url)) as session:
        users.record_throttled(session, "10.0.0.7", 4.04)
        users.record_throttled(session, None, 1)
    with session_scope(get_engine(models_db_url)) as session:
        rows = list_audit(session, "login_throttled")
    assert sorted((row.detail["client"], row.detail["wait_seconds"]) for row in rows) == [
        ("10.0.0.7", 4.0),
        ("unknown", 1),
    ]


def _audit(url: str, action: str) -> list:
    with session_scope(get_engine(url)) as session:
        return list_audit(session, action)


def test_login_form_makes_a_failing_client_wait_even_with_the_right_password(
    app_db_url: str, teacher_account: Account, throttle: users.ClientThrottle, clock: Clock
) -> None:
    at = app_test().run()
    for attempt in range(users.CLIENT_MAX_FAILURES):  # alternate a real and an unknown user
        log_in(at, "tina" if attempt % 2 else "nobody", "not-the-password")
    assert [e.value for e in at.error] == [auth.throttled_message(1)]
    log_in(at, "tina", teacher_account.password)  # right password, but the client must wait
    assert USER_KEY not in at.session_state
    assert [e.value for e in at.error] == [auth.throttled_message(2)]
    log_in(at, "ghost", "not-the-password")  # the same words whether the user exists or not
    assert [e.value for e in at.error] == [auth.throttled_message(4)]
    throttled = _audit(app_db_url, "login_throttled")
    assert [(row.detail["client"], row.detail["wait_seconds"]) for row in throttled] == [("unknown", 4), ("unknown", 2)]
    assert len(_audit(app_db_url, "login_failed")) == users.CLIENT_MAX_FAILURES  # unchecked ones are not
    clock.now += 4
    log_in(at, "tina", teacher_account.password)
    assert at.session_state[USER_KEY] == teacher_account.user


def test_streamlit_config_keeps_xsrf_protection_and_the_upload_limit() -> None:
    server = tomllib.loads(CONFIG.read_text(encoding="utf-8"))["server"]
    assert server["enableXsrfProtection"] is True
    assert server["maxUploadSize"] == 20


def test_the_xsrf_cookie_is_same_site_strict() -> None:
    assert tomllib.loads(CONFIG.read_text(encoding="utf-8"))["server"]["xsrfCookieSameSite"] == "strict"


def _hidden_requests(at) -> list[str]:
    """The hidden image loads the page drew (not the page-wide style sheet, also drawn with st.html)."""
    return [str(element.value) for element in at.get("html") if str(element.value).startswith("<img")]


def test_the_sign_in_page_runs_no_browser_cookie_component() -> None:
    """The widget's cookie manager (a component that reruns the app when it reports) is not drawn."""
    at = app_test().run()
    assert at.get("component_instance") == [] and at.text_input and not at.exception


def test_a_password_sign_in_hands_the_cookie_to_the_server_and_sign_out_clears_it(teacher_account: Account) -> None:
    """The widget writes no cookie from the browser; the page has the browser fetch it from the server."""
    at = log_in(app_test().run(), teacher_account.user.username, teacher_account.password)
    assert at.session_state[USER_KEY] == teacher_account.user
    requests = _hidden_requests(at)
    assert len(requests) == 1 and 'src="/auth/session?code=' in requests[0]
    code = requests[0].split("code=", 1)[1].split('"', 1)[0]
    assert session_cookie.redeem(code).username == teacher_account.user.username and session_cookie.redeem(code) is None
    at.sidebar.button(key="mathsight-logout").click().run()
    assert USER_KEY not in at.session_state and auth.COOKIE_HANDOFF not in at.session_state
    assert _hidden_requests(at) == ['<img src="/auth/signout" alt="" width="1" height="1" '
                                    'style="position:absolute;opacity:0">']  # fmt: skip
