"""Finding one logged prediction by its id, across every model, without reading the whole log.

Where to look depends on the id:

- a server's ids (``shipyard.serving``: 26 hex digits) start with the millisecond clock of the
  request (11 hex digits), so only the ``date=`` partitions of that UTC day, of the day before
  and of the day after (a clock at a day's edge, a record's ``ts`` taken a moment later) are
  read, of every model and version;
- any other id (a batch's ``uuid4().hex``, a rejection's UUID, an id chosen by code calling
  ``PredictionLog.append``) carries no time: every partition is read.

Either way the Parquet files are scanned by DuckDB for the one column ``prediction_id`` with a
``WHERE`` on it, so Parquet's row-group min/max statistics skip the row groups that cannot
hold it; only then is the one file that holds it read whole. For a server's id, the parts of
segments created near its clock (their file names start with the segment's creation time)
are read first: the server's compaction writes a part per segment of a few seconds, so the
first pass reads a file or two and the day's other parts are read only if it misses (a log
written with explicit, older times, or an unknown id: a scan of three days' ids, about 1.5 s
for 10M ids on two cores). The WAL (records not compacted yet) is read
first, then the parts, so a segment compacted meanwhile is never missed.

>>> find_prediction(root, "18f3a2b4c5d6e7f8091a2b00000")          # doctest: +SKIP
{'prediction_id': '18f3...', 'model': 'churn', 'version': 3, 'inputs': {...}, ...}
"""

from __future__ import annotations

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
from shipyard.predlog._parquet import FEEDBACK_DIR, PREDICTIONS_DIR, _hive_types, _sql_list
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


def find_prediction(root: str | Path, prediction_id: str) -> dict[str, Any] | None:
    """The logged record of ``prediction_id`` under the log folder ``root``, or ``None``.

    The record: ``prediction_id``, ``ts`` (aware datetime), ``model``, ``version``, ``arm``,
    ``status``, ``reason``, ``latency_ms``, ``inputs`` (name -> value), ``prediction``,
    ``proba`` (class -> probability, empty when none), ``labels`` (``[{"label", "ts"}]``,
    every ground truth recorded for it, oldest first) and ``source`` (``"wal"`` or the Parquet
    file it was found in). Raises ``InvalidInput`` for an id that cannot be one.
    """
    check_prediction_id(prediction_id)
    root = Path(root).expanduser().resolve()
    day = id_day(prediction_id)
    found = _from_wal(root, PREDICTION, prediction_id)
    source = "wal"
    if found is None:
        days = None if day is None else [day + timedelta(days=d) for d in (-1, 0, 1)]
        parts = _prediction_parts(root, days)
        near = _written_near(parts, prediction_id) if day is not None else []
        located = _locate_nearest(near, prediction_id)
        if located is None:
            tried = set(near)
            located = _locate([p for p in parts if p not in tried], prediction_id)
        if located is None:
            return None
        found, source = located
    record = _record(found)
    record["source"] = source
    record["labels"] = _labels(root, record["model"], prediction_id, record["ts"])
    return record


def _prediction_parts(root: Path, days: list[date] | None) -> list[str]:
    top = root / PREDICTIONS_DIR
    if days is None:
        return sorted(str(p) for p in top.glob("model=*/version=*/date=*/part-*.parquet"))
    wanted = [f"date={day.isoformat()}" for day in days]
    out: list[str] = []
    # One walk of the model and version folders for every day (a glob per day lists them
    # again each time), then only the day folders asked for.
    for model in _subdirs(str(top), "model="):
        for version in _subdirs(model, "version="):
            for day in wanted:
                folder = os.path.join(version, day)
                try:
                    names = os.listdir(folder)
                except (FileNotFoundError, NotADirectoryError):
                    continue
                out.extend(
                    os.path.join(folder, n)
                    for n in names
                    if n.startswith(_PART_PREFIX) and n.endswith(".parquet")
                )
    return out


def _subdirs(folder: str, prefix: str) -> list[str]:
    try:
        with os.scandir(folder) as entries:
            return [e.path for e in entries if e.name.startswith(prefix) and e.is_dir()]
    except FileNotFoundError:
        return []


