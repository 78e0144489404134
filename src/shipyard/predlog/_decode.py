"""WAL segment bytes -> Arrow tables: the lines of ``_wal`` as the log's columns.

A segment's lines take one of three shapes:

- a record, a JSON object (``PredictionLog.append``: refusals, feedback, records from code);
- a layout, the names an answer line refers to, written once per segment before its first
  use: ``{"layout": 0, "columns": ["age", "plan"], "classes": ["no", "yes"]}``;
- an answer, one row a server answered (``PredictionLog.append_answers``), positional so the
  request path builds no dict: ``[layout, prediction_id, ts, latency_ms, arm, prediction,
  [input values in the layout's column order], [probabilities in its class order], caller,
  team, compute_ms, request_rows]`` (the probabilities only when the layout has classes; the
  four usage values, the same on every row of a request, since Shipyard 0.14: older lines
  end before them).

Both kinds of rows come out alike: base columns (usage among them: ``caller``, the API
token's name; ``team``; ``compute_ms``, the model's compute time for the row's whole request;
``request_rows``, that request's row count), ``in__<input>``, ``prediction``,
``proba__<class>`` (feedback: ``label``), and for a model group's records ``member__<model>``
(the version of each member that answered, from the record's ``members`` object). A line
that cannot be read is set aside, never the reason the rest stays out of Parquet.
"""

from __future__ import annotations

import contextlib
import gc
import io
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.json as pj

from shipyard.predlog._wal import PREDICTION, Layout, PartitionKey

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
        ("caller", pa.string()),
        ("team", pa.string()),
        ("compute_ms", pa.float64()),
        ("request_rows", pa.int64()),
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
        ("caller", pa.string()),
        ("team", pa.string()),
        ("compute_ms", pa.float64()),
        ("request_rows", pa.int64()),
    ]
)
#: The values an answer line has after its row's (caller, team, compute_ms, request_rows).
_USAGE_VALUES = 4
BASE_FEEDBACK_SCHEMA = pa.schema(
    [("prediction_id", pa.string()), ("ts", pa.timestamp("us", tz="UTC"))]
)


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

    A line that cannot be read (a damaged disk, a hand edit) is left out, and added to
    ``bad_lines`` when given: one bad line must not keep the rest from Parquet.
    """
    ndjson = complete_lines(data)
    if not ndjson:
        return None
    bad = bad_lines if bad_lines is not None else []
    if not ndjson.startswith(_ANSWER) and b"\n" + _ANSWER not in ndjson:
        return _decode_records(key, ndjson, bad)  # records only: one C++ parse
    records: list[bytes] = []
    answers: list[bytes] = []
    layouts: dict[int, Layout] = {}
    for line in ndjson.splitlines():
        if line.startswith(_ANSWER):
            answers.append(line)
        elif line.startswith(_LAYOUT):
            layout = _read_layout(line)
            if layout is None:
                bad.append(line)
            else:
                layouts[layout.id] = layout
        elif line.strip():
            records.append(line)
    tables = [_decode_answers(answers, layouts, bad)]
    if records:
        tables.append(_decode_records(key, b"\n".join(records) + b"\n", bad))
    return concat(t for t in tables if t is not None)


_ANSWER = b"["
_LAYOUT = b'{"layout":'


def _read_layout(line: bytes) -> Layout | None:
    try:
        value = orjson.loads(line)
        columns, classes = value["columns"], value["classes"]
        if not (isinstance(columns, list) and all(isinstance(c, str) for c in columns)):
            return None
        if classes is not None and not (
            isinstance(classes, list) and all(isinstance(c, str) for c in classes)
        ):
            return None
        return Layout.of(int(value["layout"]), columns, classes)
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
        return None


def _decode_answers(
    lines: list[bytes], layouts: dict[int, Layout], bad: list[bytes]
) -> pa.Table | None:
    """Answer lines as the table the JSON reader makes of the same records (then shaped).

    The whole list is parsed in one call and checked by Arrow's typed conversions; only when
    that fails (a damaged line somewhere) are the lines read one by one.
    """
    if not lines:
        return None
    try:
        with _collector_paused():
            return _answers_table(orjson.loads(b"[" + b",".join(lines) + b"]"), layouts)
    except (orjson.JSONDecodeError, KeyError, IndexError, TypeError, ValueError, pa.ArrowException):
        pass
    good = []
    with _collector_paused():
        for line in lines:
            try:
                value = orjson.loads(line)
            except orjson.JSONDecodeError:
                value = None
            if _is_answer(value, layouts):
                good.append(value)
            else:
                bad.append(line)
        return _answers_table(good, layouts) if good else None


@contextlib.contextmanager
def _collector_paused() -> Iterator[None]:
    """No garbage collection while a segment's values are parsed.

    Parsing makes a million small lists and strings, none of them garbage; the collector,
    triggered by their number, walks them again and again (a segment of 30,000 answers:
    10.9 against 4.0 us per line).
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _answers_table(values: list[list[Any]], layouts: dict[int, Layout]) -> pa.Table | None:
    # Grouped by length too: lines with usage values and older ones without.
    by_layout: dict[tuple[int, int], list[list[Any]]] = {}
    for value in values:
        by_layout.setdefault((value[0], len(value)), []).append(value)
    tables = []
    for (layout_id, _), rows in by_layout.items():
        layout = layouts[layout_id]
        # strict: every row has the layout's fields (7, or 8 with probabilities; then the
        # usage values, or none in an older line) ...
        fields = list(zip(*rows, strict=True))
        base = 7 if layout.classes is None else 8
        if len(fields) not in (base, base + _USAGE_VALUES):
            raise ValueError("answer lines do not match their layout")
        raw: dict[str, pa.Array] = {
            "prediction_id": pa.array(fields[1], pa.string()),
            "ts": pa.array(fields[2], pa.float64()),
            "latency_ms": pa.array(fields[3], pa.float64()),
            "arm": pa.array(fields[4], pa.string()),
            "prediction": _column(fields[5]),
            "inputs": _struct(layout.columns, fields[6]),
        }
        if layout.classes is not None:
            raw["proba"] = _struct(layout.classes, fields[7])
        if len(fields) > base:
            raw["caller"] = pa.array(fields[base], pa.string())
            raw["team"] = pa.array(fields[base + 1], pa.string())
            raw["compute_ms"] = pa.array(fields[base + 2], pa.float64())
            raw["request_rows"] = pa.array(fields[base + 3], pa.int64())
        tables.append(_shape(pa.table(raw), PREDICTION))
    return concat(tables)


