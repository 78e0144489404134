"""Reading a user's Parquet or CSV file: streamed in bounded chunks (``monitor run --current``,
batch scoring), or whole (``read_table``: registration, validation data).

``ParquetFile.iter_batches`` pre-buffers every row group it will read by default, so its
memory grows with the file (5 GB for 1M rows x 1,000 columns); ``open_parquet`` streams pages
through a small buffer per column instead (as fast here, and bounded by the chunk).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from shipyard.errors import InvalidInput

if TYPE_CHECKING:
    import pandas as pd
    import pyarrow.parquet as pq

#: Rows per chunk unless the caller says otherwise.
CHUNK_ROWS = 100_000
#: Read buffer of each Parquet column chunk: pages are streamed through it.
PARQUET_BUFFER = 1 << 20

PARQUET_SUFFIXES = (".parquet", ".pq")
CSV_SUFFIXES = (".csv", ".txt")


def open_parquet(path: Path) -> pq.ParquetFile:
    """A Parquet file opened for streaming (no pre-buffering of row groups).

    >>> import tempfile
    >>> path = Path(tempfile.mkdtemp()) / "batch.parquet"
    >>> pd.DataFrame({"x": range(250)}).to_parquet(path, row_group_size=100)
    >>> parquet = open_parquet(path)
    >>> parquet.metadata.num_rows, parquet.num_row_groups
    (250, 3)
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        return pq.ParquetFile(path, pre_buffer=False, buffer_size=PARQUET_BUFFER)
    except (pa.ArrowException, OSError) as exc:
        raise InvalidInput(f"Cannot read '{path}' as Parquet: {exc}") from exc


def file_chunks(path: Path, *, rows: int = CHUNK_ROWS) -> tuple[int | None, Iterator[Any]]:
    """Stream a Parquet or CSV file in chunks of about ``rows`` rows: the row count when the
    file says it (Parquet metadata), and the chunks (record batches, or DataFrames for CSV).
    Memory stays bounded by the chunk, whatever the file's size and row-group size.

    >>> import tempfile
    >>> path = Path(tempfile.mkdtemp()) / "batch.csv"
    >>> pd.DataFrame({"x": range(250)}).to_csv(path, index=False)
    >>> total, chunks = file_chunks(path, rows=100)
    >>> total, [len(chunk) for chunk in chunks]
    (None, [100, 100, 50])
    >>> total, chunks = file_chunks(path.with_suffix(".parquet"))
    Traceback (most recent call last):
    shipyard.errors.InvalidInput: No such file: '...batch.parquet'.
    """
    if not path.is_file():
        raise InvalidInput(f"No such file: '{path}'.")
    suffix = path.suffix.lower()
    if suffix in PARQUET_SUFFIXES:
        parquet = open_parquet(path)
        return parquet.metadata.num_rows, iter(parquet.iter_batches(batch_size=rows))
    if suffix in CSV_SUFFIXES:
        import pandas as pd

        try:
            reader = pd.read_csv(path, chunksize=rows)
        except (ValueError, OSError, pd.errors.ParserError) as exc:
            raise InvalidInput(f"Cannot read '{path}' as CSV: {exc}") from exc
        return None, iter(reader)
    raise InvalidInput(f"'{path}' is neither Parquet (.parquet) nor CSV (.csv).")


def read_table(path: Path) -> pd.DataFrame:
    """A whole Parquet or CSV file as a DataFrame (``InvalidInput`` saying what is wrong).

    >>> read_table(Path("fresh.parquet")).columns  # doctest: +SKIP
    Index(['age', 'plan', 'churned'], dtype='object')
    """
    import pandas as pd  # here: the CLI imports this module at start-up

    if not path.is_file():
        raise InvalidInput(f"No such file: '{path}'.")
    suffix = path.suffix.lower()
    try:
        if suffix in PARQUET_SUFFIXES:
            return pd.read_parquet(path)
        if suffix in CSV_SUFFIXES:
            return pd.read_csv(path)
    except (ValueError, OSError, pd.errors.ParserError) as exc:
        raise InvalidInput(f"Cannot read '{path}' as {suffix[1:]}: {exc}") from exc
    raise InvalidInput(f"'{path}' is neither Parquet (.parquet) nor CSV (.csv).")
