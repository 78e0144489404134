"""Reading a monitoring window, from the prediction log or a file, in bounded chunks.

``window_chunks`` streams the window through DuckDB's record-batch reader (never the whole
window in memory); ``logged_window`` is the same rows as one DataFrame, for small windows.
Both see what ``PredictionLog.query`` sees: Parquet parts plus records still in the WAL.
``file_chunks`` (from ``shipyard.dataset``) streams a Parquet or CSV file (``--current``).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import datetime
from pathlib import Path

import pandas as pd
import pyarrow as pa

from shipyard.errors import NotFound

#: Rows per chunk read from the log.
CHUNK_ROWS = 100_000


def window_sources(root: Path, model: str, version: int) -> tuple[list[str], pa.Table | None]:
    """The Parquet parts of one version's predictions, and its records still in the WAL
    (with the Hive columns), without counting a record twice."""
    from shipyard.registry import check_name
    from shipyard.serving._predlog_decode import add_partition_columns, concat, decode_segment
    from shipyard.serving._predlog_store import list_parts
    from shipyard.serving._predlog_wal import PREDICTION, list_segments, parse_segment_name

    check_name(model)
    root = Path(root).expanduser().resolve()
    tables: list[pa.Table] = []
    read: set[str] = set()
    # WAL first, then parts (as PredictionLog.query does): a segment compacted in between has
    # its parts renamed already, and the parts of a segment read here are skipped.
    for path in list_segments(root / "wal"):
        segment_id, key = parse_segment_name(path.name)
        if key.kind != PREDICTION or key.model != model or key.version != version:
            continue
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            continue
        read.add(segment_id)
        table = decode_segment(key, data)
        if table is not None:
            tables.append(add_partition_columns(table, key))
    folder = f"version={int(version)}"
    parts = [p for p in list_parts(root, PREDICTION, model, read) if folder in Path(p).parts]
    return parts, concat(tables)


def window_view(columns: Sequence[str], *, outputs: bool) -> list[tuple[str, str]]:
    """(log column, monitored name) pairs: the model's inputs (``in__age`` → ``age``) or its
    outputs (``prediction``, ``proba__yes`` → ``proba_yes``)."""
    if outputs:
        return [("prediction", "prediction")] + [
            (c, "proba_" + c.removeprefix("proba__")) for c in columns if c.startswith("proba__")
        ]
    return [(c, c.removeprefix("in__")) for c in columns if c.startswith("in__")]


def window_chunks(
    root: Path,
    model: str,
    version: int,
    start: datetime,
    end: datetime,
    *,
    outputs: bool,
    rows: int = CHUNK_ROWS,
) -> tuple[int, Iterator[pd.DataFrame]]:
    """The logged, accepted predictions of one version in ``[start, end)``: their count, and
    an iterator of DataFrames of about ``rows`` rows each, as the model's inputs or outputs.

    Raises NotFound when the window holds no prediction.
    """
    from shipyard.serving._predlog_store import connect
    from shipyard.serving._predlog_wal import PREDICTION

    root = Path(root).expanduser().resolve()
    parts, wal = window_sources(root, model, version)
    con = connect(root, {"predictions": (PREDICTION, parts, wal)})
    where = (
        f"FROM predictions WHERE version = {int(version)} AND status = 'ok' "
        f"AND epoch(ts) >= {start.timestamp()!r} AND epoch(ts) < {end.timestamp()!r}"
    )
    try:
        counted = con.execute(f"SELECT count(*) {where}").fetchone()
        total = int(counted[0]) if counted else 0
        columns = [d[0] for d in con.execute(f"SELECT * {where} LIMIT 0").description]
    except Exception:
        con.close()
        raise
    if total == 0:
        con.close()
        raise NotFound(
            f"No logged predictions of {model} v{version} between {start:%Y-%m-%d %H:%M} and "
            f"{end:%Y-%m-%d %H:%M} UTC: nothing to monitor. Widen --window or check --log-dir."
        )
    view = window_view(columns, outputs=outputs)
    select = ", ".join(f"{_quote(source)} AS {_quote(target)}" for source, target in view)

    def batches() -> Iterator[pd.DataFrame]:
        try:
            reader = con.sql(f"SELECT {select} {where}").to_arrow_reader(rows)
            for batch in reader:
                if batch.num_rows:
                    frame = batch.to_pandas()
                    if outputs:  # labels as text, as the outputs profile keys them
                        frame["prediction"] = frame["prediction"].astype(str)
                    yield frame
        finally:
            con.close()

    return total, batches()


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def logged_window(
    root: Path, model: str, version: int, start: datetime, end: datetime, *, outputs: bool
) -> pd.DataFrame:
    """The logged, accepted predictions of one version in ``[start, end)``, as the model's
    inputs (``in__age`` → ``age``) or outputs (``prediction``, ``proba_<class>``), in one
    DataFrame; ``window_chunks`` streams them instead."""
    _, chunks = window_chunks(root, model, version, start, end, outputs=outputs)
    return pd.concat(list(chunks), ignore_index=True)