def _is_answer(value: Any, layouts: dict[int, Layout]) -> bool:
    """One parsed line checked against its layout (the slow path's test)."""
    if not (
        isinstance(value, list)
        and len(value) in (7, 8, 7 + _USAGE_VALUES, 8 + _USAGE_VALUES)
        and isinstance(value[0], int)
        and isinstance(value[1], str)
        and isinstance(value[2], int | float)
        and isinstance(value[3], int | float)
        and isinstance(value[4], str)
        and isinstance(value[6], list)
    ):
        return False
    layout = layouts.get(value[0])
    if layout is None or len(value[6]) != len(layout.columns):
        return False
    base = 7 if layout.classes is None else 8
    if len(value) == base + _USAGE_VALUES:
        caller, team, compute_ms, request_rows = value[base:]
        if not (
            isinstance(caller, str | None)
            and isinstance(team, str | None)
            and (compute_ms is None or isinstance(compute_ms, int | float))
            and isinstance(request_rows, int)
        ):
            return False
    elif len(value) != base:
        return False
    return layout.classes is None or (
        isinstance(value[7], list) and len(value[7]) == len(layout.classes)
    )


def _struct(names: tuple[str, ...], rows: tuple[list[Any], ...]) -> pa.StructArray:
    """Row-major values as one struct column (field per name), as the JSON reader nests.

    Raises ``ValueError`` when a row has more or fewer values than there are names.
    """
    if not names:
        if any(rows):
            raise ValueError("values without names")
        return pa.array([{}] * len(rows), pa.struct([]))
    columns = list(zip(*rows, strict=True))
    if len(columns) != len(names):
        raise ValueError("answer values do not match their layout's names")
    return pa.StructArray.from_arrays([_column(values) for values in columns], names=list(names))


def _decode_records(key: PartitionKey, ndjson: bytes, bad: list[bytes]) -> pa.Table | None:
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
        with _collector_paused():
            rows = _json_objects(ndjson, bad)
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
        columns["caller"] = column("caller", pa.string())
        columns["team"] = column("team", pa.string())
        columns["compute_ms"] = column("compute_ms", pa.float64())
        columns["request_rows"] = column("request_rows", pa.int64())
        _flatten_into(columns, raw, "inputs", "in__")
        if "prediction" in raw.column_names:  # absent when every row is a rejection
            columns["prediction"] = raw["prediction"]
        _flatten_into(columns, raw, "proba", "proba__")
        # A model group's records: each member's version (``member__<model>``).
        _flatten_into(columns, raw, "members", "member__")
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
        arrays[name] = _column(values, fields.field(name).type if name in fields.names else None)
    table = pa.table(arrays)
    # Re-nest so _shape sees the same layout as the JSON reader's.
    return _nest(table)


def _column(values: Sequence[Any], typ: pa.DataType | None = None) -> pa.Array:
    """Values as one Arrow column; as text when their types conflict (1, then "yes")."""
    try:
        return pa.array(values, type=typ)
    except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError):
        return pa.array([None if v is None else _as_text(v) for v in values])


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


def concat(tables: Iterable[pa.Table]) -> pa.Table | None:
    """Concatenate tables by column name, promoting types; None when there are none."""
    tables = list(tables)
    if not tables:
        return None
    try:
        return pa.concat_tables(tables, promote_options="permissive")
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        # Same column, incompatible types across versions: compare them as text.
        names = {f.name for t in tables for f in t.schema}
        clash = {
            n
            for n in names
            if len({str(t.schema.field(n).type) for t in tables if n in t.column_names}) > 1
        }
        fixed = [
            t.select(t.column_names).cast(
                pa.schema(
                    [pa.field(f.name, pa.string()) if f.name in clash else f for f in t.schema]
                )
            )
            for t in tables
        ]
        return pa.concat_tables(fixed, promote_options="permissive")


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
