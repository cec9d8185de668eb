"""The schema as others read it: the CSV template, the JSON description and the pydantic record model."""

from __future__ import annotations

import csv
import io
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, create_model

from model.schema.fields import (
    BANDS,
    EXAMPLE_RECORD,
    FIELDS,
    GROUPS,
    ID_COLUMN,
    MAX_ROWS,
    PASS_MARK,
    SEPARATORS,
    SETUP_FEATURES,
    TARGET,
    FieldSpec,
)


def template_csv(sep: str = ",") -> str:
    """A CSV template: the header (student_id, the 30 attributes, G1, G2) and one example row."""
    if sep not in SEPARATORS:
        raise ValueError(f"sep must be one of {SEPARATORS}")
    out = io.StringIO()
    writer = csv.writer(out, delimiter=sep, lineterminator="\n")
    writer.writerow([ID_COLUMN, *EXAMPLE_RECORD])
    writer.writerow(["S001", *EXAMPLE_RECORD.values()])
    return out.getvalue()


def _field_json(spec: FieldSpec) -> dict[str, Any]:
    return {
        "name": spec.name,
        "type": "integer" if spec.is_numeric else "string",
        "kind": spec.kind,
        "group": spec.group,
        "label": spec.label,
        "help": spec.help,
        "allowed": list(spec.allowed) if spec.allowed is not None else None,
        "min": spec.min,
        "max": spec.max,
        "value_labels": {str(k): v for k, v in spec.value_labels.items()},
        "required": spec.required,
        "actionable": spec.actionable,
    }


def json_schema() -> dict[str, Any]:
    """A JSON-ready description of the fields and rules (for the API's /v1/schema and the docs)."""
    return {
        "fields": [_field_json(spec) for spec in FIELDS.values()],
        "groups": list(GROUPS),
        "id_column": ID_COLUMN,
        "target": TARGET,
        "setups": {name: list(features) for name, features in SETUP_FEATURES.items()},
        "bands": {name: {"min": lo, "max": hi} for name, (lo, hi) in BANDS.items()},
        "pass_mark": PASS_MARK,
        "separators": list(SEPARATORS),
        "max_rows": MAX_ROWS,
        "row_numbers": "spreadsheet rows counting the header line: the first data row is row 2",
    }


def pydantic_field(spec: FieldSpec, example: Any = None) -> tuple[Any, Any]:
    """The pydantic (type, Field) of ``spec``, for typed models and OpenAPI docs built from the schema."""
    info: dict[str, Any] = {"title": spec.label, "description": spec.help}
    if example is not None:
        info["examples"] = [example]
    if spec.allowed is not None:
        return Literal[spec.allowed], Field(**info)  # type: ignore[valid-type]
    number = Annotated[int, Field(ge=spec.min, le=spec.max)]
    if spec.required:
        return number, Field(**info)
    return number | None, Field(default=None, **info)


StudentRecord: type[BaseModel] = create_model(  # type: ignore[call-overload]
    "StudentRecord",
    __config__=ConfigDict(extra="ignore"),
    __doc__="One student in canonical form (the output of validate_record; for typing and OpenAPI docs).",
    student_id=(str | None, Field(default=None, title="Student id", description="Optional, passed through")),
    **{name: pydantic_field(spec) for name, spec in FIELDS.items()},
)
