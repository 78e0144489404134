"""The Open Inference Protocol (KServe / Triton "v2"), independent of the transport.

REST (``_v2_http``) and gRPC decode a request into an ``InferRequest`` of ``InferTensor``s;
``request_rows`` checks the tensors and builds the rows the model scores, and
``infer_response`` builds the ``InferResponse`` each transport encodes. Every check, and every
error message, is here once.

A request carries either one tensor per schema column (shape ``[n]`` or ``[n, 1]``, as the
metadata declares ``[-1, 1]``), or one ``[n, k]`` matrix whose columns are the schema's
columns in order (``FP32``/``FP64`` for an all-numeric model, ``BYTES`` for mixed types).
A tensor's data is a flat or nested list of JSON values (row-major) or a numpy array (binary
and gRPC data). The response has the outputs ``predict`` (labels or values),
``predict_proba`` (``[n, classes]``, classifiers only) and ``prediction_id`` (``BYTES``), or
those named in ``outputs``. Missing values: ``null`` in JSON, NaN in ``FP16/32/64`` data.

>>> tensor = InferTensor("age", "INT64", [2, 1], [41, None])
>>> request_rows(InferRequest([tensor]), ["age"]).rows
[[41.0], [nan]]
"""

from __future__ import annotations

import math
import struct
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from shipyard.dataset import ColumnSchema
from shipyard.errors import InvalidInput
from shipyard.serving._inputs import Rows
from shipyard.serving._runtime import ServedModel, json_floats

INT_TYPES = frozenset({"INT8", "INT16", "INT32", "INT64", "UINT8", "UINT16", "UINT32", "UINT64"})
FLOAT_TYPES = frozenset({"FP16", "FP32", "FP64"})
NUMERIC_TYPES = INT_TYPES | FLOAT_TYPES
DATATYPES = NUMERIC_TYPES | {"BOOL", "BYTES"}
#: The little-endian numpy dtype of each fixed-size datatype (binary and gRPC raw data).
NUMPY_DTYPES: dict[str, np.dtype[Any]] = {
    "BOOL": np.dtype("?"),
    "INT8": np.dtype("<i1"),
    "INT16": np.dtype("<i2"),
    "INT32": np.dtype("<i4"),
    "INT64": np.dtype("<i8"),
    "UINT8": np.dtype("<u1"),
    "UINT16": np.dtype("<u2"),
    "UINT32": np.dtype("<u4"),
    "UINT64": np.dtype("<u8"),
    "FP16": np.dtype("<f2"),
    "FP32": np.dtype("<f4"),
    "FP64": np.dtype("<f8"),
}
OUTPUT_NAMES = ("predict", "predict_proba", "prediction_id")
#: Request/output parameters that steer a transport's encoding, not the model.
TRANSPORT_PARAMETERS = frozenset({"binary_data_output", "binary_data", "binary_data_size"})
_COLUMN_TYPES = {
    "float": "FP64",
    "integer": "INT64",
    "boolean": "BOOL",
    "string": "BYTES",
    "categorical": "BYTES",
    "datetime": "BYTES",
}


@dataclass
class InferTensor:
    """One input tensor as a transport decoded it (compare tritonclient's ``InferInput``).

    ``data`` is a flat or nested list of JSON values (strings for ``BYTES``; ``None`` for a
    missing value), or a numpy array (``object`` of ``bytes``/``str`` for ``BYTES``).
    """

    name: str
    datatype: str
    shape: list[int]
    data: list[Any] | np.ndarray
    parameters: dict[str, Any] = field(default_factory=dict)


@dataclass
class RequestedOutput:
    """An output the request names, with its parameters (``binary_data`` over REST)."""

    name: str
    parameters: dict[str, Any] = field(default_factory=dict)


@dataclass
class InferRequest:
    """A decoded inference request: inputs, the optional ``id``, parameters and outputs."""

    inputs: list[InferTensor]
    id: str | None = None
    parameters: dict[str, Any] = field(default_factory=dict)
    outputs: list[RequestedOutput] = field(default_factory=list)


@dataclass
class OutputTensor:
    """One output tensor: ``data`` is a flat numpy array (``object`` of ``str`` for BYTES)."""

    name: str
    datatype: str
    shape: list[int]
    data: np.ndarray
    parameters: dict[str, Any] = field(default_factory=dict)


