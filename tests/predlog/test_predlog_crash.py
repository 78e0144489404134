"""The prediction log survives ``kill -9``: real child processes, real files, real replay."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import uuid
from pathlib import Path

from shipyard.predlog import PredictionLog
from shipyard.predlog._wal import list_segments

# Logs one prediction per call (two in three as the server does, as answers; one as a record)
# and prints its id once the call returned: the moment the server would send the response.
# Small segments so that kills land in every phase (appending, rotating, compacting).
CHILD = textwrap.dedent(
    """
    import sys, time, uuid
    from shipyard.predlog import Answers, PredictionLog

    log = PredictionLog(sys.argv[1], rotate_bytes=20_000, rotate_seconds=0.05).open()
    i = 0
    while True:
        pid = str(uuid.uuid4())
        if i % 3:  # as the server logs an answer (names in a layout line per segment)
            log.append_answers(Answers("churn", 1 + i % 2, "production", time.time(), 0.1,
                                       [pid], ["age", "plan"], [[i, "gold"]], [i % 2],
                                       [[0.5, 0.5]], ["0", "1"]))
        else:  # a record, as code logs one
            log.append([{"prediction_id": pid, "model": "churn", "version": 1 + i % 2,
                         "arm": "production", "inputs": {"age": i, "plan": "gold"},
                         "prediction": i % 2, "proba": {"0": 0.5, "1": 0.5},
                         "latency_ms": 0.1}])
        sys.stdout.write(pid + "\\n")
        sys.stdout.flush()
        i += 1
    """
)


def _die(log: PredictionLog) -> None:
    """Stop ``log`` as a killed process stops: its segments unlocked, none compacted."""
    wal, compaction = log._wal, log._compaction
    assert wal is not None and compaction is not None
    compaction.stop()
    wal.close()
    for segment in wal._active.values():
        os.close(segment.fd)  # releases the flock, as the kernel does for a dead process
    wal._active.clear()


def _ids(log: PredictionLog) -> list[str]:
    frame = log.query("SELECT prediction_id FROM predictions", model="churn")
    return frame["prediction_id"].tolist()


def test_every_answered_prediction_survives_kill_9(tmp_path: Path) -> None:
    after = 2000  # ~20 segments rotated by then: kills land during compaction too
    root = tmp_path / "log"
    reported = []
    with subprocess.Popen(
        [sys.executable, "-c", CHILD, str(root)], stdout=subprocess.PIPE, text=True
    ) as child:
        assert child.stdout is not None
        for line in child.stdout:
            reported.append(line.strip())
            if len(reported) == after:
                child.send_signal(signal.SIGKILL)
                break
        # Ids printed before the kill landed were answered too.
        reported += [line.strip() for line in child.stdout if line.endswith("\n")]
    assert child.returncode == -signal.SIGKILL

    # A reader that does not open the log sees every answered id exactly once already...
    seen = _ids(PredictionLog(root))
    assert len(seen) == len(set(seen))
    assert set(reported) <= set(seen)

    # ...and so does the log after open() replayed the orphaned segments into Parquet.
    with PredictionLog(root) as log:
        assert list_segments(root / "wal") == []
        seen = _ids(log)
    assert len(seen) == len(set(seen))
    assert set(reported) <= set(seen)
    assert not list(root.rglob("*.tmp"))


CRASH_MID_COMPACTION = textwrap.dedent(
    """
    import os, signal, sys, uuid
    from shipyard.predlog import PredictionLog
    from shipyard.predlog._decode import decode_segment

    log = PredictionLog(sys.argv[1], rotate_seconds=3600).open()
    log.append([{"prediction_id": str(uuid.uuid4()), "model": "churn", "version": 1,
                 "inputs": {"age": i}, "prediction": 0} for i in range(500)])
    segment = next(iter(log._wal._active.values()))
    # What compaction does before it deletes the segment: every part written and renamed.
    table = decode_segment(segment.key, segment.path.read_bytes())
    log._compaction._parts.write_segment(segment.segment_id, segment.key, table)
    # And a temporary part of a compaction that died before its rename.
    tmp = next(segment.path.parent.parent.rglob("part-*.parquet")).with_name(
        f".part-{segment.segment_id}.tmp")
    tmp.write_bytes(b"half a parquet file")
    os.kill(os.getpid(), signal.SIGKILL)
    """
)


def test_crash_between_parquet_and_segment_delete_is_not_duplicated(tmp_path: Path) -> None:
    root = tmp_path / "log"
    child = subprocess.run([sys.executable, "-c", CRASH_MID_COMPACTION, str(root)], check=False)
    assert child.returncode == -signal.SIGKILL
    assert len(list_segments(root / "wal")) == 1
    assert len(list(root.rglob("part-*.parquet"))) == 1

    # Before replay: the reader takes the segment and skips the part made from it.
    assert len(_ids(PredictionLog(root))) == 500
    with PredictionLog(root) as log:
        ids = _ids(log)
    assert len(ids) == len(set(ids)) == 500
    assert list_segments(root / "wal") == []
    assert not list(root.rglob("*.tmp"))
    assert len(list(root.rglob("part-*.parquet"))) == 1  # rewritten under the same name


def test_torn_last_line_is_dropped_on_replay(tmp_path: Path) -> None:
    """Only a power loss can tear a line; replay keeps every complete one."""
    root = tmp_path / "log"
    log = PredictionLog(root, rotate_seconds=3600).open()
    ids = [str(uuid.uuid4()) for _ in range(10)]
    log.append([{"prediction_id": i, "model": "churn", "version": 1} for i in ids])
    segment = next(iter(log._wal._active.values()))
    os.write(segment.fd, b'{"prediction_id": "torn", "mod')
    _die(log)  # the lock released, nothing compacted

    with PredictionLog(root) as reopened:
        assert sorted(_ids(reopened)) == sorted(ids)


def test_a_second_writer_does_not_replay_live_segments(tmp_path: Path) -> None:
    """Server workers share one log folder; each owns (flocks) its own segments."""
    root = tmp_path / "log"
    first = PredictionLog(root, rotate_seconds=3600).open()
    first.append([{"prediction_id": "a", "model": "churn", "version": 1}])
    with PredictionLog(root) as second:
        assert second.replay() == 0
        second.append([{"prediction_id": "b", "model": "churn", "version": 1}])
        assert sorted(_ids(second)) == ["a", "b"]
    assert len(list_segments(root / "wal")) == 1  # first's, untouched
    first.close()
    assert sorted(_ids(PredictionLog(root))) == ["a", "b"]
    assert list_segments(root / "wal") == []


def test_damaged_lines_are_set_aside_and_the_rest_compacted(tmp_path: Path) -> None:
    """A disk that returns garbage for a few lines must not stop compaction (nor the next
    start): the readable lines reach Parquet, the others are kept in wal/damaged/."""
    root = tmp_path / "log"
    log = PredictionLog(root, rotate_seconds=3600).open()
    ids = [str(uuid.uuid4()) for _ in range(6)]
    log.append([{"prediction_id": i, "model": "churn", "version": 1} for i in ids[:3]])
    segment = next(iter(log._wal._active.values()))
    garbage = [b"\x00" * 40, b'{"prediction_id": 5, "ts": "noon"}', b"[1, 2]"]
    os.write(segment.fd, b"\n".join(garbage) + b"\n")
    log.append([{"prediction_id": i, "model": "churn", "version": 1} for i in ids[3:]])
    name = segment.path.name
    _die(log)  # without compacting; the next start replays the segment

    assert sorted(_ids(PredictionLog(root))) == sorted(ids)  # readable before replay too
    with PredictionLog(root) as reopened:
        assert sorted(_ids(reopened)) == sorted(ids)
    assert list_segments(root / "wal") == []
    assert sorted((root / "wal" / "damaged" / name).read_bytes().splitlines()) == sorted(garbage)
