"""Model groups over the Open Inference Protocol's binary HTTP extension and over gRPC, with
Triton's own clients in their default modes against a real server (HTTP and ``--grpc-port``):
the answers, metadata, readiness, errors and prediction-log records of the JSON path."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType
from typing import Any

import grpc
import httpx
import numpy as np
import pandas as pd
import pytest
import tritonclient.grpc as triton_grpc
import tritonclient.http as triton_http
from tritonclient.grpc import service_pb2, service_pb2_grpc
from tritonclient.utils import InferenceServerException

from serving.conftest import GROUP_ROWS
from shipyard.predlog import PredictionLog
from shipyard.registry import Registry
from shipyard.serving import create_app, free_port, serve_in_thread
from shipyard.settings import ServeSettings
from shipyard.store import Store

TYPES = {"age": "INT64", "income": "FP64", "tenure": "FP64", "plan": "BYTES"}
NUMPY = {"INT64": np.int64, "FP64": np.float64, "BYTES": object}
FRAME = pd.DataFrame(GROUP_ROWS)
GROUPS = ("retention", "consensus", "votes")
#: Closed HTTP clients, kept until the process ends (see ``test_oip_triton._CLOSED``).
_CLOSED: list[triton_http.InferenceServerClient] = []


@contextmanager
def serving(
    store: Store, log: PredictionLog | None = None, **settings: Any
) -> Iterator[tuple[str, str]]:
    """(HTTP base URL, gRPC address) of a real server answering for the groups."""
    port = free_port()
    config = ServeSettings(
        auth=False, runtime="native", poll_interval_seconds=0.05, grpc_port=port, **settings
    )
    with serve_in_thread(create_app(store, settings=config, prediction_log=log)) as url:
        yield url, f"127.0.0.1:{port}"


@contextmanager
def http_client(url: str) -> Iterator[triton_http.InferenceServerClient]:
    client = triton_http.InferenceServerClient(url.removeprefix("http://"))
    try:
        yield client
    finally:
        client.close()
        _CLOSED.append(client)


def inputs(module: ModuleType, frame: pd.DataFrame = FRAME) -> list[Any]:
    """One [n, 1] tensor per column with ``module``'s (tritonclient.http or .grpc) defaults:
    binary data over HTTP, raw_input_contents over gRPC."""
    out = []
    for name, datatype in TYPES.items():
        tensor = module.InferInput(name, [len(frame), 1], datatype)
        tensor.set_data_from_numpy(frame[name].to_numpy().astype(NUMPY[datatype]).reshape(-1, 1))
        out.append(tensor)
    return out


def v2_json(frame: pd.DataFrame = FRAME) -> dict[str, Any]:
    return {
        "inputs": [
            {"name": c, "datatype": t, "shape": [len(frame)], "data": frame[c].tolist()}
            for c, t in TYPES.items()
        ]
    }


def same_outputs(json_answer: dict[str, Any], result: Any, kinds: list[tuple[str, str]]) -> None:
    """``result`` (either client's) holds the outputs of the JSON answer, of the same
    ``(name, datatype)``s."""
    expected = {o["name"]: o for o in json_answer["outputs"]}
    assert kinds == [(o["name"], o["datatype"]) for o in json_answer["outputs"]]
    predict = result.as_numpy("predict")
    if expected["predict"]["datatype"] == "BYTES":
        assert [v.decode() for v in predict] == expected["predict"]["data"]
    else:
        np.testing.assert_allclose(predict, expected["predict"]["data"])
    if "predict_proba" in expected:
        proba = result.as_numpy("predict_proba")
        assert list(proba.shape) == expected["predict_proba"]["shape"]
        np.testing.assert_allclose(proba.reshape(-1), expected["predict_proba"]["data"])


def refused(call: Callable[[], Any]) -> tuple[str, str]:
    with pytest.raises(InferenceServerException) as error:
        call()
    return str(error.value.status()), str(error.value.message())


def test_tritons_http_client_scores_groups_in_binary_as_json_does(
    store: Store, group_registry: Registry, tmp_path: Path
) -> None:
    log = PredictionLog(tmp_path / "predlog").open()
    try:
        with serving(store, log) as (url, _), http_client(url) as client:
            assert client.is_model_ready("retention")
            meta = client.get_model_metadata("retention")
            assert {i["name"]: i["datatype"] for i in meta["inputs"]} == TYPES
            answers = {}
            for group in GROUPS:
                answer = httpx.post(f"{url}/v2/models/{group}/infer", json=v2_json())
                assert answer.status_code == 200, answer.text
                result = client.infer(group, inputs(triton_http), request_id=f"b-{group}")
                answers[group] = (answer.json(), result)
        log.flush()
        for group, (json_answer, result) in answers.items():
            response = result.get_response()
            assert (response["model_name"], response["model_version"]) == (group, "1")
            assert response["id"] == f"b-{group}"
            # every output in binary, as tritonclient asks when it names none
            assert all("binary_data_size" in o["parameters"] for o in response["outputs"])
            assert response["parameters"]["members"] == json_answer["parameters"]["members"]
            kinds = [(o["name"], o["datatype"]) for o in response["outputs"]]
            same_outputs(json_answer, result, kinds)
        assert answers["retention"][0]["parameters"]["members"] == {"churn": 1, "value": 1}
        ids = [v.decode() for v in answers["retention"][1].as_numpy("prediction_id")]
        grouped = log.query(
            "SELECT prediction_id, arm, member__churn, member__value FROM predictions",
            model="retention",
        ).set_index("prediction_id")
        assert grouped.loc[ids, "member__churn"].tolist() == [1, 1]
        assert grouped.loc[ids, "member__value"].tolist() == [1, 1]
        assert set(grouped.loc[ids, "arm"]) == {"group"}
        for member in ("churn", "value"):
            logged = log.query("SELECT prediction_id, arm FROM predictions", model=member)
            mine = logged[logged["prediction_id"].isin(ids)]
            assert len(mine) == 2 and set(mine["arm"]) == {"group:retention"}
    finally:
        log.close()


def test_grpc_answers_groups_as_http_does_and_follows_a_promotion(
    store: Store, group_registry: Registry, tmp_path: Path
) -> None:
    log = PredictionLog(tmp_path / "predlog").open()
    try:
        with serving(store, log) as (url, address):
            client = triton_grpc.InferenceServerClient(address)
            answers = {}
            for group in GROUPS:
                assert client.is_model_ready(group)
                meta = client.get_model_metadata(group, as_json=True)
                http_meta = httpx.get(f"{url}/v2/models/{group}").json()
                for key in ("name", "versions", "platform"):
                    assert meta[key] == http_meta[key]
                for key in ("inputs", "outputs"):
                    assert [(t["name"], t["datatype"]) for t in meta[key]] == [
                        (t["name"], t["datatype"]) for t in http_meta[key]
                    ]
                rest = httpx.post(f"{url}/v2/models/{group}/infer", json=v2_json()).json()
                result = client.infer(group, inputs(triton_grpc), request_id=f"g-{group}")
                answers[group] = (rest, result)
            for group, (rest, result) in answers.items():
                response = result.get_response()
                assert (response.model_name, response.model_version) == (group, "1")
                assert response.id == f"g-{group}" and len(response.raw_output_contents) >= 2
                members = ",".join(f"{k}={v}" for k, v in rest["parameters"]["members"].items())
                assert response.parameters["members"].string_param == members
                same_outputs(rest, result, [(o.name, o.datatype) for o in response.outputs])

            with grpc.insecure_channel(address) as channel:
                stub = service_pb2_grpc.GRPCInferenceServiceStub(channel)
                request = service_pb2.ModelInferRequest(model_name="consensus")
                for tensor in inputs(triton_grpc):
                    request.inputs.append(tensor._get_tensor())
                    request.raw_input_contents.append(tensor._get_content())
                _, call = stub.ModelInfer.with_call(request)
                trailing = dict(call.trailing_metadata())
                assert trailing["x-shipyard-members"] == "churn=1,churn_tree=1"
                assert (trailing["x-shipyard-model"], trailing["x-shipyard-arm"]) == (
                    "consensus",
                    "group",
                )
                # A promoted member answers within a poll; the metadata says so too.
                group_registry.promote("churn", 2, actor="alice")
                deadline = time.monotonic() + 5
                while True:
                    meta_request = service_pb2.ModelMetadataRequest(name="consensus")
                    _, call = stub.ModelMetadata.with_call(meta_request)
                    if (
                        dict(call.trailing_metadata())["x-shipyard-members"]
                        == "churn=2,churn_tree=1"
                    ):
                        break
                    assert time.monotonic() < deadline, "the promotion was not seen in 5 s"
                    time.sleep(0.02)
                answer, call = stub.ModelInfer.with_call(request)
                assert answer.parameters["members"].string_param == "churn=2,churn_tree=1"
            assert httpx.get(f"{url}/v2/models/consensus").json()["parameters"]["members"] == {
                "churn": 2,
                "churn_tree": 1,
            }
        log.flush()
        rest_ids = next(
            o["data"] for o in answers["retention"][0]["outputs"] if o["name"] == "prediction_id"
        )
        grpc_ids = [v.decode() for v in answers["retention"][1].as_numpy("prediction_id")]
        logged = log.query("SELECT * FROM predictions", model="retention").set_index(
            "prediction_id"
        )
    finally:
        log.close()
    # the same records whichever way the prediction came, bar the clock
    same = logged.drop(columns=[c for c in ("ts", "latency_ms", "compute_ms") if c in logged])
    a = same.loc[rest_ids].reset_index(drop=True)
    b = same.loc[grpc_ids].reset_index(drop=True)
    pd.testing.assert_frame_equal(a, b)
    assert (a["member__churn"] == 1).all() and (a["arm"] == "group").all()


def test_a_group_that_cannot_answer_says_why_over_grpc_as_over_http(
    store: Store, group_registry: Registry
) -> None:
    with (
        serving(store, models=("churn", "churn_tree")) as (url, address),
        http_client(url) as http,
    ):
        client = triton_grpc.InferenceServerClient(address)
        # retention's member value is not served here: 503 / UNAVAILABLE, one sentence
        rest = httpx.post(f"{url}/v2/models/retention/infer", json=v2_json())
        assert rest.status_code == 503
        sentence = rest.json()["error"]
        assert "member value@production is not served by this server" in sentence
        code, message = refused(lambda: client.infer("retention", inputs(triton_grpc)))
        assert (code, message) == ("StatusCode.UNAVAILABLE", sentence)
        assert refused(lambda: http.infer("retention", inputs(triton_http)))[1] == sentence
        code, message = refused(lambda: client.get_model_metadata("retention"))
        assert (code, message) == ("StatusCode.UNAVAILABLE", sentence)
        assert httpx.get(f"{url}/v2/models/retention").json()["error"] == sentence
        assert client.is_model_ready("retention") is False
        assert httpx.get(f"{url}/v2/models/retention/ready").json()["ready"] is False
        assert client.is_model_ready("consensus")

        # no such group, and a group has no explicit versions: NOT_FOUND as 404
        for call in (
            lambda: client.infer("nobody", inputs(triton_grpc)),
            lambda: client.get_model_metadata("nobody"),
            lambda: client.is_model_ready("nobody"),
            lambda: client.infer("consensus", inputs(triton_grpc), model_version="1"),
        ):
            assert refused(call)[0] == "StatusCode.NOT_FOUND"
        pinned = httpx.post(f"{url}/v2/models/consensus/versions/1/infer", json=v2_json())
        assert pinned.status_code == 404

        # bad tensors: the same sentence over binary HTTP and gRPC, nothing scored
        answers = []
        for module, caller in ((triton_grpc, client), (triton_http, http)):
            tensors = inputs(module)
            tensors[0] = module.InferInput("age", [2, 1], "BYTES")
            tensors[0].set_data_from_numpy(np.array([["old"], ["young"]], dtype=object))
            answers.append(refused(lambda: caller.infer("consensus", tensors)))  # noqa: B023
        (code, message), (_, over_http) = answers
        assert code == "StatusCode.INVALID_ARGUMENT" and message == over_http
        assert "'age'" in message and "old" not in message, message
        short = triton_grpc.InferInput("income", [2, 1], "FP64")
        short.set_data_from_numpy(np.ones((2, 1)))
        short._raw_content = short._raw_content[:-8]
        tensors = inputs(triton_grpc)
        code, message = refused(
            lambda: client.infer("consensus", [tensors[0], short, *tensors[2:]])
        )
        assert code == "StatusCode.INVALID_ARGUMENT"
        assert message == (
            "Input 'income' has 8 bytes of binary data but shape [2, 1] of FP64 takes 16 "
            "(8 per value)."
        )
