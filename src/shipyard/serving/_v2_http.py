"""Open Inference Protocol v2 over HTTP: JSON bodies and the binary tensor data extension.

A request body is JSON, or (Triton's and KServe's binary extension) a JSON header of
``Inference-Header-Content-Length`` bytes followed by the raw data of the inputs whose
``parameters.binary_data_size`` says how many bytes they take, in the order of ``inputs``:
fixed-size types little-endian, row-major; ``BYTES`` as a 4-byte little-endian length and
the bytes of each element. Outputs are sent the same way when the request asks
(``parameters.binary_data_output`` for all, ``parameters.binary_data`` per output): the answer
is then ``application/octet-stream`` with the same header, as Triton answers.

>>> body, headers = encode_response(response, request)  # doctest: +SKIP
"""

from __future__ import annotations

import json
from typing import Any

import orjson
from starlette.requests import Request

from shipyard.errors import InvalidInput
from shipyard.serving._inputs import media_type, parse_json, require_json
from shipyard.serving._v2 import (
    DATATYPES,
    InferRequest,
    InferResponse,
    InferTensor,
    RequestedOutput,
    json_values,
    raw_output,
    raw_tensor,
)

#: The request and response header giving the JSON part's length in bytes.
HEADER_LENGTH = "Inference-Header-Content-Length"
BINARY_TYPE = "application/octet-stream"


def header_length(value: str | None, body_size: int) -> int | None:
    """The ``Inference-Header-Content-Length`` header's value, checked against the body."""
    if value is None:
        return None
    text = value.strip()
    if not (text.isascii() and text.isdigit()):
        raise InvalidInput(
            f"The {HEADER_LENGTH} header must be a whole number of bytes (the JSON part's size)."
        )
    size = int(text)
    if size == 0 or size > body_size:
        raise InvalidInput(
            f"The {HEADER_LENGTH} header says the JSON part has {size} bytes but the body has "
            f"{body_size}; it must be the size of the JSON that starts the body."
        )
    return size


def read_request(request: Request, body: bytes) -> InferRequest:
    """The inference request of an HTTP ``request`` whose body is ``body``: JSON, or JSON and
    binary data (``application/octet-stream`` or JSON with the ``HEADER_LENGTH`` header)."""
    kind = media_type(request)
    if kind == BINARY_TYPE and HEADER_LENGTH.lower() not in request.headers:
        raise InvalidInput(
            f"An application/octet-stream inference request needs the {HEADER_LENGTH} "
            "header (the binary tensor data extension); send JSON otherwise."
        )
    if kind != BINARY_TYPE:
        require_json(request)
    json_size = header_length(request.headers.get(HEADER_LENGTH), len(body))
    return parse_request(body, json_size)


def parse_request(body: bytes, json_size: int | None) -> InferRequest:
    """The request in ``body``: all JSON, or ``json_size`` bytes of JSON then binary data."""
    try:
        head = parse_json(body if json_size is None else body[:json_size])
    except InvalidInput:
        if json_size is None and _json_then_more(body):
            raise InvalidInput(
                "The body has data after its JSON; binary tensor data needs the "
                f"{HEADER_LENGTH} header (the size of the JSON part in bytes)."
            ) from None
        raise
    if not isinstance(head, dict):
        raise InvalidInput("An inference request must be a JSON object with 'inputs'.")
    tensors = head.get("inputs")
    if not isinstance(tensors, list) or not tensors:
        raise InvalidInput("An inference request needs 'inputs': a non-empty list of tensors.")
    parameters = head.get("parameters", {})
    if not isinstance(parameters, dict):
        raise InvalidInput("The request 'parameters' must be an object.")
    request_id = head.get("id")
    if request_id is not None and not isinstance(request_id, str):
        raise InvalidInput("The request 'id' must be a string.")
    raw = memoryview(body)[json_size:] if json_size is not None else memoryview(b"")
    inputs, offset = [], 0
    for i, tensor in enumerate(tensors):
        decoded, used = _input(tensor, i, raw[offset:], has_binary=json_size is not None)
        inputs.append(decoded)
        offset += used
    if offset != len(raw):
        raise InvalidInput(
            f"The body has {len(raw)} bytes of binary data after the JSON header but the "
            f"inputs' binary_data_size add up to {offset}."
        )
    return InferRequest(inputs, request_id, parameters, _outputs(head.get("outputs")))


