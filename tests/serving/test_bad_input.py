"""Bad input gets a clear 4xx in one JSON shape, never a 500 and never the submitted values."""

from __future__ import annotations

from typing import Any

import pandas as pd
import pytest

from serving.conftest import http
from shipyard.auth import Tokens
from shipyard.registry import Registry
from shipyard.serving import create_app
from shipyard.settings import ServeSettings
from shipyard.store import Store

pytestmark = pytest.mark.anyio

SECRET = "Zebulon-Quux-4417"  # a value that must never come back in an error
GOOD = {"age": 40, "income": 52_000.0, "tenure": 2.5, "plan": "pro"}
SETTINGS = ServeSettings(auth=False, max_body_bytes=20_000, max_batch_rows=50)


def records(*rows: dict[str, Any]) -> dict[str, Any]:
    return {"records": list(rows)}


CASES: list[tuple[str, dict[str, Any], int, str, set[str]]] = [
    # id, request kwargs, status, error type, offending fields
    (
        "malformed json",
        {"content": b'{"records": [', "headers": {"content-type": "application/json"}},
        400,
        "InvalidInput",
        set(),
    ),
    ("infinity", {"content": b'{"records": [{"age": Infinity}]}'}, 400, "InvalidInput", set()),
    ("empty body", {"content": b""}, 400, "InvalidInput", set()),
    (
        "wrong content type",
        {"content": b"age=1", "headers": {"content-type": "application/x-www-form-urlencoded"}},
        415,
        "UnsupportedMediaType",
        set(),
    ),
    ("not an object", {"json": [GOOD]}, 400, "InvalidInput", set()),
    ("records not a list", {"json": {"records": GOOD}}, 400, "InvalidInput", set()),
    ("row not an object", {"json": {"records": [GOOD, [1, 2]]}}, 400, "InvalidInput", set()),
    (
        "split row too short",
        {"json": {"columns": ["age", "plan"], "data": [[1]]}},
        400,
        "InvalidInput",
        set(),
    ),
    (
        "wrong types",
        {"json": records({**GOOD, "age": SECRET, "income": "lots"})},
        422,
        "SchemaViolation",
        {"age", "income"},
    ),
    (
        "missing column",
        {"json": records({k: v for k, v in GOOD.items() if k != "tenure"})},
        422,
        "SchemaViolation",
        {"tenure"},
    ),
    ("extra column", {"json": records({**GOOD, "zzz": SECRET})}, 422, "SchemaViolation", {"zzz"}),
    (
        "null where none in training",
        {"json": records({**GOOD, "income": None})},
        422,
        "SchemaViolation",
        {"income"},
    ),
    (
        "infinity as text",
        {"json": records({**GOOD, "income": "inf"})},
        422,
        "SchemaViolation",
        {"income"},
    ),
    (
        "huge number",
        {"content": b'{"records": [{"age": 40, "income": 1e999, "tenure": 1, "plan": "pro"}]}'},
        400,
        "InvalidInput",
        set(),
    ),
    (
        "nested value",
        {"json": records({**GOOD, "plan": {"x": SECRET}})},
        422,
        "SchemaViolation",
        {"plan"},
    ),
    ("empty batch", {"json": {"records": []}}, 422, "SchemaViolation", {"$"}),
    ("oversize batch", {"json": records(*[GOOD] * 51)}, 413, "PayloadTooLarge", set()),
    (
        "oversize body",
        {"json": records(*[{**GOOD, "plan": "x" * 500}] * 45)},
        413,
        "PayloadTooLarge",
        set(),
    ),
]


async def test_bad_predict_requests(store: Store, churn: Registry) -> None:
    async with http(create_app(store, settings=SETTINGS)) as client:
        for case, request_kwargs, status, error, fields in CASES:
            response = await client.post("/models/churn/predict", **request_kwargs)
            assert response.status_code == status, (case, response.text)
            body = response.json()
            assert body["code"] == error and body["error"], case
            if fields:
                assert {e["field"] for e in body["errors"]} == fields, case
                assert all(e["reason"] for e in body["errors"]), case
            assert SECRET not in response.text and "lots" not in response.text, case
        # and the server still answers good requests afterwards
        ok = await client.post("/models/churn/predict", json=records(GOOD))
        assert ok.status_code == 200


async def test_values_never_echoed(store: Store, churn: Registry) -> None:
    async with http(create_app(store, settings=SETTINGS)) as client:
        response = await client.post(
            "/models/churn/predict", json=records({**GOOD, "age": SECRET, "plan": SECRET})
        )
    assert response.status_code == 422
    assert SECRET not in response.text


V2_CASES: list[tuple[str, Any, int]] = [
    ("no inputs", {"inputs": []}, 400),
    (
        "shape mismatch",
        {"inputs": [{"name": "age", "shape": [2], "datatype": "INT64", "data": [1]}]},
        400,
    ),
    (
        "bad datatype",
        {"inputs": [{"name": "age", "shape": [1], "datatype": "INT128", "data": [1]}]},
        400,
    ),
    (
        "data not of datatype",
        {"inputs": [{"name": "age", "shape": [1], "datatype": "FP64", "data": [SECRET]}]},
        400,
    ),
    (
        "matrix of wrong width",
        {"inputs": [{"name": "X", "shape": [1, 3], "datatype": "BYTES", "data": ["1", "2", "3"]}]},
        400,
    ),
    (
        "missing columns",
        {"inputs": [{"name": "age", "shape": [1], "datatype": "INT64", "data": [3]}]},
        422,
    ),
    (
        "unknown output",
        {
            "inputs": [{"name": "age", "shape": [1], "datatype": "INT64", "data": [3]}],
            "outputs": [{"name": "shap"}],
        },
        400,
    ),
]


