"""The compactor process: it compacts, it dies with its server, and its death loses nothing."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest

from shipyard.predlog import PredictionLog
from shipyard.predlog._wal import list_segments

pytestmark = pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads /proc")


def _running(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie waiting to be reaped does not)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] not in ("Z", "X")


def _wait_for(condition: Callable[[], bool], what: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


def _records(n: int, start: int = 0) -> list[dict[str, object]]:
    return [
        {
            "prediction_id": str(uuid.uuid4()),
            "model": "churn",
            "version": 1,
            "inputs": {"age": start + i},
            "prediction": i % 2,
        }
        for i in range(n)
    ]


def _ids(root: Path) -> list[str]:
    frame = PredictionLog(root).query("SELECT prediction_id FROM predictions", model="churn")
    return frame["prediction_id"].tolist()


def test_the_compactor_process_compacts_while_the_server_only_appends(tmp_path: Path) -> None:
    root = tmp_path / "log"
    log = PredictionLog(root, compactor="process", rotate_seconds=0.05).open()
    pid = log.compactor_pid
    assert pid is not None and pid != os.getpid() and _running(pid)
    records = _records(300)
    log.append(records)
    # Sealed by the server, turned into Parquet and deleted by the other process.
    _wait_for(lambda: any(root.rglob("part-*.parquet")), "a Parquet part")
    _wait_for(lambda: not list_segments(root / "wal"), "the segment's deletion")
    assert log.compactor_pid == pid  # no fallback to the thread happened
    assert log.queue_depth == 0
    # It only takes CPU that requests leave idle.
    assert os.sched_getscheduler(pid) == os.SCHED_IDLE
    assert sorted(_ids(root)) == sorted(str(r["prediction_id"]) for r in records)
    log.close()
    assert not _running(pid)


def test_close_flushes_everything_and_ends_the_compactor(tmp_path: Path) -> None:
    root = tmp_path / "log"
    log = PredictionLog(root, compactor="process", rotate_seconds=3600).open()
    pid = log.compactor_pid
    assert pid is not None
    log.append(_records(50))
    log.close()
    assert list_segments(root / "wal") == []
    assert len(list(root.rglob("part-*.parquet"))) == 1
    assert not _running(pid)


def test_a_dead_compactor_falls_back_to_the_thread(tmp_path: Path) -> None:
    root = tmp_path / "log"
    with PredictionLog(root, compactor="process", rotate_seconds=0.05) as log:
        pid = log.compactor_pid
        assert pid is not None
        os.kill(pid, signal.SIGKILL)
        records = _records(100)
        log.append(records)
        _wait_for(lambda: log.compactor_pid is None, "the fallback")
        _wait_for(lambda: not list_segments(root / "wal"), "compaction in the thread")
    assert sorted(_ids(root)) == sorted(str(r["prediction_id"]) for r in records)


# A server stand-in: opens the log with a compactor process, prints that process's pid, then
# appends and prints each id once append() returned (the moment a response would be sent).
SERVER = textwrap.dedent(
    """
    import sys, uuid
    from shipyard.predlog import PredictionLog

    rotate_seconds = float(sys.argv[2])
    log = PredictionLog(sys.argv[1], compactor="process", rotate_bytes=20_000,
                        rotate_seconds=rotate_seconds).open()
    print(log.compactor_pid, flush=True)
    i = 0
    while True:
        pid = str(uuid.uuid4())
        log.append([{"prediction_id": pid, "model": "churn", "version": 1 + i % 2,
                     "inputs": {"age": i, "plan": "gold"}, "prediction": i % 2}])
        sys.stdout.write(pid + "\\n")
        sys.stdout.flush()
        i += 1
    """
)


def _run_server(root: Path, rotate_seconds: float, answered: int) -> tuple[int, list[str]]:
    """Start SERVER, let it answer ``answered`` ids, kill -9 it: (compactor pid, answered ids)."""
    reported: list[str] = []
    with subprocess.Popen(
        [sys.executable, "-c", SERVER, str(root), str(rotate_seconds)],
        stdout=subprocess.PIPE,
        text=True,
    ) as child:
        assert child.stdout is not None
        compactor = int(child.stdout.readline())
        for line in child.stdout:
            reported.append(line.strip())
            if len(reported) == answered:
                child.send_signal(signal.SIGKILL)
                break
        reported += [line.strip() for line in child.stdout if line.endswith("\n")]
    assert child.returncode == -signal.SIGKILL
    return compactor, reported


def _assert_exactly_once_after_replay(root: Path, reported: list[str]) -> None:
    with PredictionLog(root) as log:
        assert list_segments(root / "wal") == []
        seen = log.query("SELECT prediction_id FROM predictions", model="churn")
    ids = seen["prediction_id"].tolist()
    assert len(ids) == len(set(ids))
    assert set(reported) <= set(ids)
    assert not list(root.rglob("*.tmp"))


def test_killing_the_server_leaves_no_compactor_and_loses_nothing(tmp_path: Path) -> None:
    root = tmp_path / "log"
    # ~20 segments sealed by then: the compactor is busy when its server dies.
    compactor, reported = _run_server(root, 0.05, 2000)
    _wait_for(lambda: not _running(compactor), "the compactor to exit", timeout=10)
    _assert_exactly_once_after_replay(root, reported)


def test_killing_the_compactor_leaves_segments_the_next_start_compacts(tmp_path: Path) -> None:
    root = tmp_path / "log"
    reported: list[str] = []
    with subprocess.Popen(
        [sys.executable, "-c", SERVER, str(root), "3600"], stdout=subprocess.PIPE, text=True
    ) as child:
        assert child.stdout is not None
        compactor = int(child.stdout.readline())
        _wait_for(lambda: _running(compactor), "the compactor")
        os.kill(compactor, signal.SIGKILL)
        for line in child.stdout:  # ~10 segments sealed by size (the fallback thread compacts)
            reported.append(line.strip())
            if len(reported) == 1500:
                child.send_signal(signal.SIGKILL)
                break
        reported += [line.strip() for line in child.stdout if line.endswith("\n")]
    assert list_segments(root / "wal")  # the open segments at least, left for the next start
    _assert_exactly_once_after_replay(root, reported)
