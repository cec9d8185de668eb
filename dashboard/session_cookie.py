"""The sign-in cookie, set and cleared by the server: ``HttpOnly``, ``SameSite=Strict``, ``Secure`` over HTTPS.

streamlit-authenticator writes its re-authentication cookie from the browser, where any page script
can read it. mathsight tells the widget not to (``cookie_expiry_days=0``) and sets the very same
signed token (``{"username", "exp_date"}``, HS256 with ``MATHSIGHT_COOKIE_KEY``) itself, from two
routes of the dashboard's ASGI app (``dashboard/server.py``):

- ``GET auth/session?code=...`` sets the cookie. Right after a password sign-in the page loads this
  address once (a hidden image). The code is a one-time token valid for two minutes, signed with a
  key derived from the cookie key (so it can never pass for the cookie itself).
- ``GET auth/signout`` clears it; the page loads it on signing out.

Both refuse requests another site starts (``Sec-Fetch-Site``). The widget still reads the cookie from
the request headers of each new browser session (``st.context.cookies``), so a reload keeps the user
signed in until the cookie expires, while page scripts never see the token.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
import time
from datetime import UTC, datetime, timedelta

import jwt
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from model.settings import Settings, get_settings

SESSION_PATH = "auth/session"
SIGNOUT_PATH = "auth/signout"
CODE_SECONDS = 120
_PURPOSE = "mathsight-session-cookie"
_used_codes: dict[str, float] = {}  # jti -> expiry (one use each, per process)
_used_lock = threading.Lock()


def _code_key(settings: Settings) -> bytes:
    cookie_key = settings.local_secret("cookie_key").encode("utf-8")
    return hmac.new(cookie_key, _PURPOSE.encode("ascii"), hashlib.sha256).digest()


def handoff_code(username: str, settings: Settings | None = None, now: float | None = None) -> str:
    """A one-time code that lets this browser fetch the sign-in cookie of ``username``."""
    settings = settings or get_settings()
    issued = time.time() if now is None else now
    claims = {"sub": username, "purpose": _PURPOSE, "jti": secrets.token_hex(16), "exp": int(issued + CODE_SECONDS)}
    return jwt.encode(claims, _code_key(settings), algorithm="HS256")


def session_token(username: str, settings: Settings | None = None) -> str:
    """The sign-in cookie's value, as streamlit-authenticator reads it."""
    settings = settings or get_settings()
    expires = (datetime.now(UTC) + timedelta(days=settings.cookie_expiry_days)).timestamp()
    return jwt.encode({"username": username, "exp_date": expires}, settings.local_secret("cookie_key"), "HS256")


def redeem(code: str, settings: Settings | None = None) -> str | None:
    """The username a valid, unused code was issued for (the code is then used up), else None."""
    settings = settings or get_settings()
    try:
        claims = jwt.decode(code, _code_key(settings), algorithms=["HS256"], options={"require": ["exp", "jti"]})
    except jwt.PyJWTError:
        return None
    if claims.get("purpose") != _PURPOSE or not isinstance(claims.get("sub"), str):
        return None
    now = time.time()
    with _used_lock:
        for jti in [j for j, expiry in _used_codes.items() if expiry < now]:
            del _used_codes[jti]
        if claims["jti"] in _used_codes:
            return None
        _used_codes[claims["jti"]] = float(claims["exp"])
    return claims["sub"]


def _same_origin(request: Request) -> bool:
    """False for a request another site made the browser send (no header: an old browser or a tool)."""
    return request.headers.get("sec-fetch-site", "same-origin") in ("same-origin", "none")


def _secure(request: Request) -> bool:
    return request.url.scheme == "https" or request.headers.get("x-forwarded-proto", "") == "https"


def _answer(status: int) -> Response:
    return Response(status_code=status, headers={"Cache-Control": "no-store"})


async def set_session(request: Request) -> Response:
    """``GET auth/session?code=...``: set the sign-in cookie for the code's user."""
    if not _same_origin(request):
        return _answer(403)
    settings = get_settings()
    username = redeem(request.query_params.get("code", ""), settings)
    if username is None:
        return _answer(403)
    response = _answer(204)
    response.set_cookie(
        settings.cookie_name, session_token(username, settings), max_age=int(settings.cookie_expiry_days * 86_400),
        path="/", secure=_secure(request), httponly=True, samesite="strict",
    )  # fmt: skip
    return response


async def clear_session(request: Request) -> Response:
    """``GET auth/signout``: delete the sign-in cookie."""
    if not _same_origin(request):
        return _answer(403)
    response = _answer(204)
    response.delete_cookie(get_settings().cookie_name, path="/", secure=_secure(request), httponly=True,
                           samesite="strict")  # fmt: skip
    return response


def routes() -> list[Route]:
    """The two cookie routes, for ``st.App(routes=...)``."""
    return [Route(f"/{SESSION_PATH}", set_session, methods=["GET"]),
            Route(f"/{SIGNOUT_PATH}", clear_session, methods=["GET"])]  # fmt: skip
