"""The API's request and response shapes for the OpenAPI docs, generated from ``model.schema.fields``
(requests) and ``model.schema.results`` (each student's result).

Requests are described here but validated by the schema module's own validator (so an API caller
reads the same messages as a teacher in the dashboard); responses are built as plain dicts.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, create_model

from model.schema.fields import ATTRIBUTES, EXAMPLE_RECORD, FIELDS, GRADES, ID_COLUMN, SETUPS
from model.schema.published import pydantic_field
from model.schema.results import API_COLUMNS, COLUMNS, ResultColumn

INPUT_FIELDS = (*ATTRIBUTES, *GRADES)
EXAMPLE_STUDENT: dict[str, Any] = {ID_COLUMN: "S001", **EXAMPLE_RECORD}


StudentInput: type[BaseModel] = create_model(  # type: ignore[call-overload]
    "StudentInput",
    __config__=ConfigDict(extra="allow", json_schema_extra={"examples": [EXAMPLE_STUDENT]}),
    __doc__="One student: the 30 attributes, G1 and G2 when known (they choose the setup), an optional id. "
    "Names match ignoring case; categories also accept the codebook's spellings in any case.",
    student_id=(
        str | None,
        Field(default=None, title="Student id", description="Optional; echoed back, stored only as a keyed hash"),
    ),
    **{name: pydantic_field(FIELDS[name], EXAMPLE_RECORD[name]) for name in INPUT_FIELDS},
)


def student_input_schema() -> dict[str, Any]:
    """The JSON schema of one student (inlined in the OpenAPI request bodies)."""
    return StudentInput.model_json_schema()


class Factor(BaseModel):
    """One attribute's contribution to the predicted grade, in grade points and in words."""

    name: str
    label: str
    value: str | int | None
    points: float
    sentence: str
    actionable: bool


JSON_TYPES: dict[str, Any] = {"integer": int, "grade": float, "probability": float, "text": str, "category": str,
                              "flag": bool}  # fmt: skip


def _json_type(column: ResultColumn) -> Any:
    kind = Literal[column.values] if column.values is not None else JSON_TYPES[column.kind]
    return kind | None if column.nullable else kind


def prediction_model(columns: Sequence[str] = API_COLUMNS) -> type[BaseModel]:
    """The model of one student's result: ``columns`` of the result vocabulary, then the top factors."""
    return create_model(  # type: ignore[call-overload,no-any-return]
        "StudentPrediction",
        __doc__="The prediction for one student.",
        **{name: (_json_type(COLUMNS[name]), Field(description=COLUMNS[name].help)) for name in columns},
        factors=(list[Factor], Field(description="The attributes that move the prediction most, largest first")),
    )


StudentPrediction = prediction_model()


class ProblemDetail(BaseModel):
    """One thing wrong with the input: where, what was given and what is allowed."""

    row: int | None
    field: str | None
    value: str | None
    allowed: str | None
    message: str


class PredictResponse(StudentPrediction):  # type: ignore[valid-type,misc]
    request_id: str
    problems: list[ProblemDetail] = Field(
        description="Notes that reject nothing: unknown fields, which are ignored (the same rule as the batch)"
    )


class BatchResponse(BaseModel):
    """Accepted students' predictions and every problem, together."""

    request_id: str
    n_rows: int
    n_accepted: int
    n_rejected: int
    results: list[StudentPrediction]
    problems: list[ProblemDetail]


class ErrorResponse(BaseModel):
    """Every error has this shape."""

    error: str = Field(examples=["invalid_input"])
    message: str
    details: list[ProblemDetail]


class ActiveModel(BaseModel):
    setup: Literal[SETUPS]  # type: ignore[valid-type]
    version: str
    algorithm: str
    created_at: str
    n_rows: int
    metrics: dict[str, Any]


class ModelsResponse(BaseModel):
    models: list[ActiveModel]


class HealthResponse(BaseModel):
    status: Literal["ok"]
    database: str
    models: dict[str, str | None]
