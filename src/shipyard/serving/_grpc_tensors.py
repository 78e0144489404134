"""Open Inference Protocol tensors in gRPC messages: to ``_v2``'s requests, and back.

A ``ModelInferRequest`` carries each input's values either in ``raw_input_contents`` (one
byte string per input, laid out as the HTTP binary extension lays them out: little-endian,
row-major, ``BYTES`` elements as a 4-byte length and the bytes; what Triton's and KServe's
clients send by default) or in the typed field of its ``contents`` (``fp64_contents`` for
FP64 ...). Either way the tensor becomes an ``_v2.InferTensor`` holding a numpy array, so
``_v2.request_rows`` checks it and builds the rows exactly as for REST. Answers go back in
``raw_output_contents``, as Triton's do.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from shipyard.errors import InvalidInput
from shipyard.serving._proto import grpc_predict_v2_pb2 as pb
from shipyard.serving._v2 import (
    DATATYPES,
    InferRequest,
    InferResponse,
    InferTensor,
    RequestedOutput,
    raw_output,
    raw_tensor,
)

#: The typed field of ``InferTensorContents`` holding each datatype, and its numpy type
#: (FP16 has none: the protocol sends it raw only).
_FIELDS: dict[str, tuple[str, np.dtype[Any]]] = {
    "BOOL": ("bool_contents", np.dtype(bool)),
    "INT8": ("int_contents", np.dtype(np.int32)),
    "INT16": ("int_contents", np.dtype(np.int32)),
    "INT32": ("int_contents", np.dtype(np.int32)),
    "INT64": ("int64_contents", np.dtype(np.int64)),
    "UINT8": ("uint_contents", np.dtype(np.uint32)),
    "UINT16": ("uint_contents", np.dtype(np.uint32)),
    "UINT32": ("uint_contents", np.dtype(np.uint32)),
    "UINT64": ("uint64_contents", np.dtype(np.uint64)),
    "FP32": ("fp32_contents", np.dtype(np.float32)),
    "FP64": ("fp64_contents", np.dtype(np.float64)),
    "BYTES": ("bytes_contents", np.dtype(object)),
}
_INT64_MAX = 2**63 - 1


def infer_request(message: Any) -> InferRequest:
    """A ``ModelInferRequest`` as the transport-neutral ``InferRequest`` (numpy data)."""
    raw = message.raw_input_contents
    if raw and len(raw) != len(message.inputs):
        raise InvalidInput(
            f"The request has {len(raw)} raw_input_contents for {len(message.inputs)} inputs; "
            "send one per input, in the order of 'inputs'."
        )
    tensors = []
    for i, tensor in enumerate(message.inputs):
        shape = list(tensor.shape)
        if raw:
            if tensor.contents.ByteSize():
                raise InvalidInput(
                    f"Input '{_short(tensor.name)}' has both contents and raw_input_contents; "
                    "send its values in one of them."
                )
            data = _from_raw(raw[i], tensor.datatype, shape, tensor.name)
        else:
            data = _from_contents(tensor.contents, tensor.datatype, shape, tensor.name)
        params = parameters(tensor.parameters)
        tensors.append(InferTensor(tensor.name, tensor.datatype, shape, data, params))
    outputs = [RequestedOutput(o.name, parameters(o.parameters)) for o in message.outputs]
    return InferRequest(tensors, message.id or None, parameters(message.parameters), outputs)


def infer_response(response: InferResponse) -> Any:
    """The ``ModelInferResponse`` of ``response``: outputs in ``raw_output_contents``."""
    message = pb.ModelInferResponse(
        model_name=response.model_name,
        model_version=response.model_version,
        id=response.id or "",
    )
    _set_parameters(message.parameters, response.parameters)
    for tensor in response.outputs:
        out = message.outputs.add(name=tensor.name, datatype=tensor.datatype, shape=tensor.shape)
        _set_parameters(out.parameters, tensor.parameters)
        message.raw_output_contents.append(raw_output(tensor))
    return message


def parameters(entries: Any) -> dict[str, Any]:
    """A protobuf ``map<string, InferParameter>`` as plain values."""
    out: dict[str, Any] = {}
    for key, value in entries.items():
        which = value.WhichOneof("parameter_choice")
        out[key] = None if which is None else getattr(value, which)
    return out


def _set_parameters(entries: Any, values: dict[str, Any]) -> None:
    for key, value in values.items():
        entry = entries[key]
        if isinstance(value, bool):
            entry.bool_param = value
        elif isinstance(value, int) and value > _INT64_MAX:
            entry.uint64_param = value
        elif isinstance(value, int):
            entry.int64_param = value
        elif isinstance(value, float):
            entry.double_param = value
        elif value is not None:
            entry.string_param = str(value)


def _from_raw(raw: bytes, datatype: str, shape: list[int], name: str) -> np.ndarray:
    if datatype not in DATATYPES or min(shape, default=-1) < 0:
        # _v2's checks name the problem; there is no layout to decode against.
        return np.empty(0, dtype=np.uint8)
    return raw_tensor(raw, datatype, shape, name)


def _from_contents(contents: Any, datatype: str, shape: list[int], name: str) -> np.ndarray:
    typed = _FIELDS.get(datatype)
    if datatype == "FP16":
        raise InvalidInput(
            f"Input '{_short(name)}' is FP16, which has no typed contents field; send it in "
            "raw_input_contents."
        )
    if typed is None or min(shape, default=-1) < 0:
        return np.empty(0, dtype=np.uint8)  # _v2's checks name the problem
    field, dtype = typed
    values = getattr(contents, field)
    if len(values) != math.prod(shape):
        raise InvalidInput(
            f"Input '{_short(name)}' has {len(values)} values in contents.{field} for shape "
            f"{shape} ({math.prod(shape)} expected)."
        )
    if datatype != "BYTES":
        return np.array(values, dtype=dtype)
    out = np.empty(len(values), dtype=object)
    out[:] = list(values)
    return out


def _short(name: object) -> str:
    text = str(name)
    return text if len(text) <= 64 else text[:61] + "..."
