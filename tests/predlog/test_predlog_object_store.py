"""The prediction log with its Parquet on a real object store (SeaweedFS, moto's server):
the WAL stays local, readers find the store from the folder, a store that fails in the
middle of a compaction leaves every row exactly once, and DuckDB reads only the log."""

from __future__ import annotations

import json
import logging
import time
import uuid
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from predlog_stores import LogStore, make_log_store, restart

from shipyard.errors import InvalidInput, StoreUnavailable
from shipyard.housekeeping import collect_garbage
from shipyard.predlog import (
    PredictionLog,
    delete_partition,
    expired_partitions,
    find_prediction,
    log_space,
    logged_models,
    query,
    read_window,
    usage,
)
from shipyard.predlog._compactor import _merge_past_days
from shipyard.predlog._location import Location, open_location
from shipyard.predlog._parquet import PartWriter, Written
from shipyard.predlog._wal import list_segments
from shipyard.serving import free_port
from shipyard.store import Store

DAY = datetime(2026, 11, 23, 12, tzinfo=UTC)
REMOTE = ["seaweedfs", "moto"]


@pytest.fixture(params=REMOTE)
def remote(request: pytest.FixtureRequest) -> LogStore:
    return make_log_store(request, request.param)


@pytest.fixture
def seaweed(request: pytest.FixtureRequest) -> LogStore:
    return make_log_store(request, "seaweedfs")


def record(ts: datetime, **fields: Any) -> dict[str, Any]:
    out: dict[str, Any] = {
        "prediction_id": uuid.uuid4().hex,
        "ts": ts,
        "model": "churn",
        "version": 1,
        "inputs": {"age": 41},
        "prediction": 1,
    }
    out.update(fields)
    return out


def _ids(root: Path | str) -> list[str]:
    return query(root, "SELECT prediction_id FROM predictions", model="churn")[
        "prediction_id"
    ].tolist()


def test_the_parquet_goes_to_the_store_and_the_wal_stays_local(
    tmp_path: Path, remote: LogStore
) -> None:
    root = tmp_path / "log"
    rows = [record(DAY - timedelta(days=d)) for d in (0, 1)]
    with remote.log(root) as log:
        log.append(rows)
        log.flush()
        live = [record(DAY)]
        log.append(live)  # still in the WAL when read below
        assert sorted(_ids(root)) == sorted(r["prediction_id"] for r in rows + live)
        assert log.record_feedback("churn", rows[0]["prediction_id"], 1).matched == 1
    # Nothing but the WAL and store.json on local disk; parts and index on the store.
    assert sorted(p.name for p in root.iterdir()) == ["store.json", "wal"]
    parts = remote.files(root)
    assert [p.split("/")[0] for p in parts] == ["feedback"] + ["predictions"] * 3
    assert len(remote.files(root, "*.parquet")) > len(parts)  # the id index too
    # store.json names the store and holds no secret: readers bring their own keys.
    saved = json.loads((root / "store.json").read_text())
    assert saved["url"] == remote.url
    secret = remote.options.get("secret")
    assert secret is None or secret not in (root / "store.json").read_text()
    # Readers given the folder, or the URL alone, see every row once.
    assert len(_ids(root)) == len(set(_ids(root))) == 3
    assert sorted(_ids(str(remote.url))) == sorted(_ids(root))
    found = find_prediction(root, rows[0]["prediction_id"])
    assert found is not None and found["source"].startswith(f"{remote.url}/predictions/")
    assert [label["label"] for label in found["labels"]] == [1]


def test_usage_and_space_read_the_log_on_the_store(tmp_path: Path, remote: LogStore) -> None:
    root = tmp_path / "log"
    rows = [record(DAY, caller="ci", team="risk", compute_ms=2.0, request_rows=1) for _ in "abc"]
    with remote.log(root) as log:
        log.append(rows[:2])
        log.flush()  # two rows on the store, one in the WAL
        log.append(rows[2:])
        assert logged_models(root) == ["churn"]
        assert usage(root, by="team")["requests"].tolist() == [3]
    # Closed: every row compacted to the store, nothing left in the local WAL.
    assert logged_models(root) == ["churn"]
    assert usage(root, by="team").to_dict("records") == [
        {"team": "risk", "requests": 3, "rows": 3, "compute_seconds": 0.006, "refused": 0}
    ]
    space = log_space(root)
    on_store = remote.files(root, "*.parquet")
    assert (space.wal_segments, space.wal_bytes) == (0, 0)
    assert space.parquet_files == len(on_store) > 0 and space.parquet_bytes > 0