@dataclass
class InferResponse:
    """A scored request's answer, for a transport to encode."""

    model_name: str
    model_version: str
    outputs: list[OutputTensor]
    id: str | None = None
    parameters: dict[str, Any] = field(default_factory=dict)


def v2_datatype(column: ColumnSchema) -> str:
    """The tensor datatype a client should send for one schema column."""
    return _COLUMN_TYPES.get(column.dtype, "BYTES")


def model_metadata(served: ServedModel) -> dict[str, Any]:
    """``GET /v2/models/{name}``: name, versions, platform, input and output tensors."""
    outputs: list[dict[str, Any]] = [
        {"name": "predict", "datatype": label_datatype(served), "shape": [-1]}
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


# -- requests ------------------------------------------------------------------------------


def check_request(request: InferRequest) -> None:
    """Refuse (400) a request without inputs, with a bad ``id`` or unknown outputs."""
    if not request.inputs:
        raise InvalidInput("An inference request needs 'inputs': a non-empty list of tensors.")
    if request.id is not None and not isinstance(request.id, str):
        raise InvalidInput("The request 'id' must be a string.")
    if not isinstance(request.parameters, dict):
        raise InvalidInput("The request 'parameters' must be an object.")
    unknown = [o.name for o in request.outputs if o.name not in OUTPUT_NAMES]
    if unknown:
        raise InvalidInput(
            f"Unknown output {_short(unknown[0])!r}; this model has {', '.join(OUTPUT_NAMES)}."
        )


def check_tensor(tensor: InferTensor, i: int) -> None:
    """Refuse (400) a tensor whose name, shape, datatype or number of values is wrong.

    Nested list data is flattened (row-major) in place.
    """
    if not isinstance(tensor.name, str) or not tensor.name:
        raise InvalidInput(f"Input {i} needs a 'name' (a string).")
    label = _short(tensor.name)
    shape = tensor.shape
    if (
        not isinstance(shape, list)
        or not shape
        or not all(isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in shape)
    ):
        raise InvalidInput(f"Input '{label}' needs a 'shape': a list of non-negative integers.")
    if not isinstance(tensor.datatype, str) or tensor.datatype not in DATATYPES:
        raise InvalidInput(
            f"Input '{label}' has an unknown datatype; use one of {', '.join(sorted(DATATYPES))}."
        )
    if not isinstance(tensor.parameters, dict):
        raise InvalidInput(f"Input '{label}' has 'parameters' that are not an object.")
    if not isinstance(tensor.data, list | np.ndarray):
        raise InvalidInput(f"Input '{label}' needs 'data': a list of values.")
    data = tensor.data
    if isinstance(data, np.ndarray):
        count = data.size
    else:
        if data and isinstance(data[0], list):
            tensor.data = data = _flatten(data)
        count = len(data)
    if math.prod(shape) != count:
        raise InvalidInput(
            f"Input '{label}' has {count} values for shape {shape} ({math.prod(shape)} expected)."
        )


def tensor_column(tensor: InferTensor) -> np.ndarray:
    """The tensor's values as one flat numpy column (the types of contract 1).

    ``FP*`` become float64 (``null``/NaN missing), ``INT*``/``UINT*`` int64 (float64 with
    NaN when a JSON value is ``null``), ``BOOL`` bool (object with ``None`` when one is
    missing), ``BYTES`` object of ``str`` (UTF-8) or ``None``.
    """
    label, datatype, data = _short(tensor.name), tensor.datatype, tensor.data
    if isinstance(data, np.ndarray):
        return _array_column(data.reshape(-1), datatype, label)
    if datatype == "BYTES":
        return _text_column(data, label)
    if datatype == "BOOL":
        if not all(type(v) is bool or v is None for v in data):
            raise InvalidInput(
                f"Input '{label}' is declared BOOL but not all its values are booleans."
            )
        return np.array(data, dtype=bool if None not in data else object)
    if datatype in INT_TYPES:
        if not all(type(v) is int or v is None for v in data):
            raise InvalidInput(
                f"Input '{label}' is declared {datatype} but not all its values are integers."
            )
        if None in data:
            return np.array(data, dtype=np.float64)  # None -> NaN
        try:
            return np.array(data, dtype=np.int64)
        except OverflowError:
            raise InvalidInput(f"Input '{label}' holds an integer beyond 64 bits.") from None
    if not all(type(v) in (int, float) or v is None for v in data):
        raise InvalidInput(
            f"Input '{label}' is declared {datatype} but not all its values are numbers."
        )
    try:
        return np.array(data, dtype=np.float64)  # None -> NaN
    except OverflowError:
        raise InvalidInput(f"Input '{label}' holds a number beyond 64-bit floats.") from None


def request_rows(request: InferRequest, columns: list[str]) -> Rows:
    """Check ``request`` and its tensors against a model of ``columns``; the rows to score.

    Each column is decoded to numpy (``tensor_column``), then the values become ``Rows``
    (``Rows.from_columns``): for the few rows of a request that is several times cheaper than
    a DataFrame, and ``ServedModel.coerce`` types it as it types JSON records. A ``[n, k]``
    matrix is split into the schema's ``k`` columns in order.
    """
    check_request(request)
    tensors = request.inputs
    for i, tensor in enumerate(tensors):
        check_tensor(tensor, i)
    if len(tensors) == 1 and len(tensors[0].shape) == 2 and tensors[0].shape[1] != 1:
        tensor = tensors[0]
        n, k = tensor.shape
        if k != len(columns):
            raise InvalidInput(
                f"Input '{_short(tensor.name)}' is a [{n}, {k}] matrix but the model has "
                f"{len(columns)} columns; send [n, {len(columns)}] in the schema's column order "
                "(GET /v2/models/{name} lists it) or one tensor per column."
            )
        matrix = tensor_column(tensor).reshape(n, k)
        return Rows.from_columns(columns, [matrix[:, j] for j in range(k)])
    names = [t.name for t in tensors]
    if len(set(names)) != len(names):
        raise InvalidInput("Two inputs have the same name; send one tensor per column.")
    bad = [t.name for t in tensors if len(t.shape) > 2 or t.shape[1:] not in ([], [1])]
    if bad:
        raise InvalidInput(
            f"Inputs {', '.join(repr(_short(b)) for b in bad)} must have shape [n] or [n, 1] "
            "(one tensor per column, as GET /v2/models/{name} declares), or send a single "
            "[n, k] matrix."
        )
    if len({t.shape[0] for t in tensors}) > 1:
        raise InvalidInput("The input tensors have different numbers of rows.")
    return Rows.from_columns(names, [tensor_column(t) for t in tensors])


def _array_column(array: np.ndarray, datatype: str, label: str) -> np.ndarray:
    if datatype == "BYTES":
        return _text_column(array.tolist(), label)
    if array.dtype == object:
        return tensor_column(InferTensor(label, datatype, [array.size], array.tolist()))
    if datatype == "BOOL":
        return array.astype(bool, copy=False)
    if datatype in FLOAT_TYPES:
        return array.astype(np.float64, copy=False)
    if array.dtype == np.uint64 and array.size and array.max() > np.iinfo(np.int64).max:
        raise InvalidInput(f"Input '{label}' holds a UINT64 value beyond INT64's range.")
    return array.astype(np.int64, copy=False)


def _text_column(values: list[Any], label: str) -> np.ndarray:
    out = np.empty(len(values), dtype=object)
    for i, value in enumerate(values):
        if type(value) is bytes:
            try:
                value = value.decode("utf-8")
            except UnicodeDecodeError:
                raise InvalidInput(
                    f"Input '{label}' is BYTES but element {i} is not UTF-8 text."
                ) from None
        elif type(value) is not str and value is not None:
            raise InvalidInput(
                f"Input '{label}' is declared BYTES but not all its values are strings."
            )
        out[i] = value
    return out


def raw_tensor(raw: bytes | memoryview, datatype: str, shape: list[int], name: str) -> np.ndarray:
    """A tensor's raw data (REST binary extension, gRPC ``raw_input_contents``) as an array.

    Fixed-size types are little-endian and row-major; ``BYTES`` elements are each a 4-byte
    little-endian length and that many bytes (an ``object`` array of ``bytes``). A size
    that disagrees with ``datatype`` and ``shape`` is refused (400).
    """
    label = _short(name)
    if not isinstance(datatype, str) or datatype not in DATATYPES:
        raise InvalidInput(
            f"Input '{label}' has an unknown datatype; use one of {', '.join(sorted(DATATYPES))}."
        )
    count = math.prod(shape)
    if datatype == "BYTES":
        return _bytes_elements(raw, count, label)
    dtype = NUMPY_DTYPES[datatype]
    if len(raw) != count * dtype.itemsize:
        raise InvalidInput(
            f"Input '{label}' has {len(raw)} bytes of binary data but shape {shape} of "
            f"{datatype} takes {count * dtype.itemsize} ({dtype.itemsize} per value)."
        )
    return np.frombuffer(raw, dtype=dtype).copy()  # a writable array the frame may own


def _bytes_elements(raw: bytes | memoryview, count: int, label: str) -> np.ndarray:
    offset, size = 0, len(raw)
    if count * 4 > size:  # before allocating: a shape of 10**9 in a small body is refused
        raise InvalidInput(
            f"Input '{label}' (BYTES) has {size} bytes of data for {count} elements; each "
            "element is a 4-byte little-endian length and that many bytes."
        )
    out = np.empty(count, dtype=object)
    for i in range(count):
        if offset + 4 > size:
            raise InvalidInput(
                f"Input '{label}' (BYTES) ends after {i} of its {count} elements; each element "
                "is a 4-byte little-endian length and that many bytes."
            )
        (length,) = struct.unpack_from("<I", raw, offset)
        offset += 4
        if offset + length > size:
            raise InvalidInput(
                f"Input '{label}' (BYTES) element {i} declares {length} bytes but only "
                f"{size - offset} remain in its binary data."
            )
        out[i] = bytes(raw[offset : offset + length])
        offset += length
    if offset != size:
        raise InvalidInput(
            f"Input '{label}' (BYTES) has {size - offset} bytes left after its {count} elements; "
            "its data does not match its shape."
        )
    return out


def raw_output(tensor: OutputTensor) -> bytes:
    """An output's raw data (REST binary extension, gRPC ``raw_output_contents``):
    little-endian values, or length-prefixed ``BYTES`` elements."""
    if tensor.datatype == "BYTES":
        parts: list[bytes] = []
        for value in tensor.data:
            item = b"" if value is None else str(value).encode("utf-8")
            parts.append(struct.pack("<I", len(item)))
            parts.append(item)
        return b"".join(parts)
    return np.ascontiguousarray(tensor.data, dtype=NUMPY_DTYPES[tensor.datatype]).tobytes()


# -- responses -----------------------------------------------------------------------------


def infer_response(
    served: ServedModel,
    labels: np.ndarray,
    proba: np.ndarray | None,
    ids: list[str],
    request: InferRequest,
) -> InferResponse:
    """The answer to ``request``: its outputs (all, or those named), ``id`` and parameters.

    The request's parameters are passed through, bar those that steer the encoding.
    """
    return make_response(
        served.name, str(served.version), label_datatype(served), labels, proba, ids, request
    )


def make_response(
    name: str,
    version: str,
    label_type: str,
    labels: np.ndarray,
    proba: np.ndarray | None,
    ids: list[str],
    request: InferRequest,
) -> InferResponse:
    """``infer_response`` for whatever answered (a model, a model group): ``name`` at
    ``version``, whose ``predict`` output is of ``label_type``."""
    n = len(ids)
    asked = {o.name: o.parameters for o in request.outputs}
    outputs: list[OutputTensor] = []
    for output in asked or OUTPUT_NAMES:
        params = {k: v for k, v in asked.get(output, {}).items() if k not in TRANSPORT_PARAMETERS}
        if output == "predict":
            datatype = label_type
            data = np.asarray(labels).reshape(-1)
            if datatype == "BYTES":
                data = np.array([None if v is None else str(v) for v in data], dtype=object)
            outputs.append(OutputTensor("predict", datatype, [n], data, params))
        elif output == "predict_proba" and proba is not None:
            flat = np.asarray(proba, dtype=np.float64).reshape(-1)
            shape = [n, int(proba.shape[1])]
            outputs.append(OutputTensor("predict_proba", "FP64", shape, flat, params))
        elif output == "prediction_id":
            data = np.array(ids, dtype=object)
            outputs.append(OutputTensor("prediction_id", "BYTES", [n], data, params))
    kept = {k: v for k, v in request.parameters.items() if k not in TRANSPORT_PARAMETERS}
    return InferResponse(name, version, outputs, request.id, kept)


def json_values(data: np.ndarray) -> list[Any]:
    """A flat output array as JSON values (NaN and infinities as ``null``)."""
    return json_floats(data) if data.dtype.kind == "f" else data.tolist()


def label_datatype(served: ServedModel) -> str:
    """The datatype of the ``predict`` output: the classes' type, or FP64 for a regressor."""
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


def _short(name: object) -> str:
    text = str(name)
    return text if len(text) <= 64 else text[:61] + "..."
