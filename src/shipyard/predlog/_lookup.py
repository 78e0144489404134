"""Finding one logged prediction by its id, across every model, without reading the whole log.

Where to look depends on the id:

- a server's ids (``shipyard.serving``: 26 hex digits) start with the millisecond clock of the
  request (11 hex digits), so only the ``date=`` partitions of that UTC day, of the day before
  and of the day after (a clock at a day's edge, a record's ``ts`` taken a moment later) are
  read, of every model and version;
- any other id (a batch's ``uuid4().hex``, a rejection's UUID, an id chosen by code calling
  ``PredictionLog.append``) carries no time: every partition is read.

The WAL (records not compacted yet) is read first, then the id index (``_idindex``:
``ids/date=D/`` files of prediction id, model, version and part, sorted by id) of those days,
scanned by DuckDB with a ``WHERE`` on the id so Parquet's row-group min/max statistics skip
what cannot hold it; only the one part it names is then opened. A segment compacted
meanwhile is never missed: its index is written before its WAL segment is deleted.

Days without a complete index (a log written before the index existed; today's segment
files may not cover parts written before the upgrade) fall back to the parts themselves:
their ``prediction_id`` columns are scanned the same way, the parts of segments created near
a server id's clock first (their file names start with the segment's creation time), and
only the file that holds it is read whole (about 1.5 s for a day of 1,000 models).

On an object store (``_location``) the same reads happen through its fsspec filesystem:
listings are one request per folder, and a part is fetched whole once the index names it.

>>> find_prediction(root, "18f3a2b4c5d6e7f8091a2b00000")          # doctest: +SKIP
{'prediction_id': '18f3...', 'model': 'churn', 'version': 3, 'inputs': {...}, ...}
"""

from __future__ import annotations

import contextlib
import os
import re
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.compute as pc

from shipyard.errors import InvalidInput
from shipyard.predlog._decode import add_partition_columns, decode_segment
from shipyard.predlog._idindex import Hit, find_in_index, index_days, index_dir, index_files
from shipyard.predlog._location import Location, as_location
from shipyard.predlog._parquet import (
    FEEDBACK_DIR,
    IDS_DIR,
    PREDICTIONS_DIR,
    _hive_types,
    _sql_list,
    new_connection,
)
from shipyard.predlog._wal import FEEDBACK, PREDICTION, list_segments, parse_segment_name

#: What an id may look like: hex digits and dashes (server, batch and UUID ids), at most 64.
_ID = re.compile(r"^[0-9a-fA-F-]{1,64}$")
#: A server id: 11 hex digits of milliseconds, 10 random, 5 of the row number.
_SERVER_ID = re.compile(r"^[0-9a-f]{26}$")
#: Clock values a server id can plausibly start with (2001 to 2100).
_EARLIEST_MS, _LATEST_MS = 978_307_200_000, 4_102_444_800_000
#: Segments created this long before / after an id's clock are read first (see _written_near).
_NEAR_BEFORE_MS, _NEAR_AFTER_MS = 3_600_000, 60_000
_PART_PREFIX = "part-"
#: Listings of the id index tried when a merge deletes a listed file before it is read.
_INDEX_ATTEMPTS = 3


def check_prediction_id(prediction_id: str) -> str:
    """``prediction_id`` if it can be an id of the log; else ``InvalidInput`` saying why.

    >>> check_prediction_id("18f3a2b4c5d6e7f8091a2b0000")
    '18f3a2b4c5d6e7f8091a2b0000'
    """
    if not isinstance(prediction_id, str) or not _ID.match(prediction_id):
        shown = repr(prediction_id)[:80]
        raise InvalidInput(
            f"A prediction id is 1 to 64 hex digits (dashes allowed), as the server returns "
            f"in 'prediction_id'. Got {shown} instead."
        )
    return prediction_id


def id_day(prediction_id: str) -> date | None:
    """The UTC day a server's id was made on, or ``None`` when the id carries no time.

    >>> id_day("19b0c6b4d00" + "0" * 15)
    datetime.date(2025, 12, 11)
    """
    if not _SERVER_ID.match(prediction_id):
        return None
    ms = int(prediction_id[:11], 16)
    if not _EARLIEST_MS <= ms < _LATEST_MS:
        return None
    return datetime.fromtimestamp(ms / 1000, UTC).date()


