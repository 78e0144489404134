"""Predictions and refusals reach the durable prediction log; labels join by prediction id."""

from __future__ import annotations

from pathlib import Path

import pytest

from serving.conftest import http
from shipyard.predlog import PredictionLog
from shipyard.registry import Registry
from shipyard.serving import create_app
from shipyard.settings import ServeSettings
from shipyard.store import Store

pytestmark = pytest.mark.anyio
GOOD = {"age": 40, "income": 52_000.0, "tenure": 2.5, "plan": "pro"}


async def test_predictions_refusals_and_feedback_are_logged(
    store: Store, churn: Registry, tmp_path: Path
) -> None:
    log = PredictionLog(tmp_path / "predlog").open()
    try:
        app = create_app(store, settings=ServeSettings(auth=False), prediction_log=log)
        async with http(app) as client:
            ok = await client.post("/models/churn/predict", json={"records": [GOOD, GOOD]})
            bad = await client.post("/models/churn/predict", json={"records": [{"age": "Zebulon"}]})
            ids = ok.json()["prediction_ids"]
            label = await client.post(
                "/models/churn/feedback", json={"prediction_id": ids[0], "label": "churn"}
            )
            unknown = await client.post(
                "/models/churn/feedback", json={"prediction_id": "nope", "label": "churn"}
            )
            metrics = (await client.get("/metrics")).text
        assert ok.status_code == 200 and bad.status_code == 422
        assert label.status_code == 200 and label.json()["matched"] == 1
        assert unknown.status_code == 404
        assert "shipyard_prediction_log_queue_depth" in metrics
        rows = log.query(
            "SELECT prediction_id, version, status, reason, arm FROM predictions "
            "ORDER BY status, prediction_id",
            model="churn",
        )
        joined = log.query(
            "SELECT f.label FROM predictions p JOIN feedback f USING (prediction_id)",
            model="churn",
        )
    finally:
        log.close()
    assert rows["status"].tolist() == ["ok", "ok", "rejected"]
    assert rows["prediction_id"].tolist()[:2] == sorted(ids)
    assert set(rows["arm"]) == {"production"}
    assert "'age'" in rows["reason"].iloc[2] and "Zebulon" not in rows["reason"].iloc[2]
    assert joined["label"].tolist() == ["churn"]
