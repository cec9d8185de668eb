"""What routes get injected: the app's state (settings, engine, models, limiter, metrics), the
request's database session and the caller's key.

The API is the front that opens the transaction: :data:`SessionDep` is one session per request,
committed when the route function returns and before the response is sent (rolled back if it
raised); the data functions a route calls work in it, with the app's :data:`SettingsDep`.

A key comes in the ``X-API-Key`` header (or ``Authorization: Bearer <key>``, for scrapers). The key
dependency checks it through the request's session and commits that check at once (the key's
``last_used_at``), before the rate limit and the route: so the record of the key's use is kept when
the request then fails, and no write lock is held while the route works (on SQLite that lock would
block the prediction log's own write). It answers 401 for a missing, malformed, unknown or revoked
key, 403 when its scope does not cover the endpoint, and 429 (with ``Retry-After``) when the key has
used up its rate limit. Wrong keys count against the caller's address (:func:`request_client`), so
one address trying keys gets 429 too.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request, Security
from fastapi.security import APIKeyHeader
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from api.errors import ApiError
from api.metrics import ApiMetrics
from api.settings import ApiSettings
from model.accounts import clients
from model.accounts.apikeys import KeyHolder, authenticate
from model.accounts.bearer import TokenError, TokenVerifier, looks_like_jwt
from model.accounts.ratelimit import RateLimiter
from model.accounts.users import get_user
from model.serving.service import ModelStore
from model.store.db import session_scope

API_KEY_HEADER = "X-API-Key"


@dataclass
class AppState:
    """Everything one app holds for its lifetime."""

    settings: ApiSettings
    engine: Engine
    store: ModelStore
    limiter: RateLimiter
    row_limiter: RateLimiter
    metrics: ApiMetrics
    access_log: logging.Logger
    verifier: TokenVerifier | None = None  # bearer JWTs of the school's identity provider, when configured


def get_state(request: Request) -> AppState:
    return request.app.state.mathsight


def get_engine(request: Request) -> Engine:
    return get_state(request).engine


def get_store(request: Request) -> ModelStore:
    return get_state(request).store


def get_app_settings(request: Request) -> ApiSettings:
    """The settings the app was created with (``create_app(settings=...)``)."""
    return get_state(request).settings


def get_session(request: Request) -> Iterator[Session]:
    """The request's session: committed after the route returns, before the response (rolled back if it raised)."""
    with session_scope(get_state(request).engine) as session:
        yield session


StateDep = Annotated[AppState, Depends(get_state)]
SettingsDep = Annotated[ApiSettings, Depends(get_app_settings)]
EngineDep = Annotated[Engine, Depends(get_engine)]
StoreDep = Annotated[ModelStore, Depends(get_store)]
SessionDep = Annotated[Session, Depends(get_session, scope="function")]

api_key_header = APIKeyHeader(
    name=API_KEY_HEADER,
    auto_error=False,
    description="An API key (`ms_<prefix>_<secret>`) created by an admin on the API keys page or with "
    "`python -m model apikey create USERNAME --scope predict`.",
)


def _presented_key(request: Request, header: str | None) -> str | None:
    if header:
        return header
    scheme, _, credentials = request.headers.get("authorization", "").partition(" ")
    return credentials.strip() if scheme.lower() == "bearer" else None


def request_client(request: Request, settings: ApiSettings) -> str:
    """The caller's address: the peer, or its ``X-Forwarded-For`` client when the peer is a trusted proxy."""
    peer = request.client.host if request.client is not None else None
    forwarded = request.headers.get(clients.FORWARDED_FOR)
    return clients.client_address(peer, forwarded, settings.trusted_networks) or "unknown"


def _count_bad_key(request: Request, state: AppState, settings: ApiSettings) -> None:
    """Count a wrong key against the caller's address (the same limit as a key's requests): 429 when over."""
    decision = state.limiter.hit(f"client:{request_client(request, settings)}"[:64])
    if not decision.allowed:
        raise ApiError(429, f"too many requests with a wrong API key from this address; retry in "
                       f"{decision.retry_after} s", headers={"Retry-After": str(decision.retry_after)})  # fmt: skip


def _token_holder(request: Request, state: AppState, settings: ApiSettings, session: Session,
                  token: str) -> KeyHolder:  # fmt: skip
    """The holder of a valid bearer JWT of the configured provider: the configured user, the token's
    scope; a refused token is 401 (counted against the address like a wrong key) or 403."""
    assert state.verifier is not None
    try:
        claims = state.verifier.verify(token)
    except TokenError as error:
        if error.status == 401:
            _count_bad_key(request, state, settings)
        raise ApiError(error.status, str(error), headers={"WWW-Authenticate": "Bearer"} if error.status == 401
                       else None) from None  # fmt: skip
    user = get_user(session, settings.api_oidc_user)
    if user is None or not user.active:
        raise ApiError(401, f'the bearer token acts as user "{settings.api_oidc_user}", who is missing or '
                       "deactivated", headers={"WWW-Authenticate": "Bearer"})  # fmt: skip
    return KeyHolder(0, f"jwt:{claims.client}"[:64], claims.scope, user.id, user.username, user.role)


def require(scope: str) -> Callable[..., KeyHolder]:
    """A dependency admitting keys whose scope covers ``scope`` and which are within their rate limit."""

    def key_holder(
        request: Request,
        session: SessionDep,
        settings: SettingsDep,
        header: Annotated[str | None, Security(api_key_header)] = None,
    ) -> KeyHolder:
        state = get_state(request)
        presented = _presented_key(request, header)
        if not presented:
            raise ApiError(401, f"an API key is required in the {API_KEY_HEADER} header",
                           headers={"WWW-Authenticate": "ApiKey"})  # fmt: skip
        if state.verifier is not None and looks_like_jwt(presented):
            holder = _token_holder(request, state, settings, session, presented)
        else:
            holder = authenticate(session, presented, settings=settings)
        session.commit()  # the key's use is recorded now (see the module docstring)
        if holder is None:
            _count_bad_key(request, state, settings)
            raise ApiError(401, "the API key is not valid (unknown, mistyped or revoked)",
                           headers={"WWW-Authenticate": "ApiKey"})  # fmt: skip
        request.state.key = holder
        if not holder.allows(scope):
            raise ApiError(403, f'this endpoint needs a key with scope "{scope}"; this key has "{holder.scope}"')
        decision = state.limiter.hit(holder.prefix)
        request.state.rate = decision
        if not decision.allowed:
            raise ApiError(
                429,
                f"rate limit of {decision.limit} requests per {state.limiter.window_seconds} s exceeded; "
                f"retry in {decision.retry_after} s",
                headers={"Retry-After": str(decision.retry_after)},
            )
        return holder

    return key_holder


def spend_rows(state: AppState, holder: KeyHolder, n_rows: int) -> None:
    """Charge ``n_rows`` against the key's row budget, or raise 429 (charging nothing) when they do not fit."""
    limiter = state.row_limiter
    decision = limiter.spend(f"rows:{holder.prefix}", n_rows)
    if not decision.allowed:
        advice = "" if n_rows <= limiter.limit else "; split it into smaller batches"
        raise ApiError(
            429,
            f"row limit of {limiter.limit:,} students per {limiter.window_seconds} s exceeded: this request has "
            f"{n_rows:,} rows{advice}; retry in {decision.retry_after} s",
            headers={"Retry-After": str(decision.retry_after)},
        )


PredictKey = Annotated[KeyHolder, Depends(require("predict"))]
AdminKey = Annotated[KeyHolder, Depends(require("admin"))]
CurrentKey = PredictKey
