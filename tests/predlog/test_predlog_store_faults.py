"""Fault test: SeaweedFS stopped while ``shipyard serve --log-store`` compacts under load.

Requests keep being answered and logged to the local WAL; once the store is back the
compactor process resumes by itself; at the end every acknowledged prediction is in the log
exactly once (count == sent, no duplicate id). Real server process, real SeaweedFS.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from predlog_stores import make_log_store, restart
from prometheus_client.parser import text_string_to_metric_families

from gates_off import NO_GATES
from server_process import wait_live
from shipyard import Settings
from shipyard.packaging import prepare_archive
from shipyard.predlog import query
from shipyard.registry import Registry
from shipyard.serving import free_port
from shipyard.store import Store

GOOD = {"age": 40, "income": 52_000.0, "tenure": 2.5, "plan": "pro"}

pytestmark = pytest.mark.slow


class _Load:
    """Two clients sending predictions until stopped; keeps every acknowledged id and
    every failure."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.ids: list[str] = []
        self.failures: list[str] = []
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._run) for _ in range(2)]

    def __enter__(self) -> _Load:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join()

    def _run(self) -> None:
        with httpx.Client(timeout=30) as client:
            while not self._stop.is_set():
                try:
                    r = client.post(f"{self.url}/models/churn/predict", json={"records": [GOOD]})
                except httpx.HTTPError as exc:
                    self.failures.append(repr(exc))
                    continue
                if r.status_code != 200:
                    self.failures.append(f"{r.status_code} {r.text}")
                else:
                    self.ids.extend(r.json()["prediction_ids"])
                time.sleep(0.002)


def _queue_depth(url: str) -> float:
    text = httpx.get(f"{url}/metrics", timeout=10).text
    for family in text_string_to_metric_families(text):
        if family.name == "shipyard_prediction_log_queue_depth":
            return sum(s.value for s in family.samples)
    raise AssertionError("no shipyard_prediction_log_queue_depth in /metrics")


def _wait(condition: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, what
        time.sleep(0.2)


def test_seaweedfs_stopped_during_compaction_under_load_loses_and_duplicates_nothing(
    tmp_path: Path,
    request: pytest.FixtureRequest,
    monkeypatch: pytest.MonkeyPatch,
    fitted_pipeline: Any,
    training_data: Any,
) -> None:
    endpoint = request.getfixturevalue("seaweedfs")
    store_at = make_log_store(request, "seaweedfs")  # a bucket; AWS_* keys in the environment
    for key in ("SHIPYARD_DB_URL", "SHIPYARD_ARTIFACTS"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("SHIPYARD_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("SHIPYARD_USER", "admin")
    X, y, Xe, ye = training_data
    store = Store.from_settings(Settings()).open()
    registry = Registry(store, NO_GATES)
    registry.register(
        prepare_archive(fitted_pipeline, X_train=X, y_train=y, X_eval=Xe, y_eval=ye),
        name="churn",
        actor="alice",
    )
    registry.promote("churn", 1, actor="alice", to="staging")
    store.close()

    log_dir = tmp_path / "predlog"
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    err_path = tmp_path / "serve.err"
    command = [
        *(sys.executable, "-m", "shipyard", "serve", "--no-auth", "--port", str(port)),
        *("--models", "churn", "--alias", "staging", "--log-dir", str(log_dir)),
        *("--log-store", str(store_at.url)),
    ]
    with err_path.open("wb") as err:
        process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=err)
    try:
        wait_live(url, process, err_path, timeout=90, path="/v2/health/ready")
        with _Load(url) as load:
            # Segments rotate every 5 s: wait until the compactor has written parts.
            _wait(lambda: store_at.files(log_dir), 60, "nothing was compacted to the store")
            seen = len(err_path.read_text())  # what it said before the outage
            endpoint.stop(hard=True)
            try:
                # A rotation and a failed compaction, under load (botocore gives up after
                # two attempts: AWS_MAX_ATTEMPTS in the environment, from make_log_store).
                _wait(
                    lambda: "retrying" in err_path.read_text()[seen:],
                    60,
                    "no compaction failed while the store was down",
                )
                answered = len(load.ids)
                _wait(
                    lambda: len(load.ids) > answered + 50,
                    7,
                    "requests were held while the store was down",
                )
                assert _queue_depth(url) > 0  # the backlog shows in /metrics
            finally:
                restart(endpoint)
            before = len(store_at.files(log_dir))
            # The compactor process resumes by itself (retrying), while requests go on.
            _wait(
                lambda: len(store_at.files(log_dir)) > before,
                60,
                "compaction did not resume once the store was back",
            )
            _wait(lambda: "resumed" in err_path.read_text()[seen:], 30, "no 'resumed' line")
            resumed = len(load.ids)
            _wait(lambda: len(load.ids) > resumed + 50, 30, "requests stopped after the resume")
        assert load.failures == []
        sent = list(load.ids)
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(60)
    stderr = err_path.read_text()
    assert "Traceback" not in stderr, stderr
    assert "retrying" in stderr and "resumed" in stderr, stderr
    logged = query(log_dir, "SELECT prediction_id FROM predictions", model="churn")
    ids = logged["prediction_id"].tolist()
    assert len(ids) == len(sent) and len(set(ids)) == len(ids)
    assert set(ids) == set(sent)