def find_prediction(
    root: str | Path | Location,
    prediction_id: str,
    *,
    storage_options: dict[str, Any] | None = None,
) -> dict[str, Any] | None:
    """The logged record of ``prediction_id`` under the log folder ``root`` (or the object
    store URL of its Parquet), or ``None``.

    The record: ``prediction_id``, ``ts`` (aware datetime), ``model``, ``version``, ``arm``,
    ``status``, ``reason``, ``latency_ms``, ``inputs`` (name -> value), ``prediction``,
    ``proba`` (class -> probability, empty when none), ``labels`` (``[{"label", "ts"}]``,
    every ground truth recorded for it, oldest first) and ``source`` (``"wal"`` or the Parquet
    file it was found in). Raises ``InvalidInput`` for an id that cannot be one.
    """
    check_prediction_id(prediction_id)
    loc = as_location(root, storage_options)
    day = id_day(prediction_id)
    found = _from_wal(loc, PREDICTION, prediction_id)
    source = "wal"
    if found is None:
        located = _from_parts(loc, day, prediction_id)
        if located is None:
            return None
        found, source = located
    record = _record(found)
    record["source"] = source
    record["labels"] = _labels(loc, record["model"], prediction_id, record["ts"])
    return record


def _from_parts(loc: Location, day: date | None, prediction_id: str) -> tuple[pa.Table, str] | None:
    """The id index first (``_idindex``), then the parts of the days it does not cover."""
    days = None if day is None else [day + timedelta(days=d) for d in (-1, 0, 1)]
    located, complete = _from_index(loc, days, prediction_id)
    if located is not None:
        return located
    # Only the days the index does not cover completely (unknown ids, logs written before
    # it): a complete day's miss is final, and listing its parts walks every model.
    if days is None and not loc.listdir(loc.path(IDS_DIR)):
        parts = _prediction_parts(loc, None)  # no index at all: every part
    else:
        candidates = days if days is not None else _part_days(loc)
        uncovered = [d for d in candidates if d.isoformat() not in complete]
        parts = _prediction_parts(loc, uncovered) if uncovered else []
    near = _written_near(parts, prediction_id, len(_PART_PREFIX)) if day is not None else []
    located = _locate_nearest(loc, near, prediction_id)
    if located is None:
        tried = set(near)
        located = _locate(loc, [p for p in parts if p not in tried], prediction_id)
    return located


def _from_index(
    loc: Location, days: list[date] | None, prediction_id: str
) -> tuple[tuple[pa.Table, str] | None, set[str]]:
    """(the row and its part, found through the id index of ``days`` (every day when None);
    the ISO days whose index is complete, so that a miss there is final)."""
    for attempt in range(_INDEX_ATTEMPTS):
        merged, segments, complete = _index_files(loc, days)
        if days is not None:
            segments = _written_near(segments, prediction_id, 0, everything=True)
        try:
            hits = _index_hits(loc, merged, segments, prediction_id)
        except FileNotFoundError:
            # A file merged and deleted between the listing and the read: list again.
            if attempt + 1 == _INDEX_ATTEMPTS:
                raise
            continue
        for hit in hits:
            located = _read_indexed(loc, hit, prediction_id)
            if located is not None:
                return located, complete
        return None, complete
    raise AssertionError("unreachable")  # pragma: no cover


def _index_files(loc: Location, days: list[date] | None) -> tuple[list[str], list[str], set[str]]:
    merged: list[str] = []
    segments: list[str] = []
    complete: set[str] = set()
    for day in index_days(loc) if days is None else days:
        day_merged, day_segments = index_files(loc, index_dir(loc, day))
        merged.extend(day_merged)
        segments.extend(day_segments)
        if day_merged:
            complete.add(day.isoformat())
    return merged, segments, complete


def _index_hits(
    loc: Location, merged: list[str], segments: list[str], prediction_id: str
) -> list[Hit]:
    """The parts the index names for ``prediction_id``: the merged files and the first
    segment files, then further segment files in growing batches until one names it."""
    size, start = 32, 0
    batch = merged + segments[:size]
    while batch:
        hits = find_in_index(loc, batch, prediction_id)
        if hits:
            return hits
        start, size = start + size, size * 2
        batch = segments[start : start + size]
    return []


def _is_part(name: str) -> bool:
    return name.startswith(_PART_PREFIX) and name.endswith(".parquet")


def _prediction_parts(loc: Location, days: list[date] | None) -> list[str]:
    top = loc.path(PREDICTIONS_DIR)
    if days is None:
        return [p for p in loc.find(top) if _is_part(os.path.basename(p))]
    wanted = [f"date={day.isoformat()}" for day in days]
    out: list[str] = []
    # One walk of the model and version folders for every day (a glob per day lists them
    # again each time), then only the day folders asked for.
    for model in loc.subdirs(top, "model="):
        for version in loc.subdirs(model, "version="):
            for day in wanted:
                folder = f"{version}/{day}"
                out.extend(f"{folder}/{n}" for n in loc.listdir(folder) if _is_part(n))
    return out


