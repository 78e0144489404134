"""``score_file``: stream a Parquet or CSV file through a model, chunk by chunk."""

from __future__ import annotations

import contextlib
import os
import time
import uuid
from collections.abc import Callable, Generator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq

from shipyard.batch._predict import ID_COLUMN, check_columns, model_input, scored_arrow
from shipyard.dataset import open_parquet
from shipyard.errors import InvalidInput
from shipyard.packaging import LoadedModel

PARQUET = (".parquet", ".pq")
CSV = (".csv",)


@dataclass(frozen=True)
class ScoreSummary:
    """What ``score_file`` did: rows scored, chunks read, wall-clock seconds."""

    rows: int
    chunks: int
    seconds: float


def table_format(path: Path) -> str:
    """``"parquet"`` or ``"csv"`` from the file's suffix; anything else is refused."""
    suffix = path.suffix.lower()
    if suffix in PARQUET:
        return "parquet"
    if suffix in CSV:
        return "csv"
    raise InvalidInput(
        f"'{path}' is neither Parquet (.parquet, .pq) nor CSV (.csv): name it with one of "
        "these suffixes."
    )


def parquet_rows(path: Path) -> int | None:
    """The row count of a Parquet file from its footer (``None`` for CSV): for progress bars."""
    if table_format(path) != "parquet" or not path.is_file():
        return None
    try:
        return int(pq.ParquetFile(path).metadata.num_rows)
    except (pa.ArrowException, OSError):
        return None


def score_file(
    loaded: LoadedModel,
    src: Path,
    dst: Path,
    *,
    chunk_rows: int = 50_000,
    progress: Callable[[int], None] | None = None,
) -> ScoreSummary:
    """Score every row of ``src`` into ``dst`` (each Parquet or CSV), ``chunk_rows`` at a time.

    Memory stays bounded by the chunk size. ``dst`` gets the input's columns plus
    ``prediction_id``, ``prediction``, ``proba_<class>`` (classifiers), ``model`` and
    ``version``. It is written to a hidden temporary file in its folder and renamed at the
    end, so a failure (such as a ``SchemaViolation`` naming the fields and the rows) leaves no
    partial output. ``progress`` is called with the row count of each chunk scored.

    >>> score_file(client.load("churn@production"), Path("in.parquet"), Path("out.csv"))
    ... # doctest: +SKIP
    ScoreSummary(rows=1000000, chunks=20, seconds=9.1)
    """
    if chunk_rows < 1:
        raise InvalidInput(f"chunk_rows must be a positive integer. Got {chunk_rows} instead.")
    src_format, dst_format = table_format(src), table_format(dst)
    if not src.is_file():
        raise InvalidInput(f"No such file: '{src}'.")
    if not dst.parent.is_dir():
        raise InvalidInput(f"The folder of '{dst}' does not exist: create it first.")
    if dst.exists() and dst.resolve() == src.resolve():
        raise InvalidInput(f"'{dst}' is the input file: write the scores to another file.")
    started = time.perf_counter()
    tmp = dst.parent / f".{dst.name}.{uuid.uuid4().hex[:12]}.tmp"
    rows = chunks = 0
    writer: _Writer | None = None
    # One thread writes chunk k while chunk k+1 is scored (Arrow releases the GIL); waiting
    # for it before handing over the next chunk keeps at most two chunks in memory.
    pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="shipyard-score-writer")
    pending: Future[None] | None = None
    try:
        # closing(): a failed chunk closes the reader (and its file) now, not when collected.
        with contextlib.closing(_read(src, src_format, chunk_rows, loaded)) as reader:
            for first_row, table, frame in reader:
                last_row = first_row + len(frame)
                out = _score_chunk(
                    loaded, table, frame, rows=f"{first_row + 1}-{last_row}", src=src
                )
                if writer is None:
                    writer = _Writer(tmp, dst_format, out.schema)
                if pending is not None:
                    pending.result()
                pending = pool.submit(
                    writer.write, out, rows=f"rows {first_row + 1}-{last_row} of '{src}'"
                )
                rows, chunks = last_row, chunks + 1
                if progress is not None:
                    progress(len(frame))
        if writer is None:
            raise InvalidInput(f"'{src}' has no rows: there is nothing to score.")
        if pending is not None:
            pending.result()
        writer.close()
        os.replace(tmp, dst)
    except BaseException:
        pool.shutdown(wait=True, cancel_futures=True)  # before closing what it writes to
        if writer is not None:
            writer.close()
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise
    finally:
        pool.shutdown(wait=True)
    return ScoreSummary(rows=rows, chunks=chunks, seconds=time.perf_counter() - started)


