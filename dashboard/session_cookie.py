"""The sign-in cookie, set and cleared by the server: ``HttpOnly``, ``SameSite=Strict``, ``Secure`` over HTTPS.

streamlit-authenticator writes its re-authentication cookie from the browser, where any page script
can read it. mathsight tells the widget not to (``cookie_expiry_days=0``) and sets the very same
signed token (``{"username", "exp_date"}``, HS256 with ``MATHSIGHT_COOKIE_KEY``) itself, from two
routes of the dashboard's ASGI app (``dashboard/server.py``):

- ``GET auth/session?code=...`` sets the cookie. Right after a password sign-in the page loads this
  address once (a hidden image). The code is a one-time token valid for two minutes, signed with a
  key derived from the cookie key (so it can never pass for the cookie itself); redeemed codes are
  kept in the database (``used_signin_code``), so a code works once whichever replica gets it.
- ``GET auth/signout`` clears it (and signs its session out in the database); the page loads it on
  signing out.

The token also carries a random token id (``jti``) and the user's session generation (``gen``);
:func:`open_session` and the dashboard check both against the database on every use
(:mod:`model.accounts.sessions`), so a copy of a cookie stops working after a sign-out, a password
change, a deactivation or "sign out everywhere".

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
from dataclasses import dataclass

import jwt
import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from model.accounts import sessions
from model.settings import Settings, get_settings
from model.store.db import get_engine, session_scope
from model.store.tables import UsedSigninCode

SESSION_PATH = "auth/session"
SIGNOUT_PATH = "auth/signout"
CODE_SECONDS = 120
_PURPOSE = "mathsight-session-cookie"


def _code_key(settings: Settings) -> bytes:
    cookie_key = settings.local_secret("cookie_key").encode("utf-8")
    return hmac.new(cookie_key, _PURPOSE.encode("ascii"), hashlib.sha256).digest()


@dataclass(frozen=True)
class Grant:
    """What a redeemed hand-off code grants: the cookie of ``username``'s session ``jti`` (issued under
    the user's session ``generation``, valid until ``expires``)."""

    username: str
    jti: str
    generation: int
    expires: float


def expiry(settings: Settings, now: float | None = None) -> float:
    """When a sign-in token issued ``now`` expires (seconds since the epoch)."""
    issued = time.time() if now is None else now
    return issued + settings.cookie_expiry_days * 86_400


def handoff_code(username: str, settings: Settings | None = None, now: float | None = None, *,
                 jti: str | None = None, generation: int = 0, expires: float | None = None) -> str:  # fmt: skip
    """A one-time code that lets this browser fetch the sign-in cookie of ``username``'s session ``jti``."""
    settings = settings or get_settings()
    issued = time.time() if now is None else now
    claims = {"sub": username, "purpose": _PURPOSE, "jti": secrets.token_hex(16), "exp": int(issued + CODE_SECONDS),
              "tid": jti or sessions.new_token_id(), "gen": generation,
              "until": expiry(settings, issued) if expires is None else expires}  # fmt: skip
    return jwt.encode(claims, _code_key(settings), algorithm="HS256")


def session_token(username: str, settings: Settings | None = None, *, jti: str | None = None, generation: int = 0,
                  expires: float | None = None) -> str:  # fmt: skip
    """The sign-in cookie's value, as streamlit-authenticator reads it, plus the session's token id and generation."""
    settings = settings or get_settings()
    claims = {"username": username, "exp_date": expiry(settings) if expires is None else expires,
              "jti": jti or sessions.new_token_id(), "gen": generation}  # fmt: skip
    return jwt.encode(claims, settings.local_secret("cookie_key"), "HS256")


def read_token(token: object, cookie_key: str) -> dict | None:
    """The claims of a genuine sign-in cookie (HS256 under ``cookie_key``, a text ``username``, a numeric
    ``exp_date``, a text token id ``jti`` and an integer generation ``gen``), else None: a forged token
    (``alg: none``, another algorithm or key), a malformed one or one with odd claims is simply no
    sign-in, never an exception. Whether the session is still open is :func:`open_session`'s question."""
    try:
        claims = jwt.decode(str(token), cookie_key, algorithms=["HS256"])
    except (jwt.PyJWTError, ValueError, TypeError):
        return None
    username, expires = claims.get("username"), claims.get("exp_date")
    if not isinstance(username, str) or isinstance(expires, bool) or not isinstance(expires, int | float):
        return None
    jti, generation = claims.get("jti"), claims.get("gen")
    if not isinstance(jti, str) or not jti or isinstance(generation, bool) or not isinstance(generation, int):
        return None
    return claims


def open_session(token: object, settings: Settings | None = None, engine: Engine | None = None) -> dict | None:
    """The claims of a genuine, unexpired sign-in cookie whose session is still open in the database
    (user active, generation current, not signed out), else None."""
    settings = settings or get_settings()
    claims = read_token(token, settings.local_secret("cookie_key"))
    if claims is None:
        return None
    with session_scope(engine or get_engine(settings.database_url)) as session:
        ok = sessions.is_valid(session, claims["username"], claims["jti"], claims["gen"], claims["exp_date"])
    return claims if ok else None


def redeem(code: str, settings: Settings | None = None, engine: Engine | None = None) -> Grant | None:
    """What a valid, unused code grants (the code is then used up, for every replica on the
    database), else None."""
    settings = settings or get_settings()
    try:
        claims = jwt.decode(code, _code_key(settings), algorithms=["HS256"], options={"require": ["exp", "jti"]})
    except jwt.PyJWTError:
        return None
    if claims.get("purpose") != _PURPOSE or not isinstance(claims.get("sub"), str):
        return None
    tid, generation, until = claims.get("tid"), claims.get("gen"), claims.get("until")
    if not isinstance(tid, str) or not isinstance(generation, int) or not isinstance(until, int | float):
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
    return Grant(claims["sub"], tid, generation, float(until))


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
    grant = redeem(request.query_params.get("code", ""), settings)
    if grant is None:
        return _answer(403)
    response = _answer(204)
    token = session_token(grant.username, settings, jti=grant.jti, generation=grant.generation, expires=grant.expires)
    response.set_cookie(
        settings.cookie_name, token, max_age=max(0, int(grant.expires - time.time())),
        path="/", secure=_secure(request), httponly=True, samesite="strict",
    )  # fmt: skip
    return response


def clear_session(request: Request) -> Response:
    """``GET auth/signout``: sign the cookie's session out in the database (a copy of it no longer
    signs in, on any replica) and delete the cookie."""
    if not _same_origin(request):
        return _answer(403)
    settings = get_settings()
    claims = read_token(request.cookies.get(settings.cookie_name), settings.local_secret("cookie_key"))
    if claims is not None:
        with session_scope(get_engine(settings.database_url)) as session:
            sessions.revoke(session, claims["jti"], float(claims["exp_date"]))
    response = _answer(204)
    response.delete_cookie(settings.cookie_name, path="/", secure=_secure(request), httponly=True,
                           samesite="strict")  # fmt: skip
    return response


def url_path(path: str, base: str = "") -> str:
    """The absolute path of one of the routes under Streamlit's ``server.baseUrlPath`` ``base``."""
    return "/" + "/".join(part for part in (base.strip("/"), path) if part)


def routes(base: str = "") -> list[Route]:
    """The two cookie routes, for ``st.App(routes=...)``, under the app's base URL path."""
    return [Route(url_path(SESSION_PATH, base), set_session, methods=["GET"]),
            Route(url_path(SIGNOUT_PATH, base), clear_session, methods=["GET"])]  # fmt: skip