def _part_days(loc: Location) -> list[date]:
    """The days that have a prediction partition, of any model and version (a walk of the
    folders only, not of the part files)."""
    found: set[date] = set()
    for model in loc.subdirs(loc.path(PREDICTIONS_DIR), "model="):
        for version in loc.subdirs(model, "version="):
            for folder in loc.subdirs(version, "date="):
                with contextlib.suppress(ValueError):
                    found.add(date.fromisoformat(os.path.basename(folder)[len("date=") :]))
    return sorted(found)


def _written_near(
    parts: list[str], prediction_id: str, start: int, *, everything: bool = False
) -> list[str]:
    """The parts (or index files) of segments created from an hour before the id's clock to
    a minute after, nearest first: where the server's compaction put it (a file is named
    after its segment, from ``start`` on, whose id starts with its creation time in
    nanoseconds, and a segment closes seconds after it opens). With ``everything``, the
    other files follow, in no particular order."""
    ms = int(prediction_id[:11], 16)
    low, high = (ms - _NEAR_BEFORE_MS) * 1_000_000, (ms + _NEAR_AFTER_MS) * 1_000_000
    at = ms * 1_000_000
    near: list[tuple[int, str]] = []
    far: list[str] = []
    for part in parts:
        name = os.path.basename(part)
        try:
            created = int(name[start : name.find("-", start)], 16)
        except ValueError:
            far.append(part)
            continue
        if low <= created <= high:
            # Segments opened just before the id first: the one it went to opened at most
            # its rotation time (seconds) earlier.
            near.append((at - created if created <= at else high - created + at, part))
        else:
            far.append(part)
    return [part for _, part in sorted(near)] + (far if everything else [])


def _locate_nearest(
    loc: Location, near: list[str], prediction_id: str
) -> tuple[pa.Table, str] | None:
    """``_locate`` over ``near`` in batches of 32, 64, 128... files, nearest first: the id is
    usually in the first batch, and a miss costs a few more queries, not a file per query."""
    size, start = 32, 0
    while start < len(near):
        found = _locate(loc, near[start : start + size], prediction_id)
        if found is not None:
            return found
        start, size = start + size, size * 2
    return None


def _locate(loc: Location, parts: list[str], prediction_id: str) -> tuple[pa.Table, str] | None:
    """The row of ``prediction_id`` and its file: the id column of every part is scanned
    (row groups pruned by their min/max), then the one file holding it is read whole."""
    if not parts:
        return None
    con = new_connection(loc)
    try:
        hits = con.execute(
            f"SELECT filename FROM read_parquet({_sql_list([loc.uri(p) for p in parts])}, "
            "filename = true) WHERE prediction_id = ? LIMIT 1",
            [prediction_id],
        ).fetchall()
    finally:
        con.close()
    if not hits:
        return None
    return _read_row(loc, str(hits[0][0]), prediction_id)


def _read_indexed(loc: Location, hit: Hit, prediction_id: str) -> tuple[pa.Table, str] | None:
    """The row of ``prediction_id`` in the part the index named (pyarrow alone: the row
    group whose min/max can hold it; the model and version come from the index). None when
    the part is gone (retention deleted its day meanwhile) or does not hold it."""
    path = loc.path(hit.part)
    try:
        table = loc.read_table(
            path, filters=[("prediction_id", "=", prediction_id)], partitioning=None
        )
    except FileNotFoundError:
        return None
    if not table.num_rows:
        return None
    n = table.num_rows
    table = table.append_column("model", pa.array([hit.model] * n, pa.string()))
    table = table.append_column("version", pa.array([hit.version] * n, pa.int64()))
    return table, loc.uri(path)


def _read_row(loc: Location, path: str, prediction_id: str) -> tuple[pa.Table, str] | None:
    """The row of ``prediction_id`` in the part ``path`` (as DuckDB named it); None when
    the part is gone (retention deleted its day meanwhile) or does not hold it."""
    if not loc.remote and not os.path.exists(path):
        return None
    con = new_connection(loc)
    try:
        table = con.sql(
            f"SELECT * FROM read_parquet({_sql_list([path])}, hive_partitioning = true, "
            f"hive_types = {_hive_types(PREDICTION)}) WHERE prediction_id = ? LIMIT 1",
            params=[prediction_id],
        ).to_arrow_table()
    except duckdb.IOException:  # deleted between the check and the read
        return None
    finally:
        con.close()
    if not table.num_rows:
        return None
    return table, path


