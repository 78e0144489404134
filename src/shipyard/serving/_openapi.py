"""Request-body schemas for the OpenAPI document.

The routes read their bodies with orjson, not pydantic (validating big payloads with
pydantic costs more than the prediction), so the schemas are declared here by hand for
clients, docs and schemathesis.
"""

from __future__ import annotations

from typing import Any

_SCALAR: dict[str, Any] = {"type": ["string", "number", "integer", "boolean", "null"]}


def _body(schema: dict[str, Any], *, csv: bool = False) -> dict[str, Any]:
    content: dict[str, Any] = {"application/json": {"schema": schema}}
    if csv:
        content["text/csv"] = {"schema": {"type": "string"}}
    return {"requestBody": {"required": True, "content": content}}


_RECORDS: dict[str, Any] = {
    "type": "array",
    "items": {"type": "object", "additionalProperties": _SCALAR},
}
_SPLIT: dict[str, Any] = {
    "type": "object",
    "required": ["columns", "data"],
    "properties": {
        "columns": {"type": "array", "items": {"type": "string"}},
        "data": {"type": "array", "items": {"type": "array", "items": _SCALAR}},
    },
}

PREDICT_BODY = _body(
    {
        "oneOf": [
            {"type": "object", "required": ["records"], "properties": {"records": _RECORDS}},
            _SPLIT,
        ]
    }
)

_TENSOR: dict[str, Any] = {
    "type": "object",
    "required": ["name", "shape", "datatype", "data"],
    "properties": {
        "name": {"type": "string"},
        "shape": {"type": "array", "items": {"type": "integer", "minimum": 0}},
        "datatype": {
            "type": "string",
            "enum": ["BOOL", "INT32", "INT64", "FP32", "FP64", "BYTES"],
        },
        "parameters": {"type": "object"},
        "data": {"type": "array"},
    },
}
INFER_BODY = _body(
    {
        "type": "object",
        "required": ["inputs"],
        "properties": {
            "id": {"type": "string"},
            "parameters": {"type": "object"},
            "inputs": {"type": "array", "items": _TENSOR},
            "outputs": {
                "type": "array",
                "items": {"type": "object", "properties": {"name": {"type": "string"}}},
            },
        },
    }
)

INVOCATIONS_BODY = _body(
    {
        "type": "object",
        "properties": {
            "dataframe_split": _SPLIT,
            "dataframe_records": _RECORDS,
            "instances": {"type": "array"},
            "inputs": {"type": ["object", "array"]},
        },
    },
    csv=True,
)

_LABEL: dict[str, Any] = {
    "type": "object",
    "required": ["prediction_id", "label"],
    "properties": {"prediction_id": {"type": "string"}, "label": _SCALAR},
}
FEEDBACK_BODY = _body(
    {
        "oneOf": [
            _LABEL,
            {
                "type": "object",
                "required": ["labels"],
                "properties": {"labels": {"type": "array", "items": _LABEL}},
            },
        ]
    }
)
