"""The v2 binary tensor data extension by hand: exact bytes in, exact bytes out, and every
way a binary request can disagree with itself refused with one sentence."""

from __future__ import annotations

import gzip
import struct
from typing import Any

import numpy as np
import orjson
import pandas as pd
import pytest

from serving.conftest import http
from shipyard.errors import InvalidInput
from shipyard.registry import Registry
from shipyard.serving import create_app
from shipyard.serving._v2 import OutputTensor, raw_output, raw_tensor
from shipyard.serving._v2_http import HEADER_LENGTH
from shipyard.settings import ServeSettings
from shipyard.store import Store

pytestmark = pytest.mark.anyio
NO_AUTH = ServeSettings(auth=False)


def _text(values: list[str]) -> bytes:
    return b"".join(struct.pack("<I", len(v.encode())) + v.encode() for v in values)


def binary_request(rows: pd.DataFrame, **parameters: Any) -> tuple[dict[str, Any], bytes]:
    """The JSON header and raw data of ``rows`` as one binary tensor per column."""
    raws = {
        "age": rows["age"].to_numpy(np.int64).tobytes(),
        "income": rows["income"].to_numpy(np.float64).tobytes(),
        "tenure": rows["tenure"].to_numpy(np.float32).tobytes(),
        "plan": _text(rows["plan"].tolist()),
    }
    types = {"age": "INT64", "income": "FP64", "tenure": "FP32", "plan": "BYTES"}
    head = {
        "id": "b-1",
        "inputs": [
            {
                "name": c,
                "shape": [len(rows), 1],
                "datatype": types[c],
                "parameters": {"binary_data_size": len(raws[c])},
            }
            for c in raws
        ],
        **({"parameters": parameters} if parameters else {}),
    }
    return head, b"".join(raws.values())


def _post_args(head: dict[str, Any], raw: bytes, size: int | None = None) -> dict[str, Any]:
    text = orjson.dumps(head)
    return {
        "content": text + raw,
        "headers": {
            HEADER_LENGTH: str(len(text) if size is None else size),
            "content-type": "application/octet-stream",
        },
    }


@pytest.fixture
def rows(training_data) -> pd.DataFrame:  # type: ignore[no-untyped-def]
    return training_data[2].head(6).reset_index(drop=True)


async def test_binary_in_binary_out_byte_for_byte(
    store: Store, churn: Registry, rows: pd.DataFrame
) -> None:
    model = churn.load("churn@production")
    head, raw = binary_request(rows, binary_data_output=True)
    async with http(create_app(store, settings=NO_AUTH)) as client:
        response = await client.post("/v2/models/churn/infer", **_post_args(head, raw))
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/octet-stream"
    size = int(response.headers[HEADER_LENGTH])
    body = orjson.loads(response.content[:size])
    assert body["id"] == "b-1" and "parameters" not in body  # binary_data_output not echoed
    data, offset = {}, size
    for output in body["outputs"]:
        n = output["parameters"]["binary_data_size"]
        data[output["name"]] = response.content[offset : offset + n]
        offset += n
    assert offset == len(response.content)
    expected = model.predict(rows.astype({"tenure": np.float32}).astype({"tenure": float}))
    assert data["predict"] == _text(expected.tolist())
    proba = np.frombuffer(data["predict_proba"], dtype="<f8").reshape(6, 2)
    np.testing.assert_allclose(proba, model.predict_proba(rows), atol=1e-6)


async def test_json_nan_and_null_are_missing_values(store: Store, churn: Registry) -> None:
    body = (
        b'{"inputs": [{"name": "age", "shape": [2], "datatype": "INT64", "data": [40, 50]},'
        b'{"name": "income", "shape": [2], "datatype": "FP64", "data": [NaN, null]},'
        b'{"name": "tenure", "shape": [2], "datatype": "FP64", "data": [1.0, 2.0]},'
        b'{"name": "plan", "shape": [2], "datatype": "BYTES", "data": ["pro", "basic"]}]}'
    )
    async with http(create_app(store, settings=NO_AUTH)) as client:
        response = await client.post("/v2/models/churn/infer", content=body)
    # churn was trained without missing income: both rows are refused for that column.
    assert response.status_code == 422, response.text
    assert response.json()["code"] == "SchemaViolation"
    assert {e["field"] for e in response.json()["errors"]} == {"income"}


def _bad(head: dict[str, Any], raw: bytes) -> list[tuple[str, dict[str, Any], bytes, int | None]]:
    """(case, header, raw data, declared JSON size) of requests that disagree with themselves."""
    cases: list[tuple[str, dict[str, Any], bytes, int | None]] = []
    cases.append(("trailing bytes", head, raw + b"\0", None))
    cases.append(("missing bytes", head, raw[:-3], None))
    short = orjson.loads(orjson.dumps(head))
    short["inputs"][1]["parameters"]["binary_data_size"] -= 8
    short["inputs"][2]["parameters"]["binary_data_size"] += 8
    cases.append(("size against shape", short, raw, None))
    bad_text = orjson.loads(orjson.dumps(head))
    bad_text["inputs"][3]["parameters"]["binary_data_size"] += 4
    cases.append(("bytes element overrun", bad_text, raw + b"\xff\0\0\0", None))
    both = orjson.loads(orjson.dumps(head))
    both["inputs"][0]["data"] = [1]
    cases.append(("data and binary", both, raw, None))
    negative = orjson.loads(orjson.dumps(head))
    negative["inputs"][0]["parameters"]["binary_data_size"] = -1
    cases.append(("negative size", negative, raw, None))
    cases.append(("header beyond the body", head, raw, 10**6))
    return cases


