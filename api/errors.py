"""Every error the API returns, as JSON: ``{"error", "message", "details": [{"row", "field", "value", "allowed"}]}``.

``error`` is a stable code a program can test (``invalid_input``, ``unauthorized`` ...), ``message``
a sentence for a person, ``details`` one entry per problem (each also carries its own ``message``).
Internal errors say only that something went wrong and give the request id; never a stack trace.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Mapping
from typing import Any

import sqlalchemy as sa
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from model.errors import InvalidInput, Problem, UserError, shown_value
from model.serving.predlog.insert import DB_UNAVAILABLE
from model.serving.service import ModelUnavailable, NoActiveModel

ERROR_CODES = {
    400: "invalid_input",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    413: "payload_too_large",
    415: "unsupported_media_type",
    429: "rate_limited",
    500: "internal_error",
    503: "unavailable",
}
MAX_DETAILS = 1000
log = logging.getLogger(__name__)


class SafeJSONResponse(JSONResponse):
    """JSON that can always be sent: a lone surrogate left in a string goes out as its ``\\ud800`` escape
    (still valid JSON) instead of failing the UTF-8 encoding with a 500."""

    def render(self, content: Any) -> bytes:
        text = json.dumps(content, ensure_ascii=False, allow_nan=False, indent=None, separators=(",", ":"))
        return text.encode("utf-8", "backslashreplace")


class ApiError(Exception):
    """An error response to send: status, code, message, per-problem details and extra headers."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        error: str | None = None,
        details: Iterable[Mapping[str, Any]] = (),
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.error = error or ERROR_CODES.get(status, "error")
        self.details = list(details)
        self.headers = dict(headers or {})


def problem_detail(problem: Problem) -> dict[str, Any]:
    """One ``details`` entry from a core :class:`~model.errors.Problem`."""
    return {"row": problem.row, "field": problem.column, "value": problem.value, "allowed": problem.allowed,
            "message": problem.message}  # fmt: skip


def detail(message: str, *, row: int | None = None, field: str | None = None, value: Any = None,
           allowed: str | None = None) -> dict[str, Any]:  # fmt: skip
    """A ``details`` entry made by the API itself."""
    shown = shown_value(value)
    return {"row": row, "field": field, "value": shown, "allowed": allowed, "message": message}


def error_response(
    status: int,
    message: str,
    *,
    error: str | None = None,
    details: Iterable[Mapping[str, Any]] = (),
    headers: Mapping[str, str] | None = None,
    **extra: Any,
) -> JSONResponse:
    """The JSON response for an error."""
    body = {"error": error or ERROR_CODES.get(status, "error"), "message": message,
            "details": list(details)[:MAX_DETAILS], **extra}  # fmt: skip
    return SafeJSONResponse(body, status_code=status, headers=dict(headers or {}))


def summary(problems: list[Problem], shown: int = 3) -> str:
    """The first few problem messages in one sentence."""
    messages = [p.message for p in problems[:shown]]
    more = len(problems) - shown
    return "; ".join(messages) + (f"; and {more} more problems" if more > 0 else "")


async def _api_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ApiError)
    return error_response(exc.status, exc.message, error=exc.error, details=exc.details, headers=exc.headers)


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    message = exc.detail if isinstance(exc.detail, str) else ERROR_CODES.get(exc.status_code, "error")
    if exc.status_code == 404:
        message = f"no such endpoint: {request.method} {request.url.path[:200]}; see /docs"
    return error_response(exc.status_code, message, headers=exc.headers)


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    details = [
        detail(str(err.get("msg", "invalid")), field=".".join(str(p) for p in err.get("loc", ()))[:200])
        for err in exc.errors()
    ]
    return error_response(400, "the request is not valid: " + "; ".join(d["message"] for d in details[:3]),
                          details=details)  # fmt: skip


async def _user_error(request: Request, exc: Exception) -> JSONResponse:
    """Any error meant for the caller (a bad record, an unusable file, ...): 400 with its row/field detail."""
    assert isinstance(exc, UserError)
    message = summary(exc.problems) if isinstance(exc, InvalidInput) else str(exc)
    return error_response(400, message, details=[problem_detail(p) for p in exc.problems])


async def _no_active_model(request: Request, exc: Exception) -> JSONResponse:
    """503: no active model, or one refused by its integrity check (why is in the server log, not here)."""
    assert isinstance(exc, NoActiveModel)
    if isinstance(exc, ModelUnavailable):
        message = f"the model for setup {exc.setup!r} is unavailable; an admin must check it"
    else:
        message = f"no model is active for setup {exc.setup!r}; an admin must activate one"
    return error_response(503, message, headers={"Retry-After": "60"})


async def _unicode_error(request: Request, exc: Exception) -> JSONResponse:
    """The safety net behind the validator's rule: text that cannot be encoded is the caller's input, not a 500."""
    assert isinstance(exc, UnicodeError)
    log.warning("text that is not valid Unicode reached %s (%s)", request.url.path[:100], type(exc).__name__)
    return error_response(400, "the request holds text that is not valid Unicode (such as a lone UTF-16 surrogate "
                          "\\ud800); send UTF-8 text", details=[detail("not valid Unicode text")])  # fmt: skip


def _unreachable(exc: Exception) -> bool:
    """Whether a database error means the database cannot be reached now (down, restarting, its connection
    dropped, SQLite's file unopenable or locked), as opposed to a broken database or a fault of ours."""
    if isinstance(exc, sa.exc.InterfaceError | sa.exc.TimeoutError) or getattr(exc, "connection_invalidated", False):
        return True
    driver_error = getattr(exc, "orig", None)
    if type(driver_error).__module__.startswith("psycopg"):  # psycopg's OperationalError: the connection's state
        return True
    return str(driver_error).startswith(("unable to open database file", "database is locked"))


async def _database_unavailable(request: Request, exc: Exception) -> JSONResponse:
    """The database cannot be reached (restarting, failing over): 503 with ``Retry-After``, so clients retry;
    any other database error goes on to the last-resort 500."""
    if not _unreachable(exc):
        raise exc
    return error_response(503, "the database is unavailable for a moment; retry shortly",
                          headers={"Retry-After": "5"})  # fmt: skip


def install_error_handlers(app: FastAPI) -> None:
    """Map every expected exception to its JSON error (unexpected ones: see ``api.middleware``)."""
    app.add_exception_handler(ApiError, _api_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(UserError, _user_error)
    app.add_exception_handler(NoActiveModel, _no_active_model)
    app.add_exception_handler(UnicodeError, _unicode_error)
    for unavailable in DB_UNAVAILABLE:
        app.add_exception_handler(unavailable, _database_unavailable)
