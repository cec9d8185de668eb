"""The sign-in cookie, set and cleared by the server: ``HttpOnly``, ``SameSite=Strict``, ``Secure`` over HTTPS.

streamlit-authenticator writes its re-authentication cookie from the browser, where any page script
can read it. mathsight tells the widget not to (``cookie_expiry_days=0``) and sets the very same
signed token (``{"username", "exp_date"}``, HS256 with ``MATHSIGHT_COOKIE_KEY``) itself, from two
routes of the dashboard's ASGI app (``dashboard/server.py``):

- ``GET auth/session?code=...`` sets the cookie. Right after a password sign-in the page loads this
  address once (a hidden image). The code is a one-time token valid for two minutes, signed with a
  key derived from the cookie key (so it can never pass for the cookie itself); redeemed codes are
  kept in the database (``used_signin_code``), so a code works once whichever replica gets it.
- ``GET auth/signout`` clears it; the page loads it on signing out.

Both refuse requests another site starts (``Sec-Fetch-Site``); ``auth/session`` also refuses anything
but the page's own image load, so a code sent as a link cannot sign a victim in as its owner. The
widget still reads the cookie from the request headers of each new browser session
(``st.context.cookies``), so a reload keeps the user signed in until the cookie expires, while page
scripts never see the token.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from datetime import UTC, datetime, timedelta

import jwt
import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from model.settings import Settings, get_settings
from model.store.db import get_engine
from model.store.tables import UsedSigninCode

SESSION_PATH = "auth/session"
SIGNOUT_PATH = "auth/signout"
CODE_SECONDS = 120
_PURPOSE = "mathsight-session-cookie"


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


def read_token(token: object, cookie_key: str) -> dict | None:
    """The claims of a genuine sign-in cookie (HS256 under ``cookie_key``, a text ``username`` and a
    numeric ``exp_date``), else None: a forged token (``alg: none``, another algorithm or key), a
    malformed one or one with odd claims is simply no sign-in, never an exception."""
    try:
        claims = jwt.decode(str(token), cookie_key, algorithms=["HS256"])
    except (jwt.PyJWTError, ValueError, TypeError):
        return None
    username, expires = claims.get("username"), claims.get("exp_date")
    if not isinstance(username, str) or isinstance(expires, bool) or not isinstance(expires, int | float):
        return None
    return claims


def redeem(code: str, settings: Settings | None = None, engine: Engine | None = None) -> str | None:
    """The username a valid, unused code was issued for (the code is then used up, for every replica
    on the database), else None."""
    settings = settings or get_settings()
    try:
        claims = jwt.decode(code, _code_key(settings), algorithms=["HS256"], options={"require": ["exp", "jti"]})
    except jwt.PyJWTError:
        return None
    if claims.get("purpose") != _PURPOSE or not isinstance(claims.get("sub"), str):
        return None
    engine = engine or get_engine(settings.database_url)
    with engine.begin() as connection:
        connection.execute(sa.delete(UsedSigninCode).where(UsedSigninCode.expires_at < time.time()))
    try:
        with engine.begin() as connection:
            connection.execute(sa.insert(UsedSigninCode).values(jti=str(claims["jti"])[:64],
                                                                expires_at=float(claims["exp"])))  # fmt: skip
    except IntegrityError:  # redeemed before, here or on another replica
        return None
    return claims["sub"]


def _same_origin(request: Request, image: bool = False) -> bool:
    """False for a request that another site, or a link opened from outside (``Sec-Fetch-Site: none``),
    made the browser send; with ``image`` also for one that is not an image load. A request without
    these headers (an old browser, a tool) passes."""
    site = request.headers.get("sec-fetch-site", "same-origin")
    if image:
        return site == "same-origin" and request.headers.get("sec-fetch-dest", "image") == "image"
    return site in ("same-origin", "none")


def _secure(request: Request) -> bool:
    return request.url.scheme == "https" or request.headers.get("x-forwarded-proto", "") == "https"


def _answer(status: int) -> Response:
    return Response(status_code=status, headers={"Cache-Control": "no-store"})


def set_session(request: Request) -> Response:
    """``GET auth/session?code=...``: set the sign-in cookie for the code's user (the page's own hidden
    image only: a code in a link opened from elsewhere could sign a victim in as someone else)."""
    if not _same_origin(request, image=True):
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


def clear_session(request: Request) -> Response:
    """``GET auth/signout``: delete the sign-in cookie."""
    if not _same_origin(request):
        return _answer(403)
    response = _answer(204)
    response.delete_cookie(get_settings().cookie_name, path="/", secure=_secure(request), httponly=True,
                           samesite="strict")  # fmt: skip
    return response


def url_path(path: str, base: str = "") -> str:
    """The absolute path of one of the routes under Streamlit's ``server.baseUrlPath`` ``base``."""
    return "/" + "/".join(part for part in (base.strip("/"), path) if part)


def routes(base: str = "") -> list[Route]:
    """The two cookie routes, for ``st.App(routes=...)``, under the app's base URL path."""
    return [Route(url_path(SESSION_PATH, base), set_session, methods=["GET"]),
            Route(url_path(SIGNOUT_PATH, base), clear_session, methods=["GET"])]  # fmt: skip
