"""The prediction-id index: which part file holds a prediction, without opening every part.

Ids carry no model and every model writes parts at the same time, so without it one day's
lookup opens a part per model. Layout::

    <root>/ids/date=2026-11-23/<segment-id>.parquet     one per compacted segment and day
    <root>/ids/date=2026-11-23/merged-<n>.parquet       the day's merged index (past days)

Every file has the columns ``prediction_id``, ``model``, ``version`` and ``part`` (the part's
path relative to ``root``, with ``/``), sorted by ``prediction_id`` (row groups of
``ROW_GROUP`` rows, so a lookup reads the one row group whose min/max can hold the id).

Exactly once, as the parts (see ``_parquet``): compaction writes a segment's index after its
parts are renamed and their folders fsynced (on an object store: written and confirmed), and
before it deletes the segment, the same way (on disk ``.<segment-id>.tmp``, fsync, rename
over the final name, fsync the folder; on an object store one ``PUT`` of the final name,
confirmed). A crash (or an object store gone) before that leaves the segment, whose replay
rewrites the same parts and the same index file; after it, the same again. So an index row
never names a part that is not there, and a replay never adds a second file for a segment.

``merge_id_index`` turns a day's files into one ``merged-<n>`` file: it reads them (and the
id column of any part of the day no index file names, a log written before the index
existed), writes the rows de-duplicated and sorted to ``.merged-<n>.tmp``, renames it, then
deletes its inputs. On disk a ``flock`` keeps a second merge of the day out; an object store
has no lock, and needs none: a merge deletes only the files it read, after its own output
(which holds their rows) is written, so two merges at once leave two merged files with the
same rows at worst. A crash between the rename and the deletes, or a segment replayed after
the merge read it, leaves rows twice, each naming the same part: readers de-duplicate, and the
next merge does too. A day with a merged file is *complete* (every part of it is indexed, as
long as no process of an older version writes it); a day with only segment files may hold
parts written before the index existed, so a lookup that misses there reads that day's parts.

This module uses only pyarrow: the compactor process imports it and never loads DuckDB.
"""

from __future__ import annotations

import fcntl
import logging
import os
import re
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import date
from pathlib import Path
from typing import Any, NamedTuple

import pyarrow as pa
import pyarrow.compute as pc

from shipyard.errors import InvalidInput
from shipyard.predlog._location import Location, as_location
from shipyard.predlog._parquet import IDS_DIR, PREDICTIONS_DIR

log = logging.getLogger(__name__)

MERGED_PREFIX = "merged-"
#: Rows per row group of a merged file: small enough that min/max statistics prune a day's
#: index to one group, large enough to keep the footer small.
ROW_GROUP = 65_536
SCHEMA = pa.schema(
    [
        ("prediction_id", pa.string()),
        ("model", pa.string()),
        ("version", pa.int64()),
        ("part", pa.string()),
    ]
)
_TMP_SUFFIX = ".tmp"
_LOCK = ".merge.lock"
_DATE_DIR = re.compile(r"^date=(\d{4}-\d{2}-\d{2})$")


def index_dir(loc: Location, day: date | str) -> str:
    """The index folder of one UTC day."""
    text = day if isinstance(day, str) else day.isoformat()
    return loc.path(IDS_DIR, f"date={text}")


def index_files(loc: Location, folder: str) -> tuple[list[str], list[str]]:
    """(merged files, segment files) of one day's index folder; empty when it has none."""
    merged: list[str] = []
    segments: list[str] = []
    for name in loc.listdir(folder):
        if name.startswith(".") or not name.endswith(".parquet"):
            continue
        (merged if name.startswith(MERGED_PREFIX) else segments).append(f"{folder}/{name}")
    return sorted(merged), sorted(segments)


def index_days(loc: Location) -> list[date]:
    """The days that have an index folder, oldest first."""
    out = []
    for name in loc.listdir(loc.path(IDS_DIR)):
        match = _DATE_DIR.match(name)
        if match:
            out.append(date.fromisoformat(match.group(1)))
    return sorted(out)


class Hit(NamedTuple):
    """Where the index says a prediction is: its part (relative to the log's root), model
    and version."""

    part: str
    model: str
    version: int | None