def _from_wal(
    loc: Location, kind: str, prediction_id: str, model: str | None = None
) -> pa.Table | None:
    """Rows of ``prediction_id`` still in the WAL (of ``model`` only, when given)."""
    tables = []
    for path in list_segments(loc.folder / "wal") if loc.folder is not None else []:
        _, key = parse_segment_name(path.name)
        if key.kind != kind or (model is not None and key.model != model):
            continue
        try:
            data = path.read_bytes()
        except FileNotFoundError:  # compacted meanwhile: its part is listed after this
            continue
        table = decode_segment(key, data)
        if table is None:
            continue
        table = table.filter(pc.equal(table["prediction_id"], prediction_id))
        if table.num_rows:
            tables.append(add_partition_columns(table, key))
    if not tables:
        return None
    return pa.concat_tables(tables, promote_options="permissive")


def _record(table: pa.Table) -> dict[str, Any]:
    row = table.slice(0, 1).to_pylist()[0]
    inputs = {k[len("in__") :]: v for k, v in row.items() if k.startswith("in__")}
    proba = {
        k[len("proba__") :]: v for k, v in row.items() if k.startswith("proba__") and v is not None
    }
    ts = row.get("ts")
    if isinstance(ts, datetime) and ts.tzinfo is None:
        ts = ts.replace(tzinfo=UTC)
    version = row.get("version")
    return {
        "prediction_id": row["prediction_id"],
        "ts": ts,
        "model": row.get("model"),
        "version": None if version is None else int(version),
        "arm": row.get("arm"),
        "status": row.get("status") or "ok",
        "reason": row.get("reason"),
        "latency_ms": row.get("latency_ms"),
        "inputs": {k: v for k, v in inputs.items() if v is not None},
        "prediction": row.get("prediction"),
        "proba": proba,
        # A model group's record: the version of each member that answered (else empty).
        "members": {
            k[len("member__") :]: int(v)
            for k, v in row.items()
            if k.startswith("member__") and v is not None
        },
    }


def _labels(loc: Location, model: str, prediction_id: str, ts: Any) -> list[dict[str, Any]]:
    """Every label recorded for the prediction: labels come after it, so feedback partitions
    of days before the prediction's are not read."""
    rows: list[dict[str, Any]] = []
    wal = _from_wal(loc, FEEDBACK, prediction_id, model)
    if wal is not None and "label" in wal.column_names:
        rows.extend(wal.select(["label", "ts"]).to_pylist())
    first = ts.date() - timedelta(days=1) if isinstance(ts, datetime) else None
    parts = [
        p
        for p in loc.find(loc.path(FEEDBACK_DIR, f"model={model}"))
        if _is_part(os.path.basename(p)) and _on_or_after(Path(p), first)
    ]
    rows.extend(_labels_in(loc, sorted(parts), prediction_id))
    unique = {(repr(r["label"]), r["ts"]): r for r in rows}  # a part and its WAL segment
    return sorted(unique.values(), key=lambda r: r["ts"] or datetime.min.replace(tzinfo=UTC))


def _labels_in(loc: Location, parts: list[str], prediction_id: str) -> list[dict[str, Any]]:
    """The ``label`` and ``ts`` of ``prediction_id`` in feedback parts, with pyarrow file by
    file (a part's label type is its own; row groups pruned by their id min/max). Not
    DuckDB: a connection costs more here than reading a model's labels."""
    rows: list[dict[str, Any]] = []
    for path in parts:
        try:
            parquet = loc.parquet_file(path)
        except FileNotFoundError:  # retention deleted its day meanwhile
            continue
        names = parquet.schema_arrow.names
        if "label" not in names:
            continue
        meta, column = parquet.metadata, names.index("prediction_id")
        for group in range(meta.num_row_groups):
            stats = meta.row_group(group).column(column).statistics
            pruned = stats is not None and stats.has_min_max
            if pruned and not stats.min <= prediction_id <= stats.max:
                continue
            table = parquet.read_row_group(group, columns=["prediction_id", "label", "ts"])
            table = table.filter(pc.equal(table["prediction_id"], prediction_id))
            rows.extend(table.select(["label", "ts"]).to_pylist())
    return rows


def _on_or_after(path: Path, first: date | None) -> bool:
    if first is None:
        return True
    piece = path.parent.name.removeprefix("date=")
    try:
        return date.fromisoformat(piece) >= first
    except ValueError:
        return True
