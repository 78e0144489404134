"""``raw_rows``: plain gRPC raw-content requests decode as the general path decodes them."""

from __future__ import annotations

import math
import struct
from typing import Any

import pytest

from shipyard.serving import _v2
from shipyard.serving._grpc_raw import raw_rows
from shipyard.serving._grpc_tensors import infer_request
from shipyard.serving._proto import grpc_predict_v2_pb2 as pb

COLUMNS = ["income", "ratio", "age", "accounts", "state"]


def _bytes(*texts: str) -> bytes:
    out = b""
    for text in texts:
        data = text.encode()
        out += struct.pack("<I", len(data)) + data
    return out


def request(n: int = 2, *, shape_1: bool = True, **changes: Any) -> Any:
    """A tritonclient-style request of ``n`` rows over ``COLUMNS``; ``changes`` replace a
    column's (datatype, raw bytes)."""
    columns: dict[str, tuple[str, bytes]] = {
        "income": ("FP64", struct.pack(f"<{n}d", *[math.nan, *range(1, n)][:n])),
        "ratio": ("FP32", struct.pack(f"<{n}f", *[0.1 * (i + 1) for i in range(n)])),
        "age": ("INT64", struct.pack(f"<{n}q", *[40 + i for i in range(n)])),
        "accounts": ("INT32", struct.pack(f"<{n}i", *[-i for i in range(n)])),
        "state": ("BYTES", _bytes(*["Zürich", "", "NY"][:n])),
    }
    columns.update(changes)
    message = pb.ModelInferRequest(model_name="m", id="req-1")
    for name, (datatype, raw) in columns.items():
        message.inputs.add(name=name, datatype=datatype, shape=[n, 1] if shape_1 else [n])
        message.raw_input_contents.append(raw)
    message.outputs.add(name="predict_proba")
    return pb.ModelInferRequest.FromString(message.SerializeToString())


def general(message: Any) -> tuple[Any, _v2.InferRequest]:
    decoded = infer_request(message)
    return _v2.request_rows(decoded, COLUMNS), decoded


@pytest.mark.parametrize("n", [0, 1, 2, 3])
@pytest.mark.parametrize("shape_1", [True, False], ids=["[n,1]", "[n]"])
def test_plain_requests_give_the_general_paths_rows(n: int, shape_1: bool) -> None:
    message = request(n, shape_1=shape_1)
    found = raw_rows(message)
    assert found is not None
    rows, decoded = found
    expected, expected_request = general(message)

    assert rows.columns == expected.columns
    assert repr(rows.rows) == repr(expected.rows)  # NaN included
    assert [[type(v) for v in row] for row in rows.rows] == [
        [type(v) for v in row] for row in expected.rows
    ]
    assert decoded.id == expected_request.id == "req-1"
    assert decoded.parameters == expected_request.parameters
    assert decoded.outputs == expected_request.outputs
    assert [(t.name, t.datatype, t.shape) for t in decoded.inputs] == [
        (t.name, t.datatype, t.shape) for t in expected_request.inputs
    ]


def _with_contents(message: Any) -> Any:
    message.inputs[0].contents.fp64_contents.append(1.0)
    return message


def _with_input_parameter(message: Any) -> Any:
    message.inputs[1].parameters["content_type"].string_param = "np"
    return message


def _with_unknown_output(message: Any) -> Any:
    message.outputs.add(name="logits")
    return message


def _renamed(message: Any) -> Any:
    message.inputs[1].name = "income"
    return message


def _unnamed(message: Any) -> Any:
    message.inputs[1].name = ""
    return message


def _rows_differ(message: Any) -> Any:
    message.inputs[2].shape[0] = 3
    return message


def _matrix(message: Any) -> Any:
    del message.inputs[1:]
    del message.raw_input_contents[1:]
    message.inputs[0].shape[1] = 2
    return message


def _one_raw_missing(message: Any) -> Any:
    del message.raw_input_contents[-1]
    return message


@pytest.mark.parametrize(
    "message",
    [
        pytest.param(request(state=("BYTES", b"\x02\x00\x00\x00\xff\xfe" * 2)), id="not-utf8"),
        pytest.param(request(state=("BYTES", _bytes("a", "b") + b"x")), id="bytes-left-over"),
        pytest.param(request(state=("BYTES", _bytes("a"))), id="bytes-too-few"),
        pytest.param(request(age=("INT64", b"\x00" * 12)), id="fixed-size-wrong"),
        pytest.param(request(age=("BOOL", b"\x01\x00")), id="another-datatype"),
        pytest.param(request(age=("INT65", b"\x00" * 16)), id="unknown-datatype"),
        pytest.param(_with_contents(request()), id="contents-too"),
        pytest.param(_with_input_parameter(request()), id="input-parameters"),
        pytest.param(_with_unknown_output(request()), id="unknown-output"),
        pytest.param(_renamed(request()), id="same-name-twice"),
        pytest.param(_unnamed(request()), id="no-name"),
        pytest.param(_rows_differ(request()), id="rows-differ"),
        pytest.param(_matrix(request()), id="matrix"),
        pytest.param(_one_raw_missing(request()), id="raw-missing"),
        pytest.param(pb.ModelInferRequest(model_name="m"), id="no-inputs"),
    ],
)
def test_anything_else_is_left_to_the_general_path(message: Any) -> None:
    assert raw_rows(message) is None