def test_retention_deletes_expired_partitions_on_the_store(
    tmp_path: Path, remote: LogStore
) -> None:
    root = tmp_path / "log"
    old, kept = record(DAY - timedelta(days=40)), record(DAY)
    with remote.log(root) as log:
        log.append([old, kept])
    expired = expired_partitions(root, date(2026, 11, 1))
    assert [p.path for p in expired] == [
        "ids/date=2026-10-14",
        "predictions/model=churn/version=1/date=2026-10-14",
    ]
    for partition in expired:
        delete_partition(root, partition)
    assert expired_partitions(root, date(2026, 11, 1)) == []
    assert _ids(root) == [kept["prediction_id"]]
    assert find_prediction(root, old["prediction_id"]) is None


def test_shipyard_gc_deletes_old_partitions_on_the_store(
    tmp_path: Path, seaweed: LogStore, store: Store
) -> None:
    """``collect_garbage`` (``shipyard gc``) given the log folder works on its store."""
    root = tmp_path / "log"
    old, kept = record(DAY - timedelta(days=40)), record(DAY)
    with seaweed.log(root) as log:
        log.append([old, kept])
    kwargs: dict[str, Any] = {
        "log_root": root,
        "predictions_older_than": timedelta(days=30),
        "monitoring_older_than": None,
        "actor": "ops",
        "now": DAY,
    }
    dry = collect_garbage(store, dry_run=True, **kwargs)
    assert dry.partitions == [
        "ids/date=2026-10-14",
        "predictions/model=churn/version=1/date=2026-10-14",
    ]
    assert dry.files == 2 and dry.bytes > 0
    assert len(seaweed.files(root)) == 2  # a dry run deletes nothing
    done = collect_garbage(store, **kwargs)
    assert done.partitions == dry.partitions and done.errors == []
    assert seaweed.files(root) == [
        f"predictions/model=churn/version=1/date={DAY.date()}/"
        + seaweed.files(root)[0].rsplit("/", 1)[-1]
    ]
    assert _ids(root) == [kept["prediction_id"]]


class _StopAfterFirstPut:
    """Stops the real server right after the first object of a compaction is written: the
    store goes away in the middle of a segment's parts (no object is faked)."""

    def __init__(self, fs: Any, endpoint: Any) -> None:
        self.fs, self.endpoint = fs, endpoint
        self.pipe_file = fs.pipe_file
        self.puts = 0

    def __call__(self, path: str, data: bytes, **kwargs: Any) -> Any:
        out = self.pipe_file(path, data, **kwargs)
        self.puts += 1
        if self.puts == 1:
            self.endpoint.stop(hard=True)  # as a crash: and a restart in seconds
        return out


def test_a_store_gone_mid_compaction_lands_each_row_once_when_it_returns(
    tmp_path: Path, seaweed: LogStore, request: pytest.FixtureRequest
) -> None:
    """The server is killed right after the first part of a segment is written; appends go
    on; once it is back, the compaction thread retries by itself (nobody calls flush) and
    rewrites the same names: each row once."""
    endpoint = request.getfixturevalue("seaweedfs")
    root = tmp_path / "log"
    rows = [record(DAY - timedelta(days=d)) for d in (0, 1, 2) for _ in range(50)]
    ids = sorted(r["prediction_id"] for r in rows)
    log = seaweed.log(root, rotate_seconds=3600, compactor="thread").open()
    try:
        log.append(rows)  # one segment, three days: three parts, then the index, then delete
        loc = log._location
        assert loc is not None and loc.fs is not None
        hook = _StopAfterFirstPut(loc.fs, endpoint)
        loc.fs.pipe_file = hook
        try:
            with pytest.raises(StoreUnavailable, match="cannot be reached"):
                log.flush()
        finally:
            del loc.fs.pipe_file  # back to the class's method
        assert hook.puts == 1
        # The segment stays, whole, in the WAL; readers say the store is down.
        assert len(list_segments(root / "wal")) == 1
        with pytest.raises(StoreUnavailable, match="cannot be reached"):
            read_window(root, "churn")
        # Requests are not held: appends go on while the store is down.
        later = [record(DAY + timedelta(minutes=m)) for m in range(5)]
        log.append(later)
        ids = sorted(ids + [r["prediction_id"] for r in later])
        assert log.queue_depth == len(ids)
        log._wal.rotate()  # type: ignore[union-attr] # closed: the thread's to compact
        log._wal.wake.set()  # type: ignore[union-attr]
        restart(endpoint)
        # A part of the segment is on the store and the segment in the WAL: each row once.
        seen = _ids(root)
        assert sorted(seen) == ids and len(seen) == len(set(seen))
        deadline = time.monotonic() + 60
        while log.queue_depth and time.monotonic() < deadline:
            time.sleep(0.1)
        assert log.queue_depth == 0, "compaction did not resume by itself"
        assert list_segments(root / "wal") == []
    finally:
        log.close()
    assert len(seaweed.files(root)) == 4  # three days + the later rows' part: no extra part
    seen = _ids(root)
    assert sorted(seen) == ids and len(seen) == len(set(seen))
    for pid in (ids[0], ids[-1]):
        assert find_prediction(root, pid) is not None


