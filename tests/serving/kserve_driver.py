"""Drives KServe's ``InferenceRESTClient`` against a server; runs in the KServe venv.

KServe pins pandas below 3, so it cannot share Shipyard's environment: the test runs this
script with the venv's Python, passing a JSON spec (url, rows, types) as its argument, and
reads a JSON report of what the client saw from stdout. Not collected by pytest, and it
imports nothing from Shipyard.
"""

from __future__ import annotations

import asyncio
import json
import sys
from typing import Any

import httpx
import numpy as np
from kserve import InferenceRESTClient, InferInput, InferRequest, RESTConfig
from kserve.protocol.infer_type import RequestedOutput

_NUMPY = {"INT64": np.int64, "FP64": np.float64, "BYTES": object}


def _inputs(columns: dict[str, list[Any]], types: dict[str, str], binary: bool) -> list[Any]:
    tensors = []
    for name, values in columns.items():
        array = np.array(values, dtype=_NUMPY[types[name]]).reshape(-1, 1)
        tensor = InferInput(name, list(array.shape), types[name])
        tensor.set_data_from_numpy(array, binary_data=binary)
        tensors.append(tensor)
    return tensors


def _plain(response: Any) -> dict[str, Any]:
    outputs = {}
    for output in response.outputs:
        values = output.as_numpy().reshape(-1).tolist()
        outputs[output.name] = [v.decode() if isinstance(v, bytes) else v for v in values]
    return {"id": response.id, "parameters": response.parameters, "outputs": outputs}


async def _error(call: Any) -> dict[str, Any]:
    try:
        await call
    except httpx.HTTPStatusError as exc:
        return {"status": exc.response.status_code, "message": str(exc)}
    return {"status": 200, "message": ""}


async def main(spec: dict[str, Any]) -> dict[str, Any]:
    url, rows, types = spec["url"], spec["rows"], spec["types"]
    client = InferenceRESTClient(RESTConfig(protocol="v2", retries=1, timeout=30))
    report: dict[str, Any] = {
        "live": await client.is_server_live(url),
        "ready": await client.is_server_ready(url),
        "model_ready": await client.is_model_ready(url, "churn"),
    }
    # The client's defaults: binary inputs (set_data_from_numpy), outputs in JSON.
    request = InferRequest("churn", _inputs(rows, types, True), request_id="k-1")
    report["default"] = _plain(await client.infer(url, request, model_name="churn"))
    # All outputs in binary; request parameters passed through.
    request = InferRequest(
        "churn",
        _inputs(rows, types, True),
        parameters={"binary_data_output": True, "team": "risk"},
    )
    report["binary_out"] = _plain(await client.infer(url, request, model_name="churn"))
    # JSON inputs (orjson writes NaN as null) with missing income for the nullable model.
    nan_rows = {**rows, "income": spec["nan_income"]}
    asked = [RequestedOutput("predict", parameters={"binary_data": True})]
    request = InferRequest("loans", _inputs(nan_rows, types, False), request_outputs=asked)
    report["nan_json"] = _plain(await client.infer(url, request, model_name="loans"))
    request = InferRequest("loans", _inputs(nan_rows, types, True))
    report["nan_binary"] = _plain(await client.infer(url, request, model_name="loans"))
    request = InferRequest("nope", _inputs(rows, types, True))
    report["unknown_model"] = await _error(client.infer(url, request, model_name="nope"))
    wide = InferInput("age", [2, 3], "INT64")
    wide.set_data_from_numpy(np.ones((2, 3), dtype=np.int64))
    request = InferRequest("churn", [wide])
    report["bad_shape"] = await _error(client.infer(url, request, model_name="churn"))
    await client.close()
    return report


if __name__ == "__main__":
    print(json.dumps(asyncio.run(main(json.loads(sys.argv[1])))))
