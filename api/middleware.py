"""The outer layer of every request: body size cap, request id, metrics, JSON access log, last-resort 500.

The body limit is enforced before the body is read: a declared ``Content-Length`` over the limit is
refused at once, and a body streamed without one is counted as it arrives and refused (413) as soon
as it passes the limit. The access log line names the route template, never the raw path or query,
so no personal data reaches it.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from datetime import UTC, datetime
from logging.handlers import RotatingFileHandler
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.errors import ApiError, error_response
from api.settings import ApiSettings

REQUEST_ID_HEADER = "X-Request-ID"
ACCESS_LOG_FILE = "api-access.jsonl"
log = logging.getLogger(__name__)


def access_logger(settings: ApiSettings) -> logging.Logger:
    """A logger (not registered globally) writing one JSON object per line to ``log_dir/api-access.jsonl``."""
    logger = logging.Logger("mathsight.api.access")
    assert settings.log_dir is not None
    handler = RotatingFileHandler(settings.log_dir / ACCESS_LOG_FILE, maxBytes=settings.log_max_bytes,
                                  backupCount=settings.log_backups, encoding="utf-8", delay=True)  # fmt: skip
    handler.setFormatter(logging.Formatter("%(message)s"))
    logger.addHandler(handler)
    return logger


def close_logger(logger: logging.Logger) -> None:
    for handler in list(logger.handlers):
        handler.close()
        logger.removeHandler(handler)


def _too_large(limit: int) -> ApiError:
    return ApiError(413, f"the request body is larger than the limit of {limit:,} bytes")


def _declared_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


class ApiMiddleware:
    """Wraps the app: see the module docstring. ``state`` is the app's :class:`api.deps.AppState`."""

    def __init__(self, app: ASGIApp, state: Any) -> None:
        self.app = app
        self.state = state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        scope.setdefault("state", {})
        request_id = uuid.uuid4().hex
        limit = self.state.settings.api_max_body_bytes
        response: dict[str, int] = {}

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                response["status"] = message["status"]
                message["headers"] = [*message.get("headers", []), (b"x-request-id", request_id.encode())]
            await send(message)

        received = 0

        async def capped_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise _too_large(limit)
            return message

        try:
            declared = _declared_length(scope)
            if declared is not None and declared > limit:
                error = _too_large(limit)
                await error_response(error.status, error.message)(scope, receive, send_with_id)
            else:
                await self.app(scope, capped_receive, send_with_id)
        except Exception:
            log.exception("unhandled error in %s %s (request %s)", scope["method"], _route(scope), request_id)
            if "status" not in response:
                message = f"internal error; quote request id {request_id} when reporting it"
                await error_response(500, message)(scope, receive, send_with_id)
            response.setdefault("status", 500)
        finally:
            self._record(scope, response.get("status", 500), time.perf_counter() - started, request_id)

    def _record(self, scope: Scope, status: int, seconds: float, request_id: str) -> None:
        route = _route(scope)
        self.state.metrics.observe_request(route, scope["method"], status, seconds)
        state = scope.get("state", {})
        key = state.get("key")
        line = {
            "time": datetime.now(UTC).isoformat(timespec="milliseconds"),
            "request_id": request_id,
            "method": scope["method"],
            "route": route,
            "status": status,
            "duration_ms": round(seconds * 1000, 2),
            "bytes_in": _declared_length(scope),
            "key": key.prefix if key is not None else None,
            "user_id": key.user_id if key is not None else None,
            "prediction_request_id": state.get("prediction_request_id"),
            "rows": state.get("rows"),
        }
        self.state.access_log.info(json.dumps(line))


def _route(scope: Scope) -> str:
    """The matched route's path template, or ``(unmatched)``: never the raw path."""
    route = scope.get("route")
    return getattr(route, "path", None) or "(unmatched)"
