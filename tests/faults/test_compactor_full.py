"""Disk full under compaction: the WAL holds the records, the compactor (a thread, or its own
process) says so in one line with the folder and the free space, not a traceback per retry,
keeps retrying, and compacts every record exactly once when space is back.

Every test fills a real 2 MiB tmpfs (``small_disk``): the Parquet writes really fail with
ENOSPC. The WAL segment is written before the disk fills; tmpfs counts whole pages, so the
next few hundred bytes still fit in its page and close it by size, which starts compaction
on a disk that has no page left.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from faults.conftest import SmallDisk, log_records
from shipyard.predlog import PredictionLog
from shipyard.predlog._episode import Episode

FULL_SECONDS = 6.0  # retries back off 0.5, 1, 2, 4 s: five failed passes in this time


def _wait(done: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not done():
        assert time.monotonic() < deadline, what
        time.sleep(0.1)


def _wal(root: Path) -> list[Path]:
    return sorted((root / "wal").glob("*.wal"))


@pytest.mark.parametrize("compactor", ["thread", "process"])
def test_compaction_on_a_full_disk_says_so_once_and_loses_nothing(
    small_disk: SmallDisk,
    compactor: str,
    caplog: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture[str],
) -> None:
    root = small_disk.path / "log"
    log = PredictionLog(
        root,
        rotate_seconds=3600,
        rotate_bytes=1200,  # 10 records (~1.6 KB) close the segment: one page of tmpfs
        compactor=compactor,  # type: ignore[arg-type]
    )
    log.open()
    try:
        with caplog.at_level(logging.INFO, logger="shipyard.predlog"):
            log.append(log_records(0, 5))
            small_disk.fill()
            assert small_disk.free_bytes() == 0
            log.append(log_records(5, 5))  # fits in the segment's page; closes it
            assert log.writable
            time.sleep(FULL_SECONDS)
            assert len(_wal(root)) == 1, "the segment left the WAL while the disk was full"
            assert not list(root.rglob("*.parquet"))
            during = _lines(compactor, caplog, capfd)
            small_disk.free()
            # Generous bounds, returned from as soon as they hold: the compactor process runs at
            # idle priority (SCHED_IDLE, by design), so a machine whose cores are all busy (CI's
            # two test workers) starves it for as long as they stay busy.
            _wait(lambda: not _wal(root), 60, "compaction did not resume once space was back")
            after: list[str] = []  # its line may come a moment after the WAL is empty

            def said_resumed() -> bool:
                after.extend(_lines(compactor, caplog, capfd))
                return any("resumed" in line for line in after)

            _wait(said_resumed, 60, "the compactor did not say it resumed")
        rows = log.query("SELECT prediction_id FROM predictions", model="churn")
    finally:
        small_disk.free()
        log.close()
    ids = rows["prediction_id"].tolist()
    assert sorted(ids) == [f"id-{i:06d}" for i in range(10)]  # every record, exactly once

    text = "\n".join(during)
    assert "Traceback" not in text and "Traceback" not in "\n".join(after)
    (line,) = during  # one line over the several failed passes
    assert "compaction failed: cannot write" in line and str(root) in line
    assert "No space left on device" in line and "0 bytes free on its volume" in line
    assert "1 segment(s), 1,5" in line and "nothing is lost" in line
    (resumed,) = after
    assert "compaction resumed after" in resumed


def _lines(
    compactor: str, caplog: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture[str]
) -> list[str]:
    """What the compactor logged since the last call: caplog's records (thread), or the
    compactor process's stderr (process), as lines."""
    if compactor == "thread":
        records = [r for r in caplog.records if r.name.endswith("_compactor")]
        caplog.clear()
        assert all(r.exc_info is None for r in records)
        return [r.getMessage() for r in records]
    return [line for line in capfd.readouterr().err.splitlines() if line.strip()]


def test_an_episode_reminds_at_most_every_report_seconds() -> None:
    """The throttle the WAL writer and the compactor share (time is the only stand-in)."""
    now = [0.0]
    episode = Episode(every=10.0, clock=lambda: now[0])
    due = []
    for tenth in range(250):  # a failure every 0.1 s for 25 s
        now[0] = tenth / 10
        due.append(episode.failed())
    now[0] = 25.0
    assert due[0] == "start"
    assert [i for i, d in enumerate(due) if d == "reminder"] == [100, 200]
    assert episode.elapsed() == pytest.approx(25.0)
    assert episode.ended() == pytest.approx(25.0)
    assert episode.ended() is None  # told once
    assert episode.failed() == "start"  # a new episode


def test_a_log_closed_or_opened_on_a_full_disk_keeps_its_segments_for_later(
    small_disk: SmallDisk, caplog: pytest.LogCaptureFixture
) -> None:
    """Shutting down on a full disk is not an error (the segments stay in the WAL), nor is
    starting on one with segments to replay; the start after space is back compacts them."""
    root = small_disk.path / "log"
    log = PredictionLog(root, rotate_seconds=3600, compactor="thread")
    log.open()
    with caplog.at_level(logging.WARNING, logger="shipyard.predlog"):
        try:
            log.append(log_records(0, 5))
            small_disk.fill()
        finally:
            log.close()  # flush() fails for want of space: no exception, a warning
        assert len(_wal(root)) == 1
        log.open()  # replays the segment: fails again, one warning, and serves on
        log.close()
        small_disk.free()
        with PredictionLog(root, compactor="thread") as again:
            rows = again.query("SELECT prediction_id FROM predictions", model="churn")
    messages = [r.getMessage() for r in caplog.records]
    assert all(r.exc_info is None for r in caplog.records)
    assert any("stay in the WAL, compacted at the next start" in m for m in messages)
    assert any("wait in the WAL (cannot write" in m for m in messages), messages
    assert "0 bytes free on its volume" in "\n".join(messages)
    assert sorted(rows["prediction_id"]) == [f"id-{i:06d}" for i in range(5)]
    assert not _wal(root)
