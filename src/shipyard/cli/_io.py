"""Reading user-supplied files (tables, pickled models) with clear errors."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd

from shipyard.errors import InvalidInput


def read_table(path: Path) -> pd.DataFrame:
    """A Parquet or CSV file as a DataFrame."""
    if not path.is_file():
        raise InvalidInput(f"No such file: '{path}'.")
    suffix = path.suffix.lower()
    try:
        if suffix in (".parquet", ".pq"):
            return pd.read_parquet(path)
        if suffix in (".csv", ".txt"):
            return pd.read_csv(path)
    except (ValueError, OSError, pd.errors.ParserError) as exc:
        raise InvalidInput(f"Cannot read '{path}' as {suffix[1:]}: {exc}") from exc
    raise InvalidInput(f"'{path}' is neither Parquet (.parquet) nor CSV (.csv).")


def read_model_file(path: Path) -> Any:
    """Unpickle the user's own model file (joblib or pickle)."""
    if not path.is_file():
        raise InvalidInput(f"No such file: '{path}'.")
    import joblib

    try:
        return joblib.load(path)
    except Exception as exc:  # joblib raises many types for a file that is not a pickle
        raise InvalidInput(
            f"Cannot load '{path}' as a joblib/pickle model file ({type(exc).__name__}). "
            "Save it with joblib.dump(model, path)."
        ) from exc


def iter_table_chunks(path: Path, *, rows: int = 100_000) -> tuple[int | None, Iterator[Any]]:
    """Stream a Parquet or CSV file in chunks of about ``rows`` rows, for bounded memory.

    Returns the total row count when known cheaply (Parquet metadata), and the chunk iterator
    (pyarrow record batches for Parquet, DataFrames for CSV).
    """
    if not path.is_file():
        raise InvalidInput(f"No such file: '{path}'.")
    suffix = path.suffix.lower()
    if suffix in (".parquet", ".pq"):
        import pyarrow as pa
        import pyarrow.parquet as pq

        # pre_buffer=False streams pages; the default buffers the whole file (monitoring._window).
        try:
            pf = pq.ParquetFile(path, pre_buffer=False, buffer_size=1 << 20)
        except (pa.ArrowInvalid, OSError) as exc:
            raise InvalidInput(f"Cannot read '{path}' as Parquet: {exc}") from exc
        return pf.metadata.num_rows, iter(pf.iter_batches(batch_size=rows))
    if suffix in (".csv", ".txt"):
        try:
            reader = pd.read_csv(path, chunksize=rows)
        except (ValueError, OSError, pd.errors.ParserError) as exc:
            raise InvalidInput(f"Cannot read '{path}' as CSV: {exc}") from exc
        return None, iter(reader)
    raise InvalidInput(f"'{path}' is neither Parquet (.parquet) nor CSV (.csv).")
