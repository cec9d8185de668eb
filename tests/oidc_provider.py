"""A real OpenID Connect provider on localhost for the tests: ``oidc-provider-mock`` (Authlib's
authorization server in a Flask app, its own RSA key, discovery document and JWKS), in a thread.

People sign in through its real authorization page (the test types the subject); ID tokens are
signed with its key. It lacks the client-credentials grant a school's information system uses for
the API, so :func:`start_provider` registers Authlib's own ``ClientCredentialsGrant`` on the same
authorization server (answering at ``/oauth2/client-token``: the mock's token route refuses grants
it does not know), issuing RFC 9068 JWT access tokens signed with the same key (so the JWKS the
API checks against is the provider's). What the tokens carry is decided by the client id:

- audience ``api://mathsight`` (``api://elsewhere`` for a client id starting ``elsewhere``);
- the ``roles`` claim: ``["mathsight.predict"]``, ``["mathsight.admin"]`` for ids starting
  ``admin``, none for ids starting ``noscope``;
- ``expired`` clients get a token that expired two minutes ago.

:func:`forged_metadata` serves discovery documents of a provider gone wrong: one claiming another
issuer than the one its tokens name, one whose JWKS holds another key under the same key id.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import flask
import httpx
from authlib.oauth2.rfc6749.grants import ClientCredentialsGrant
from authlib.oauth2.rfc9068 import JWTBearerTokenGenerator
from joserfc.jwk import KeySet, RSAKey
from oidc_provider_mock import User, run_server_in_thread
from oidc_provider_mock._storage import Client

AUDIENCE = "api://mathsight"
SCOPE_CLAIM = "roles"
SCOPE_PREFIX = "mathsight."
CLIENT_TOKEN_PATH = "/oauth2/client-token"  # the mock's own token endpoint refuses grants it does not know


@dataclass(frozen=True)
class Person:
    """Someone with an account at the provider."""

    subject: str
    email: str
    name: str


TEACHER = Person("teacher-sub-7f3", "tania.teacher@school.test", "Tânia Teacher")
ADMIN = Person("admin-sub-2c9", "adriana.admin@school.test", "Adriana Admin")
STRANGER = Person("stranger-sub-9a1", "sam.stranger@elsewhere.test", "Sam Stranger")
PEOPLE = (TEACHER, ADMIN, STRANGER)


@dataclass(frozen=True)
class Provider:
    """The running provider: its issuer (also its base URL)."""

    issuer: str

    @property
    def metadata_url(self) -> str:
        return f"{self.issuer}/.well-known/openid-configuration"

    def client_token(self, client_id: str, secret: str = "any-secret") -> str:
        """A JWT access token for ``client_id`` through the client-credentials grant (a real token request)."""
        form = {"grant_type": "client_credentials", "scope": "openid"}
        answer = httpx.post(f"{self.issuer}{CLIENT_TOKEN_PATH}", data=form, auth=(client_id, secret), timeout=10)
        answer.raise_for_status()
        return answer.json()["access_token"]


class _ClientCredentials(ClientCredentialsGrant):
    TOKEN_ENDPOINT_AUTH_METHODS = ["client_secret_basic", "client_secret_post"]  # noqa: RUF012 (Authlib's API)

    def save_token(self, token: dict) -> None:  # the mock stores only tokens of people
        return None


class _JwtTokens(JWTBearerTokenGenerator):
    def __init__(self, issuer: str, key: Any) -> None:  # the mock's key (authlib.jose's RSAKey)
        super().__init__(issuer, expires_generator=self._expires)
        self.key = key

    @staticmethod
    def _expires(client: Client, grant_type: str) -> int:
        return -120 if client.get_client_id().startswith("expired") else 3600

    def get_jwks(self) -> dict:
        return {"keys": [self.key.as_dict(is_private=True)]}

    def get_audiences(self, client: Client, user: object, scope: object) -> str:
        return "api://elsewhere" if client.get_client_id().startswith("elsewhere") else AUDIENCE

    def get_extra_claims(self, client: Client, grant_type: str, user: object, scope: object) -> dict:
        client_id = client.get_client_id()
        if client_id.startswith("noscope"):
            return {}
        return {SCOPE_CLAIM: [SCOPE_PREFIX + ("admin" if client_id.startswith("admin") else "predict")]}


def _add_client_credentials(app: flask.Flask, issuer: str) -> None:
    with app.test_request_context():
        app.preprocess_request()  # the mock puts its server and storage in flask.g before each request
        server, storage = flask.g._authlib_authorization_server, flask.g.oidc_provider_mock_storage
    Client.GRANT_TYPES_SUPPORTED = (*Client.GRANT_TYPES_SUPPORTED, "client_credentials")
    server.register_grant(_ClientCredentials)
    server.register_token_generator("client_credentials", _JwtTokens(issuer, storage.jwk))
    app.add_url_rule(CLIENT_TOKEN_PATH, "client-credentials-token", server.create_token_response, methods=["POST"])


@contextmanager
def start_provider() -> Iterator[Provider]:
    """The provider on a free localhost port, knowing :data:`PEOPLE`, until the context ends."""
    claims = [User(sub=p.subject, claims={"email": p.email, "email_verified": True, "name": p.name}) for p in PEOPLE]
    with run_server_in_thread(port=0, user_claims=claims, require_nonce=True) as server:
        issuer = f"http://localhost:{server.server_port}"
        _add_client_credentials(server.app, issuer)  # type: ignore[attr-defined]
        yield Provider(issuer)


@contextmanager
def forged_metadata(provider: Provider) -> Iterator[str]:
    """A local server whose ``/wrong-issuer`` and ``/bad-key`` discovery documents point at ``provider``
    but claim another issuer, or another signing key under the provider's key id; yields its base URL."""
    metadata = httpx.get(provider.metadata_url, timeout=10).json()
    real_keys = httpx.get(metadata["jwks_uri"], timeout=10).json()["keys"]
    other = RSAKey.generate_key(2048, parameters={"kid": real_keys[0]["kid"], "use": "sig", "alg": "RS256"})
    documents: dict[str, dict] = {"/bad-key/jwks": KeySet([other]).as_dict(private=False)}

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = documents.get(self.path)
            self.send_response(200 if body is not None else 404)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(json.dumps(body or {}).encode("utf-8"))

        def log_message(self, *args: object) -> None:
            pass

    http = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    base = f"http://127.0.0.1:{http.server_port}"
    documents["/wrong-issuer/.well-known/openid-configuration"] = {**metadata, "issuer": "http://issuer.invalid"}
    documents["/bad-key/.well-known/openid-configuration"] = {**metadata, "jwks_uri": f"{base}/bad-key/jwks"}
    thread = threading.Thread(target=http.serve_forever, daemon=True)
    thread.start()
    try:
        yield base
    finally:
        http.shutdown()
        http.server_close()
