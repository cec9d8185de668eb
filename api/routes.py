"""The endpoints: thin wrappers that read the request, call the core and shape the JSON."""

from __future__ import annotations

import json
import time
from functools import partial
from typing import Any

import pandas as pd
import sqlalchemy as sa
from fastapi import APIRouter, Request, Response
from fastapi.concurrency import run_in_threadpool
from prometheus_client import CONTENT_TYPE_LATEST
from sqlalchemy.exc import SQLAlchemyError

from api.deps import AdminKey, AppState, PredictKey, SessionDep, StateDep, spend_rows
from api.errors import ApiError, SafeJSONResponse, detail, error_response, problem_detail
from api.models import (
    BatchResponse,
    ErrorResponse,
    HealthResponse,
    ModelsResponse,
    PredictResponse,
    student_input_schema,
)
from model.accounts.apikeys import KeyHolder
from model.errors import BatchRejected
from model.schema.published import json_schema
from model.schema.reading import read_batch
from model.schema.results import API_COLUMNS, COLUMNS
from model.schema.validation import validate_frame
from model.serving import service
from model.store import registry
from model.store.registry import RegistryError

JSON_TYPES = ("application/json",)
MAX_INT_DIGITS = 100
CSV_TYPES = ("text/csv", "application/csv")
ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorResponse} for code in (400, 401, 403, 413, 415, 429, 500, 503)
}

router = APIRouter()


def _media_type(request: Request) -> str:
    return request.headers.get("content-type", "").split(";", 1)[0].strip().lower()


def _require_media_type(request: Request, allowed: tuple[str, ...]) -> str:
    media = _media_type(request)
    if media not in allowed:
        shown = media or "none"
        raise ApiError(415, f"content type {shown} is not accepted here; send {' or '.join(allowed)}",
                       details=[detail("unsupported content type", field="Content-Type", value=shown,
                                       allowed=", ".join(allowed))])  # fmt: skip
    return media


def _json_int(text: str) -> int | str:
    """A JSON integer; one too long for ``int()`` stays its digits, which the validator says are out of range."""
    return int(text) if len(text) <= MAX_INT_DIGITS else text


def _parse_json(body: bytes) -> Any:
    try:
        return json.loads(body, parse_int=_json_int)
    except (ValueError, RecursionError) as error:
        reason = str(error) if isinstance(error, json.JSONDecodeError) else "the text is not JSON"
        raise ApiError(400, f"the body is not valid JSON: {reason}", error="invalid_json") from None


def _json_cell(value: Any) -> Any:
    """Scalars as given; a nested list or object becomes its JSON text, which the validator then refuses."""
    return json.dumps(value)[:200] if isinstance(value, dict | list) else value


def _records_frame(items: list[Any]) -> pd.DataFrame:
    """A JSON list of students as a frame numbered 1, 2, ... (the ``row`` of every problem)."""
    if not items:
        raise BatchRejected("the list is empty: send at least one student")
    not_objects = [str(i) for i, item in enumerate(items, start=1) if not isinstance(item, dict)]
    if not_objects:
        shown = ", ".join(not_objects[:10]) + (" ..." if len(not_objects) > 10 else "")
        raise BatchRejected(f"every item of the list must be a JSON object (one student); these are not: {shown}")
    frame = pd.DataFrame([{str(k): _json_cell(v) for k, v in item.items()} for item in items], dtype=object)
    frame.index = pd.RangeIndex(1, len(items) + 1, name="row")
    return frame


def _batch_reply(state: AppState, key: KeyHolder, media: str, body: bytes) -> tuple[service.Prediction, Response]:
    """Read, charge the rows, validate, predict, log and serialise a batch: all of it in a worker thread."""
    started = time.perf_counter()
    refusal_logged = partial(service.refusal_logged, state.engine, state.settings, channel="api",
                             user_id=key.user_id, started=started)  # fmt: skip
    if media in CSV_TYPES:
        with refusal_logged():
            frame = read_batch(body)
    else:
        items = _parse_json(body)
        if not isinstance(items, list):
            raise ApiError(400, "the body must be a JSON list of students (send one student to /v1/predict)")
        with refusal_logged():
            frame = _records_frame(items)
    spend_rows(state, key, len(frame))
    with refusal_logged():
        validation = validate_frame(frame)
    prediction = service.predict_validated(state.store, state.engine, validation, channel="api", user_id=key.user_id,
                                           started=started)  # fmt: skip
    state.metrics.count_predictions(prediction.results)
    results = _student_json(prediction)
    return prediction, SafeJSONResponse({
        "request_id": prediction.request_id, "n_rows": prediction.n_rows, "n_accepted": len(results),
        "n_rejected": len(prediction.rejected_rows), "results": results,
        "problems": [problem_detail(p) for p in prediction.problems],
    })  # fmt: skip


def _one_reply(state: AppState, key: KeyHolder, body: bytes) -> tuple[service.Prediction, Response]:
    """Parse, charge one row, validate, predict, log and serialise one student (in a worker thread)."""
    record = _parse_json(body)
    if not isinstance(record, dict):
        raise ApiError(400, "the body must be a JSON object: one student's fields and values")
    spend_rows(state, key, 1)
    prediction = service.predict_one(state.store, state.engine, record, channel="api", user_id=key.user_id)
    state.metrics.count_predictions(prediction.results)
    return prediction, SafeJSONResponse({"request_id": prediction.request_id, **_student_json(prediction)[0],
                                         "problems": [problem_detail(p) for p in prediction.problems]})  # fmt: skip


