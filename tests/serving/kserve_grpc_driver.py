"""Drives KServe's ``InferenceGRPCClient`` against a server; runs in the KServe venv.

Like ``kserve_driver.py`` (its REST twin): the test runs this script with the venv's Python,
passing a JSON spec (gRPC address, rows, types, token) as its argument, and reads a JSON
report of what the client saw from stdout. Not collected by pytest; imports nothing from
Shipyard.
"""

from __future__ import annotations

import asyncio
import json
import sys
from typing import Any

import grpc
import numpy as np
from kserve import InferenceGRPCClient, InferInput, InferRequest
from kserve_driver import _inputs  # beside this script: sys.path[0]


def _plain(response: Any) -> dict[str, Any]:
    outputs = {}
    for output in response.outputs:
        values = output.as_numpy().reshape(-1).tolist()
        outputs[output.name] = [v.decode() if isinstance(v, bytes) else v for v in values]
    parameters = {k: _value(v) for k, v in (response.parameters or {}).items()}
    return {"id": response.id, "parameters": parameters, "outputs": outputs}


def _value(parameter: Any) -> Any:
    """An ``InferParameter`` message (how the gRPC client hands them back) as its value."""
    which = getattr(parameter, "WhichOneof", None)
    return getattr(parameter, which("parameter_choice")) if which else parameter


async def _error(call: Any) -> dict[str, Any]:
    try:
        await call
    except grpc.aio.AioRpcError as exc:
        return {"code": exc.code().name, "message": exc.details()}
    return {"code": "OK", "message": ""}


async def main(spec: dict[str, Any]) -> dict[str, Any]:
    rows, types = spec["rows"], spec["types"]
    auth = [("authorization", f"Bearer {spec['token']}")]
    client = InferenceGRPCClient(spec["address"], retries=0, timeout=30)
    report: dict[str, Any] = {
        "live": await client.is_server_live(),
        "ready": await client.is_server_ready(),
        "model_ready": await client.is_model_ready("churn", headers=auth),
    }
    # The client's defaults: raw_input_contents; request parameters and id.
    request = InferRequest(
        "churn", _inputs(rows, types, True), request_id="g-1", parameters={"team": "risk"}
    )
    report["default"] = _plain(await client.infer(request, headers=auth))
    # Typed contents (binary_data=False).
    request = InferRequest("churn", _inputs(rows, types, False))
    report["typed"] = _plain(await client.infer(request, headers=auth))
    request = InferRequest("churn", _inputs(rows, types, True))
    report["no_token"] = await _error(client.infer(request))
    request = InferRequest("nope", _inputs(rows, types, True))
    report["unknown_model"] = await _error(client.infer(request, headers=auth))
    wide = InferInput("age", [2, 3], "INT64")
    wide.set_data_from_numpy(np.ones((2, 3), dtype=np.int64))
    report["bad_shape"] = await _error(client.infer(InferRequest("churn", [wide]), headers=auth))
    await client.close()
    return report


if __name__ == "__main__":
    print(json.dumps(asyncio.run(main(json.loads(sys.argv[1])))))
