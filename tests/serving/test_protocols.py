"""The routes answer in each protocol's own shape: plain JSON, Open Inference v2, MLflow."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from serving.conftest import http
from shipyard.registry import Registry
from shipyard.serving import VERSION_HEADER, create_app
from shipyard.settings import ServeSettings
from shipyard.store import Store

pytestmark = pytest.mark.anyio
NO_AUTH = ServeSettings(auth=False)


async def test_predict_records_and_split(
    store: Store, churn: Registry, rows: pd.DataFrame, expected: tuple[list[str], np.ndarray]
) -> None:
    labels, proba = expected
    async with http(create_app(store, settings=NO_AUTH)) as client:
        by_records = await client.post(
            "/models/churn/predict", json={"records": rows.to_dict("records")}
        )
        split = rows.to_dict("split")
        by_split = await client.post(
            "/models/churn/predict", json={"columns": split["columns"], "data": split["data"]}
        )
    for response in (by_records, by_split):
        assert response.status_code == 200
        assert response.headers[VERSION_HEADER] == "1"
        body = response.json()
        assert (body["model"], body["version"]) == ("churn", 1)
        assert body["predictions"] == labels
        assert body["classes"] == ["churn", "stay"]
        np.testing.assert_allclose(body["probabilities"], proba, atol=1e-9)
        assert len(body["prediction_ids"]) == len(set(body["prediction_ids"])) == 5
    assert set(by_records.json()["prediction_ids"]).isdisjoint(by_split.json()["prediction_ids"])


async def test_explicit_version(store: Store, churn: Registry, rows: pd.DataFrame) -> None:
    async with http(create_app(store, settings=NO_AUTH)) as client:
        payload = {"records": rows.to_dict("records")}
        response = await client.post("/models/churn/versions/2/predict", json=payload)
        assert response.status_code == 200
        assert response.headers[VERSION_HEADER] == "2"
        assert response.json()["version"] == 2
        meta = await client.get("/v2/models/churn/versions/2")
        assert meta.json()["versions"] == ["2"]
        missing = await client.post("/models/churn/versions/9/predict", json=payload)
        assert missing.status_code == 404
        assert missing.json()["code"] == "NotFound"


async def test_v2_health_metadata_and_infer_per_column(
    store: Store, churn: Registry, rows: pd.DataFrame, expected: tuple[list[str], np.ndarray]
) -> None:
    labels, proba = expected
    async with http(create_app(store, settings=NO_AUTH)) as client:
        assert (await client.get("/v2/health/live")).json() == {"live": True}
        assert (await client.get("/v2/health/ready")).status_code == 200
        ready = await client.get("/v2/models/churn/ready")
        assert ready.status_code == 200 and ready.json()["ready"] is True
        assert (await client.get("/v2/models/churn/versions/2/ready")).status_code == 200
        assert (await client.get("/v2")).json()["name"] == "shipyard"
        meta = (await client.get("/v2/models/churn")).json()
        assert meta["name"] == "churn" and meta["versions"] == ["1"]
        assert [(i["name"], i["datatype"]) for i in meta["inputs"]] == [
            ("age", "INT64"),
            ("income", "FP64"),
            ("tenure", "FP64"),
            ("plan", "BYTES"),
        ]
        types = {i["name"]: i["datatype"] for i in meta["inputs"]}
        request = {
            "id": "req-1",
            "inputs": [
                # one [n, 1] tensor per column, data nested row-major
                {
                    "name": c,
                    "shape": [len(rows), 1],
                    "datatype": types[c],
                    "data": [[v] for v in rows[c].tolist()],
                }
                for c in rows.columns
            ],
        }
        response = await client.post("/v2/models/churn/infer", json=request)
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["model_name"], body["model_version"], body["id"]) == ("churn", "1", "req-1")
    outputs = {o["name"]: o for o in body["outputs"]}
    assert outputs["predict"] == {
        "name": "predict",
        "datatype": "BYTES",
        "shape": [5],
        "data": labels,
    }
    assert outputs["predict_proba"]["shape"] == [5, 2]
    np.testing.assert_allclose(
        np.reshape(outputs["predict_proba"]["data"], (5, 2)), proba, atol=1e-9
    )
    assert len(outputs["prediction_id"]["data"]) == 5


async def test_v2_bytes_matrix_and_requested_outputs(
    store: Store, churn: Registry, rows: pd.DataFrame, expected: tuple[list[str], np.ndarray]
) -> None:
    matrix = [[str(v) for v in row] for row in rows.itertuples(index=False)]
    request = {
        "inputs": [{"name": "X", "shape": [5, 4], "datatype": "BYTES", "data": matrix}],
        "outputs": [{"name": "predict"}],
    }
    async with http(create_app(store, settings=NO_AUTH)) as client:
        response = await client.post("/v2/models/churn/versions/1/infer", json=request)
    assert response.status_code == 200, response.text
    (output,) = response.json()["outputs"]
    assert output["name"] == "predict" and output["data"] == expected[0]


async def test_mlflow_scoring_protocol(
    store: Store, churn: Registry, rows: pd.DataFrame, expected: tuple[list[str], np.ndarray]
) -> None:
    labels = expected[0]
    split = rows.to_dict("split")
    bodies = [
        {"dataframe_split": {"columns": split["columns"], "data": split["data"]}},
        {"dataframe_records": rows.to_dict("records")},
        {"instances": rows.to_dict("records")},
        {"instances": split["data"]},
        {"inputs": rows.to_dict("list")},
    ]
    async with http(create_app(store, settings=NO_AUTH)) as client:
        assert (await client.get("/ping")).status_code == 200
        assert (await client.get("/version")).text
        for body in bodies:
            response = await client.post("/invocations", json=body)
            assert response.status_code == 200, (body.keys(), response.text)
            assert response.json() == {"predictions": labels}
        csv = await client.post(
            "/invocations?model=churn",
            content=rows.to_csv(index=False),
            headers={"Content-Type": "text/csv"},
        )
        assert csv.status_code == 200, csv.text
        assert csv.json() == {"predictions": labels}


async def test_metrics(store: Store, churn: Registry, rows: pd.DataFrame) -> None:
    async with http(create_app(store, settings=NO_AUTH)) as client:
        await client.post("/models/churn/predict", json={"records": rows.to_dict("records")})
        await client.post("/models/churn/predict", json={"records": [{"age": 1}]})
        text = (await client.get("/metrics")).text
    assert 'shipyard_rows_scored_total{model="churn",version="1"} 5.0' in text
    assert (
        'shipyard_requests_total{endpoint="predict",model="churn",status="200",version="1"} 1.0'
        in text
    )
    assert (
        'shipyard_request_errors_total{endpoint="predict",error="SchemaViolation",model="churn"}'
        in text
    )
    assert "shipyard_request_latency_seconds_bucket" in text
    assert "shipyard_prediction_log_queue_depth 0.0" in text
    assert "shipyard_prediction_log_lag_seconds" in text


async def test_metrics_parse_and_add_up(store: Store, churn: Registry, rows: pd.DataFrame) -> None:
    """What a Prometheus server reads: counts per status, a cumulative latency histogram whose
    +Inf bucket is the answered requests, rows per version."""
    from prometheus_client.parser import text_string_to_metric_families

    async with http(create_app(store, settings=NO_AUTH)) as client:
        for _ in range(3):
            ok = await client.post(
                "/models/churn/predict", json={"records": rows.to_dict("records")}
            )
            assert ok.status_code == 200
        bad = await client.post("/models/churn/predict", json={"records": [{"age": 1}]})
        text = (await client.get("/metrics")).text
    families = {f.name: f for f in text_string_to_metric_families(text)}
    by_status = {
        s.labels["status"]: s.value
        for s in families["shipyard_requests"].samples
        if s.name == "shipyard_requests_total"
    }
    assert by_status == {"200": 3.0, str(bad.status_code): 1.0}
    latency = families["shipyard_request_latency_seconds"].samples
    buckets = [s for s in latency if s.name.endswith("_bucket")]
    counts = [s.value for s in buckets]
    assert counts == sorted(counts) and buckets[-1].labels["le"] == "+Inf" and counts[-1] == 3.0
    assert [s.value for s in latency if s.name.endswith("_count")] == [3.0]
    assert 0 < next(s.value for s in latency if s.name.endswith("_sum")) < 30
    assert buckets[0].labels == {
        "model": "churn",
        "version": "1",
        "endpoint": "predict",
        "le": "0.00025",
    }
    scored = [s for s in families["shipyard_rows_scored"].samples if s.name.endswith("_total")]
    assert [(s.labels, s.value) for s in scored] == [({"model": "churn", "version": "1"}, 15.0)]


async def test_no_page_loads_from_a_cdn(store: Store, churn: Registry) -> None:
    async with http(create_app(store, settings=NO_AUTH)) as client:
        assert (await client.get("/docs")).status_code == 404
        assert (await client.get("/redoc")).status_code == 404
        schema = await client.get("/openapi.json")
        assert schema.status_code == 200 and "/v2/models/{name}/infer" in schema.json()["paths"]
