"""No usage is lost when a server dies: every acknowledged request is in the log, so usage
read after ``kill -9`` (and after the next server replays the dead one's WAL) equals what
was sent, each prediction once (a real ``shipyard serve`` process, killed under load)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from health.conftest import GOOD
from server_process import wait_live
from shipyard.predlog import PredictionLog, query, usage
from shipyard.serving import free_port
from shipyard.store import Store

pytestmark = pytest.mark.slow


@contextmanager
def _server(
    store: Store, tmp_path: Path, log: Path
) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    port = free_port()
    env = {
        **os.environ,
        "SHIPYARD_HOME": str(tmp_path / "home"),
        "SHIPYARD_DB_URL": store.db_url,
        "SHIPYARD_ARTIFACTS": store.artifacts_url,
        "SHIPYARD_USER": "admin",
    }
    err = tmp_path / f"serve-{port}.err"
    with err.open("wb") as err_file:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "shipyard",
                "serve",
                "--port",
                str(port),
                "--models",
                "churn",
                "--log-dir",
                str(log),
            ],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=err_file,
        )
        try:
            url = f"http://127.0.0.1:{port}"
            wait_live(url, process, err, timeout=120, path="/v2/health/ready")
            yield url, process
        finally:
            if process.poll() is None:
                process.kill()
            process.wait(30)


def test_usage_survives_kill_9(
    served_store: Store, team_tokens: dict[str, str], tmp_path: Path
) -> None:
    log = tmp_path / "predlog"
    sent = {"web": 0, "batch": 0}
    with _server(served_store, tmp_path, log) as (url, process):
        with httpx.Client(base_url=url) as client:
            for i in range(60):
                name = "web" if i % 3 else "batch"
                rows = 1 + i % 4
                r = client.post(
                    "/models/churn/predict",
                    json={"records": [GOOD] * rows},
                    headers={"Authorization": f"Bearer {team_tokens[name]}"},
                )
                assert r.status_code == 200  # acknowledged
                sent[name] += rows
        process.send_signal(signal.SIGKILL)
        process.wait(30)
    expected = {"risk": (40, sent["web"]), "growth": (20, sent["batch"])}

    def figures() -> dict[str, tuple[int, int]]:
        frame = usage(log, by="team")
        return {t: (q, n) for t, q, n in frame[["team", "requests", "rows"]].values.tolist()}

    assert figures() == expected  # read from the dead server's WAL
    # What the next server does on start: open the log (replaying the dead one's segments);
    # closing it compacts everything to Parquet.
    PredictionLog(log).open().close()
    assert not list((log / "wal").glob("*.wal"))
    assert figures() == expected
    ids = query(
        log,
        "SELECT count(*) AS n, count(DISTINCT prediction_id) AS d FROM predictions",
        model="churn",
    )
    assert ids.values.tolist() == [[sum(sent.values()), sum(sent.values())]]