async def test_bad_v2_requests(store: Store, churn: Registry) -> None:
    async with http(create_app(store, settings=SETTINGS)) as client:
        for case, body, status in V2_CASES:
            response = await client.post("/v2/models/churn/infer", json=body)
            assert response.status_code == status, (case, response.text)
            assert response.json()["error"] and SECRET not in response.text, case


async def test_unknown_model_version_and_route(store: Store, churn: Registry) -> None:
    async with http(create_app(store, settings=SETTINGS)) as client:
        for path in (
            "/models/fraud/predict",
            "/models/churn/versions/7/predict",
            "/models/churn/versions/x/predict",
            "/v2/models/fraud/infer",
        ):
            response = await client.post(path, json=records(GOOD))
            assert response.status_code == 404, path
            assert response.json()["code"] == "NotFound"
        assert (await client.get("/v2/models/fraud")).status_code == 404
        assert (await client.get("/v2/models/fraud/ready")).status_code == 404
        nowhere = await client.get("/nowhere")
        assert nowhere.status_code == 404 and nowhere.json()["code"] == "NotFound"
        wrong_method = await client.get("/models/churn/predict")
        assert wrong_method.status_code == 405


async def test_tokens(store: Store, churn: Registry) -> None:
    tokens = Tokens(store)
    scorer, _ = tokens.create(role="scorer", name="web", actor="admin")
    admin, _ = tokens.create(role="admin", name="ops", actor="admin")
    async with http(create_app(store)) as client:
        anonymous = await client.post("/models/churn/predict", json=records(GOOD))
        assert anonymous.status_code == 401
        assert anonymous.headers["www-authenticate"] == "Bearer"
        assert anonymous.json()["code"] == "Unauthorized"
        bad = await client.post(
            "/models/churn/predict",
            json=records(GOOD),
            headers={"Authorization": "Bearer sy_not-a-token"},
        )
        assert bad.status_code == 401 and "unknown or revoked" in bad.json()["error"]
        for token in (scorer, admin):
            ok = await client.post(
                "/v2/models/churn/infer",
                json={
                    "inputs": [
                        {
                            "name": k,
                            "shape": [1],
                            "datatype": "BYTES" if k == "plan" else "FP64",
                            "data": [v],
                        }
                        for k, v in GOOD.items()
                    ]
                },
                headers={"Authorization": f"Bearer {token}"},
            )
            assert ok.status_code == 200, ok.text
        assert (await client.get("/v2/models/churn")).status_code == 401
        # probes and scrapers need no token
        assert (await client.get("/v2/health/ready")).status_code == 200
        assert (await client.get("/metrics")).status_code == 200


def test_only_admins_create_tokens_and_only_hashes_are_stored(store: Store) -> None:
    from shipyard.errors import InvalidInput, PermissionDenied
    from shipyard.store.tables import ApiToken

    tokens = Tokens(store)
    with pytest.raises(PermissionDenied):
        tokens.create(role="scorer", name="x", actor="mallory")
    with pytest.raises(InvalidInput, match="Unknown token role"):
        tokens.create(role="root", name="x", actor="admin")
    secret, row = tokens.create(role="scorer", name="web", actor="admin")
    assert secret.startswith("sy_") and len(secret) > 40
    with store.read() as session:
        stored = session.get(ApiToken, row.id)
        assert stored is not None and secret not in stored.token_hash
    assert tokens.verify(secret) is not None
    tokens.revoke(row.id, actor="admin")
    assert tokens.verify(secret) is None


async def test_tampered_archive_answers_503_with_the_reason(store: Store, churn: Registry) -> None:
    """A model whose archive fails verification is not served (503 + reason); the server
    starts anyway, reports not-ready, and the model's other versions still answer."""
    mv = churn.get_version("churn", 1)
    data = bytearray(store.artifacts.get(mv.archive_key))
    data[len(data) // 2] ^= 0xFF
    store.artifacts.put(mv.archive_key, bytes(data))
    async with http(create_app(store, settings=SETTINGS)) as client:
        response = await client.post("/models/churn/predict", json=records(GOOD))
        assert response.status_code == 503
        assert response.json()["code"] == "ModelUnavailable"
        assert "changed after registration" in response.json()["error"]
        assert (await client.get("/v2/health/ready")).status_code == 400
        ready = await client.get("/v2/models/churn/ready")
        assert ready.status_code == 400 and ready.json()["ready"] is False
        assert (await client.get("/ping")).status_code == 503
        v2 = await client.post("/models/churn/versions/2/predict", json=records(GOOD))
        assert v2.status_code == 200


async def test_model_without_production_version_is_503(store: Store, churn: Registry) -> None:
    settings = ServeSettings(auth=False, models=("churn",), alias="champion")
    async with http(create_app(store, settings=settings)) as client:
        response = await client.post("/models/churn/predict", json=records(GOOD))
    assert response.status_code == 503
    assert "no 'champion' version" in response.json()["error"]


def test_frame_helpers_keep_row_order() -> None:
    from shipyard.serving._inputs import frame_from_records

    frame = frame_from_records([{"a": 1, "b": "x"}, {"b": "y"}])
    assert frame.columns.tolist() == ["a", "b"]
    assert frame["b"].tolist() == ["x", "y"] and pd.isna(frame["a"].iloc[1])