def find_in_index(loc: Location, files: list[str], prediction_id: str) -> list[Hit]:
    """What ``files`` (index files) say about ``prediction_id``, each place once. Reads only
    the row groups whose min/max statistics can hold it (one per sorted file). Raises
    ``FileNotFoundError`` when a file was merged away since it was listed."""
    found: set[Hit] = set()
    for path in files:
        parquet = loc.parquet_file(path)
        meta = parquet.metadata
        for group in range(meta.num_row_groups):
            stats = meta.row_group(group).column(0).statistics
            pruned = stats is not None and stats.has_min_max
            if pruned and not stats.min <= prediction_id <= stats.max:
                continue
            rows = parquet.read_row_group(group)
            rows = rows.filter(pc.equal(rows["prediction_id"], prediction_id))
            for row in rows.select(["part", "model", "version"]).to_pylist():
                found.add(Hit(row["part"], row["model"], row["version"]))
    return sorted(found, key=lambda hit: hit.part)


def write_segment_index(loc: Location, segment_id: str, rows: Iterable[pa.Table]) -> None:
    """Write the index of one compacted segment, one file per day (``SCHEMA`` tables with a
    ``day`` column of ISO dates). Call only once the parts they name are confirmed."""
    by_day: dict[str, list[pa.Table]] = {}
    for table in rows:
        by_day.setdefault(str(table["day"][0].as_py()), []).append(table.drop_columns(["day"]))
    for day, tables in by_day.items():
        table = pa.concat_tables(tables).sort_by("prediction_id")
        _write_atomic(loc, table, index_dir(loc, day), f"{segment_id}.parquet")


def segment_index_rows(
    day: str, model: str, version: int | None, part: str, ids: pa.ChunkedArray
) -> pa.Table:
    """The index rows of one part (``write_segment_index`` input)."""
    n = len(ids)
    return pa.table(
        {
            "prediction_id": ids.cast(pa.string()),
            "model": pa.array([model] * n, pa.string()),
            "version": pa.array([version] * n, pa.int64()),
            "part": pa.array([part] * n, pa.string()),
            "day": pa.array([day] * n, pa.string()),
        }
    )


def write_id_index(
    root: str | Path | Location,
    day: date,
    table: pa.Table,
    *,
    storage_options: dict[str, Any] | None = None,
) -> str:
    """Write ``table`` as a merged index file of ``day``; for tools that write part files
    themselves (a bench seeder, an import) instead of through ``PredictionLog``.

    ``root`` is the log folder (or its object store URL). ``table`` has the columns
    ``prediction_id``, ``model``, ``version`` and ``part`` (the part's path relative to the
    Parquet root, e.g.
    ``predictions/model=churn/version=3/date=2026-11-23/part-0001.parquet``): one row per
    prediction of ``day``, every part of that day covered (a lookup that misses a day with a
    merged file does not read its parts). The file is sorted and written atomically; a
    later ``merge_id_index`` folds it in with the day's other files. Returns its path.

    >>> write_id_index(root, date(2026, 11, 23), pa.table({"prediction_id": ["18f3..."],
    ...     "model": ["churn"], "version": [3], "part": ["predictions/model=churn/..."]}))
    ...                                                                 # doctest: +SKIP
    """
    loc = as_location(root, storage_options)
    missing = [name for name in SCHEMA.names if name not in table.column_names]
    if missing:
        raise InvalidInput(
            f"An id index table has the columns {SCHEMA.names}. Got {table.column_names} "
            f"instead (missing {missing})."
        )
    table = _conform(table.select(SCHEMA.names))
    return _write_atomic(loc, _sorted_unique(table), index_dir(loc, day), _merged_name())


def merge_id_index(
    root: str | Path | Location, day: date, *, storage_options: dict[str, Any] | None = None
) -> str | None:
    """Merge ``day``'s index files (and index its parts no file names) into one sorted
    ``merged-<n>.parquet``; returns its path, or None when there was nothing to do (already
    one merged file and nothing else, no index and no parts, or another merge of it
    running on this machine).

    Idempotent and safe while lookups read (see the module docstring). For past days: today's
    segments are still being written.
    """
    loc = as_location(root, storage_options)
    folder = index_dir(loc, day)
    merged, segments = index_files(loc, folder)
    unindexed_check = not merged  # once merged, every part of the day is indexed
    if len(merged) == 1 and not segments:
        return None
    if not merged and not segments and not _day_parts(loc, day):
        return None
    with _merge_lock(loc, folder) as locked:
        if not locked:
            return None  # another process merges it now
        merged, segments = index_files(loc, folder)  # again, under the lock
        inputs = merged + segments
        tables = [t for t in (_read(loc, p) for p in inputs) if t is not None]
        if unindexed_check:
            named = {p for t in tables for p in t["part"].unique().to_pylist()}
            tables.extend(_index_parts(loc, day, named))
        table = pa.concat_tables(tables) if tables else SCHEMA.empty_table()
        out = _write_atomic(loc, _sorted_unique(table), folder, _merged_name())
        for path in inputs:
            loc.remove(path)
        if inputs:
            loc.sync_folders({folder})
        return out


