"""The Parquet side of the prediction log: crash-safe part files, listing, and DuckDB views.

Layout (Hive style, so DuckDB, Spark and pandas read the partition columns from the path)::

    <root>/predictions/model=churn/version=3/date=2026-11-23/part-<segment-id>.parquet
    <root>/feedback/model=churn/date=2026-11-23/part-<segment-id>.parquet

A part file is named after the WAL segment it came from, and one segment gives at most one file
per partition. Compaction writes ``.part-<segment-id>.tmp``, fsyncs it, renames it over the final
name and fsyncs the folder; the segment is deleted only after all of its parts are renamed. A
crash at any point leaves the segment, whose replay rewrites the same names with the same rows:
never a lost record, never a duplicate. Readers skip the parts of segments they read themselves.
The segment's prediction-id index (``ids/date=.../<segment-id>.parquet``, see ``_idindex``) is
written the same way after its parts and before the segment is deleted.
Retention deletes whole ``date=`` folders (``partitions_before`` lists them, the index's too).
"""

from __future__ import annotations

import logging
import os
import re
from datetime import date
from pathlib import Path
from typing import NamedTuple

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

from shipyard.predlog._decode import (
    BASE_FEEDBACK_SCHEMA,
    BASE_PREDICTION_SCHEMA,
    split_by_date,
)
from shipyard.predlog._wal import PREDICTION, PartitionKey, fsync_dir

log = logging.getLogger(__name__)

PREDICTIONS_DIR = "predictions"
FEEDBACK_DIR = "feedback"
#: The prediction-id index (``_idindex``), one ``date=`` folder per day like the parts.
IDS_DIR = "ids"
_PART_PREFIX = "part-"
_TMP_SUFFIX = ".tmp"
_DATE_DIR = re.compile(r"^date=(\d{4}-\d{2}-\d{2})$")


def partition_dir(root: Path, key: PartitionKey, day: str) -> Path:
    """The folder of one (kind, model, version, date) partition."""
    if key.kind == PREDICTION:
        version = "NULL" if key.version is None else str(key.version)  # DuckDB reads NULL
        return root / PREDICTIONS_DIR / f"model={key.model}" / f"version={version}" / f"date={day}"
    return root / FEEDBACK_DIR / f"model={key.model}" / f"date={day}"


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

    def __init__(self, root: Path) -> None:
        self.root = root
        self._schemas: dict[Path, pa.Schema] = {}
        #: The newest day this writer wrote (ISO); the compactor merges past days' id index
        #: when it grows.
        self.newest_day = ""

    def write_segment(self, segment_id: str, key: PartitionKey, table: pa.Table) -> list[Written]:
        """Write one segment's rows durably, one part per date (fsync files, then folders);
        returns the parts written (for the id index, written after them)."""
        touched: set[Path] = set()
        written: list[Written] = []
        for day, rows in split_by_date(table):
            folder = partition_dir(self.root, key, day)
            folder.mkdir(parents=True, exist_ok=True)
            rows = self._conform(folder, rows)
            tmp = folder / f".{_PART_PREFIX}{segment_id}{_TMP_SUFFIX}"
            with open(tmp, "wb") as fh:
                pq.write_table(rows, fh, compression="zstd")
                fh.flush()
                os.fsync(fh.fileno())
            final = folder / f"{_PART_PREFIX}{segment_id}.parquet"
            os.replace(tmp, final)
            touched.add(folder)
            written.append(Written(day, final.relative_to(self.root).as_posix(), rows))
        for folder in touched:
            # The renames must be on disk before the caller deletes the segment.
            fsync_dir(folder)
        return written

    def _conform(self, folder: Path, table: pa.Table) -> pa.Table:
        known = self._schemas.get(folder)
        if known is None:
            parts = sorted(folder.glob(f"{_PART_PREFIX}*.parquet"))
            known = pq.read_schema(parts[-1]) if parts else table.schema
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


def remove_stale_tmp(root: Path, live_segment_ids: set[str]) -> None:
    """Delete temporary parts of compactions that crashed (not those of live segments)."""
    for top in (root / PREDICTIONS_DIR, root / FEEDBACK_DIR):
        for tmp in top.rglob(f".{_PART_PREFIX}*{_TMP_SUFFIX}"):
            segment_id = tmp.name[len(_PART_PREFIX) + 1 : -len(_TMP_SUFFIX)]
            if segment_id not in live_segment_ids:
                tmp.unlink(missing_ok=True)


def list_parts(
    root: Path, kind: str, model: str, skip_segments: set[str], version: int | None = None
) -> list[str]:
    """The part files of one model (of one ``version``, when given), except those of segments
    the caller read from the WAL."""
    top = root / (PREDICTIONS_DIR if kind == PREDICTION else FEEDBACK_DIR) / f"model={model}"
    if version is not None:
        top = top / f"version={int(version)}"
    out = []
    for path in top.rglob(f"{_PART_PREFIX}*.parquet"):
        if path.stem[len(_PART_PREFIX) :] not in skip_segments:
            out.append(str(path))
    return sorted(out)


def parts_of_days(parts: list[str], first: date, last: date) -> list[str]:
    """The part files whose ``date=`` partition is in ``[first, last]`` (and any whose date
    cannot be read)."""
    return [p for p in parts if _in_days(p, first, last)]


def _in_days(path: str, first: date, last: date) -> bool:
    for piece in Path(path).parts:
        if piece.startswith("date="):
            try:
                return first <= date.fromisoformat(piece.removeprefix("date=")) <= last
            except ValueError:
                return True
    return True


def partitions_before(root: Path, day: date) -> list[Path]:
    """The ``date=`` partition folders of predictions and feedback of days before ``day``,
    and the id index folders of those days (listed before their parts: deleted first, an
    index never names a part already gone for a reader that opens it after).

    Only compacted Parquet partitions are listed: the write-ahead segments (``wal/``), which
    hold what is not compacted yet, never are.
    """
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


def connect(root: Path, views: dict[str, View]) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB with one view per name over Parquet parts plus WAL rows.

    Once the views exist the connection may read only ``root`` and its configuration is
    locked, so a query string cannot read other files of the machine.
    """
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
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
    con.execute(f"SET allowed_directories = {_sql_list([str(root.resolve())])}")
    con.execute("SET enable_external_access = false")
    con.execute("SET lock_configuration = true")
    return con