def _score_chunk(
    loaded: LoadedModel, table: pa.Table, frame: pd.DataFrame, *, rows: str, src: Path
) -> pa.Table:
    """The input chunk's columns (as read) followed by the scored columns."""
    X = model_input(loaded, frame, rows=f"Rows {rows} of '{src}'")
    scored = scored_arrow(loaded, X)
    return pa.Table.from_arrays(
        [*table.columns, *scored.columns], names=[*table.column_names, *scored.column_names]
    )


def _read(
    src: Path, fmt: str, chunk_rows: int, loaded: LoadedModel
) -> Generator[tuple[int, pa.Table, pd.DataFrame], None, None]:
    """(first row number, the chunk as Arrow for output, its schema columns as pandas)."""
    names = loaded.schema.names()
    first = 0
    if fmt == "parquet":
        pf = open_parquet(src)  # streams pages: memory does not grow with the file
        check_columns(loaded, pf.schema_arrow.names, source=str(src))
        for batch in pf.iter_batches(batch_size=chunk_rows):
            table = pa.Table.from_batches([batch])
            # Only the model's columns go through pandas; the rest is copied as Arrow.
            yield first, table, table.select(names).to_pandas()
            first += batch.num_rows
        return
    try:
        with pd.read_csv(src, chunksize=chunk_rows) as reader:
            for frame in reader:
                if first == 0:
                    check_columns(loaded, frame.columns.tolist(), source=str(src))
                yield first, pa.Table.from_pandas(frame, preserve_index=False), frame
                first += len(frame)
    except (ValueError, OSError, pd.errors.ParserError) as exc:
        raise InvalidInput(f"Cannot read '{src}' as CSV: {exc}") from exc


class _Writer:
    """Appends Arrow tables to one Parquet or CSV file, holding every chunk to one schema."""

    def __init__(self, path: Path, fmt: str, schema: pa.Schema) -> None:
        self.path = path
        self.fmt = fmt
        self.schema = schema
        self._sink: Any = None

    def write(self, table: pa.Table, *, rows: str) -> None:
        if table.schema != self.schema:
            # CSV chunks are typed one by one (a column of integers turns float where a
            # value is missing); the file keeps the first chunk's types.
            try:
                table = table.cast(self.schema)
            except (pa.ArrowException, ValueError) as exc:
                raise InvalidInput(
                    f"The column types of {rows} differ from the first chunk's and cannot be "
                    f"converted ({exc}); score a Parquet file, or pass a larger chunk size."
                ) from exc
        if self._sink is None:
            self._sink = (
                pq.ParquetWriter(self.path, self.schema, use_dictionary=_dictionary(self.schema))
                if self.fmt == "parquet"
                else pa_csv.CSVWriter(self.path, _plain(self.schema))
            )
        if self.fmt == "csv":
            table = table.cast(_plain(self.schema))
        self._sink.write_table(table)

    def close(self) -> None:
        if self._sink is not None:
            self._sink.close()
            self._sink = None


def _dictionary(schema: pa.Schema) -> list[str]:
    """Columns worth dictionary encoding: not the unique ids nor floats (which are rarely
    repeated); trying and giving up on those doubles the time spent writing."""
    return [f.name for f in schema if f.name != ID_COLUMN and not pa.types.is_floating(f.type)]


def _plain(schema: pa.Schema) -> pa.Schema:
    """``schema`` with dictionary (categorical) columns as their values: CSV has no codes."""
    return pa.schema(
        [f.with_type(f.type.value_type) if pa.types.is_dictionary(f.type) else f for f in schema]
    )
