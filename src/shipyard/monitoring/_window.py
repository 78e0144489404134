"""Reading a monitoring window, from the prediction log or a file, in bounded chunks.

``window_chunks`` streams the window through DuckDB's record-batch reader (never the whole
window in memory); ``logged_window`` is the same rows as one DataFrame, for small windows.
Both read the log through ``shipyard.predlog.read_window``: Parquet parts plus records still
in the WAL.
``file_chunks`` (from ``shipyard.dataset``) streams a Parquet or CSV file (``--current``).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import datetime
from pathlib import Path

import pandas as pd

from shipyard.errors import NotFound

#: Rows per chunk read from the log.
CHUNK_ROWS = 100_000


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
    from shipyard.predlog import read_window

    window = read_window(root, model, version=int(version), start=start, end=end)
    con = window.connect()
    where = "FROM predictions WHERE status = 'ok'"  # of the version, in the window's times
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
