"""Which address a request comes from, for the per-client limits (sign-in back-off, API bad keys).

Behind a reverse proxy every request arrives from the proxy, so all clients would share one counter.
``X-Forwarded-For`` names the real client, but anyone can send that header: it is believed only when
the direct peer is one of the configured proxies (``MATHSIGHT_TRUSTED_PROXIES``). The header is read
from the right (the entry the nearest proxy added) past every trusted proxy; the first address that
is not a trusted proxy is the client. With no trusted proxies (the default) the peer is the client.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
FORWARDED_FOR = "X-Forwarded-For"


def _address(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(text.strip())
    except ValueError:
        return None


def _trusted(address: ipaddress.IPv4Address | ipaddress.IPv6Address | None, networks: Sequence[Network]) -> bool:
    return address is not None and any(address in network for network in networks)


def client_address(peer: str | None, forwarded_for: str | None, trusted: Sequence[Network]) -> str | None:
    """The client's address: ``peer`` unless it is a trusted proxy sending ``X-Forwarded-For``."""
    if not forwarded_for or not _trusted(_address(peer or ""), trusted):
        return peer
    client = peer
    for entry in reversed(forwarded_for.split(",")):
        address = _address(entry)
        if address is None:
            break  # a malformed entry: keep the last address a trusted proxy vouched for
        client = str(address)
        if not _trusted(address, trusted):
            break
    return client
