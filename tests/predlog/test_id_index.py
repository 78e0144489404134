"""The prediction-id index: written by compaction with the parts, merged per past day, read by
``find_prediction`` so that only the one part holding an id is opened."""

from __future__ import annotations

import shutil
import uuid
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from shipyard.errors import InvalidInput
from shipyard.predlog import (
    PredictionLog,
    find_prediction,
    merge_id_index,
    merge_id_indexes,
    partitions_before,
    write_id_index,
)
from trace_support import record, server_id

DAY = datetime(2026, 11, 23, 12, tzinfo=UTC)
MODELS = ("churn", "fraud", "upsell")


def _log_day(root: Path, when: datetime, per_model: int = 5) -> list[str]:
    """Log ``per_model`` predictions of each model at ``when`` (one writer, compacted on
    close); returns their ids."""
    ids = []
    with PredictionLog(root) as log:
        for n, model in enumerate(MODELS):
            rows = [
                record(server_id(when, row), when, model=model, version=n + 1)
                for row in range(per_model)
            ]
            log.append(rows)
            ids.extend(r["prediction_id"] for r in rows)
    return ids


def _ids_files(root: Path, day: date) -> list[str]:
    return sorted(p.name for p in (root / "ids" / f"date={day}").glob("*.parquet"))


def _break_other_parts(root: Path, keep: str) -> int:
    """Overwrite every prediction part but ``keep`` with bytes no reader can parse: a lookup
    that opened one would fail."""
    broken = 0
    for part in root.glob("predictions/**/part-*.parquet"):
        if str(part) != keep:
            part.write_bytes(b"not a parquet file")
            broken += 1
    return broken


def test_compaction_writes_each_segments_index_naming_existing_parts(tmp_path: Path) -> None:
    root = tmp_path / "log"
    ids = _log_day(root, DAY)
    files = list((root / "ids" / "date=2026-11-23").glob("*.parquet"))
    assert files and not list((root / "ids").rglob("*.tmp"))
    index = pa.concat_tables([pq.read_table(f) for f in files])
    assert sorted(index["prediction_id"].to_pylist()) == sorted(ids)
    assert set(index["model"].to_pylist()) == set(MODELS)
    for part in set(index["part"].to_pylist()):
        assert (root / part).is_file(), part
    for f in files:
        column = pq.read_table(f)["prediction_id"].to_pylist()
        assert column == sorted(column)


def test_a_lookup_opens_only_the_part_the_index_names(tmp_path: Path) -> None:
    root = tmp_path / "log"
    ids = _log_day(root, DAY)
    _log_day(root, DAY - timedelta(days=1))
    target = ids[7]
    first = find_prediction(root, target)
    assert first is not None and first["model"] == "fraud" and first["version"] == 2
    assert _break_other_parts(root, first["source"]) > 0
    found = find_prediction(root, target)
    assert found is not None and found["source"] == first["source"]
    assert found["inputs"] == first["inputs"] and found["ts"] == DAY


def test_a_batch_id_is_found_through_the_index_of_every_day(tmp_path: Path) -> None:
    root = tmp_path / "log"
    batch_id = uuid.uuid4().hex
    _log_day(root, DAY)
    with PredictionLog(root) as log:
        log.append([record(batch_id, DAY - timedelta(days=40), model="fraud", version=4)])
    found = find_prediction(root, batch_id)
    assert found is not None
    _break_other_parts(root, found["source"])
    again = find_prediction(root, batch_id)
    assert again is not None and again["version"] == 4 and "date=2026-10-14" in again["source"]


def test_merging_a_day_leaves_one_sorted_file_and_is_idempotent(tmp_path: Path) -> None:
    root = tmp_path / "log"
    ids = _log_day(root, DAY)
    ids += _log_day(root, DAY)  # a second writer: more segment files of the same day
    out = merge_id_index(root, DAY.date())
    assert out is not None and _ids_files(root, DAY.date()) == [Path(out).name]
    assert Path(out).name.startswith("merged-")
    table = pq.read_table(out)
    assert table["prediction_id"].to_pylist() == sorted(ids)
    assert merge_id_index(root, DAY.date()) is None  # nothing left to do
    assert _ids_files(root, DAY.date()) == [Path(out).name]
    found = find_prediction(root, ids[-1])
    assert found is not None and found["model"] == "upsell"


def test_a_crash_between_the_merges_rename_and_its_deletes_gives_one_answer(
    tmp_path: Path,
) -> None:
    root = tmp_path / "log"
    ids = _log_day(root, DAY)
    folder = root / "ids" / "date=2026-11-23"
    saved = tmp_path / "saved"
    shutil.copytree(folder, saved)
    merge_id_index(root, DAY.date())
    for f in saved.glob("*.parquet"):  # the inputs the crashed merge did not delete
        shutil.copy(f, folder / f.name)
    assert len(_ids_files(root, DAY.date())) > 1
    found = find_prediction(root, ids[3])
    assert found is not None and found["prediction_id"] == ids[3]
    out = merge_id_index(root, DAY.date())
    assert out is not None and _ids_files(root, DAY.date()) == [Path(out).name]
    assert pq.read_table(out).num_rows == len(ids)


