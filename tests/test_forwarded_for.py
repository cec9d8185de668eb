"""X-Forwarded-For is believed only from a configured proxy: the sign-in back-off and the API's
per-address limit key on the real client behind a trusted proxy, and on the peer otherwise."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from pydantic import ValidationError

from api.main import create_app
from api.settings import ApiSettings
from model.accounts.clients import client_address
from model.settings import Settings, parse_networks

PROXIES = parse_networks("10.0.0.1, 192.168.0.0/16, ::1")


@pytest.mark.parametrize(
    ("peer", "forwarded", "client"),
    [
        ("10.0.0.1", "203.0.113.7", "203.0.113.7"),  # trusted proxy: its client
        ("192.168.4.2", "203.0.113.7, 10.0.0.1", "203.0.113.7"),  # a chain of trusted proxies
        ("10.0.0.1", "198.51.100.1, 203.0.113.7", "203.0.113.7"),  # the left entry is the client's own claim
        ("10.0.0.1", "not-an-ip", "10.0.0.1"),  # malformed: the proxy itself
        ("203.0.113.9", "1.2.3.4", "203.0.113.9"),  # untrusted peer: its header is ignored
        ("10.0.0.1", None, "10.0.0.1"),
        ("::1", "2001:db8::5", "2001:db8::5"),
    ],
)
def test_forwarded_for_only_from_trusted_proxies(peer: str, forwarded: str | None, client: str) -> None:
    assert client_address(peer, forwarded, PROXIES) == client


def test_with_no_trusted_proxies_the_header_is_never_believed() -> None:
    assert client_address("127.0.0.1", "203.0.113.7", parse_networks("")) == "127.0.0.1"
    assert Settings(_env_file=None).trusted_networks == ()


def test_a_bad_proxy_entry_is_refused_naming_it() -> None:
    with pytest.raises(ValidationError, match='"10.0.0.300" is not an IP address or CIDR'):
        Settings(trusted_proxies="10.0.0.1, 10.0.0.300")


def _wrong_key_statuses(client: TestClient, forwarded: list[str]) -> list[int]:
    return [client.get("/v1/models", headers={"X-API-Key": "ms_deadbeef_wrong", "X-Forwarded-For": address}).status_code
            for address in forwarded]  # fmt: skip


def test_api_wrong_keys_count_per_client_behind_a_trusted_proxy(app_db_url: str) -> None:
    settings = ApiSettings(database_url=app_db_url, api_rate_limit=2, trusted_proxies="10.0.0.1")
    with TestClient(create_app(settings), client=("10.0.0.1", 5000)) as proxied:
        # three clients behind the proxy, two wrong keys each: each has its own count
        assert _wrong_key_statuses(proxied, ["203.0.113.1", "203.0.113.2", "203.0.113.3"] * 2) == [401] * 6
        assert _wrong_key_statuses(proxied, ["203.0.113.1"]) == [429]


def test_api_ignores_forwarded_for_from_an_untrusted_peer(app_db_url: str) -> None:
    settings = ApiSettings(database_url=app_db_url, api_rate_limit=2, trusted_proxies="10.0.0.1")
    with TestClient(create_app(settings), client=("203.0.113.50", 5000)) as direct:
        # a client rotating forged X-Forwarded-For values still shares one count: its own address
        assert _wrong_key_statuses(direct, ["1.1.1.1", "2.2.2.2", "3.3.3.3"]) == [401, 401, 429]
