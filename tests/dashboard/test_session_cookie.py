"""The server-set sign-in cookie: one-time codes, HttpOnly/SameSite/Secure, refusals (real HTTP routes)."""

from __future__ import annotations

import time
import tomllib
from types import SimpleNamespace

import jwt
import pytest
from starlette.applications import Starlette
from starlette.testclient import TestClient

from dashboard import session_cookie
from model.settings import get_settings
from model.store.db import dispose_engines, get_engine, migrate
from tests.conftest import _drop_postgres_schema, _postgres_schema_url
from tests.dashboard.conftest import ROOT


@pytest.fixture
def client() -> TestClient:
    """The routes over HTTP, on the configured (migrated, per-test) database."""
    migrate(get_engine())
    return TestClient(Starlette(routes=session_cookie.routes()), base_url="http://testserver")


def _set_cookie(response) -> str:
    return response.headers.get("set-cookie", "")


def test_a_code_sets_an_http_only_strict_cookie_the_login_widget_accepts(client: TestClient) -> None:
    settings = get_settings()
    response = client.get("/auth/session", params={"code": session_cookie.handoff_code("tina")})
    assert response.status_code == 204 and response.headers["cache-control"] == "no-store"
    header = _set_cookie(response)
    assert header.startswith(f"{settings.cookie_name}=")
    assert "HttpOnly" in header and "SameSite=strict" in header and "Path=/" in header
    max_age = int(header.split("Max-Age=")[1].split(";")[0])  # the token's own expiry, seconds from now
    assert settings.cookie_expiry_days * 86400 - 60 <= max_age <= settings.cookie_expiry_days * 86400
    assert "Secure" not in header
    token = response.cookies[settings.cookie_name]
    claims = jwt.decode(token, settings.local_secret("cookie_key"), algorithms=["HS256"])  # as the widget reads it
    assert claims["username"] == "tina" and claims["exp_date"] > time.time()


def test_a_code_works_once(client: TestClient) -> None:
    code = session_cookie.handoff_code("tina")
    assert client.get("/auth/session", params={"code": code}).status_code == 204
    again = client.get("/auth/session", params={"code": code})
    assert again.status_code == 403 and not _set_cookie(again)


@pytest.mark.parametrize("case", ["expired", "cookie key", "session token", "garbage", "missing"])
def test_bad_codes_are_refused(client: TestClient, case: str) -> None:
    settings = get_settings()
    code = {
        "expired": session_cookie.handoff_code("tina", now=time.time() - session_cookie.CODE_SECONDS - 5),
        "cookie key": jwt.encode({"sub": "admin", "purpose": "mathsight-session-cookie", "jti": "x",
                                  "exp": int(time.time()) + 60}, settings.local_secret("cookie_key"), "HS256"),
        "session token": session_cookie.session_token("admin"),
        "garbage": "not-a-token",
        "missing": None,
    }[case]  # fmt: skip
    response = client.get("/auth/session", params={} if code is None else {"code": code})
    assert response.status_code == 403 and not _set_cookie(response)


def test_a_code_cannot_pass_for_the_cookie() -> None:
    code = session_cookie.handoff_code("admin")
    with pytest.raises(jwt.InvalidSignatureError):
        jwt.decode(code, get_settings().local_secret("cookie_key"), algorithms=["HS256"])


@pytest.mark.parametrize(
    ("headers", "allowed"),
    [
        ({"Sec-Fetch-Site": "cross-site", "Sec-Fetch-Dest": "image"}, False),
        ({"Sec-Fetch-Site": "same-site", "Sec-Fetch-Dest": "image"}, False),
        ({"Sec-Fetch-Site": "none", "Sec-Fetch-Dest": "document"}, False),  # a link opened from an e-mail
        ({"Sec-Fetch-Site": "same-origin", "Sec-Fetch-Dest": "document"}, False),  # not the page's image
        ({"Sec-Fetch-Site": "same-origin", "Sec-Fetch-Dest": "image"}, True),
    ],
)
def test_only_the_pages_own_image_load_redeems_a_code(client: TestClient, headers: dict, allowed: bool) -> None:
    code = session_cookie.handoff_code("tina")
    answer = client.get("/auth/session", params={"code": code}, headers=headers)
    assert answer.status_code == (204 if allowed else 403) and bool(_set_cookie(answer)) == allowed
    if not allowed:  # a refused attempt does not use the code up
        assert client.get("/auth/session", params={"code": code}).status_code == 204