def test_the_compactor_merges_past_days_when_it_compacts_a_later_one(tmp_path: Path) -> None:
    root = tmp_path / "log"
    _log_day(root, DAY)
    _log_day(root, DAY)
    _log_day(root, DAY + timedelta(days=1))  # a new writer: its first segment merges
    names = _ids_files(root, DAY.date())
    assert len(names) == 1 and names[0].startswith("merged-")
    assert merge_id_indexes(root, date(2026, 11, 23)) == []  # nothing before that day


def test_retention_deletes_a_days_index_with_its_partitions(tmp_path: Path) -> None:
    root = tmp_path / "log"
    old = _log_day(root, DAY - timedelta(days=3))
    kept = _log_day(root, DAY)
    expired = partitions_before(root, DAY.date())
    assert root / "ids" / "date=2026-11-20" in expired
    for folder in expired:
        shutil.rmtree(folder)
    assert not (root / "ids" / "date=2026-11-20").exists()
    assert find_prediction(root, old[0]) is None
    assert find_prediction(root, kept[0]) is not None


def test_a_log_written_before_the_index_is_read_and_can_be_indexed(tmp_path: Path) -> None:
    root = tmp_path / "log"
    ids = _log_day(root, DAY)
    shutil.rmtree(root / "ids")  # as every log written before this change
    found = find_prediction(root, ids[11])
    assert found is not None and found["model"] == "upsell"
    out = merge_id_index(root, DAY.date())  # indexes the day from its parts
    assert out is not None and pq.read_table(out).num_rows == len(ids)
    _break_other_parts(root, found["source"])
    again = find_prediction(root, ids[11])
    assert again is not None and again["source"] == found["source"]


def test_parts_written_before_the_upgrade_on_an_indexed_day_are_found(
    tmp_path: Path,
) -> None:
    root = tmp_path / "log"
    before = _log_day(root, DAY)
    shutil.rmtree(root / "ids")
    after = _log_day(root, DAY)  # the upgrade: the day's index covers only these
    assert find_prediction(root, before[0]) is not None
    assert find_prediction(root, after[0]) is not None


def test_unknown_ids_are_none(tmp_path: Path) -> None:
    root = tmp_path / "log"
    _log_day(root, DAY)
    merge_id_index(root, DAY.date())
    assert find_prediction(root, server_id(DAY)) is None
    assert find_prediction(root, uuid.uuid4().hex) is None
    assert find_prediction(tmp_path / "empty", server_id(DAY)) is None


def test_a_writer_of_its_own_parts_writes_the_days_index(tmp_path: Path) -> None:
    root = tmp_path / "log"
    day = DAY.date()
    folder = root / "predictions" / "model=churn" / "version=7" / f"date={day}"
    folder.mkdir(parents=True)
    pid = server_id(DAY)
    rows = pa.table(
        {
            "prediction_id": [pid, server_id(DAY, 1)],
            "ts": pa.array([DAY, DAY], pa.timestamp("us", tz="UTC")),
            "status": ["ok", "ok"],
            "in__age": [41, 42],
            "prediction": ["churn", "stay"],
        }
    )
    pq.write_table(rows, folder / "part-0001.parquet")
    part = f"predictions/model=churn/version=7/date={day}/part-0001.parquet"
    index = pa.table(
        {
            "prediction_id": rows["prediction_id"],
            "model": ["churn", "churn"],
            "version": [7, 7],
            "part": [part, part],
        }
    )
    out = write_id_index(root, day, index)
    assert Path(out).name.startswith("merged-")
    found = find_prediction(root, pid)
    assert found is not None and found["version"] == 7 and found["inputs"] == {"age": 41}
    with pytest.raises(InvalidInput, match="missing \\['part'\\]"):
        write_id_index(root, day, index.drop_columns(["part"]))


def test_a_batch_id_of_a_day_without_an_index_is_found_in_its_parts(tmp_path: Path) -> None:
    root = tmp_path / "log"
    batch_id = uuid.uuid4().hex
    with PredictionLog(root) as log:
        log.append([record(batch_id, DAY - timedelta(days=40), model="fraud", version=4)])
    shutil.rmtree(root / "ids")  # written before the index existed
    _log_day(root, DAY)  # later days have one
    assert not (root / "ids" / "date=2026-10-14").exists()
    found = find_prediction(root, batch_id)
    assert found is not None and found["version"] == 4