def _written_near(parts: list[str], prediction_id: str) -> list[str]:
    """The parts of segments created from an hour before the id's clock to a minute after,
    nearest first: where the server's compaction put it (a part is named after its segment,
    whose id starts with its creation time in nanoseconds, and a segment closes seconds after
    it opens)."""
    ms = int(prediction_id[:11], 16)
    low, high = (ms - _NEAR_BEFORE_MS) * 1_000_000, (ms + _NEAR_AFTER_MS) * 1_000_000
    at = ms * 1_000_000
    near: list[tuple[int, str]] = []
    start = len(_PART_PREFIX)
    for part in parts:
        name = os.path.basename(part)
        try:
            created = int(name[start : name.find("-", start)], 16)
        except ValueError:
            continue
        if low <= created <= high:
            # Segments opened just before the id first: the one it went to opened at most
            # its rotation time (seconds) earlier.
            near.append((at - created if created <= at else high - created + at, part))
    return [part for _, part in sorted(near)]


def _locate_nearest(near: list[str], prediction_id: str) -> tuple[pa.Table, str] | None:
    """``_locate`` over ``near`` in batches of 32, 64, 128... files, nearest first: the id is
    usually in the first batch, and a miss costs a few more queries, not a file per query."""
    size, start = 32, 0
    while start < len(near):
        found = _locate(near[start : start + size], prediction_id)
        if found is not None:
            return found
        start, size = start + size, size * 2
    return None


def _connect() -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    return con


def _locate(parts: list[str], prediction_id: str) -> tuple[pa.Table, str] | None:
    """The row of ``prediction_id`` and its file: the id column of every part is scanned
    (row groups pruned by their min/max), then the one file holding it is read whole."""
    if not parts:
        return None
    con = _connect()
    try:
        hits = con.execute(
            f"SELECT filename FROM read_parquet({_sql_list(parts)}, filename = true) "
            "WHERE prediction_id = ? LIMIT 1",
            [prediction_id],
        ).fetchall()
        if not hits:
            return None
        path = str(hits[0][0])
        table = con.sql(
            f"SELECT * FROM read_parquet({_sql_list([path])}, hive_partitioning = true, "
            f"hive_types = {_hive_types(PREDICTION)}) WHERE prediction_id = ? LIMIT 1",
            params=[prediction_id],
        ).to_arrow_table()
    finally:
        con.close()
    return table, path


def _from_wal(
    root: Path, kind: str, prediction_id: str, model: str | None = None
) -> pa.Table | None:
    """Rows of ``prediction_id`` still in the WAL (of ``model`` only, when given)."""
    tables = []
    for path in list_segments(root / "wal"):
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
    }


def _labels(root: Path, model: str, prediction_id: str, ts: Any) -> list[dict[str, Any]]:
    """Every label recorded for the prediction: labels come after it, so feedback partitions
    of days before the prediction's are not read."""
    rows: list[dict[str, Any]] = []
    wal = _from_wal(root, FEEDBACK, prediction_id, model)
    if wal is not None and "label" in wal.column_names:
        rows.extend(wal.select(["label", "ts"]).to_pylist())
    top = root / FEEDBACK_DIR / f"model={model}"
    first = ts.date() - timedelta(days=1) if isinstance(ts, datetime) else None
    parts = [str(p) for p in top.glob("date=*/part-*.parquet") if _on_or_after(p, first)]
    if parts:
        con = _connect()
        try:
            columns = {
                r[0]
                for r in con.execute(
                    f"DESCRIBE SELECT * FROM read_parquet({_sql_list(sorted(parts))}, "
                    "union_by_name = true)"
                ).fetchall()
            }
            if "label" in columns:
                found = con.sql(
                    f"SELECT label, ts FROM read_parquet({_sql_list(sorted(parts))}, "
                    "union_by_name = true) WHERE prediction_id = ?",
                    params=[prediction_id],
                ).to_arrow_table()
                rows.extend(found.to_pylist())
        finally:
            con.close()
    unique = {(repr(r["label"]), r["ts"]): r for r in rows}  # a part and its WAL segment
    return sorted(unique.values(), key=lambda r: r["ts"] or datetime.min.replace(tzinfo=UTC))


def _on_or_after(path: Path, first: date | None) -> bool:
    if first is None:
        return True
    piece = path.parent.name.removeprefix("date=")
    try:
        return date.fromisoformat(piece) >= first
    except ValueError:
        return True
