"""The dashboard process's own Prometheus counters, served at ``/_mathsight/metrics``.

``mathsight_dashboard_page_views_total{page, outcome}`` counts every page run (``shown``, or
``refused`` when the signed-in role may not see it, ``signed_out`` without a session). The route answers only
with ``Authorization: Bearer <MATHSIGHT_DASHBOARD_METRICS_TOKEN>`` (404 while no token is configured),
so Prometheus scrapes it with the same kind of credential it uses for the API.
"""

from __future__ import annotations

import hmac

from prometheus_client import CollectorRegistry, Counter, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from dashboard import session_cookie
from model.settings import get_settings

METRICS_PATH = "_mathsight/metrics"
REGISTRY = CollectorRegistry()
PAGE_VIEWS = Counter(
    "mathsight_dashboard_page_views",
    "Dashboard page runs by page and outcome",  # not shown to users
    ["page", "outcome"],
    registry=REGISTRY,
)


def count_view(page: str, outcome: str) -> None:
    PAGE_VIEWS.labels(page, outcome).inc()


def serve(request: Request) -> Response:
    token = get_settings().dashboard_metrics_token
    if not token:
        return Response("not found", status_code=404)  # not shown to users
    given = request.headers.get("authorization", "")
    if not hmac.compare_digest(given.encode(), f"Bearer {token}".encode()):
        return Response("unauthorized", status_code=401)
    return Response(generate_latest(REGISTRY), media_type=CONTENT_TYPE_LATEST)


def routes(base: str = "") -> list[Route]:
    """The metrics route, for ``st.App(routes=...)``, under the app's base URL path."""
    return [Route(session_cookie.url_path(METRICS_PATH, base), serve, methods=["GET"])]
