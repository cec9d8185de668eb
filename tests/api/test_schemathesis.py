"""Property-based tests generated from the OpenAPI spec by schemathesis: no input makes the API answer 5xx.

The spec is the app's own (read without a database); each case is sent to a live app on the test
database with an admin key, so every operation is reached past authentication.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error

from api.main import create_app
from api.settings import ApiSettings
from tests.api.conftest import Keys

schema = schemathesis.openapi.from_dict(create_app(ApiSettings(database_url="sqlite://")).openapi())


@pytest.fixture
def unlimited(make_client: Callable[..., TestClient]) -> TestClient:
    return make_client(api_rate_limit=1_000_000)


@schema.parametrize()
@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
def test_no_generated_request_gets_a_server_error(case: schemathesis.Case, unlimited: TestClient, keys: Keys) -> None:
    response = case.call(app=unlimited.app, headers={"X-API-Key": keys.admin})
    case.validate_response(response, checks=[not_a_server_error])