async def test_binary_requests_that_disagree_are_refused(
    store: Store, churn: Registry, rows: pd.DataFrame
) -> None:
    head, raw = binary_request(rows)
    n_plan = len(_text(rows["plan"].tolist()))
    async with http(create_app(store, settings=NO_AUTH)) as client:
        for case, bad_head, bad_raw, size in _bad(head, raw):
            response = await client.post(
                "/v2/models/churn/infer", **_post_args(bad_head, bad_raw, size)
            )
            assert response.status_code == 400, (case, response.text)
            body = response.json()
            assert body["code"] == "InvalidInput" and body["error"].endswith("."), case
            assert body["error"].count(". ") <= 1, (case, body["error"])
        # Not UTF-8 text in a BYTES element.
        utf = orjson.loads(orjson.dumps(head))
        utf["inputs"][3]["parameters"]["binary_data_size"] = n_plan
        text = b"".join(struct.pack("<I", 1) + b"\xff" for _ in range(len(rows)))
        utf["inputs"][3]["parameters"]["binary_data_size"] = len(text)
        response = await client.post(
            "/v2/models/churn/infer", **_post_args(utf, raw[: len(raw) - n_plan] + text)
        )
        assert response.status_code == 400 and "UTF-8" in response.json()["error"]
        # binary_data_size with no header; the header with a non-number; octet-stream alone.
        plain = {"content": orjson.dumps(head) + raw}
        response = await client.post("/v2/models/churn/infer", **plain)
        assert response.status_code == 400 and HEADER_LENGTH in response.json()["error"]
        response = await client.post(
            "/v2/models/churn/infer", **plain, headers={HEADER_LENGTH: "ten"}
        )
        assert response.status_code == 400 and "whole number" in response.json()["error"]
        response = await client.post(
            "/v2/models/churn/infer",
            content=orjson.dumps({"inputs": []}),
            headers={"content-type": "application/octet-stream"},
        )
        assert response.status_code == 400 and HEADER_LENGTH in response.json()["error"]


async def test_ready_lists_the_served_models(store: Store, churn: Registry) -> None:
    async with http(create_app(store, settings=NO_AUTH)) as client:
        ready = await client.get("/v2/health/ready")
        server = await client.get("/v2")
    assert ready.json() == {"ready": True, "models": {"churn": {"ready": True, "version": "1"}}}
    assert server.json()["extensions"] == ["binary_tensor_data", "parameters"]


def test_raw_data_round_trips_for_every_transport() -> None:
    # The encoding gRPC's raw_input_contents / raw_output_contents share with REST.
    text = np.array(["a", "", "Zürich"], dtype=object)
    raw = raw_output(OutputTensor("t", "BYTES", [3], text))
    assert raw == _text(["a", "", "Zürich"])
    assert raw_tensor(raw, "BYTES", [3, 1], "t").tolist() == [b"a", b"", "Zürich".encode()]
    values = np.array([1.5, np.nan, -2.0])
    raw = raw_output(OutputTensor("v", "FP32", [3], values))
    back = raw_tensor(raw, "FP32", [3], "v")
    assert back.dtype == np.float32 and np.isnan(back[1]) and back[2] == -2.0
    with pytest.raises(InvalidInput, match="takes 12"):
        raw_tensor(raw[:-1], "FP32", [3], "v")
    with pytest.raises(InvalidInput, match="for 1000000000 elements"):
        raw_tensor(b"\0" * 8, "BYTES", [10**9], "t")
    with pytest.raises(InvalidInput, match="unknown datatype"):
        raw_tensor(raw, "FP128", [3], "v")


async def test_compressed_bodies_are_read_within_the_limit(store: Store, churn: Registry) -> None:
    record = {"age": 41, "income": 52_000.0, "tenure": 2.0, "plan": "pro"}
    body = orjson.dumps({"records": [record]})
    settings = ServeSettings(auth=False, max_body_bytes=4_000)
    async with http(create_app(store, settings=settings)) as client:
        packed = await client.post(
            "/models/churn/predict",
            content=gzip.compress(body),
            headers={"content-encoding": "gzip", "content-type": "application/json"},
        )
        assert packed.status_code == 200, packed.text
        bomb = gzip.compress(b" " * 10_000_000 + body)  # 10 MB of spaces in a 10 KB body
        refused = await client.post(
            "/models/churn/predict", content=bomb, headers={"content-encoding": "gzip"}
        )
        assert refused.status_code == 413 and refused.json()["code"] == "PayloadTooLarge"
        broken = await client.post(
            "/models/churn/predict", content=body, headers={"content-encoding": "gzip"}
        )
        assert broken.status_code == 400 and "gzip" in broken.json()["error"]
        other = await client.post(
            "/models/churn/predict", content=body, headers={"content-encoding": "br"}
        )
        assert other.status_code == 415
