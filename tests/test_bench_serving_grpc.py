"""bench/serving/run.py's gRPC pieces without servers: the framed ``ModelInferRequest`` h2load
posts decodes (through Shipyard's own gRPC decoder) to the row it was built from, MLServer's
form carries its content types, and the probabilities are read back from an answer."""

from __future__ import annotations

import importlib.util
import math
import struct
import sys
from pathlib import Path
from types import ModuleType

import numpy as np

from shipyard.serving._grpc_tensors import infer_request, infer_response
from shipyard.serving._proto import grpc_predict_v2_pb2 as pb
from shipyard.serving._v2 import InferResponse, OutputTensor

RUN = Path(__file__).parents[1] / "bench" / "serving" / "run.py"
RECORD = {"income": None, "rate": 4.5, "age": 41, "state": "NV"}
KINDS = {"income": "float", "rate": "float", "age": "int", "state": "text"}


def _bench() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_serving_run", RUN)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def test_grpc_body_is_one_framed_request_shipyard_decodes_to_the_row() -> None:
    bench = _bench()
    body = bench.body_grpc(RECORD, KINDS)
    assert body.headers == {"content-type": "application/grpc", "te": "trailers"}
    assert body.data[0] == 0 and struct.unpack(">I", body.data[1:5])[0] == len(body.data) - 5
    message = pb.ModelInferRequest.FromString(bench.grpc_unframe(body.data))
    assert message.model_name == bench.MODEL
    assert [o.name for o in message.outputs] == ["predict_proba"]
    decoded = {t.name: t for t in infer_request(message).inputs}
    assert list(decoded) == list(RECORD)
    assert all(t.shape == [1, 1] for t in decoded.values())
    assert math.isnan(float(np.asarray(decoded["income"].data).ravel()[0]))
    assert np.asarray(decoded["rate"].data).ravel().tolist() == [4.5]
    assert np.asarray(decoded["age"].data).ravel().tolist() == [41]
    state = np.asarray(decoded["state"].data).ravel()[0]
    assert (state.decode() if isinstance(state, bytes) else state) == "NV"


def test_mlserver_grpc_body_has_typed_contents_and_content_types() -> None:
    bench = _bench()
    message = pb.ModelInferRequest.FromString(
        bench.grpc_unframe(bench.body_mlserver_grpc(RECORD, KINDS).data)
    )
    assert message.parameters["content_type"].string_param == "pd"
    inputs = {t.name: t for t in message.inputs}
    assert math.isnan(inputs["income"].contents.fp64_contents[0])
    assert list(inputs["age"].contents.int64_contents) == [41]
    assert list(inputs["state"].contents.bytes_contents) == [b"NV"]
    assert inputs["state"].parameters["content_type"].string_param == "str"
    assert all(list(t.shape) == [1] for t in message.inputs)


def test_probabilities_from_raw_and_typed_answers() -> None:
    bench = _bench()
    raw = infer_response(
        InferResponse(
            "bench",
            "1",
            [OutputTensor("predict_proba", "FP64", [1, 2], np.array([0.25, 0.75]))],
        )
    )
    assert bench._proba_grpc(raw.SerializeToString()) == [0.25, 0.75]
    typed = pb.ModelInferResponse(model_name="bench")
    out = typed.outputs.add(name="predict_proba", datatype="FP64", shape=[1, 2])
    out.contents.fp64_contents.extend([0.1, 0.9])
    assert bench._proba_grpc(typed.SerializeToString()) == [0.1, 0.9]


def test_targets_name_their_server_protocol_and_generator() -> None:
    bench = _bench()
    assert bench.target_parts("mlserver:grpc") == ("mlserver", "mlserver-grpc")
    assert bench.target_parts("shipyard-onnx:grpc") == ("shipyard-onnx", "grpc")
    assert bench.target_parts("shipyard-onnx:v2+h2load") == ("shipyard-onnx", "v2")
    assert bench.generator("mlserver:grpc") == "h2load"
    assert bench.generator("shipyard-onnx:grpc") == "h2load"
    assert bench.generator("shipyard-onnx:v2+h2load") == "h2load"
    assert bench.generator("shipyard-onnx:v2") == "wrk"
    assert bench.generator("mlflow") == "wrk"


def test_probabilities_from_a_binary_http_answer() -> None:
    bench = _bench()
    raw = np.array([[0.25, 0.75]]).tobytes()
    outputs = [
        {"name": "label", "datatype": "INT64", "shape": [1], "parameters": {"binary_data_size": 8}},
        {
            "name": "predict_proba",
            "datatype": "FP64",
            "shape": [1, 2],
            "parameters": {"binary_data_size": len(raw)},
        },
    ]
    header = bench.json.dumps({"model_name": "bench", "outputs": outputs}).encode()
    answer = header + struct.pack("<q", 1) + raw
    assert bench._proba_v2_binary(answer) == [0.25, 0.75]
