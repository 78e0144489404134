"""The short way from a gRPC ``ModelInferRequest`` with raw contents to the rows it scores.

What ``tritonclient.grpc`` and KServe's clients send by default, one tensor per column in
``raw_input_contents``, took ~400 us per one-row request of 19 columns on the general path
(``_grpc_tensors.infer_request`` then ``_v2.request_rows``): for every tensor, reading the
protobuf fields into Python objects (shape, contents, parameters), a numpy array, the
protocol's checks, a column, then ``tolist`` for ``Rows``. ``raw_rows`` reads each tensor's
few fields once and unpacks its bytes straight into the Python values ``Rows`` holds
(``struct``: the same floats and ints numpy's ``tolist`` gives; UTF-8 text for ``BYTES``).

It takes only requests that plainly fit (every input in ``raw_input_contents``, shape ``[n]``
or ``[n, 1]`` with the same ``n``, FP64/FP32/INT64/INT32/BYTES, no ``contents`` nor
parameters on inputs, distinct names, outputs the model has, well-formed data) and answers
``None`` for anything else, which then takes the general path: every refusal and every
unusual request is decoded, checked and worded there, exactly as before.

>>> found = raw_rows(message)  # doctest: +SKIP
>>> rows, request = found if found is not None else general(message)  # doctest: +SKIP
"""

from __future__ import annotations

import struct
from typing import Any

from shipyard.serving._grpc_tensors import parameters
from shipyard.serving._inputs import Rows
from shipyard.serving._v2 import (
    OUTPUT_NAMES,
    InferRequest,
    InferTensor,
    RequestedOutput,
)

__all__ = ["raw_rows"]

#: struct's letter and size of each fixed-size datatype taken here (little-endian).
_FIXED = {"FP64": ("d", 8), "FP32": ("f", 4), "INT64": ("q", 8), "INT32": ("i", 4)}
_LENGTH = struct.Struct("<I")


def raw_rows(message: Any) -> tuple[Rows, InferRequest] | None:
    """The rows and request of ``message``, or ``None`` when it is not the plain case."""
    raw = message.raw_input_contents
    inputs = message.inputs
    if not raw or len(raw) != len(inputs):
        return None
    outputs = [RequestedOutput(o.name, parameters(o.parameters)) for o in message.outputs]
    if any(o.name not in OUTPUT_NAMES for o in outputs):
        return None
    names: list[str] = []
    values: list[list[Any]] = []
    tensors: list[InferTensor] = []
    rows = -1
    for tensor, data in zip(inputs, raw, strict=True):
        shape = tensor.shape
        dims = len(shape)
        if dims == 2:
            if shape[1] != 1:
                return None
        elif dims != 1:
            return None
        n = shape[0]
        if n != rows:
            if rows != -1 or n < 0:
                return None
            rows = n
        if tensor.parameters or tensor.HasField("contents"):
            return None
        name = tensor.name
        datatype = tensor.datatype
        column = _column(data, datatype, n)
        if not name or column is None:
            return None
        names.append(name)
        values.append(column)
        tensors.append(InferTensor(name, datatype, [n, 1] if dims == 2 else [n], column, {}))
    if len(set(names)) != len(names):
        return None
    request = InferRequest(tensors, message.id or None, parameters(message.parameters), outputs)
    return Rows(names, [list(row) for row in zip(*values, strict=True)]), request


def _column(data: bytes, datatype: str, n: int) -> list[Any] | None:
    """The ``n`` values of one raw tensor as Python values; ``None`` if they do not fit."""
    fixed = _FIXED.get(datatype)
    if fixed is not None:
        letter, size = fixed
        if len(data) != n * size:
            return None
        return list(struct.unpack(f"<{n}{letter}", data))
    if datatype != "BYTES":
        return None
    out: list[Any] = []
    offset, end = 0, len(data)
    for _ in range(n):
        if offset + 4 > end:
            return None
        (length,) = _LENGTH.unpack_from(data, offset)
        offset += 4
        if offset + length > end:
            return None
        try:
            out.append(data[offset : offset + length].decode("utf-8"))
        except UnicodeDecodeError:
            return None
        offset += length
    return out if offset == end else None
