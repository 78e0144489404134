"""The Open Inference Protocol (KServe / Triton "v2") bodies: tensors in, tensors out.

A request carries either one tensor per schema column (shape ``[n]`` or ``[n, 1]``), or one
``[n, k]`` matrix whose columns are the schema's columns in order (``FP32``/``FP64`` for an
all-numeric model, ``BYTES`` for mixed types). ``data`` is flat or nested, row-major. The
response has the outputs ``predict`` (labels or values), ``predict_proba`` (``[n, classes]``,
classifiers only) and ``prediction_id`` (``BYTES``), or those named in ``outputs``.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from shipyard.dataset import ColumnSchema
from shipyard.errors import InvalidInput
from shipyard.serving._inputs import Rows
from shipyard.serving._runtime import ServedModel, json_floats

NUMERIC_TYPES = frozenset(
    {"INT8", "INT16", "INT32", "INT64", "UINT8", "UINT16", "UINT32", "UINT64"}
    | {"FP16", "FP32", "FP64"}
)
DATATYPES = NUMERIC_TYPES | {"BOOL", "BYTES"}
OUTPUT_NAMES = ("predict", "predict_proba", "prediction_id")
_COLUMN_TYPES = {
    "float": "FP64",
    "integer": "INT64",
    "boolean": "BOOL",
    "string": "BYTES",
    "categorical": "BYTES",
    "datetime": "BYTES",
}


def v2_datatype(column: ColumnSchema) -> str:
    """The tensor datatype a client should send for one schema column."""
    return _COLUMN_TYPES.get(column.dtype, "BYTES")


def model_metadata(served: ServedModel) -> dict[str, Any]:
    """``GET /v2/models/{name}``: name, versions, platform, input and output tensors."""
    outputs: list[dict[str, Any]] = [
        {"name": "predict", "datatype": _label_datatype(served), "shape": [-1]}
    ]
    if served.classes is not None:
        outputs.append(
            {"name": "predict_proba", "datatype": "FP64", "shape": [-1, len(served.classes)]}
        )
    outputs.append({"name": "prediction_id", "datatype": "BYTES", "shape": [-1]})
    return {
        "name": served.name,
        "versions": [str(served.version)],
        "platform": f"shipyard-{served.loaded.manifest.flavor}-{served.runtime}",
        "inputs": [
            {"name": c.name, "datatype": v2_datatype(c), "shape": [-1, 1]}
            for c in served.schema.columns
        ],
        "outputs": outputs,
    }


def parse_infer_request(body: Any, columns: list[str]) -> tuple[Rows, Any, list[str]]:
    """The rows, the request ``id`` (or None) and the output names a v2 request asks for."""
    if not isinstance(body, dict):
        raise InvalidInput("An inference request must be a JSON object with 'inputs'.")
    tensors = body.get("inputs")
    if not isinstance(tensors, list) or not tensors:
        raise InvalidInput("An inference request needs 'inputs': a non-empty list of tensors.")
    request_id = body.get("id")
    if request_id is not None and not isinstance(request_id, str):
        raise InvalidInput("The request 'id' must be a string.")
    wanted = _requested_outputs(body.get("outputs"))
    decoded = [_tensor(t, i) for i, t in enumerate(tensors)]
    if len(decoded) == 1 and len(decoded[0][1]) == 2 and decoded[0][1][1] != 1:
        name, shape, data = decoded[0]
        n, k = shape
        if k != len(columns):
            raise InvalidInput(
                f"Input '{_short(name)}' is a [{n}, {k}] matrix but the model has "
                f"{len(columns)} columns; send [n, {len(columns)}] in the schema's column order "
                "(GET /v2/models/{name} lists it) or one tensor per column."
            )
        return (
            Rows(list(columns), [data[i * k : (i + 1) * k] for i in range(n)]),
            request_id,
            wanted,
        )
    names = [name for name, _, _ in decoded]
    if len(set(names)) != len(names):
        raise InvalidInput("Two inputs have the same name; send one tensor per column.")
    rows = {shape[0] for _, shape, _ in decoded}
    bad = [name for name, shape, _ in decoded if len(shape) > 2 or shape[1:] not in ([], [1])]
    if bad:
        raise InvalidInput(
            f"Inputs {', '.join(repr(_short(b)) for b in bad)} must have shape [n] or [n, 1] "
            "(one tensor per column), or send a single [n, k] matrix."
        )
    if len(rows) > 1:
        raise InvalidInput("The input tensors have different numbers of rows.")
    rows.pop()
    # Row-major JSON values, as the records route gives them: the schema's fast path types
    # them without a DataFrame (building one costs several times the whole typed path), and
    # anything unusual gets Rows.frame(), the frame this function used to return.
    values = [data for _, _, data in decoded]
    return Rows(names, [list(row) for row in zip(*values, strict=True)]), request_id, wanted


def infer_response(
    served: ServedModel,
    labels: np.ndarray,
    proba: np.ndarray | None,
    ids: list[str],
    request_id: Any,
    wanted: list[str],
) -> dict[str, Any]:
    """The v2 response body for one scored request."""
    n = len(ids)
    outputs: list[dict[str, Any]] = []
    for name in wanted or OUTPUT_NAMES:
        if name == "predict":
            outputs.append(
                {
                    "name": "predict",
                    "datatype": _label_datatype(served),
                    "shape": [n],
                    "data": json_floats(labels) if labels.dtype.kind == "f" else labels.tolist(),
                }
            )
        elif name == "predict_proba" and proba is not None:
            flat = np.asarray(proba, dtype=np.float64).reshape(-1)
            outputs.append(
                {
                    "name": "predict_proba",
                    "datatype": "FP64",
                    "shape": [n, int(proba.shape[1])],
                    "data": json_floats(flat),
                }
            )
        elif name == "prediction_id":
            outputs.append(
                {"name": "prediction_id", "datatype": "BYTES", "shape": [n], "data": ids}
            )
    body: dict[str, Any] = {
        "model_name": served.name,
        "model_version": str(served.version),
        "outputs": outputs,
    }
    if request_id is not None:
        body["id"] = request_id
    return body


def _requested_outputs(outputs: Any) -> list[str]:
    if outputs is None:
        return []
    if not isinstance(outputs, list) or not all(
        isinstance(o, dict) and isinstance(o.get("name"), str) for o in outputs
    ):
        raise InvalidInput("'outputs' must be a list of objects with a 'name'.")
    names = [o["name"] for o in outputs]
    unknown = [n for n in names if n not in OUTPUT_NAMES]
    if unknown:
        raise InvalidInput(
            f"Unknown output {_short(unknown[0])!r}; this model has {', '.join(OUTPUT_NAMES)}."
        )
    return names


def _tensor(tensor: Any, i: int) -> tuple[str, list[int], list[Any]]:
    if not isinstance(tensor, dict):
        raise InvalidInput(f"Input {i} must be an object with name, shape, datatype and data.")
    name, shape, datatype, data = (tensor.get(k) for k in ("name", "shape", "datatype", "data"))
    if not isinstance(name, str) or not name:
        raise InvalidInput(f"Input {i} needs a 'name' (a string).")
    label = _short(name)
    if (
        not isinstance(shape, list)
        or not shape
        or not all(isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in shape)
    ):
        raise InvalidInput(f"Input '{label}' needs a 'shape': a list of non-negative integers.")
    if datatype not in DATATYPES:
        raise InvalidInput(
            f"Input '{label}' has an unknown datatype; use one of {', '.join(sorted(DATATYPES))}."
        )
    if not isinstance(data, list):
        raise InvalidInput(f"Input '{label}' needs 'data': a list of values.")
    flat = _flatten(data) if data and isinstance(data[0], list) else data
    if math.prod(shape) != len(flat):
        raise InvalidInput(
            f"Input '{label}' has {len(flat)} values for shape {shape} "
            f"({math.prod(shape)} expected)."
        )
    _check_datatype(flat, datatype, label)
    return name, shape, flat


def _check_datatype(values: list[Any], datatype: str, label: str) -> None:
    if datatype == "BYTES":
        ok = all(type(v) is str or v is None for v in values)
        kind = "strings"
    elif datatype == "BOOL":
        ok = all(type(v) is bool or v is None for v in values)
        kind = "booleans"
    else:
        ok = all(type(v) in (int, float) or v is None for v in values)
        kind = "numbers"
    if not ok:
        raise InvalidInput(
            f"Input '{label}' is declared {datatype} but not all its values are {kind}."
        )


def _flatten(data: list[Any]) -> list[Any]:
    out: list[Any] = []
    stack = [iter(data)]
    while stack:
        for value in stack[-1]:
            if isinstance(value, list):
                stack.append(iter(value))
                break
            out.append(value)
        else:
            stack.pop()
    return out


def _label_datatype(served: ServedModel) -> str:
    classes = served.classes
    if classes is None:
        return "FP64"
    if all(isinstance(c, bool) for c in classes):
        return "BOOL"
    if all(isinstance(c, int) for c in classes):
        return "INT64"
    if all(isinstance(c, int | float) for c in classes):
        return "FP64"
    return "BYTES"


def _short(name: object) -> str:
    text = str(name)
    return text if len(text) <= 64 else text[:61] + "..."
