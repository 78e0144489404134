"""The OpenAPI document's request bodies and responses, declared by hand.

The routes read their bodies with orjson, not pydantic (validating big payloads with
pydantic costs more than the prediction), so the schemas are declared here for clients,
docs and schemathesis (``tests/serving/test_schemathesis.py`` runs all its checks). They
are as strict as the handlers: what a schema allows, the handler reads, bar what JSON Schema
cannot say (a tensor's ``shape`` against its ``data``, a row's length against ``columns``,
the columns a given model needs: ``GET /v2/models/{name}`` lists those); what it refuses,
the handler refuses with a 4xx. Every status and content type a route answers is listed.
"""

from __future__ import annotations

from typing import Any

from shipyard.serving._metrics import CONTENT_TYPE as METRICS_TYPE

#: A route's documented answers, as FastAPI's ``responses=`` takes them.
Responses = dict[int | str, dict[str, Any]]

_SCALAR: dict[str, Any] = {"type": ["string", "number", "integer", "boolean", "null"]}
_JSON = "application/json"
_BINARY = "application/octet-stream"
_TEXT = "text/plain"

#: ``{"error": message, "code": class, ...details}`` (``ShipyardError.to_dict``).
ERROR: dict[str, Any] = {
    "type": "object",
    "required": ["error", "code"],
    "properties": {
        "error": {"type": "string", "description": "What went wrong and how to fix it."},
        "code": {"type": "string", "description": "The error class, e.g. SchemaViolation."},
        "errors": {
            "type": "array",
            "description": "SchemaViolation: one entry per offending field.",
            "items": {"type": "object"},
        },
    },
}
_MEANINGS = {
    400: "The request is malformed (InvalidInput).",
    401: "No or unknown API token (Unauthorized).",
    403: "The token's role may not do this (PermissionDenied).",
    404: "No such model or version is served here (NotFound).",
    413: "The body or its number of rows is over the server's limits (PayloadTooLarge).",
    415: "A Content-Type this route does not read (UnsupportedMediaType).",
    422: "The rows do not match the model's input schema (SchemaViolation).",
    503: "The model is known but cannot answer now; the message says why (ModelUnavailable).",
}


def errors(*statuses: int) -> Responses:
    """The documented error answers of a route: one JSON error body per status."""
    return {
        s: {"description": _MEANINGS[s], "content": {_JSON: {"schema": ERROR}}} for s in statuses
    }


def ok(
    schema: dict[str, Any],
    media_type: str = _JSON,
    more: dict[str, dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """A documented 200 answer (``more``: other media types it may come as, and schemas)."""
    content = {media_type: {"schema": schema}}
    content.update({kind: {"schema": other} for kind, other in (more or {}).items()})
    return {"description": "Success", "content": content}


def _object(*required: str, **properties: dict[str, Any]) -> dict[str, Any]:
    return {"type": "object", "required": list(required), "properties": properties}


def _array(items: dict[str, Any]) -> dict[str, Any]:
    return {"type": "array", "items": items}


def _body(content: dict[str, dict[str, Any]]) -> dict[str, Any]:
    return {"requestBody": {"required": True, "content": content}}


# -- request bodies ------------------------------------------------------------------------

_RECORDS: dict[str, Any] = {
    "type": "array",
    "minItems": 1,
    "items": {"type": "object", "minProperties": 1, "additionalProperties": _SCALAR},
}
_SPLIT: dict[str, Any] = {
    "type": "object",
    "required": ["columns", "data"],
    "properties": {
        "columns": {
            "type": "array",
            "minItems": 1,
            "uniqueItems": True,
            "items": {"type": "string"},
        },
        "data": {
            "type": "array",
            "minItems": 1,
            "items": {"type": "array", "items": _SCALAR},
            "description": "Rows, each with one value per column.",
        },
    },
}

PREDICT_BODY = _body(
    {
        _JSON: {
            "schema": {
                "anyOf": [
                    {
                        "type": "object",
                        "required": ["records"],
                        "properties": {"records": _RECORDS},
                    },
                    {**_SPLIT, "not": {"required": ["records"]}},
                ]
            }
        }
    }
)

_DATATYPES = (
    ["BOOL", "BYTES"]
    + [f"{kind}{bits}" for kind in ("INT", "UINT") for bits in (8, 16, 32, 64)]
    + ["FP16", "FP32", "FP64"]
)
_NESTED: dict[str, Any] = {"type": "array", "items": {"anyOf": [_SCALAR, {"type": "array"}]}}
_TENSOR: dict[str, Any] = {
    "type": "object",
    "required": ["name", "shape", "datatype"],
    "properties": {
        "name": {"type": "string", "minLength": 1},
        "shape": {"type": "array", "minItems": 1, "items": {"type": "integer", "minimum": 0}},
        "datatype": {"type": "string", "enum": _DATATYPES},
        "parameters": {
            "type": "object",
            "properties": {"binary_data_size": {"type": "integer", "minimum": 0}},
        },
        "data": {
            **_NESTED,
            "description": "Row-major values, flat or nested; absent with binary_data_size.",
        },
    },
}
_OUTPUT_NAMES = ["predict", "predict_proba", "prediction_id"]
_INFER_JSON: dict[str, Any] = {
    "type": "object",
    "required": ["inputs"],
    "properties": {
        "id": {"type": "string"},
        "parameters": {
            "type": "object",
            "properties": {"binary_data_output": {"type": "boolean"}},
        },
        "inputs": {"type": "array", "minItems": 1, "items": _TENSOR},
        "outputs": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["name"],
                "properties": {
                    "name": {"type": "string", "enum": _OUTPUT_NAMES},
                    "parameters": {
                        "type": "object",
                        "properties": {"binary_data": {"type": "boolean"}},
                    },
                },
            },
        },
    },
}
INFER_BODY = _body(
    {
        _JSON: {"schema": _INFER_JSON},
        _BINARY: {
            "schema": {
                "type": "string",
                "format": "binary",
                "description": (
                    "The binary tensor data extension: the JSON request (as application/json) "
                    "then each input's raw data; needs the Inference-Header-Content-Length "
                    "header (the JSON part's size in bytes)."
                ),
            }
        },
    }
)