def test_sign_out_refuses_other_sites(client: TestClient) -> None:
    assert client.get("/auth/signout", headers={"Sec-Fetch-Site": "same-site"}).status_code == 403
    assert client.get("/auth/signout", headers={"Sec-Fetch-Site": "none"}).status_code == 204


def test_behind_https_the_cookie_is_secure(client: TestClient) -> None:
    response = client.get("/auth/session", params={"code": session_cookie.handoff_code("tina")},
                          headers={"X-Forwarded-Proto": "https"})  # fmt: skip
    assert "Secure" in _set_cookie(response)


def test_sign_out_deletes_the_cookie(client: TestClient) -> None:
    response = client.get("/auth/signout")
    header = _set_cookie(response)
    assert response.status_code == 204
    assert header.startswith(f"{get_settings().cookie_name}=") and "Max-Age=0" in header and "HttpOnly" in header


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_a_code_works_once_across_replicas(backend: str, tmp_path) -> None:
    """Two dashboard processes on one database: a code redeemed by one is refused by the other."""
    url = f"sqlite:///{tmp_path / 'shared.db'}" if backend == "sqlite" else _postgres_schema_url()
    try:
        engine = get_engine(url)
        migrate(engine)
        code = session_cookie.handoff_code("tina")
        assert session_cookie.redeem(code, engine=engine).username == "tina"
        assert session_cookie.redeem(code, engine=engine) is None
    finally:
        if backend == "postgresql":
            dispose_engines()
            _drop_postgres_schema(url)


def test_the_routes_follow_the_base_url_path() -> None:
    routes = session_cookie.routes("/school/")
    assert [route.path for route in routes] == ["/school/auth/session", "/school/auth/signout"]
    assert session_cookie.url_path("auth/session", "") == "/auth/session"


def _forged(case: str) -> str:
    key = get_settings().local_secret("cookie_key")
    claims = {"username": "admin", "exp_date": time.time() + 3600}
    return {
        "alg none": jwt.api_jws.PyJWS(algorithms=["none"]).encode(b'{"username":"admin","exp_date":9999999999}',
                                                                  None, algorithm="none"),
        "HS512 other key": jwt.encode(claims, "another-installation's-key-" * 2, "HS512"),
        "HS512 right key": jwt.encode(claims, key, "HS512"),
        "no expiry": jwt.encode({"username": "admin"}, key, "HS256"),
        "expiry not a number": jwt.encode({"username": "admin", "exp_date": "tomorrow"}, key, "HS256"),
        "username not text": jwt.encode({"username": ["admin"], "exp_date": time.time() + 3600}, key, "HS256"),
        "garbage": "a.b.c",
    }[case]  # fmt: skip


@pytest.mark.parametrize("case", ["alg none", "HS512 other key", "HS512 right key", "no expiry",
                                  "expiry not a number", "username not text", "garbage"])  # fmt: skip
def test_a_forged_cookie_is_read_as_no_cookie(case: str) -> None:
    """What the login widget does with the cookie it finds: a forged one is no sign-in (so the sign-in
    form shows) and never an exception (a traceback in the browser)."""
    from streamlit_authenticator.models.cookie_model import CookieModel

    import dashboard.auth  # noqa: F401  (installs the strict reading)

    widget = SimpleNamespace(token=_forged(case), cookie_key=get_settings().local_secret("cookie_key"))
    assert CookieModel._token_decode(widget) is False
    genuine = SimpleNamespace(token=session_cookie.session_token("tina"), cookie_key=widget.cookie_key)
    assert CookieModel._token_decode(genuine)["username"] == "tina"


def test_the_browser_is_never_shown_error_details() -> None:
    config = tomllib.loads((ROOT / ".streamlit" / "config.toml").read_text(encoding="utf-8"))
    assert config["client"]["showErrorDetails"] == "none"