def _input(tensor: Any, i: int, raw: memoryview, *, has_binary: bool) -> tuple[InferTensor, int]:
    if not isinstance(tensor, dict):
        raise InvalidInput(f"Input {i} must be an object with name, shape, datatype and data.")
    # Typed Any: the common checks (``_v2.check_tensor``) refuse what is not as declared.
    name: Any = tensor.get("name")
    shape: Any = tensor.get("shape")
    datatype: Any = tensor.get("datatype")
    parameters = tensor.get("parameters", {})
    if not isinstance(name, str) or not name:
        raise InvalidInput(f"Input {i} needs a 'name' (a string).")
    label = _short(name)
    if not isinstance(parameters, dict):
        raise InvalidInput(f"Input '{label}' has 'parameters' that are not an object.")
    size = parameters.get("binary_data_size")
    if size is None:
        data = tensor.get("data")
        if not isinstance(data, list):
            raise InvalidInput(
                f"Input '{label}' needs 'data': a list of values (or "
                "parameters.binary_data_size with the binary data extension)."
            )
        return InferTensor(name, datatype, shape, data, parameters), 0
    if not has_binary:
        raise InvalidInput(
            f"Input '{label}' has parameters.binary_data_size but the request has no "
            f"{HEADER_LENGTH} header; send it with the JSON part's size."
        )
    if "data" in tensor:
        raise InvalidInput(f"Input '{label}' has both 'data' and binary data; send one.")
    if not isinstance(size, int) or isinstance(size, bool) or size < 0:
        raise InvalidInput(f"Input '{label}' has a binary_data_size that is not a byte count.")
    if size > len(raw):
        raise InvalidInput(
            f"Input '{label}' declares {size} bytes of binary data but only {len(raw)} remain "
            "after the JSON header and the inputs before it."
        )
    if not isinstance(datatype, str) or datatype not in DATATYPES or not _is_shape(shape):
        # The common checks name the problem; no data to decode against a bad declaration.
        return InferTensor(name, datatype, shape, [], parameters), size
    data = raw_tensor(raw[:size], datatype, shape, name)
    return InferTensor(name, datatype, shape, data, parameters), size


def _outputs(outputs: Any) -> list[RequestedOutput]:
    if outputs is None:
        return []
    if not isinstance(outputs, list) or not all(
        isinstance(o, dict)
        and isinstance(o.get("name"), str)
        and isinstance(o.get("parameters", {}), dict)
        for o in outputs
    ):
        raise InvalidInput("'outputs' must be a list of objects with a 'name'.")
    return [RequestedOutput(o["name"], o.get("parameters", {})) for o in outputs]


def _json_then_more(body: bytes) -> bool:
    try:
        json.JSONDecoder().raw_decode(body.decode("utf-8", "replace"))
    except ValueError:
        return False
    return True


def _is_shape(shape: Any) -> bool:
    return isinstance(shape, list) and all(
        isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in shape
    )


# -- responses -----------------------------------------------------------------------------


def encode_response(
    response: InferResponse, request: InferRequest
) -> tuple[bytes, dict[str, str], str]:
    """The body, extra headers and content type answering ``request`` with ``response``."""
    every = request.parameters.get("binary_data_output") is True
    asked = {o.name: o.parameters.get("binary_data") for o in request.outputs}
    outputs: list[dict[str, Any]] = []
    chunks: list[bytes] = []
    for tensor in response.outputs:
        binary = asked.get(tensor.name)
        if binary is None:
            binary = every
        entry: dict[str, Any] = {
            "name": tensor.name,
            "datatype": tensor.datatype,
            "shape": tensor.shape,
        }
        params = dict(tensor.parameters)
        if binary is True:
            raw = raw_output(tensor)
            params["binary_data_size"] = len(raw)
            chunks.append(raw)
        else:
            entry["data"] = json_values(tensor.data)
        if params:
            entry["parameters"] = params
        outputs.append(entry)
    body: dict[str, Any] = {
        "model_name": response.model_name,
        "model_version": response.model_version,
    }
    if response.id is not None:
        body["id"] = response.id
    if response.parameters:
        body["parameters"] = response.parameters
    body["outputs"] = outputs
    head = orjson.dumps(body)
    if not chunks:
        return head, {}, "application/json"
    return b"".join([head, *chunks]), {HEADER_LENGTH: str(len(head))}, BINARY_TYPE


def _short(name: object) -> str:
    text = str(name)
    return text if len(text) <= 64 else text[:61] + "..."