def _student_json(prediction: service.Prediction) -> list[dict[str, Any]]:
    """Every accepted student's result (the result vocabulary's ``API_COLUMNS``) with its top factors, in row order."""
    results = prediction.results
    columns = {name: COLUMNS[name].for_json(results.index if name == "row" else results[name]) for name in API_COLUMNS}
    factors = [[factor.as_dict() for factor in prediction.factors.get(row, [])] for row in results.index]
    return [dict(zip(columns, values, strict=True)) | {"factors": shown}
            for *values, shown in zip(*columns.values(), factors, strict=True)]  # fmt: skip


def _done(request: Request, prediction: service.Prediction) -> None:
    request.state.prediction_request_id = prediction.request_id
    request.state.rows = prediction.n_rows


def _json_body(schema: dict[str, Any]) -> dict[str, Any]:
    return {"content": {"application/json": {"schema": schema}}, "required": True}


@router.post(
    "/v1/predict",
    tags=["predictions"],
    summary="Predict one student",
    response_model=PredictResponse,
    responses=ERRORS,
    openapi_extra={"requestBody": _json_body(student_input_schema())},
)
async def predict_one(request: Request, key: PredictKey, state: StateDep) -> Response:
    """The predicted final grade, its interval, P(pass), band, risk and the top factors of one student.

    The setup is the richest the grades allow: G1 and G2 given -> `period2`, only G1 -> `period1`,
    neither -> `early`. Every bad field is listed in `details` (400).
    """
    _require_media_type(request, JSON_TYPES)
    prediction, response = await run_in_threadpool(_one_reply, state, key, await request.body())
    _done(request, prediction)
    return response


@router.post(
    "/v1/predict/batch",
    tags=["predictions"],
    summary="Predict a class (JSON list or CSV)",
    response_model=BatchResponse,
    responses=ERRORS,
    openapi_extra={
        "requestBody": {
            "content": {
                "application/json": {"schema": {"type": "array", "items": student_input_schema()}},
                "text/csv": {"schema": {"type": "string"}},
            },
            "required": True,
        }
    },
)
async def predict_batch(request: Request, key: PredictKey, state: StateDep) -> Response:
    """Predictions for every valid student and the problems of every invalid one, together.

    Send a JSON list of students (problems' `row` = position in the list, from 1) or a CSV file as
    `text/csv` (';' or ',' separated; `row` = spreadsheet row, the header being row 1). A batch of N
    rows costs N against the key's row limit (`MATHSIGHT_API_ROW_LIMIT` per window, default 200,000);
    one that does not fit gets 429 with `Retry-After` and is not charged. The work and the reply's
    serialisation run in a worker thread, so a large batch does not hold up other requests.
    """
    media = _require_media_type(request, JSON_TYPES + CSV_TYPES)
    prediction, response = await run_in_threadpool(_batch_reply, state, key, media, await request.body())
    _done(request, prediction)
    return response


@router.get("/v1/models", tags=["models"], summary="Active model versions", response_model=ModelsResponse,
            responses=ERRORS)  # fmt: skip
def models(key: PredictKey, session: SessionDep) -> dict[str, Any]:
    """The version each setup serves, with its quality metrics from the paper's protocol."""
    active = registry.active_version_ids(session)
    versions = {v.id: v for v in registry.list_versions(session) if v.id in active.values()}
    return {"models": [
        {"setup": setup, "version": version.id, "algorithm": version.algorithm,
         "created_at": version.created_at.isoformat(), "n_rows": version.n_rows, "metrics": version.metrics}
        for setup, version_id in sorted(active.items()) if (version := versions.get(version_id)) is not None
    ]}  # fmt: skip


@router.get("/v1/schema", tags=["models"], summary="Fields, types and allowed values", responses=ERRORS)
def schema(key: PredictKey) -> dict[str, Any]:
    """The schema every input is checked against (the same as the dashboard's form and upload)."""
    return json_schema()


@router.get("/healthz", tags=["operations"], summary="Database and models reachable", response_model=HealthResponse,
            responses={503: {"model": ErrorResponse}})  # fmt: skip
def healthz(state: StateDep) -> Any:
    """200 when the database answers and every setup has an active model; 503 otherwise."""
    try:
        with state.engine.connect() as connection:
            connection.execute(sa.text("SELECT 1"))
        active = {setup: model.version_id for setup, model in state.store.active().items()}
        database = "ok"
    except (SQLAlchemyError, RegistryError):
        active, database = {}, "unreachable"
    models = {setup: active.get(setup) for setup in ("early", "period1", "period2")}
    if database == "ok" and all(models.values()):
        return {"status": "ok", "database": database, "models": models}
    missing = [setup for setup, version in models.items() if version is None]
    message = "the database is unreachable" if database != "ok" else f"no active model for {', '.join(missing)}"
    details = [detail(f"no active model for {setup}", field=setup) for setup in missing]
    return error_response(503, message, details=details, database=database, models=models)


@router.get("/metrics", tags=["operations"], summary="Prometheus metrics (admin key)",
            responses={**ERRORS, 200: {"content": {CONTENT_TYPE_LATEST: {}}}})  # fmt: skip
def metrics(key: AdminKey, state: StateDep) -> Response:
    """Request counts by route and status, latency histograms, predictions by setup and risk, model versions."""
    return Response(state.metrics.exposition(), media_type=CONTENT_TYPE_LATEST)
