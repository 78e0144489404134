"""``shipyard serve --workers 2``: whichever worker answers a scrape, ``/metrics`` counts the
requests of both, once each (read with prometheus-client's own parser)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import orjson
import pytest
from replicas_support import GOOD, scrape

from gates_off import NO_GATES
from server_process import wait_live
from shipyard import Settings
from shipyard.checks import scrape_server
from shipyard.packaging import PreparedArchive
from shipyard.registry import Registry
from shipyard.serving import free_port
from shipyard.serving._metrics_shared import PUBLISH_SECONDS
from shipyard.store import Store

pytestmark = pytest.mark.slow


def _predict(url: str) -> None:
    # A new connection per request, so the kernel spreads them over the workers.
    r = httpx.post(f"{url}/models/churn/predict", json={"records": [GOOD]}, timeout=30)
    assert r.status_code == 200, r.text


def test_any_worker_scrape_counts_every_worker_once(
    tmp_path: Path, prepared: PreparedArchive, monkeypatch: pytest.MonkeyPatch
) -> None:
    for key in ("SHIPYARD_DB_URL", "SHIPYARD_ARTIFACTS"):
        monkeypatch.delenv(key, raising=False)
    env = {k: v for k, v in os.environ.items() if not k.startswith("SHIPYARD_")}
    env |= {"SHIPYARD_HOME": str(tmp_path / "home"), "SHIPYARD_USER": "admin"}
    env["TMPDIR"] = str(tmp_path / "tmp")  # where the server's shared metrics folder goes
    (tmp_path / "tmp").mkdir()
    store = Store.from_settings(Settings(home=tmp_path / "home")).open()
    registry = Registry(store, NO_GATES)
    registry.register(prepared, name="churn", actor="alice")
    registry.promote("churn", 1, actor="alice", to="staging")
    store.close()

    port = free_port()
    url = f"http://127.0.0.1:{port}"
    err_path = tmp_path / "serve.err"
    command = [
        *(sys.executable, "-m", "shipyard", "serve", "--workers", "2", "--no-auth", "--no-log"),
        *("--port", str(port), "--models", "churn", "--alias", "staging", "--replica", "r1"),
    ]
    with err_path.open("wb") as err:
        process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=err, env=env)
    try:
        wait_live(url, process, err_path, timeout=180, path="/v2/health/ready")
        shared = next((tmp_path / "tmp").glob("shipyard-metrics-*"))
        sent = 0
        deadline = time.monotonic() + 60
        while True:  # until both workers have answered some requests
            with ThreadPoolExecutor(8) as pool:
                list(pool.map(lambda _: _predict(url), range(40)))
            sent += 40
            time.sleep(2 * PUBLISH_SECONDS)
            per_worker = {
                p.stem: sum(a[3] for a in orjson.loads(p.read_bytes())["answered"])
                for p in shared.glob("*.json")
            }
            if len(per_worker) == 2 and all(per_worker.values()):
                break
            assert time.monotonic() < deadline, f"one worker never answered: {per_worker}"
        assert sum(per_worker.values()) == sent

        for _ in range(12):  # new connections: both workers answer some scrapes
            metrics = scrape(url)
            requests = sum(
                v for k, v in metrics.items() if k.startswith("shipyard_requests_total{")
            )
            assert requests == sent, metrics
            rows = sum(v for k, v in metrics.items() if k.startswith("shipyard_rows_scored_total"))
            assert rows == sent
            count = sum(
                v
                for k, v in metrics.items()
                if k.startswith("shipyard_request_latency_seconds_count{")
            )
            assert count == sent
            usage = sum(v for k, v in metrics.items() if k.startswith("shipyard_usage_requests"))
            assert usage == sent  # whichever worker answered them
            assert metrics["shipyard_server_processes{}"] == 2
            assert metrics["shipyard_replica_info{replica=r1}"] == 1.0
        # shipyard status shows the server's memory (both workers), not one worker's.
        health = scrape_server(url)
        assert health.processes == 2
        assert health.memory_bytes is not None
        assert health.memory_bytes > metrics["process_resident_memory_bytes{}"]
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(120)
    assert process.returncode == 0, err_path.read_text()
    assert "Traceback" not in err_path.read_text()
    assert not shared.exists()  # the next server starts from zero, like one process