_MLFLOW_FORMS: list[tuple[str, dict[str, Any]]] = [
    ("dataframe_split", _SPLIT),
    ("dataframe_records", _RECORDS),
    (
        "instances",
        {"anyOf": [_RECORDS, {"type": "array", "minItems": 1, "items": {"type": "array"}}]},
    ),
    (
        "inputs",
        {
            "anyOf": [
                {"type": "object", "minProperties": 1, "additionalProperties": {"type": "array"}},
                _RECORDS,
                {"type": "array", "minItems": 1, "items": {"type": "array"}},
            ]
        },
    ),
]
INVOCATIONS_BODY = _body(
    {
        _JSON: {
            "schema": {
                "description": "MLflow's scoring format: exactly one of these keys.",
                "oneOf": [
                    {"type": "object", "required": [key], "properties": {key: schema}}
                    for key, schema in _MLFLOW_FORMS
                ],
            }
        },
        "text/csv": {"schema": {"type": "string", "description": "A header row, then rows."}},
    }
)

_LABEL: dict[str, Any] = {
    "type": "object",
    "required": ["prediction_id", "label"],
    "properties": {"prediction_id": {"type": "string"}, "label": _SCALAR},
}
FEEDBACK_BODY = _body(
    {
        _JSON: {
            "schema": {
                "anyOf": [
                    {**_LABEL, "not": {"required": ["labels"]}},
                    {
                        "type": "object",
                        "required": ["labels"],
                        "properties": {"labels": {"type": "array", "minItems": 1, "items": _LABEL}},
                    },
                ]
            }
        }
    }
)

# -- answers -------------------------------------------------------------------------------

