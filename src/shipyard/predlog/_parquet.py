"""The Parquet side of the prediction log: crash-safe part files, listing, and DuckDB views.

Layout (Hive style, so DuckDB, Spark and pandas read the partition columns from the path)::

    <root>/predictions/model=churn/version=3/date=2026-11-23/part-<segment-id>.parquet
    <root>/feedback/model=churn/date=2026-11-23/part-<segment-id>.parquet

``<root>`` is the log folder, or the object store URL it was opened with (``_location``).

A part file is named after the WAL segment it came from, and one segment gives at most one file
per partition: the name is deterministic, so writing it again writes the same object. On disk,
compaction writes ``.part-<segment-id>.tmp``, fsyncs it, renames it over the final name and
fsyncs the folder. On an object store, where rename is a copy and a delete (not atomic), it
writes the final name with one ``PUT`` (an object is visible whole or not at all) and reads
its size back (``Location.confirm``). Either way the segment is deleted only after all of its
parts, and its index, are confirmed. A failure at any point (a crash, the object store gone
mid-write) leaves the segment, whose retry or replay rewrites the same names with the same
rows: never a lost record, never a duplicate. Readers skip the parts of segments they read
themselves.
The segment's prediction-id index (``ids/date=.../<segment-id>.parquet``, see ``_idindex``) is
written the same way after its parts and before the segment is deleted.
Retention deletes whole ``date=`` folders (``expired_partitions`` lists them, the index's too).
"""

from __future__ import annotations

import logging
import os
import re
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any, NamedTuple

import duckdb
import pyarrow as pa

from shipyard.predlog._decode import (
    BASE_FEEDBACK_SCHEMA,
    BASE_PREDICTION_SCHEMA,
    split_by_date,
)
from shipyard.predlog._location import Location, as_location
from shipyard.predlog._wal import PREDICTION, PartitionKey

log = logging.getLogger(__name__)

PREDICTIONS_DIR = "predictions"
FEEDBACK_DIR = "feedback"
#: The prediction-id index (``_idindex``), one ``date=`` folder per day like the parts.
IDS_DIR = "ids"
_PART_PREFIX = "part-"
_TMP_SUFFIX = ".tmp"
_DATE_DIR = re.compile(r"^date=(\d{4}-\d{2}-\d{2})$")


def partition_dir(loc: Location, key: PartitionKey, day: str) -> str:
    """The folder of one (kind, model, version, date) partition."""
    if key.kind == PREDICTION:
        version = "NULL" if key.version is None else str(key.version)  # DuckDB reads NULL
        return loc.path(PREDICTIONS_DIR, f"model={key.model}", f"version={version}", f"date={day}")
    return loc.path(FEEDBACK_DIR, f"model={key.model}", f"date={day}")


class Written(NamedTuple):
    """One part file a segment's compaction wrote: its day, path (relative to the log's
    root, with ``/``) and rows."""

    day: str
    part: str
    rows: pa.Table


class PartWriter:
    """Writes one segment's tables as part files, unifying each partition's schema.

    A partition keeps one schema: when new rows bring a column (a new feature, a new class)
    the part is written with the union of the old and new columns, so the newest part of a
    partition always carries its full schema and older parts are read with ``union_by_name``.
    """

    def __init__(self, loc: Location) -> None:
        self.loc = loc
        self._schemas: dict[str, pa.Schema] = {}
        #: The newest day this writer wrote (ISO); the compactor merges past days' id index
        #: when it grows.
        self.newest_day = ""

    def write_segment(self, segment_id: str, key: PartitionKey, table: pa.Table) -> list[Written]:
        """Write one segment's rows durably, one part per date (on disk: fsync files, then
        folders; on an object store: each part confirmed); returns the parts written (for
        the id index, written after them)."""
        touched: set[str] = set()
        written: list[Written] = []
        for day, rows in split_by_date(table):
            folder = partition_dir(self.loc, key, day)
            rows = self._conform(folder, rows)
            final = self.loc.write_parquet(
                rows, folder, f"{_PART_PREFIX}{segment_id}.parquet", compression="zstd"
            )
            touched.add(folder)
            written.append(Written(day, self.loc.relative(final), rows))
        # The renames must be on disk before the caller deletes the segment.
        self.loc.sync_folders(touched)
        return written

    def _conform(self, folder: str, table: pa.Table) -> pa.Table:
        known = self._schemas.get(folder)
        if known is None:
            parts = sorted(
                n
                for n in self.loc.listdir(folder)
                if n.startswith(_PART_PREFIX) and n.endswith(".parquet")
            )
            known = self.loc.read_schema(f"{folder}/{parts[-1]}") if parts else table.schema
        try:
            schema = pa.unify_schemas([known, table.schema], promote_options="permissive")
            table = _cast_to(table, schema)
        except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError) as exc:
            # Incompatible types (a feature changed from number to text within one model
            # version): keep this part's own types; readers reconcile by name.
            log.warning("prediction log: schema of %s not unified: %s", folder, exc)
            schema = table.schema
        self._schemas[folder] = schema
        return table