@contextmanager
def _merge_lock(loc: Location, folder: str) -> Iterator[bool]:
    """On disk: the day's ``flock`` (False when another process holds it), and a crashed
    merge's temporary file removed. An object store needs no lock (module docstring)."""
    if loc.remote:
        yield True
        return
    os.makedirs(folder, exist_ok=True)
    lock = os.open(f"{folder}/{_LOCK}", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    try:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        for stale in Path(folder).glob(f".{MERGED_PREFIX}*{_TMP_SUFFIX}"):
            stale.unlink(missing_ok=True)  # a merge that crashed (we hold the lock)
        yield True
    finally:
        os.close(lock)


def merge_id_indexes(
    root: str | Path | Location, before: date, *, storage_options: dict[str, Any] | None = None
) -> list[date]:
    """``merge_id_index`` every day before ``before`` whose index is not one merged file
    yet; returns the days merged. Days with parts but no index (a log written before the
    index existed) are not indexed here: ``merge_id_index`` a day to index it."""
    loc = as_location(root, storage_options)
    done = []
    for day in index_days(loc):
        if day >= before:
            continue
        merged, segments = index_files(loc, index_dir(loc, day))
        if (len(merged) > 1 or segments) and merge_id_index(loc, day) is not None:
            done.append(day)
    return done


def remove_stale_index_tmp(loc: Location, live_segment_ids: set[str]) -> None:
    """Delete temporary index files of compactions that crashed (not those of live segments).
    An object store has none."""
    top = Path(loc.base) / IDS_DIR
    if loc.remote or not top.is_dir():
        return
    for tmp in top.glob(f"date=*/.*{_TMP_SUFFIX}"):
        name = tmp.name[1 : -len(_TMP_SUFFIX)]
        if not name.startswith(MERGED_PREFIX) and name not in live_segment_ids:
            tmp.unlink(missing_ok=True)


def _write_atomic(loc: Location, table: pa.Table, folder: str, name: str) -> str:
    final = loc.write_parquet(
        table,
        folder,
        name,
        compression="zstd",
        row_group_size=ROW_GROUP,
        write_statistics=True,
    )
    loc.sync_folders({folder})
    return final


def _merged_name() -> str:
    # Unique (two merges of a day, a seeder's files): clock first, so names sort by age.
    return f"{MERGED_PREFIX}{time.time_ns():016x}-{os.getpid():x}.parquet"


def _conform(table: pa.Table) -> pa.Table:
    return pa.Table.from_arrays(
        [table[f.name].cast(f.type) for f in SCHEMA], schema=SCHEMA
    ).combine_chunks()


def _sorted_unique(table: pa.Table) -> pa.Table:
    unique = table.group_by(SCHEMA.names, use_threads=False).aggregate([])
    return _conform(unique).sort_by([("prediction_id", "ascending"), ("part", "ascending")])


def _read(loc: Location, path: str) -> pa.Table | None:
    try:
        return _conform(loc.read_table(path))
    except FileNotFoundError:  # merged and deleted by another process meanwhile
        return None


def _day_parts(loc: Location, day: date) -> list[str]:
    """The prediction part files of ``day``, of every model and version."""
    wanted = f"date={day.isoformat()}"
    out: list[str] = []
    for model in loc.subdirs(loc.path(PREDICTIONS_DIR), "model="):
        for version in loc.subdirs(model, "version="):
            folder = f"{version}/{wanted}"
            out.extend(
                f"{folder}/{n}"
                for n in loc.listdir(folder)
                if n.startswith("part-") and n.endswith(".parquet")
            )
    return sorted(out)


def _index_parts(loc: Location, day: date, named: set[str]) -> list[pa.Table]:
    """Index rows of the parts of ``day`` that no index file names."""
    out = []
    for path in _day_parts(loc, day):
        relative = loc.relative(path)
        if relative in named:
            continue
        try:
            ids = loc.read_table(path, columns=["prediction_id"])["prediction_id"]
        except FileNotFoundError:
            continue
        pieces = relative.split("/")
        model = pieces[-4].removeprefix("model=")
        version_text = pieces[-3].removeprefix("version=")
        version = None if version_text == "NULL" else int(version_text)
        rows = segment_index_rows(day.isoformat(), model, version, relative, ids)
        out.append(_conform(rows.drop_columns(["day"])))
    if out:
        log.info("prediction log: indexed %d part(s) of %s written without an index", len(out), day)
    return out
