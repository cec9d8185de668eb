"""The API's request and response shapes for the OpenAPI docs, generated from ``model.schema.fields``.

Requests are described here but validated by the schema module's own validator (so an API caller
reads the same messages as a teacher in the dashboard); responses are built as plain dicts.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, create_model

from model.schema.fields import ATTRIBUTES, EXAMPLE_RECORD, FIELDS, GRADES, ID_COLUMN, SETUPS
from model.schema.published import pydantic_field

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


class StudentPrediction(BaseModel):
    """The prediction for one student."""

    row: int = Field(description="1 for a single student; a batch's row number (see /v1/schema)")
    student_id: str | None
    setup: Literal[SETUPS]  # type: ignore[valid-type]
    model_version: str
    predicted_g3: float = Field(description="Predicted final grade, 0-20")
    lower: float = Field(description="Lower end of the prediction interval")
    upper: float = Field(description="Upper end of the prediction interval")
    likely_g3: float = Field(description="Most likely final grade (decides band and pass)")
    p_pass: float = Field(description="Probability of a final grade of 10 or more")
    band: Literal["I", "II", "III", "IV", "V"]
    risk: Literal["high", "medium", "low"]
    factors: list[Factor]


class PredictResponse(StudentPrediction):
    request_id: str


class ProblemDetail(BaseModel):
    """One thing wrong with the input: where, what was given and what is allowed."""

    row: int | None
    field: str | None
    value: str | None
    allowed: str | None
    message: str


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
