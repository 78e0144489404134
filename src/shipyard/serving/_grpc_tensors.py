"""Open Inference Protocol tensors in gRPC messages, to numpy columns and back.

A ``ModelInferRequest`` carries each input's values either in ``raw_input_contents`` (one
byte string per input, little-endian, row-major; ``BYTES`` elements as a 4-byte length and
the bytes: what Triton's and KServe's clients send by default) or in the typed field of its
``contents`` (``fp64_contents`` for FP64 ...). Both become flat numpy arrays of the column
kinds the server scores (float64, int64, bool, object of ``str``), then a frame laid out as
the JSON form lays it out (one ``[n]``/``[n, 1]`` tensor per column, or one ``[n, k]``
matrix in the schema's order). Answers go back in ``raw_output_contents``, as Triton's do.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from shipyard.errors import InvalidInput
from shipyard.serving._proto import grpc_predict_v2_pb2 as pb
from shipyard.serving._runtime import ServedModel
from shipyard.serving._v2 import DATATYPES, OUTPUT_NAMES, _label_datatype, _short

#: The little-endian layout of each fixed-size datatype in raw contents.
_RAW: dict[str, np.dtype[Any]] = {
    "BOOL": np.dtype("u1"),
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
#: The typed field of ``InferTensorContents`` holding each datatype (FP16: raw only).
_FIELDS = {
    "BOOL": "bool_contents",
    "INT8": "int_contents",
    "INT16": "int_contents",
    "INT32": "int_contents",
    "INT64": "int64_contents",
    "UINT8": "uint_contents",
    "UINT16": "uint_contents",
    "UINT32": "uint_contents",
    "UINT64": "uint64_contents",
    "FP32": "fp32_contents",
    "FP64": "fp64_contents",
    "BYTES": "bytes_contents",
}
_LENGTH = struct.Struct("<I")


@dataclass(frozen=True)
class Tensor:
    """One decoded input: its values flat, as float64, int64, bool or object (``str``)."""

    name: str
    datatype: str
    shape: tuple[int, ...]
    data: np.ndarray


def decode_inputs(request: Any) -> list[Tensor]:
    """The input tensors of a ``ModelInferRequest``, checked against their shapes."""
    inputs = request.inputs
    if not inputs:
        raise InvalidInput("An inference request needs 'inputs': a non-empty list of tensors.")
    raw = request.raw_input_contents
    if raw and len(raw) != len(inputs):
        raise InvalidInput(
            f"The request has {len(raw)} raw_input_contents for {len(inputs)} inputs; send "
            "one per input, in the order of 'inputs'."
        )
    tensors = []
    for i, tensor in enumerate(inputs):
        if not tensor.name:
            raise InvalidInput(f"Input {i} needs a 'name'.")
        label = _short(tensor.name)
        datatype = tensor.datatype
        if datatype not in DATATYPES:
            raise InvalidInput(
                f"Input '{label}' has the unknown datatype '{_short(datatype)}'; use one of "
                f"{', '.join(sorted(DATATYPES))}."
            )
        shape = tuple(tensor.shape)
        if not shape or min(shape) < 0:
            raise InvalidInput(f"Input '{label}' needs a 'shape' of non-negative integers.")
        count = math.prod(shape)
        if raw:
            if tensor.contents.ByteSize():
                raise InvalidInput(
                    f"Input '{label}' has both contents and raw_input_contents; send its "
                    "values in one of them."
                )
            data = _from_raw(raw[i], datatype, count, label, shape)
        else:
            data = _from_contents(tensor.contents, datatype, count, label, shape)
        tensors.append(Tensor(tensor.name, datatype, shape, data))
    return tensors


def tensors_frame(tensors: Sequence[Tensor], columns: list[str]) -> pd.DataFrame:
    """The rows the tensors hold: one ``[n]``/``[n, 1]`` tensor per column, or one matrix."""
    first = tensors[0]
    if len(tensors) == 1 and len(first.shape) == 2 and first.shape[1] != 1:
        n, k = first.shape
        if k != len(columns):
            raise InvalidInput(
                f"Input '{_short(first.name)}' is a [{n}, {k}] matrix but the model has "
                f"{len(columns)} columns; send [n, {len(columns)}] in the schema's column "
                "order (ModelMetadata lists it) or one tensor per column."
            )
        matrix = first.data.reshape(n, k)
        return pd.DataFrame({c: matrix[:, j] for j, c in enumerate(columns)}, copy=False)
    bad = [t.name for t in tensors if len(t.shape) > 2 or t.shape[1:] not in ((), (1,))]
    if bad:
        raise InvalidInput(
            f"Inputs {', '.join(repr(_short(b)) for b in bad)} must have shape [n] or [n, 1] "
            "(one tensor per column), or send a single [n, k] matrix."
        )
    names = [t.name for t in tensors]
    if len(set(names)) != len(names):
        raise InvalidInput("Two inputs have the same name; send one tensor per column.")
    if len({t.shape[0] for t in tensors}) > 1:
        raise InvalidInput("The input tensors have different numbers of rows.")
    return pd.DataFrame({t.name: t.data for t in tensors}, copy=False)


def requested_outputs(request: Any) -> list[str]:
    """The output names a request asks for (empty: all of them)."""
    names = [o.name for o in request.outputs]
    unknown = [n for n in names if n not in OUTPUT_NAMES]
    if unknown:
        raise InvalidInput(
            f"Unknown output {_short(unknown[0])!r}; this model has {', '.join(OUTPUT_NAMES)}."
        )
    return names


def infer_response(
    served: ServedModel,
    labels: np.ndarray,
    proba: np.ndarray | None,
    ids: list[str],
    request: Any,
    wanted: list[str],
) -> Any:
    """The ``ModelInferResponse``: outputs in ``raw_output_contents``, ``id`` and
    ``parameters`` as the request sent them."""
    response = pb.ModelInferResponse(
        model_name=served.name, model_version=str(served.version), id=request.id
    )
    for key, value in request.parameters.items():
        response.parameters[key].CopyFrom(value)
    n = len(ids)
    for name in wanted or OUTPUT_NAMES:
        if name == "predict":
            datatype = _label_datatype(served)
            _add_output(response, name, datatype, [n], _raw_bytes(labels, datatype))
        elif name == "predict_proba" and proba is not None:
            values = np.ascontiguousarray(proba, dtype="<f8")
            _add_output(response, name, "FP64", [n, int(values.shape[1])], values.tobytes())
        elif name == "prediction_id":
            _add_output(response, name, "BYTES", [n], _bytes_raw(ids))
    return response


def _add_output(response: Any, name: str, datatype: str, shape: list[int], raw: bytes) -> None:
    out = response.outputs.add()
    out.name = name
    out.datatype = datatype
    out.shape.extend(shape)
    response.raw_output_contents.append(raw)


def _raw_bytes(values: np.ndarray, datatype: str) -> bytes:
    if datatype == "BYTES":
        return _bytes_raw([str(v) for v in values.tolist()])
    return np.ascontiguousarray(values, dtype=_RAW[datatype]).tobytes()


def _bytes_raw(texts: list[str]) -> bytes:
    """``BYTES`` elements in raw form: each a 4-byte little-endian length, then its bytes."""
    parts = []
    for text in texts:
        data = text.encode()
        parts.append(_LENGTH.pack(len(data)))
        parts.append(data)
    return b"".join(parts)


def _from_raw(
    raw: bytes, datatype: str, count: int, label: str, shape: tuple[int, ...]
) -> np.ndarray:
    if datatype == "BYTES":
        return _texts(_bytes_elements(raw, label), count, label, shape, "raw_input_contents")
    layout = _RAW[datatype]
    if len(raw) != count * layout.itemsize:
        raise InvalidInput(
            f"Input '{label}' has {len(raw)} bytes of raw_input_contents; shape {list(shape)} "
            f"of {datatype} needs {count * layout.itemsize}."
        )
    return _column(np.frombuffer(raw, dtype=layout), datatype)


def _from_contents(
    contents: Any, datatype: str, count: int, label: str, shape: tuple[int, ...]
) -> np.ndarray:
    field = _FIELDS.get(datatype)
    if field is None:
        raise InvalidInput(
            f"Input '{label}' is {datatype}, which has no typed contents field; send it in "
            "raw_input_contents."
        )
    values = getattr(contents, field)
    if datatype == "BYTES":
        return _texts(list(values), count, label, shape, f"contents.{field}")
    if len(values) != count:
        raise InvalidInput(
            f"Input '{label}' has {len(values)} values in contents.{field} for shape "
            f"{list(shape)} ({count} expected)."
        )
    return _column(np.array(values, dtype=_RAW[datatype]), datatype)


def _column(values: np.ndarray, datatype: str) -> np.ndarray:
    """Values as the server's column kinds: float64, int64 or bool."""
    if datatype == "BOOL":
        return values != 0
    if datatype.startswith("FP"):
        return values.astype(np.float64)
    return values.astype(np.int64)


def _bytes_elements(raw: bytes, label: str) -> list[bytes]:
    elements, pos, end = [], 0, len(raw)
    while pos < end:
        if pos + 4 > end:
            raise InvalidInput(
                f"Input '{label}''s raw BYTES contents end inside an element's 4-byte length."
            )
        (size,) = _LENGTH.unpack_from(raw, pos)
        pos += 4
        if pos + size > end:
            raise InvalidInput(
                f"Input '{label}''s raw BYTES contents declare an element of {size} bytes "
                f"but only {end - pos} remain."
            )
        elements.append(raw[pos : pos + size])
        pos += size
    return elements


def _texts(
    elements: list[bytes], count: int, label: str, shape: tuple[int, ...], where: str
) -> np.ndarray:
    if len(elements) != count:
        raise InvalidInput(
            f"Input '{label}' has {len(elements)} BYTES elements in {where} for shape "
            f"{list(shape)} ({count} expected)."
        )
    out = np.empty(count, dtype=object)
    try:
        out[:] = [e.decode() for e in elements]
    except UnicodeDecodeError:
        raise InvalidInput(f"Input '{label}' has a BYTES element that is not UTF-8 text.") from None
    return out
