"""/v1/* with OAuth 2 bearer JWTs from a real OIDC provider on localhost (client credentials), beside API keys.

The provider is ``oidc-provider-mock`` with Authlib's client-credentials grant (tests/oidc_provider.py):
its tokens are real RS256 JWTs checked against its published JWKS. Forged tokens are made here with
keys the provider never had."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

import jwt
import pytest
import sqlalchemy as sa
from cryptography.hazmat.primitives.asymmetric import rsa
from fastapi.testclient import TestClient

from model.accounts import users
from model.accounts.bearer import TokenError, TokenVerifier
from model.schema.fields import EXAMPLE_RECORD
from model.store.db import get_engine, session_scope
from model.store.tables import PredictionLog
from tests.api.conftest import Keys, make_user
from tests.oidc_provider import AUDIENCE, SCOPE_CLAIM, SCOPE_PREFIX, Provider, start_provider

STUDENT = {"student_id": "S-7", **EXAMPLE_RECORD}
SERVICE_USER = "school-sis"


@pytest.fixture(scope="module")
def provider() -> Iterator[Provider]:
    with start_provider() as running:
        yield running


@pytest.fixture(scope="module")
def other_provider() -> Iterator[Provider]:
    """A second provider: another issuer, another key."""
    with start_provider() as running:
        yield running


@pytest.fixture
def service_user(app_db_url: str) -> int:
    return make_user(app_db_url, SERVICE_USER, "teacher")


@pytest.fixture
def bearer_client(make_client: Callable[..., TestClient], provider: Provider, service_user: int) -> TestClient:
    return make_client(api_oidc_issuer=provider.issuer, api_oidc_audience=AUDIENCE, api_oidc_scope_claim=SCOPE_CLAIM,
                       api_oidc_scope_prefix=SCOPE_PREFIX, api_oidc_user=SERVICE_USER)  # fmt: skip


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _forged(provider: Provider, **claims: object) -> str:
    """A token like the provider's, under the provider's key id, signed with a key it never had."""
    kid = jwt.get_unverified_header(provider.client_token("sis-1"))["kid"]
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    payload = {"iss": provider.issuer, "aud": AUDIENCE, "exp": int(time.time()) + 600, "client_id": "sis-1",
               SCOPE_CLAIM: [SCOPE_PREFIX + "admin"], **claims}  # fmt: skip
    return jwt.encode(payload, key, algorithm="RS256", headers={"kid": kid})


def test_a_provider_token_predicts_as_the_configured_user(
    bearer_client: TestClient, provider: Provider, app_db_url: str, service_user: int
) -> None:
    response = bearer_client.post("/v1/predict", json=STUDENT, headers=_bearer(provider.client_token("sis-1")))
    assert response.status_code == 200, response.text
    with session_scope(get_engine(app_db_url)) as session:
        logged = session.scalars(sa.select(PredictionLog.user_id).where(PredictionLog.channel == "api")).all()
    assert logged == [service_user]


def test_the_scope_comes_from_the_configured_claim(bearer_client: TestClient, provider: Provider) -> None:
    predict, admin = provider.client_token("sis-1"), provider.client_token("admin-sis")
    assert bearer_client.get("/metrics", headers=_bearer(predict)).status_code == 403
    assert bearer_client.get("/metrics", headers=_bearer(admin)).status_code == 200
    refused = bearer_client.post("/v1/predict", json=STUDENT, headers=_bearer(provider.client_token("noscope-sis")))
    assert refused.status_code == 403 and '"roles" claim must hold "mathsight.predict"' in refused.json()["message"]


@pytest.mark.parametrize(
    ("client_id", "why"), [("expired-sis", "expired"), ("elsewhere-sis", "not meant for this API")]
)
def test_expired_tokens_and_tokens_for_another_audience_get_401(
    bearer_client: TestClient, provider: Provider, client_id: str, why: str
) -> None:
    response = bearer_client.post("/v1/predict", json=STUDENT, headers=_bearer(provider.client_token(client_id)))
    assert response.status_code == 401 and why in response.json()["message"]
    assert response.headers["WWW-Authenticate"] == "Bearer"


def test_a_token_of_another_provider_or_a_forged_signature_gets_401(
    bearer_client: TestClient, provider: Provider, other_provider: Provider
) -> None:
    elsewhere = bearer_client.post("/v1/predict", json=STUDENT, headers=_bearer(other_provider.client_token("sis-1")))
    assert (
        elsewhere.status_code == 401 and "not signed with a key of the identity provider" in elsewhere.json()["message"]
    )
    forged = bearer_client.post("/v1/predict", json=STUDENT, headers=_bearer(_forged(provider)))
    assert forged.status_code == 401 and "bad signature" in forged.json()["message"]
    unsigned = jwt.encode({"iss": provider.issuer, "aud": AUDIENCE, "exp": int(time.time()) + 600}, key=None,
                          algorithm="none")  # fmt: skip
    assert bearer_client.post("/v1/predict", json=STUDENT, headers=_bearer(unsigned)).status_code == 401


def test_the_issuer_is_checked_even_against_a_key_the_token_matches(
    provider: Provider, other_provider: Provider
) -> None:
    """A verifier for ``provider`` that (misconfigured) trusts the other provider's keys still refuses its tokens."""
    verifier = TokenVerifier(provider.issuer, AUDIENCE, scope_claim=SCOPE_CLAIM, scope_prefix=SCOPE_PREFIX,
                             jwks_url=f"{other_provider.issuer}/jwks")  # fmt: skip
    with pytest.raises(TokenError, match="not issued by the configured identity provider") as refused:
        verifier.verify(other_provider.client_token("sis-1"))
    assert refused.value.status == 401


def test_api_keys_still_work_and_a_deactivated_service_user_stops_the_tokens(
    bearer_client: TestClient, provider: Provider, keys: Keys, app_db_url: str
) -> None:
    assert bearer_client.post("/v1/predict", json=STUDENT, headers={"X-API-Key": keys.predict}).status_code == 200
    with session_scope(get_engine(app_db_url)) as session:
        users.deactivate(session, SERVICE_USER, actor="pytest")
    response = bearer_client.post("/v1/predict", json=STUDENT, headers=_bearer(provider.client_token("sis-1")))
    assert response.status_code == 401 and "deactivated" in response.json()["message"]


def test_without_a_configured_provider_a_jwt_is_just_a_wrong_key(client: TestClient, provider: Provider) -> None:
    response = client.post("/v1/predict", json=STUDENT, headers=_bearer(provider.client_token("sis-1")))
    assert response.status_code == 401 and "API key is not valid" in response.json()["message"]


def test_an_issuer_without_audience_or_user_is_refused_at_start(provider: Provider) -> None:
    from api.settings import ApiSettings

    with pytest.raises(ValueError, match="MATHSIGHT_API_OIDC_AUDIENCE and MATHSIGHT_API_OIDC_USER must be set"):
        ApiSettings(api_oidc_issuer=provider.issuer)
