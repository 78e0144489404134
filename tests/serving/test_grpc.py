"""The gRPC endpoint (``--grpc-port``) with Triton's own client in its default mode.

A real uvicorn server on a thread starts the gRPC server in its lifespan; ``tritonclient.grpc``
sends inputs as ``raw_input_contents`` and reads ``raw_output_contents``, as against Triton.
Typed ``contents`` go through Triton's generated stub. Answers must equal the HTTP ones, and
the prediction log must hold the same records whichever way a prediction came.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import grpc
import httpx
import numpy as np
import pandas as pd
import pytest
import tritonclient.grpc as triton
from tritonclient.grpc import service_pb2, service_pb2_grpc
from tritonclient.utils import InferenceServerException

from shipyard.auth import Tokens
from shipyard.predlog import PredictionLog
from shipyard.registry import Registry
from shipyard.serving import create_app, free_port, serve_in_thread
from shipyard.settings import ServeSettings
from shipyard.store import Store

COLUMNS = {"age": "INT64", "income": "FP64", "tenure": "FP64", "plan": "BYTES"}


@contextmanager
def serving(store: Store, **settings: Any) -> Iterator[tuple[str, str]]:
    """(HTTP base URL, gRPC address) of a server with ``settings``."""
    port = free_port()
    app = create_app(store, settings=ServeSettings(grpc_port=port, **settings))
    with serve_in_thread(app) as url:
        yield url, f"127.0.0.1:{port}"


@pytest.fixture
def server(store: Store, churn: Registry) -> Iterator[tuple[str, str]]:
    """(HTTP base URL, gRPC address) of a server without auth."""
    with serving(store, auth=False) as addresses:
        yield addresses


def triton_inputs(rows: pd.DataFrame) -> list[triton.InferInput]:
    """One [n, 1] tensor per column, as a Triton user sends them."""
    inputs = []
    for name, datatype in COLUMNS.items():
        values = rows[name].to_numpy()
        values = values.astype(object) if datatype == "BYTES" else values.astype(np.float64)
        if datatype == "INT64":
            values = rows[name].to_numpy().astype(np.int64)
        tensor = triton.InferInput(name, [len(rows), 1], datatype)
        tensor.set_data_from_numpy(values.reshape(-1, 1))
        inputs.append(tensor)
    return inputs


def v2_json(rows: pd.DataFrame) -> dict[str, Any]:
    """The same rows as a JSON v2 request, one tensor per column."""
    return {
        "inputs": [
            {"name": c, "datatype": t, "shape": [len(rows)], "data": rows[c].tolist()}
            for c, t in COLUMNS.items()
        ]
    }


def test_health_and_metadata(server: tuple[str, str], rows: pd.DataFrame) -> None:
    client = triton.InferenceServerClient(server[1])
    assert client.is_server_live() and client.is_server_ready()
    assert client.is_model_ready("churn") and client.is_model_ready("churn", "2")
    meta = client.get_server_metadata()
    assert meta.name == "shipyard" and meta.version
    model = client.get_model_metadata("churn", as_json=True)
    http = httpx.get(f"{server[0]}/v2/models/churn").json()
    assert model["name"] == "churn" and model["versions"] == ["1"]
    assert model["platform"] == http["platform"]
    assert [(i["name"], i["datatype"]) for i in model["inputs"]] == [
        (i["name"], i["datatype"]) for i in http["inputs"]
    ]
    assert [o["name"] for o in model["outputs"]] == ["predict", "predict_proba", "prediction_id"]
    with pytest.raises(InferenceServerException) as missing:
        client.is_model_ready("nope")
    assert missing.value.status() == "StatusCode.NOT_FOUND"
    assert "'nope' is not served here" in missing.value.message()


def test_infer_with_tritons_defaults_matches_http(
    server: tuple[str, str], rows: pd.DataFrame, expected: tuple[list[str], np.ndarray]
) -> None:
    labels, proba = expected
    client = triton.InferenceServerClient(server[1])
    result = client.infer(
        "churn", triton_inputs(rows), request_id="req-7", parameters={"trace": "abc"}
    )
    answer = result.get_response()
    assert answer.id == "req-7" and answer.model_version == "1"
    assert answer.parameters["trace"].string_param == "abc"
    assert len(answer.raw_output_contents) == 3  # answered raw, as Triton does
    assert [v.decode() for v in result.as_numpy("predict")] == labels
    np.testing.assert_allclose(result.as_numpy("predict_proba"), proba, atol=1e-9)
    ids = [v.decode() for v in result.as_numpy("prediction_id")]
    assert len(set(ids)) == 5

    http = httpx.post(f"{server[0]}/v2/models/churn/infer", json=v2_json(rows)).json()
    by_name = {o["name"]: o["data"] for o in http["outputs"]}
    assert by_name["predict"] == labels

    # Only the outputs asked for, and an explicit version.
    only = client.infer(
        "churn",
        triton_inputs(rows),
        model_version="2",
        outputs=[triton.InferRequestedOutput("predict")],
    )
    assert [o.name for o in only.get_response().outputs] == ["predict"]
    assert only.get_response().model_version == "2"


def test_typed_contents_and_one_matrix(
    server: tuple[str, str], rows: pd.DataFrame, expected: tuple[list[str], np.ndarray]
) -> None:
    labels, _ = expected
    request = service_pb2.ModelInferRequest(model_name="churn")
    for name, datatype in COLUMNS.items():
        tensor = request.inputs.add(name=name, datatype=datatype, shape=[len(rows)])
        values = rows[name].tolist()
        if datatype == "BYTES":
            tensor.contents.bytes_contents.extend(v.encode() for v in values)
        elif datatype == "INT64":
            tensor.contents.int64_contents.extend(int(v) for v in values)
        else:
            tensor.contents.fp64_contents.extend(values)
    with grpc.insecure_channel(server[1]) as channel:
        stub = service_pb2_grpc.GRPCInferenceServiceStub(channel)
        answer = stub.ModelInfer(request)
        assert [o.name for o in answer.outputs] == ["predict", "predict_proba", "prediction_id"]
        assert _bytes_elements(answer.raw_output_contents[0]) == labels

        # A [n, k] matrix in the schema's column order (BYTES: the model has a text column).
        matrix = service_pb2.ModelInferRequest(model_name="churn")
        tensor = matrix.inputs.add(name="x", datatype="BYTES", shape=[len(rows), 4])
        cells = rows[list(COLUMNS)].astype(str).to_numpy().reshape(-1)
        tensor.contents.bytes_contents.extend(v.encode() for v in cells)
        answer = stub.ModelInfer(matrix)
        assert _bytes_elements(answer.raw_output_contents[0]) == labels


def _bytes_elements(raw: bytes) -> list[str]:
    out, pos = [], 0
    while pos < len(raw):
        size = int.from_bytes(raw[pos : pos + 4], "little")
        out.append(raw[pos + 4 : pos + 4 + size].decode())
        pos += 4 + size
    return out


def _status(call: Any) -> tuple[str, str]:
    with pytest.raises(InferenceServerException) as error:
        call()
    return str(error.value.status()), str(error.value.message())


def test_bad_input_answers_the_right_status_and_sentence(
    server: tuple[str, str], rows: pd.DataFrame
) -> None:
    client = triton.InferenceServerClient(server[1])
    inputs = triton_inputs(rows)

    code, message = _status(lambda: client.infer("nope", inputs))
    assert code == "StatusCode.NOT_FOUND" and "'nope' is not served here" in message

    code, message = _status(lambda: client.infer("churn", inputs, model_version="9"))
    assert code == "StatusCode.NOT_FOUND"

    short = triton.InferInput("income", [5, 1], "FP64")
    short.set_data_from_numpy(np.ones((5, 1)))
    short._raw_content = short._raw_content[:-8]  # one value missing from the raw bytes
    code, message = _status(lambda: client.infer("churn", [*inputs[:1], short, *inputs[2:]]))
    assert code == "StatusCode.INVALID_ARGUMENT"
    assert message == (
        "Input 'income' has 32 bytes of binary data but shape [5, 1] of FP64 takes 40 "
        "(8 per value)."
    )

    odd = triton.InferInput("income", [5, 1], "FP128")
    odd._raw_content = b"\0" * 80
    code, message = _status(lambda: client.infer("churn", [*inputs[:1], odd, *inputs[2:]]))
    assert code == "StatusCode.INVALID_ARGUMENT" and "unknown datatype" in message

    rows_off = triton.InferInput("age", [4, 1], "INT64")
    rows_off.set_data_from_numpy(np.ones((4, 1), dtype=np.int64))
    code, message = _status(lambda: client.infer("churn", [rows_off, *inputs[1:]]))
    assert code == "StatusCode.INVALID_ARGUMENT" and "different numbers of rows" in message

    text = triton.InferInput("age", [5, 1], "BYTES")
    text.set_data_from_numpy(np.array([["old"]] * 5, dtype=object))
    code, message = _status(lambda: client.infer("churn", [text, *inputs[1:]]))
    assert code == "StatusCode.INVALID_ARGUMENT" and "'age'" in message and "old" not in message

    code, message = _status(
        lambda: client.infer("churn", inputs, outputs=[triton.InferRequestedOutput("logits")])
    )
    assert code == "StatusCode.INVALID_ARGUMENT" and "Unknown output 'logits'" in message

    metrics = httpx.get(f"{server[0]}/metrics").text
    assert 'endpoint="grpc_infer"' in metrics


def test_body_over_the_limit(store: Store, churn: Registry, rows: pd.DataFrame) -> None:
    with serving(store, auth=False, max_body_bytes=200) as (_, address):
        client = triton.InferenceServerClient(address)
        code, message = _status(lambda: client.infer("churn", triton_inputs(rows)))
        assert code == "StatusCode.RESOURCE_EXHAUSTED"
        assert "larger than this server's limit of 200 bytes" in message


def test_tokens_in_metadata(store: Store, churn: Registry, rows: pd.DataFrame) -> None:
    token, _ = Tokens(store).create(role="scorer", name="grpc", actor="admin")
    with serving(store) as (_, address):
        client = triton.InferenceServerClient(address)
        assert client.is_server_live()  # probes need no token
        code, message = _status(lambda: client.infer("churn", triton_inputs(rows)))
        assert code == "StatusCode.UNAUTHENTICATED" and "needs an API token" in message
        code, message = _status(lambda: client.get_model_metadata("churn"))
        assert code == "StatusCode.UNAUTHENTICATED"
        wrong = {"authorization": "Bearer sy_not-a-token"}
        code, message = _status(lambda: client.infer("churn", triton_inputs(rows), headers=wrong))
        assert code == "StatusCode.UNAUTHENTICATED" and "unknown or revoked" in message
        good = {"authorization": f"Bearer {token}"}
        result = client.infer("churn", triton_inputs(rows), headers=good)
        assert len(result.as_numpy("predict")) == 5
        assert client.is_model_ready("churn", headers=good)


def test_the_log_records_grpc_predictions_like_rest_ones(
    store: Store, churn: Registry, rows: pd.DataFrame, tmp_path: Path
) -> None:
    port = free_port()
    log = PredictionLog(tmp_path / "predlog").open()
    try:
        settings = ServeSettings(auth=False, grpc_port=port)
        app = create_app(store, settings=settings, prediction_log=log)
        with serve_in_thread(app) as url:
            rest = httpx.post(f"{url}/v2/models/churn/infer", json=v2_json(rows)).json()
            client = triton.InferenceServerClient(f"127.0.0.1:{port}")
            result = client.infer("churn", triton_inputs(rows))
            refused = triton.InferInput("age", [5, 1], "BYTES")
            refused.set_data_from_numpy(np.array([["old"]] * 5, dtype=object))
            _status(lambda: client.infer("churn", [refused, *triton_inputs(rows)[1:]]))
        rest_ids = next(o["data"] for o in rest["outputs"] if o["name"] == "prediction_id")
        grpc_ids = [v.decode() for v in result.as_numpy("prediction_id")]
        logged = log.query("SELECT * FROM predictions ORDER BY prediction_id", model="churn")
    finally:
        log.close()
    ok = logged[logged["status"] == "ok"].set_index("prediction_id")
    assert set(ok.index) == set(rest_ids) | set(grpc_ids)
    same = ok.drop(columns=[c for c in ("ts", "latency_ms", "compute_ms") if c in ok.columns])
    a = same.loc[rest_ids].reset_index(drop=True)
    b = same.loc[grpc_ids].reset_index(drop=True)
    pd.testing.assert_frame_equal(a, b)
    assert (a["arm"] == "production").all() and (a["version"] == 1).all()
    rejected = logged[logged["status"] == "rejected"]
    assert len(rejected) == 1 and "'age'" in rejected["reason"].iloc[0]


def test_traffic_policy_routes_grpc_like_http(
    store: Store, churn: Registry, rows: pd.DataFrame
) -> None:
    from gates_off import NO_GATES
    from shipyard.registry import Traffic

    Traffic(store, NO_GATES).canary("churn", 2, 50, actor="alice", sticky="header:X-User")
    one = rows.head(1)
    with serving(store, auth=False, poll_interval_seconds=0.1) as (url, address):
        client = triton.InferenceServerClient(address)
        seen: dict[str, set[str]] = {}
        for i in range(30):
            key = f"u{i}"
            for _ in range(2):
                answer = client.infer("churn", triton_inputs(one), headers={"x-user": key})
                seen.setdefault(key, set()).add(answer.get_response().model_version)
            rest = httpx.post(
                f"{url}/models/churn/predict",
                json={"records": one.to_dict("records")},
                headers={"X-User": key},
            )
            seen[key].add(rest.headers["X-Shipyard-Version"])
        # One version per key whichever way the request came; keys spread over both.
        assert all(len(v) == 1 for v in seen.values()), seen
        assert {next(iter(v)) for v in seen.values()} == {"1", "2"}
        # The explicit version bypasses the policy, as an explicit-version URL does.
        pinned = client.infer("churn", triton_inputs(one), model_version="1")
        assert pinned.get_response().model_version == "1"


def test_contents_errors_name_the_field(server: tuple[str, str], rows: pd.DataFrame) -> None:
    def request(**change: Any) -> service_pb2.ModelInferRequest:
        message = service_pb2.ModelInferRequest(model_name="churn")
        for name, datatype in COLUMNS.items():
            tensor = message.inputs.add(name=name, datatype=datatype, shape=[2])
            if datatype == "BYTES":
                tensor.contents.bytes_contents.extend([b"pro", b"basic"])
            elif datatype == "INT64":
                tensor.contents.int64_contents.extend([40, 41])
            else:
                tensor.contents.fp64_contents.extend([1.0, 2.0])
        for name, edit in change.items():
            edit(next(t for t in message.inputs if t.name == name), message)
        return message

    def refused(message: service_pb2.ModelInferRequest) -> tuple[grpc.StatusCode, str]:
        with pytest.raises(grpc.RpcError) as error:
            stub.ModelInfer(message)
        return error.value.code(), error.value.details()

    with grpc.insecure_channel(server[1]) as channel:
        stub = service_pb2_grpc.GRPCInferenceServiceStub(channel)
        assert len(stub.ModelInfer(request()).outputs) == 3

        def wrong_field(t: Any, m: Any) -> None:  # FP64 declared, FP32 values sent
            t.contents.ClearField("fp64_contents")
            t.contents.fp32_contents.extend([1.0, 2.0])

        code, details = refused(request(income=wrong_field))
        assert code == grpc.StatusCode.INVALID_ARGUMENT
        assert details == (
            "Input 'income' has 0 values in contents.fp64_contents for shape [2] (2 expected)."
        )

        def half(t: Any, m: Any) -> None:
            t.datatype = "FP16"

        code, details = refused(request(income=half))
        assert "FP16, which has no typed contents field" in details

        def raw_too(t: Any, m: Any) -> None:
            m.raw_input_contents.extend([b"\0" * 8] * len(m.inputs))

        code, details = refused(request(income=raw_too))
        assert "has both contents and raw_input_contents" in details

        def one_raw(t: Any, m: Any) -> None:
            for tensor in m.inputs:
                tensor.ClearField("contents")
            m.raw_input_contents.append(b"\0" * 16)

        code, details = refused(request(age=one_raw))
        assert details == (
            "The request has 1 raw_input_contents for 4 inputs; send one per input, in the "
            "order of 'inputs'."
        )

        def truncated_text(t: Any, m: Any) -> None:
            for tensor in m.inputs:
                tensor.ClearField("contents")
            ages, floats = np.array([40, 41], "<i8").tobytes(), np.ones(2).tobytes()
            m.raw_input_contents.extend([ages, floats, floats, b"\x03\0\0\0pro\x09\0\0\0basic"])

        code, details = refused(request(plan=truncated_text))
        assert code == grpc.StatusCode.INVALID_ARGUMENT
        assert "'plan' (BYTES) element 1 declares 9 bytes but only 5 remain" in details

        def not_utf8(t: Any, m: Any) -> None:
            t.contents.ClearField("bytes_contents")
            t.contents.bytes_contents.extend([b"\xff", b"pro"])

        code, details = refused(request(plan=not_utf8))
        assert "not UTF-8 text" in details


def test_every_error_class_has_a_grpc_status() -> None:
    import shipyard.errors as errors
    from shipyard.serving._grpc import status_code

    classes = [
        c
        for c in vars(errors).values()
        if isinstance(c, type)
        and issubclass(c, errors.ShipyardError)
        and c is not errors.ShipyardError
    ]
    unmapped = [c.__name__ for c in classes if status_code(c("x")) == grpc.StatusCode.INTERNAL]
    assert not unmapped, f"Map these error classes to a gRPC status in _grpc._CODES: {unmapped}"
    assert status_code(errors.PayloadTooLarge("x")) == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert status_code(errors.SchemaViolation("x")) == grpc.StatusCode.INVALID_ARGUMENT
    assert status_code(errors.ApprovalRequired("x")) == grpc.StatusCode.PERMISSION_DENIED