def _cast_to(table: pa.Table, schema: pa.Schema) -> pa.Table:
    columns = [
        table[f.name].cast(f.type) if f.name in table.column_names else pa.nulls(len(table), f.type)
        for f in schema
    ]
    return pa.Table.from_arrays(columns, schema=schema)


def remove_stale_tmp(loc: Location, live_segment_ids: set[str]) -> None:
    """Delete temporary parts of compactions that crashed (not those of live segments).
    An object store has none: its parts are written under their final names."""
    if loc.remote:
        return
    root = Path(loc.base)
    for top in (root / PREDICTIONS_DIR, root / FEEDBACK_DIR):
        for tmp in top.rglob(f".{_PART_PREFIX}*{_TMP_SUFFIX}"):
            segment_id = tmp.name[len(_PART_PREFIX) + 1 : -len(_TMP_SUFFIX)]
            if segment_id not in live_segment_ids:
                tmp.unlink(missing_ok=True)


def list_parts(
    loc: Location, kind: str, model: str, skip_segments: set[str], version: int | None = None
) -> list[str]:
    """The part files of one model (of one ``version``, when given), except those of segments
    the caller read from the WAL: paths as DuckDB opens them (URIs on an object store)."""
    parts = [PREDICTIONS_DIR if kind == PREDICTION else FEEDBACK_DIR, f"model={model}"]
    if version is not None:
        parts.append(f"version={int(version)}")
    out = []
    for path in loc.find(loc.path(*parts)):
        name = path.rsplit("/", 1)[-1]
        if not (name.startswith(_PART_PREFIX) and name.endswith(".parquet")):
            continue
        if name[len(_PART_PREFIX) : -len(".parquet")] not in skip_segments:
            out.append(loc.uri(path))
    return sorted(out)


def parts_of_days(parts: list[str], first: date, last: date) -> list[str]:
    """The part files whose ``date=`` partition is in ``[first, last]`` (and any whose date
    cannot be read)."""
    return [p for p in parts if _in_days(p, first, last)]


def _in_days(path: str, first: date, last: date) -> bool:
    for piece in path.split("/"):
        if piece.startswith("date="):
            try:
                return first <= date.fromisoformat(piece.removeprefix("date=")) <= last
            except ValueError:
                return True
    return True


@dataclass(frozen=True)
class Partition:
    """One ``date=`` folder of the log's Parquet: its path relative to the Parquet root
    (``predictions/model=churn/version=3/date=2026-11-23``), files and bytes."""

    path: str
    day: date
    files: int
    bytes: int


def expired_partitions(
    root: str | Path | Location, day: date, *, storage_options: dict[str, Any] | None = None
) -> list[Partition]:
    """The ``date=`` partitions of predictions, feedback and the id index of days before
    ``day``, the index's first (deleted first: an index never names a part already gone for
    a reader that opens it after). Only compacted Parquet: never the WAL.

    One listing of each tree, on disk or on an object store (where folders are key
    prefixes: a partition is found from its files).

    >>> [p.path for p in expired_partitions(root, date(2026, 11, 23))]  # doctest: +SKIP
    ['ids/date=2026-11-22', 'predictions/model=churn/version=3/date=2026-11-22']
    """
    loc = as_location(root, storage_options)
    found: dict[str, list[int]] = {}
    days: dict[str, date] = {}
    for top in (IDS_DIR, PREDICTIONS_DIR, FEEDBACK_DIR):
        for path, size in sorted(loc.sizes(loc.path(top)).items()):
            relative = loc.relative(path)
            pieces = relative.split("/")
            for i, piece in enumerate(pieces[:-1]):
                match = _DATE_DIR.match(piece)
                if match is None:
                    continue
                when = date.fromisoformat(match.group(1))
                if when < day:
                    folder = "/".join(pieces[: i + 1])
                    days[folder] = when
                    totals = found.setdefault(folder, [0, 0])
                    totals[0] += 1
                    totals[1] += size
                break
    order = {IDS_DIR: 0, PREDICTIONS_DIR: 1, FEEDBACK_DIR: 2}
    return [
        Partition(folder, days[folder], files, size)
        for folder, (files, size) in sorted(
            found.items(), key=lambda item: (order[item[0].split("/")[0]], item[0])
        )
    ]


