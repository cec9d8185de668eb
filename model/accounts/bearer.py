"""OAuth 2 bearer access tokens (JWT) from the school's identity provider, for the API beside API keys.

A school's information system gets a token from the provider with the client-credentials grant and
sends it as ``Authorization: Bearer <jwt>``. :class:`TokenVerifier` checks it against the provider's
published keys (JWKS, found through the issuer's discovery document or configured; cached, and
fetched again when a token names a key id it has not seen): the signature (asymmetric algorithms
only: never ``none`` nor a shared-secret ``HS*``), the issuer, the audience and the expiry (``exp``
required). The scope comes from a configured claim (``scope`` as a space-separated string, or a list
such as Microsoft Entra's app ``roles``), each value with an optional prefix (``mathsight.predict``);
``admin`` wins over ``predict``. A valid token acts as the configured mathsight user (predictions are
logged under it), who must be active.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

import httpx
import jwt

from model.errors import UserError

ALGORITHMS = ["RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512"]
SCOPES_BY_RANK = ("admin", "predict")


class TokenError(UserError):
    """A refused bearer token: ``status`` 401 (not a valid token of the provider) or 403 (no scope)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class TokenClaims:
    """What a verified token grants: its client (``client_id``, ``azp`` or ``sub``) and scope."""

    client: str
    scope: str


def looks_like_jwt(presented: str) -> bool:
    """Whether a presented credential has a JWT's shape (three base64url parts), unlike an API key."""
    parts = presented.split(".")
    return len(parts) == 3 and all(parts[:2])


class TokenVerifier:
    """Checks bearer JWTs of one ``issuer`` for one ``audience``; thread-safe, the keys cached per process."""

    def __init__(self, issuer: str, audience: str, *, scope_claim: str = "scope", scope_prefix: str = "",
                 jwks_url: str = "", timeout: float = 5.0) -> None:  # fmt: skip
        self.issuer, self.audience = issuer, audience
        self.scope_claim, self.scope_prefix = scope_claim, scope_prefix
        self.timeout = timeout
        self._jwks_url = jwks_url
        self._client: jwt.PyJWKClient | None = None
        self._lock = threading.Lock()

    def _keys(self) -> jwt.PyJWKClient:
        with self._lock:
            if self._client is None:
                url = self._jwks_url or self._discover()
                self._client = jwt.PyJWKClient(url, cache_keys=True, lifespan=300, timeout=int(self.timeout) or 1)
            return self._client

    def _discover(self) -> str:
        try:
            answer = httpx.get(f"{self.issuer.rstrip('/')}/.well-known/openid-configuration", timeout=self.timeout)
            answer.raise_for_status()
            return str(answer.json()["jwks_uri"])
        except (httpx.HTTPError, ValueError, KeyError) as error:
            raise TokenError(401, f"the identity provider's keys cannot be found ({type(error).__name__})") from None

    def verify(self, token: str) -> TokenClaims:
        """The client and scope of a valid token; raises :class:`TokenError` (401 or 403) otherwise."""
        try:
            key = self._keys().get_signing_key_from_jwt(token)
            claims = jwt.decode(token, key.key, algorithms=ALGORITHMS, audience=self.audience, issuer=self.issuer,
                                options={"require": ["exp", "iss", "aud"]})  # fmt: skip
        except jwt.ExpiredSignatureError:
            raise TokenError(401, "the bearer token has expired") from None
        except jwt.InvalidIssuerError:
            raise TokenError(401, "the bearer token was not issued by the configured identity provider") from None
        except jwt.InvalidAudienceError:
            raise TokenError(401, f'the bearer token is not meant for this API (audience "{self.audience}")') from None
        except jwt.PyJWKClientError:
            raise TokenError(401, "the bearer token is not signed with a key of the identity provider") from None
        except jwt.PyJWTError as error:
            raise TokenError(401, f"the bearer token is not valid ({_reason(error)})") from None
        client = next((str(claims[name]) for name in ("client_id", "azp", "sub") if claims.get(name)), "")
        scope = self._scope(claims.get(self.scope_claim))
        if scope is None:
            raise TokenError(403, f'the bearer token grants no mathsight scope: its "{self.scope_claim}" claim must '
                             f'hold "{self.scope_prefix}predict" or "{self.scope_prefix}admin"')  # fmt: skip
        return TokenClaims(client[:64], scope)

    def _scope(self, value: object) -> str | None:
        items = value.split() if isinstance(value, str) else value if isinstance(value, list) else []
        prefix = self.scope_prefix
        granted = {str(item).removeprefix(prefix) for item in items if str(item).startswith(prefix)}
        return next((scope for scope in SCOPES_BY_RANK if scope in granted), None)


def _reason(error: jwt.PyJWTError) -> str:
    if isinstance(error, jwt.InvalidSignatureError):
        return "bad signature"
    if isinstance(error, jwt.InvalidAlgorithmError):
        return "algorithm not allowed"
    if isinstance(error, jwt.MissingRequiredClaimError):
        return f'no "{error.claim}" claim'
    return "malformed"
