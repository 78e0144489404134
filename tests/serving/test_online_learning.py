"""Online learners on a real server: labels sent to /feedback teach a river model, which
snapshots itself as new versions, served (once promoted) and rolled back like any other."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path

import httpx
import numpy as np
import pandas as pd

from serving.fraud_stream import stream
from shipyard import Client
from shipyard.checks import SnapshotOutcome, snapshot_from_log
from shipyard.config import ProjectConfig
from shipyard.predlog import PredictionLog
from shipyard.registry import Registry
from shipyard.scheduler import JOB_KINDS, JobContext
from shipyard.serving import create_app, serve_in_thread
from shipyard.settings import ServeSettings
from shipyard.store import Store


def _accuracy(client: httpx.Client, path: str, X: pd.DataFrame, y: list[bool]) -> float:
    answer = client.post(path, json={"columns": list(X.columns), "data": X.to_numpy().tolist()})
    assert answer.status_code == 200, answer.text
    return float(np.mean(np.asarray(answer.json()["predictions"]) == np.asarray(y)))


def _label_one(client: httpx.Client) -> None:
    """One prediction and its label (the drifted concept: b < 0 means False)."""
    row = client.post("/models/fraud/predict", json={"records": [{"a": 1, "b": -1}]})
    pid = row.json()["prediction_ids"][0]
    fed = client.post("/models/fraud/feedback", json={"prediction_id": pid, "label": False})
    assert fed.status_code == 200, fed.text


def _served(client: httpx.Client, version: str) -> None:
    deadline = time.monotonic() + 3
    row = {"records": [{"a": 0.1, "b": 0.2}]}
    while client.post("/models/fraud/predict", json=row).headers["X-Shipyard-Version"] != version:
        assert time.monotonic() < deadline, f"v{version} not served within 3 s"
        time.sleep(0.02)


def test_the_learner_improves_on_a_drifting_stream_and_its_snapshot_serves_and_rolls_back(
    store: Store, fraud: Registry, approver: Client, tmp_path: Path
) -> None:
    log = PredictionLog(tmp_path / "predlog").open()
    settings = ServeSettings(
        auth=False, poll_interval_seconds=0.05, snapshot_every=300, learner_actor="learner"
    )
    app = create_app(store, settings=settings, prediction_log=log)
    X_new, y_new = stream(300, drifted=True, seed=2)  # held out, after the drift
    try:
        with serve_in_thread(app) as url, httpx.Client(base_url=url, timeout=30) as client:
            before = _accuracy(client, "/models/fraud/predict", X_new, y_new)
            X, y = stream(600, drifted=True, seed=1)
            snapshots = []
            for start in range(0, 600, 100):
                chunk = X.iloc[start : start + 100]
                answer = client.post(
                    "/models/fraud/predict", json={"records": chunk.to_dict("records")}
                )
                ids = answer.json()["prediction_ids"]
                labels = [
                    {"prediction_id": i, "label": t}
                    for i, t in zip(ids, y[start : start + 100], strict=True)
                ]
                fed = client.post("/models/fraud/feedback", json={"labels": labels})
                assert fed.status_code == 200, fed.text
                assert fed.json()["learning"]["learned"] == 100
                if fed.json()["learning"]["snapshot"] is not None:
                    snapshots.append(fed.json()["learning"]["snapshot"])
            assert snapshots == [2, 3]
            # Snapshots are versions like any other: not served until promoted.
            assert (
                client.post("/models/fraud/predict", json={"records": [{"a": 1, "b": 1}]}).headers[
                    "X-Shipyard-Version"
                ]
                == "1"
            )
            after = _accuracy(client, "/models/fraud/versions/3/predict", X_new, y_new)
            assert before < 0.7 and after > 0.85, (before, after)

            learner = app.state.serving.learning.learners["fraud"]
            unknown = client.post(
                "/models/fraud/feedback",
                json={"prediction_id": "0190000000000000000000dead", "label": True},
            )
            bad = client.post(
                "/models/fraud/feedback", json={"prediction_id": ids[0], "label": "maybe"}
            )
            assert unknown.status_code == 404 and bad.status_code == 400
            assert "not one of this model's classes" in bad.text
            assert learner.learned == 600  # nothing learned from either

            version = fraud.get_version("fraud", 3)
            assert version.author == "learner" and version.tags["snapshot_of"] == 1
            approver.approve("fraud", 3, reason="learned the drift")
            fraud.promote("fraud", 3, actor="alice")
            _served(client, "3")
            assert _accuracy(client, "/models/fraud/predict", X_new, y_new) == after
            _label_one(client)
            # Its newest snapshot promoted: the learner goes on (it is past v3 already).
            assert app.state.serving.learning.learners["fraud"] is learner
            assert learner.learned == 601

            fraud.rollback("fraud", actor="alice")
            _served(client, "1")
            assert _accuracy(client, "/models/fraud/predict", X_new, y_new) == before
            _label_one(client)
            restarted = app.state.serving.learning.learners["fraud"]
            assert restarted is not learner and restarted.base == 1 and restarted.learned == 1
    finally:
        log.close()


def test_a_scheduled_snapshot_replays_the_logged_labels(
    store: Store, fraud: Registry, tmp_path: Path
) -> None:
    with PredictionLog(tmp_path / "predlog") as log:
        app = create_app(store, settings=ServeSettings(auth=False), prediction_log=log)
        X, y = stream(400, drifted=True, seed=1)
        with serve_in_thread(app) as url, httpx.Client(base_url=url, timeout=30) as client:
            answer = client.post("/models/fraud/predict", json={"records": X.to_dict("records")})
            ids = answer.json()["prediction_ids"]
            labels = [{"prediction_id": i, "label": t} for i, t in zip(ids, y, strict=True)]
            assert client.post("/models/fraud/feedback", json={"labels": labels}).status_code == 200
        log.flush()
        ctx = JobContext(
            store, "sched", ProjectConfig(), tmp_path / "predlog", datetime.now(UTC), job="nightly"
        )
        job = JOB_KINDS["snapshot"]
        waits = job.run(ctx, job.params.model_validate({"model": "fraud", "min_labels": 1000}))
        assert "fewer than 1000; no snapshot" in waits.message and waits.rows == 400
        none = snapshot_from_log(
            store,
            tmp_path / "predlog",
            "fraud",
            actor="sched",
            trigger="schedule:t",
            min_labels=1000,
        )
        result = job.run(ctx, job.params.model_validate({"model": "fraud"}))
        assert "fraud v2 registered" in result.message
        done = SnapshotOutcome(
            **{k: result.details[k] for k in ("model", "base", "labels", "version")}
        )
    assert none.version is None and none.labels == 400
    assert done.version == 2 and done.labels == 400 and done.base == 1
    snapshot = fraud.get_version("fraud", 2)
    assert snapshot.author == "sched" and snapshot.tags["trigger"] == "schedule:nightly"
    assert fraud.aliases("fraud") == {"production": 1}  # promotion stays a person's decision
    X_new, y_new = stream(300, drifted=True, seed=2)
    replayed = fraud.load("fraud", 2).predict(X_new)
    original = fraud.load("fraud", 1).predict(X_new)
    assert np.mean(replayed == np.asarray(y_new)) > np.mean(original == np.asarray(y_new)) + 0.3


def test_a_scheduled_snapshot_after_a_rollback_learns_only_what_came_after_it(
    store: Store, fraud: Registry, approver: Client, tmp_path: Path
) -> None:
    """A rollback is a verdict on what was served and learned before it: the job replays
    the labels logged after the rollback to v1, not the 300 its rolled-back snapshot learned."""
    settings = ServeSettings(auth=False, poll_interval_seconds=0.05)
    ctx = JobContext(
        store, "sched", ProjectConfig(), tmp_path / "predlog", datetime.now(UTC), job="nightly"
    )
    job = JOB_KINDS["snapshot"]
    with PredictionLog(tmp_path / "predlog") as log:
        app = create_app(store, settings=settings, prediction_log=log)
        with serve_in_thread(app) as url, httpx.Client(base_url=url, timeout=30) as client:
            X, y = stream(300, drifted=True, seed=1)
            answer = client.post("/models/fraud/predict", json={"records": X.to_dict("records")})
            ids = answer.json()["prediction_ids"]
            labels = [{"prediction_id": i, "label": t} for i, t in zip(ids, y, strict=True)]
            assert client.post("/models/fraud/feedback", json={"labels": labels}).status_code == 200
            log.flush()
            first = job.run(ctx, job.params.model_validate({"model": "fraud"}))
            assert first.details["labels"] == 300 and first.details["version"] == 2
            approver.approve("fraud", 2, reason="learned the drift")
            fraud.promote("fraud", 2, actor="alice")
            _served(client, "2")
            fraud.rollback("fraud", actor="alice")
            _served(client, "1")
            for _ in range(7):
                _label_one(client)
        log.flush()
        again = job.run(ctx, job.params.model_validate({"model": "fraud"}))
    assert again.details["base"] == 1 and again.details["version"] == 3
    assert again.details["labels"] == 7  # not 307
