"""``shipyard serve --workers 2``: two real worker processes, one prediction log.

Each worker writes its own WAL segment (records never interleave), every acknowledged
prediction lands in the log exactly once, and an alias move switches both workers.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from gates_off import NO_GATES
from server_process import wait_live
from shipyard import Settings
from shipyard.packaging import PreparedArchive
from shipyard.predlog import PredictionLog
from shipyard.registry import Registry
from shipyard.serving import free_port
from shipyard.store import Store

GOOD = {"age": 40, "income": 52_000.0, "tenure": 2.5, "plan": "pro"}

pytestmark = pytest.mark.slow


def _writers(wal_dir: Path, version: int) -> set[int]:
    """PIDs holding a prediction segment of churn ``version`` open FOR WRITING (Linux /proc);
    the compactor reading a sealed segment is not a writer."""
    suffix = f"+p+churn+{version}.wal"
    pids = set()
    for fd_dir in Path("/proc").glob("[0-9]*/fd"):
        try:
            for fd in fd_dir.iterdir():
                link = os.readlink(fd)
                if not (link.startswith(str(wal_dir)) and link.endswith(suffix)):
                    continue
                info = (fd_dir.parent / "fdinfo" / fd.name).read_text()
                flags = int(
                    next(x for x in info.splitlines() if x.startswith("flags:")).split()[1], 8
                )
                if flags & (os.O_WRONLY | os.O_RDWR):
                    pids.add(int(fd_dir.parent.name))
        except (OSError, StopIteration):  # a process or fd that ended, or one we may not see
            continue
    return pids


def _predict(url: str) -> tuple[str, int]:
    # A new connection per request, so the kernel spreads them over the workers.
    r = httpx.post(f"{url}/models/churn/predict", json={"records": [GOOD]}, timeout=30)
    assert r.status_code == 200, r.text
    return r.json()["prediction_ids"][0], int(r.headers["x-shipyard-version"])


def _burst(url: str, n: int) -> list[tuple[str, int]]:
    with ThreadPoolExecutor(8) as pool:
        return list(pool.map(lambda _: _predict(url), range(n)))


@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="reads /proc (Linux)")
def test_two_workers_log_every_prediction_once_and_both_switch(
    tmp_path: Path, prepared: PreparedArchive, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = tmp_path / "home"
    for key in ("SHIPYARD_DB_URL", "SHIPYARD_ARTIFACTS"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("SHIPYARD_HOME", str(home))
    monkeypatch.setenv("SHIPYARD_USER", "admin")
    store = Store.from_settings(Settings()).open()
    registry = Registry(store, NO_GATES)
    for _ in range(2):
        registry.register(prepared, name="churn", actor="alice")
    registry.promote("churn", 1, actor="alice", to="staging")
    store.close()

    log_dir = tmp_path / "predlog"
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    err_path = tmp_path / "serve.err"
    command = [
        *(sys.executable, "-m", "shipyard", "serve", "--workers", "2", "--no-auth"),
        *("--port", str(port), "--models", "churn", "--alias", "staging"),
        *("--log-dir", str(log_dir)),
    ]
    with err_path.open("wb") as err:
        process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=err)
    answered: list[tuple[str, int]] = []
    try:
        wait_live(url, process, err_path, timeout=60, path="/v2/health/ready")

        # Until both workers have answered (each opens its own segment on its first write).
        deadline = time.monotonic() + 60
        while len(_writers(log_dir / "wal", 1)) < 2:
            answered += _burst(url, 40)
            assert time.monotonic() < deadline, "one worker never answered"
        assert {version for _, version in answered} == {1}

        # An alias move reaches both workers: each starts a version-2 segment of its own.
        store = Store.from_settings(Settings()).open()
        Registry(store, NO_GATES).promote("churn", 2, actor="alice", to="staging")
        store.close()
        deadline = time.monotonic() + 60
        while len(_writers(log_dir / "wal", 2)) < 2:
            answered += _burst(url, 40)
            assert time.monotonic() < deadline, "a worker did not switch to version 2"
        last = _burst(url, 40)
        assert {version for _, version in last} == {2}
        answered += last
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(30)

    assert process.returncode == 0, err_path.read_text()
    assert "Traceback" not in err_path.read_text()
    log = PredictionLog(log_dir)
    logged = log.query("SELECT prediction_id, version FROM predictions", model="churn")
    ids = logged["prediction_id"].tolist()
    assert len(ids) == len(set(ids))  # nothing twice
    assert sorted(ids) == sorted(pid for pid, _ in answered)  # nothing lost, nothing extra
    versions = dict(zip(logged["prediction_id"], logged["version"], strict=True))
    assert all(versions[pid] == version for pid, version in answered)
    assert not list((log_dir / "wal").glob("*.wal"))  # both workers compacted on shutdown