_OUTPUT: dict[str, Any] = {
    "type": "object",
    "required": ["name", "datatype", "shape"],
    "properties": {
        "name": {"type": "string"},
        "datatype": {"type": "string"},
        "shape": {"type": "array", "items": {"type": "integer"}},
        "parameters": {"type": "object"},
        "data": {"type": "array"},
    },
}
INFER_OK = ok(
    {
        "type": "object",
        "required": ["model_name", "model_version", "outputs"],
        "properties": {
            "model_name": {"type": "string"},
            "model_version": {"type": "string"},
            "id": {"type": "string"},
            "parameters": {"type": "object"},
            "outputs": {"type": "array", "items": _OUTPUT},
        },
    },
    more={_BINARY: {"type": "string", "format": "binary"}},
)
PREDICT_OK = ok(
    {
        "type": "object",
        "required": ["model", "version", "prediction_ids", "predictions"],
        "properties": {
            "model": {"type": "string"},
            "version": {"type": "integer"},
            "prediction_ids": {"type": "array", "items": {"type": "string"}},
            "predictions": {"type": "array"},
            "classes": {"type": "array"},
            "probabilities": {"type": "array", "items": {"type": "array"}},
        },
    }
)
INVOCATIONS_OK = ok(
    {
        "type": "object",
        "required": ["predictions"],
        "properties": {"predictions": {"type": "array"}},
    }
)
FEEDBACK_OK = ok(
    {
        "type": "object",
        "required": ["matched", "unknown", "unknown_ids"],
        "properties": {
            "matched": {"type": "integer"},
            "unknown": {"type": "integer"},
            "unknown_ids": {"type": "array", "items": {"type": "string"}},
        },
    }
)
_READINESS: dict[str, Any] = {
    "ready": {"type": "boolean"},
    "version": {"type": "string", "description": "The version answering (when ready)."},
    "reason": {"type": "string", "description": "Why it cannot answer (when not ready)."},
}
_READY: dict[str, Any] = {
    "type": "object",
    "required": ["ready", "models"],
    "properties": {
        "ready": {"type": "boolean"},
        "models": {
            "type": "object",
            "additionalProperties": {
                "type": "object",
                "required": ["ready"],
                "properties": _READINESS,
            },
        },
    },
}
_MODEL_READY: dict[str, Any] = {
    "type": "object",
    "required": ["name", "ready"],
    "properties": {"name": {"type": "string"}, **_READINESS},
}


def _not_ready(description: str, schema: dict[str, Any]) -> dict[str, Any]:
    # The protocol reads 200 as ready and a 4xx as not ready; the body says why.
    return {"description": description, "content": {_JSON: {"schema": schema}}}


SERVER_READY: Responses = {
    200: ok(_READY),
    400: _not_ready("Not ready: a served model cannot answer yet (each says why).", _READY),
}
MODEL_READY: Responses = {
    200: ok(_MODEL_READY),
    400: _not_ready("Served but cannot answer now; 'reason' says why.", _MODEL_READY),
    **errors(401, 403, 404),
}
_STRING: dict[str, Any] = {"type": "string"}
_TENSOR_META = _object(
    "name", "datatype", "shape", name=_STRING, datatype=_STRING, shape=_array({"type": "integer"})
)
MODEL_METADATA: Responses = {
    200: ok(
        _object(
            "name",
            "versions",
            "platform",
            "inputs",
            "outputs",
            name=_STRING,
            versions=_array(_STRING),
            platform=_STRING,
            inputs=_array(_TENSOR_META),
            outputs=_array(_TENSOR_META),
            parameters={"type": "object"},
        )
    ),
    **errors(401, 403, 404, 503),
}
SERVER_METADATA: Responses = {
    200: ok(
        _object(
            "name",
            "version",
            "extensions",
            name=_STRING,
            version=_STRING,
            extensions=_array(_STRING),
        )
    )
}
LIVE: Responses = {
    200: ok({"type": "object", "required": ["live"], "properties": {"live": {"type": "boolean"}}})
}
MODELS: Responses = {
    200: ok({"type": "object", "required": ["alias", "models", "groups"]}),
    **errors(401, 403),
}
PING: Responses = {
    200: ok({"type": "string"}, _TEXT),
    503: {
        "description": "A served model cannot answer yet.",
        "content": {_TEXT: {"schema": {"type": "string"}}},
    },
}
VERSION: Responses = {200: ok({"type": "string"}, _TEXT)}
METRICS: Responses = {200: ok({"type": "string"}, METRICS_TYPE)}
SCORING_ERRORS: Responses = errors(400, 401, 403, 404, 413, 415, 422, 503)
FEEDBACK_ERRORS: Responses = errors(400, 401, 403, 404, 413, 415, 503)


def drop_unused_validation_errors(schema: dict[str, Any]) -> dict[str, Any]:
    """Remove FastAPI's automatic 422 "Validation Error" answers from ``schema``.

    FastAPI lists one on every route with parameters, but this server answers a request it
    cannot validate with 400 and the error body above (its handler for
    ``RequestValidationError``); the routes that do answer 422 document it themselves.
    """
    for item in schema.get("paths", {}).values():
        for operation in item.values():
            answer = operation.get("responses", {}).get("422")
            if answer and "HTTPValidationError" in str(answer.get("content", "")):
                del operation["responses"]["422"]
                operation["responses"].setdefault("400", errors(400)[400])
    components = schema.get("components", {}).get("schemas", {})
    for name in ("HTTPValidationError", "ValidationError"):
        components.pop(name, None)
    return schema
