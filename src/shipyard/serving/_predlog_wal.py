"""Write-ahead segments of the prediction log, and their decoding into Arrow tables.

A segment is an append-only file of JSON lines for ONE partition key (kind, model, version)::

    <root>/wal/<segment-id>+<kind>+<model>+<version>.wal

One file per key means the compactor never splits lines in Python: pyarrow's C++ JSON reader
parses a whole segment at once, and two models that use one feature name with different types
never meet in one reader (which would refuse them).

A segment belongs to the process holding an exclusive ``flock`` on it. The kernel drops the lock
when that process dies (even by ``kill -9``), so an unlocked segment is an orphan to replay.

>>> segment_name("0001-ab", PartitionKey("p", "churn", 3))
'0001-ab+p+churn+3.wal'
>>> parse_segment_name("0001-ab+p+churn+3.wal")
('0001-ab', PartitionKey(kind='p', model='churn', version=3))
"""

from __future__ import annotations

import fcntl
import io
import os
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import orjson
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.json as pj

WAL_SUFFIX = ".wal"
_NEW_SUFFIX = ".new"  # a segment being created (see new_segment)
PREDICTION = "p"
FEEDBACK = "f"

# Fields written by PredictionLog.append whose type must not depend on the data seen (a segment
# without rejections would otherwise infer ``reason`` as the null type).
_PREDICTION_FIELDS = pa.schema(
    [
        ("prediction_id", pa.string()),
        ("ts", pa.float64()),
        ("model", pa.string()),
        ("version", pa.int64()),
        ("arm", pa.string()),
        ("status", pa.string()),
        ("reason", pa.string()),
        ("latency_ms", pa.float64()),
    ]
)
#: Bytes of JSON lines parsed per block (Arrow's default is 1 MiB).
_BLOCK_BYTES = 4 * 1024 * 1024
_FEEDBACK_FIELDS = pa.schema([("prediction_id", pa.string()), ("ts", pa.float64())])

#: Columns every prediction table has, in this order, before its input and output columns.
BASE_PREDICTION_SCHEMA = pa.schema(
    [
        ("prediction_id", pa.string()),
        ("ts", pa.timestamp("us", tz="UTC")),
        ("arm", pa.string()),
        ("status", pa.string()),
        ("reason", pa.string()),
        ("latency_ms", pa.float64()),
    ]
)
BASE_FEEDBACK_SCHEMA = pa.schema(
    [("prediction_id", pa.string()), ("ts", pa.timestamp("us", tz="UTC"))]
)


class PartitionKey(NamedTuple):
    """Where a group of records lands: kind ("p" or "f"), model, version (None if unknown)."""

    kind: str
    model: str
    version: int | None


def segment_name(segment_id: str, key: PartitionKey) -> str:
    """The file name of a segment (model names never contain '+')."""
    version = "" if key.version is None else str(key.version)
    return f"{segment_id}+{key.kind}+{key.model}+{version}{WAL_SUFFIX}"


def parse_segment_name(name: str) -> tuple[str, PartitionKey]:
    """(segment id, partition key) from a segment's file name."""
    segment_id, kind, model, version = name[: -len(WAL_SUFFIX)].split("+")
    return segment_id, PartitionKey(kind, model, int(version) if version else None)


@dataclass
class Segment:
    """One WAL file (its owner holds the flock on ``fd``)."""

    path: Path
    fd: int
    key: PartitionKey
    records: int = 0
    size: int = 0
    # Wall-clock time of the first append: the age of the oldest record not yet in Parquet.
    first_at: float | None = None
    dirty: bool = False

    @property
    def segment_id(self) -> str:
        return parse_segment_name(self.path.name)[0]