def test_a_store_down_at_close_keeps_the_segments_for_the_next_start(
    tmp_path: Path, seaweed: LogStore
) -> None:
    """A server that shuts down (or restarts) while its store is unreachable: no error, the
    segments stay in the WAL, and the next start with the store back compacts them. The
    unreachable store is an endpoint where nothing listens (store.json names the real one)."""
    root = tmp_path / "log"
    with seaweed.log(root):  # the first start checks the store and writes store.json
        pass
    dead = {
        **seaweed.options,
        "endpoint_url": f"http://127.0.0.1:{free_port()}",
        # nothing listens there: a retry cannot succeed, only wait
        "config_kwargs": {"retries": {"max_attempts": 1}},
    }
    rows = [record(DAY) for _ in range(20)]
    log = PredictionLog(root, storage_options=dead, compactor="thread").open()  # starts anyway
    log.append(rows)
    log.close()  # no exception
    assert len(list_segments(root / "wal")) == 1
    with PredictionLog(root, compactor="thread") as reopened:  # store.json says where
        assert list_segments(root / "wal") == []
        assert len(reopened.query("SELECT * FROM predictions", model="churn")) == 20


def test_the_store_gone_while_past_days_merge_is_one_line(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The compactor merges past days' id index after a segment's parts: a store that went
    away in between (here an endpoint where nothing listens) is one warning line, not a
    traceback in the server's log; a bug there still shows its traceback."""
    dead = {
        "key": "k",
        "secret": "s",
        "endpoint_url": f"http://127.0.0.1:{free_port()}",
        "config_kwargs": {"retries": {"max_attempts": 1}},
    }
    loc = open_location("s3://shipyard-tests/predlog", storage_options=dead, check=False)
    writer = PartWriter(loc)
    written = [Written(str(DAY.date()), "p", pa.table({"prediction_id": ["a"]}))]
    with caplog.at_level(logging.WARNING, logger="shipyard.predlog"):
        _merge_past_days(writer, written)
    [line] = caplog.records
    assert line.levelno == logging.WARNING and line.exc_info is None
    assert "merging the id index of past days failed" in line.getMessage()
    assert "cannot be reached" in line.getMessage()
    caplog.clear()
    writer = PartWriter(Location(folder=None, base="/x", fs=object()))  # type: ignore[arg-type]
    with caplog.at_level(logging.WARNING, logger="shipyard.predlog"):
        _merge_past_days(writer, written)  # AttributeError: a bug
    [line] = caplog.records
    assert line.levelno == logging.ERROR and line.exc_info is not None


def test_a_folder_is_not_split_between_two_places(tmp_path: Path, seaweed: LogStore) -> None:
    local = tmp_path / "local"
    with PredictionLog(local) as log:
        log.append([record(DAY)])
    with pytest.raises(InvalidInput, match="has Parquet on local disk already"):
        seaweed.log(local).open()
    remote = tmp_path / "remote"
    with seaweed.log(remote) as log:
        log.append([record(DAY)])
    other = f"{seaweed.url}-other"
    with pytest.raises(InvalidInput, match=r"keeps its Parquet at .* not at .*-other"):
        PredictionLog(remote, store_url=other, storage_options=seaweed.options).open()


def test_duckdb_reads_only_the_log_through_fsspec(tmp_path: Path, remote: LogStore) -> None:
    """No httpfs extension (nothing is downloaded), and a query cannot read other objects
    of the store, nor local files."""
    root = tmp_path / "log"
    with remote.log(root) as log:
        log.append([record(DAY)])
    con = read_window(root, "churn").connect()
    try:
        settings = con.execute(
            "SELECT current_setting('autoinstall_known_extensions'), "
            "current_setting('autoload_known_extensions')"
        ).fetchone()
        assert settings == (False, False)
        assert con.execute("SELECT count(*) FROM predictions").fetchone() == (1,)
    finally:
        con.close()
    bucket = str(remote.url).removeprefix("s3://").split("/")[0]
    for path in (f"s3://{bucket}/elsewhere/x.parquet", "/etc/passwd"):
        with pytest.raises(InvalidInput, match="disabled by configuration"):
            query(root, f"SELECT * FROM read_parquet('{path}')", model="churn")