def delete_partition(
    root: str | Path | Location,
    partition: Partition,
    *,
    storage_options: dict[str, Any] | None = None,
) -> None:
    """Delete one partition (``expired_partitions``) and everything in it."""
    loc = as_location(root, storage_options)
    path = loc.path(partition.path)
    if loc.remote or os.path.isdir(path):
        loc.remove_tree(path)


def partitions_before(root: str | Path, day: date) -> list[Path]:
    """The ``date=`` partition folders of predictions and feedback of days before ``day``,
    and the id index folders of those days, of a log whose Parquet is on local disk (see
    ``expired_partitions`` for any log).

    Only compacted Parquet partitions are listed: the write-ahead segments (``wal/``), which
    hold what is not compacted yet, never are.
    """
    root = Path(root).expanduser().resolve()
    found = []
    for top in (root / PREDICTIONS_DIR, root / FEEDBACK_DIR, root / IDS_DIR):
        if not top.is_dir():
            continue
        for folder in top.rglob("date=*"):
            match = _DATE_DIR.match(folder.name)
            if folder.is_dir() and match and date.fromisoformat(match.group(1)) < day:
                found.append(folder)
    return sorted(found)


def _sql_list(paths: list[str]) -> str:
    return "[" + ", ".join("'" + p.replace("'", "''") + "'" for p in paths) + "]"


def _hive_types(kind: str) -> str:
    if kind == PREDICTION:
        return "{'model': VARCHAR, 'version': BIGINT, 'date': DATE}"
    return "{'model': VARCHAR, 'date': DATE}"


def _empty(kind: str) -> pa.Table:
    base = BASE_PREDICTION_SCHEMA if kind == PREDICTION else BASE_FEEDBACK_SCHEMA
    extra = [("model", pa.string())]
    if kind == PREDICTION:
        extra.append(("version", pa.int64()))
    extra.append(("date", pa.date32()))
    schema = pa.schema([*base, *extra])
    return schema.empty_table()


class View(NamedTuple):
    """One DuckDB view: its kind of record, Parquet part files, WAL rows and row filter."""

    kind: str
    parts: list[str]
    wal: pa.Table | None
    where: str | None = None


def connect(loc: Location, views: dict[str, View]) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB with one view per name over Parquet parts plus WAL rows.

    Once the views exist the connection may read only the log's Parquet root and its
    configuration is locked, so a query string cannot read other files of the machine.
    An object store is read through its fsspec filesystem (``register_filesystem``), never
    an extension DuckDB would download.
    """
    con = new_connection(loc)
    for name, (kind, parts, wal, where) in views.items():
        selects = [f"SELECT * FROM _{name}_empty"]
        con.register(f"_{name}_empty", _empty(kind))
        if parts:
            selects.append(
                f"SELECT * FROM read_parquet({_sql_list(parts)}, hive_partitioning = true, "
                f"union_by_name = true, hive_types = {_hive_types(kind)})"
            )
        if wal is not None:
            con.register(f"_{name}_wal", wal)
            selects.append(f"SELECT * FROM _{name}_wal")
        rows = " UNION ALL BY NAME ".join(selects)
        if where is not None:
            rows = f"SELECT * FROM ({rows}) WHERE {where}"
        con.execute(f"CREATE VIEW {name} AS {rows}")
    allowed = loc.uri(loc.base) if loc.remote else str(Path(loc.base).resolve())
    con.execute(f"SET allowed_directories = {_sql_list([allowed.rstrip('/') + '/'])}")
    con.execute("SET enable_external_access = false")
    con.execute("SET lock_configuration = true")
    return con


def new_connection(loc: Location) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB in UTC that reads the log's Parquet root: on an object store
    through its fsspec filesystem (extensions never auto-installed: no network)."""
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    if loc.fs is not None:
        con.execute("SET autoinstall_known_extensions = false")
        con.execute("SET autoload_known_extensions = false")
        con.register_filesystem(loc.fs)
    return con