def new_segment(wal_dir: Path, key: PartitionKey) -> Segment:
    """Create and lock a fresh segment for ``key``; its id sorts by creation time.

    The file is created under a name no one lists (``.<name>.new``), locked, then renamed:
    another process replaying orphans (a second server worker starting) never sees it
    unlocked, so it cannot take a brand-new segment for a dead one's and delete it.
    """
    segment_id = f"{time.time_ns():016x}-{uuid.uuid4().hex[:12]}"
    path = wal_dir / segment_name(segment_id, key)
    hidden = wal_dir / f".{path.name}{_NEW_SUFFIX}"
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND | os.O_CLOEXEC
    fd = os.open(hidden, flags, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        os.rename(hidden, path)
    except OSError:
        os.close(fd)
        hidden.unlink(missing_ok=True)
        raise
    return Segment(path=path, fd=fd, key=key)


def remove_stale_new(wal_dir: Path, older_than_s: float = 60.0) -> None:
    """Delete ``.new`` files of segment creations that a crash interrupted (they are empty)."""
    cutoff = time.time() - older_than_s
    try:
        stale = [p for p in wal_dir.iterdir() if p.name.endswith(_NEW_SUFFIX)]
    except FileNotFoundError:
        return
    for path in stale:
        try:
            if path.stat().st_mtime < cutoff:
                path.unlink()
        except FileNotFoundError:
            continue


def claim_orphan(path: Path) -> Segment | None:
    """Lock a segment left by a dead process, or return None if a live process owns it."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:  # compacted meanwhile by its owner
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    if not path.exists():  # another process replayed and deleted it while we waited
        os.close(fd)
        return None
    key = parse_segment_name(path.name)[1]
    return Segment(path=path, fd=fd, key=key, size=os.fstat(fd).st_size)


def list_segments(wal_dir: Path) -> list[Path]:
    """Every segment file, oldest first."""
    try:
        return sorted(p for p in wal_dir.iterdir() if p.suffix == WAL_SUFFIX)
    except FileNotFoundError:
        return []


def complete_lines(data: bytes) -> bytes:
    """Drop a torn last line (only a power loss can leave one: a write() is never half-done
    for the page cache when the process is killed)."""
    end = data.rfind(b"\n")
    return data[: end + 1]


def decode_segment(
    key: PartitionKey, data: bytes, bad_lines: list[bytes] | None = None
) -> pa.Table | None:
    """A segment's lines as a flat table: base columns, then ``in__*``, ``prediction``,
    ``proba__*`` (predictions) or ``label`` (feedback). None for a segment without a line.

    A line that is not a JSON object (a damaged disk, a hand edit) is left out, and added to
    ``bad_lines`` when given: one bad line must not keep the rest from Parquet.
    """
    ndjson = complete_lines(data)
    if not ndjson:
        return None
    fields = _PREDICTION_FIELDS if key.kind == PREDICTION else _FEEDBACK_FIELDS
    try:
        raw = pj.read_json(
            io.BytesIO(ndjson),
            # One thread: compaction runs beside a server; Arrow's pool would take every core
            # for a burst (and on one core, one thread is faster: 63 against 115 ms for 17k
            # records).
            read_options=pj.ReadOptions(use_threads=False, block_size=_BLOCK_BYTES),
            parse_options=pj.ParseOptions(
                explicit_schema=fields, unexpected_field_behavior="infer"
            ),
        )
    except pa.ArrowInvalid:
        # A value changed type within one model version (e.g. a label sent as 1, then as
        # "yes"), or a damaged line: rebuild the table in Python, conflicting columns as
        # strings, damaged lines left out.
        rows = _json_objects(ndjson, bad_lines if bad_lines is not None else [])
        if not rows:
            return None
        raw = _table_from_rows(rows, fields)
    return _shape(raw, key.kind)


def _json_objects(ndjson: bytes, bad_lines: list[bytes]) -> list[dict[str, Any]]:
    rows = []
    for line in ndjson.splitlines():
        if not line.strip():
            continue
        try:
            row = orjson.loads(line)
        except orjson.JSONDecodeError:
            row = None
        if (
            isinstance(row, dict)
            and isinstance(row.get("prediction_id"), str)
            and isinstance(row.get("ts"), int | float)
        ):
            rows.append(row)
        else:
            bad_lines.append(line)
    return rows


def _shape(raw: pa.Table, kind: str) -> pa.Table:
    def column(name: str, typ: pa.DataType) -> pa.ChunkedArray | pa.Array:
        # The JSON reader leaves out a field that no line has, even one it was given a type for.
        return raw[name] if name in raw.column_names else pa.nulls(raw.num_rows, typ)

    columns: dict[str, pa.ChunkedArray | pa.Array] = {"prediction_id": raw["prediction_id"]}
    micros = pc.cast(pc.round(pc.multiply(raw["ts"], 1e6)), pa.int64())
    columns["ts"] = micros.cast(pa.timestamp("us", tz="UTC"))
    if kind == PREDICTION:
        columns["arm"] = column("arm", pa.string())
        columns["status"] = pc.fill_null(column("status", pa.string()), "ok")  # append's default
        columns["reason"] = column("reason", pa.string())
        columns["latency_ms"] = column("latency_ms", pa.float64())
        _flatten_into(columns, raw, "inputs", "in__")
        if "prediction" in raw.column_names:  # absent when every row is a rejection
            columns["prediction"] = raw["prediction"]
        _flatten_into(columns, raw, "proba", "proba__")
    else:
        columns["label"] = raw["label"]
    return pa.table(columns)


def _flatten_into(
    columns: dict[str, pa.ChunkedArray | pa.Array], raw: pa.Table, name: str, prefix: str
) -> None:
    if name not in raw.column_names:
        return
    sub = pa.table({name: raw[name]})
    # flatten() unnests one struct level per call; nested feature values keep dotted names.
    while any(pa.types.is_struct(f.type) for f in sub.schema):
        sub = sub.flatten()
    for col_name, col in zip(sub.column_names, sub.columns, strict=True):
        if col_name == name:  # the struct had no fields (e.g. every row was rejected)
            continue
        columns[prefix + col_name[len(name) + 1 :]] = col


def _table_from_rows(rows: list[dict[str, Any]], fields: pa.Schema) -> pa.Table:
    flat: list[dict[str, Any]] = []
    for row in rows:
        out: dict[str, Any] = {}
        for k, v in row.items():
            if isinstance(v, dict):
                for sub_k, sub_v in _walk(v, k):
                    out[sub_k] = sub_v
            else:
                out[k] = v
        flat.append(out)
    names: dict[str, None] = {}
    for row in flat:
        names.update(dict.fromkeys(row))
    arrays: dict[str, pa.Array] = {}
    for name in names:
        values = [row.get(name) for row in flat]
        typ = fields.field(name).type if name in fields.names else None
        try:
            arrays[name] = pa.array(values, type=typ)
        except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError):
            arrays[name] = pa.array([None if v is None else _as_text(v) for v in values])
    table = pa.table(arrays)
    # Re-nest so _shape sees the same layout as the JSON reader's.
    return _nest(table)


def _as_text(value: Any) -> str:
    return value if isinstance(value, str) else orjson.dumps(value).decode()


def _walk(value: dict[str, Any], prefix: str) -> Iterator[tuple[str, Any]]:
    for k, v in value.items():
        name = f"{prefix}.{k}"
        if isinstance(v, dict):
            yield from _walk(v, name)
        else:
            yield name, v


def _nest(table: pa.Table) -> pa.Table:
    top: dict[str, Any] = {}
    for name, col in zip(table.column_names, table.columns, strict=True):
        head, _, rest = name.partition(".")
        if rest:
            top.setdefault(head, {})[rest] = col
        else:
            top[name] = col
    columns: dict[str, Any] = {}
    for name, value in top.items():
        if isinstance(value, dict):
            # Dotted leaves stay as field names: _flatten_into only strips the first prefix.
            columns[name] = pa.StructArray.from_arrays(
                [c.combine_chunks() for c in value.values()], names=list(value)
            )
        else:
            columns[name] = value
    return pa.table(columns)


def split_by_date(table: pa.Table) -> Iterator[tuple[str, pa.Table]]:
    """(ISO date, rows of that UTC date) pairs: the ``date=`` level of the partitioning."""
    days = pc.cast(table["ts"], pa.date32())
    unique = pc.unique(days)
    if len(unique) == 1:
        yield str(unique[0].as_py()), table
        return
    for day in unique:
        yield str(day.as_py()), table.filter(pc.equal(days, day))


def add_partition_columns(table: pa.Table, key: PartitionKey) -> pa.Table:
    """The Hive columns (model, version, date) a Parquet reader derives from the path."""
    n = table.num_rows
    table = table.append_column("model", pa.array([key.model] * n, pa.string()))
    if key.kind == PREDICTION:
        table = table.append_column("version", pa.array([key.version] * n, pa.int64()))
    return table.append_column("date", pc.cast(table["ts"], pa.date32()))
