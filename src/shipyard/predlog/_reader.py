"""Reading the prediction log: Parquet parts plus the records still in the WAL, each once.

``read_window`` is the one place that reads a model's log; ``query`` (the CLI's, the log's),
the feedback join and monitoring's windows (DuckDB or Spark) all start from it. It works
without an open log, beside a server that writes it. ``root`` is the log folder (its Parquet
beside it or where its ``store.json`` says, see ``_location``), or an object store URL (the
Parquet alone: records other processes have not compacted yet are not seen).

>>> window = read_window(root, "churn", version=3, start=monday, end=tuesday)  # doctest: +SKIP
>>> window.connect().sql("SELECT count(*) FROM predictions").fetchone()          # doctest: +SKIP
(1804,)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd
import pyarrow as pa

from shipyard.errors import InvalidInput
from shipyard.names import check_name
from shipyard.predlog._decode import add_partition_columns, concat, decode_segment
from shipyard.predlog._location import Location, as_location
from shipyard.predlog._parquet import (
    PREDICTIONS_DIR,
    View,
    connect,
    list_parts,
    parts_of_days,
)
from shipyard.predlog._wal import (
    FEEDBACK,
    INVALID_MODEL,
    PREDICTION,
    list_segments,
    parse_segment_name,
)


@dataclass(frozen=True)
class LogWindow:
    """One model's logged records as read by ``read_window``.

    ``parts`` are the Parquet part files of its predictions (Hive paths under ``base``:
    ``model=/version=/date=``; URIs such as ``s3://bucket/log/predictions/...`` when the
    log's Parquet is on an object store, read through ``filesystem``) and ``wal`` the
    predictions still in the WAL, as a table with the same Hive columns; no record is in
    both. ``feedback_parts`` and ``feedback_wal`` are the same for its labels (empty unless
    read with ``feedback=True``). ``version``, ``start`` and ``end`` are the window asked
    for: the sources hold that version only, ``connect`` applies the times.
    """

    root: Path | str
    model: str
    version: int | None
    start: datetime | None
    end: datetime | None
    parts: list[str]
    wal: pa.Table | None
    feedback: bool = False
    feedback_parts: list[str] = field(default_factory=list)
    feedback_wal: pa.Table | None = None
    location: Location | None = field(default=None, repr=False, compare=False)

    @property
    def base(self) -> Path | str:
        """The folder the part paths' Hive partitions start from (Spark's ``basePath``):
        a URI when the Parquet is on an object store."""
        loc = self._location()
        if loc.remote:
            return loc.uri(loc.path(PREDICTIONS_DIR))
        return Path(loc.base) / PREDICTIONS_DIR

    @property
    def filesystem(self) -> Any:
        """The fsspec filesystem of remote ``parts`` (None when they are on local disk)."""
        return self._location().fs

    def _location(self) -> Location:
        return self.location if self.location is not None else Location.local(self.root)

    def day_parts(self) -> list[str]:
        """The part files of the window's days, from the day before ``start`` (every part
        when the window is open-ended): what a reader that filters rows itself must read."""
        if self.start is None or self.end is None:
            return list(self.parts)
        return parts_of_days(self.parts, self.start.date() - timedelta(days=1), self.end.date())

    def connect(self) -> duckdb.DuckDBPyConnection:
        """An in-memory DuckDB with the view ``predictions`` (rows of the window's times), and
        ``feedback`` (every label of the model) when read. It may read only the log's folder.

        Views have the base columns (``prediction_id``, ``ts``, ``arm``, ``status``,
        ``reason``, ``latency_ms``), ``in__<input>``, ``prediction``, ``proba__<class>`` and
        the Hive columns ``model``, ``version``, ``date``; feedback: ``prediction_id``,
        ``ts``, ``label``, ``model``, ``date``.
        """
        conditions = []
        if self.start is not None:
            conditions.append(f"epoch(ts) >= {self.start.timestamp()!r}")
        if self.end is not None:
            conditions.append(f"epoch(ts) < {self.end.timestamp()!r}")
        views = {
            "predictions": View(PREDICTION, self.parts, self.wal, " AND ".join(conditions) or None)
        }
        if self.feedback:
            views["feedback"] = View(FEEDBACK, self.feedback_parts, self.feedback_wal)
        return connect(self._location(), views)


def read_window(
    root: str | Path | Location,
    model: str,
    *,
    version: int | None = None,
    start: datetime | None = None,
    end: datetime | None = None,
    feedback: bool = False,
    storage_options: dict[str, Any] | None = None,
) -> LogWindow:
    """Read ``model``'s log under ``root``: one ``version`` (default: all), predictions in
    ``[start, end)`` (default: all times), and with ``feedback`` its labels too.
    ``storage_options`` (fsspec's, e.g. keys) reach a log whose Parquet is remote.

    Sees every record appended so far, each exactly once: the WAL is read first, then the
    parts, skipping those of the segments just read (a segment compacted in between has its
    parts renamed already).
    """
    if model != INVALID_MODEL:  # the reserved partition of nonsense model names
        check_name(model)
    loc = as_location(root, storage_options)
    wal_tables: dict[str, list[pa.Table]] = {PREDICTION: []}
    if feedback:
        wal_tables[FEEDBACK] = []
    read_segments: set[str] = set()
    for path in list_segments(loc.folder / "wal") if loc.folder is not None else []:
        segment_id, key = parse_segment_name(path.name)
        if key.model != model or key.kind not in wal_tables:
            continue
        if version is not None and key.kind == PREDICTION and key.version != version:
            continue
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            continue
        read_segments.add(segment_id)
        table = decode_segment(key, data)
        if table is not None:
            wal_tables[key.kind].append(add_partition_columns(table, key))
    return LogWindow(
        root=loc.folder if loc.folder is not None else loc.where,
        model=model,
        version=version,
        start=start,
        end=end,
        parts=list_parts(loc, PREDICTION, model, read_segments, version),
        wal=concat(wal_tables[PREDICTION]),
        feedback=feedback,
        feedback_parts=list_parts(loc, FEEDBACK, model, read_segments) if feedback else [],
        feedback_wal=concat(wal_tables[FEEDBACK]) if feedback else None,
        location=loc,
    )


def query(
    root: str | Path | Location,
    sql: str,
    *,
    model: str,
    storage_options: dict[str, Any] | None = None,
) -> pd.DataFrame:
    """Run DuckDB SQL over ``model``'s views ``predictions`` and ``feedback`` (every version,
    every time), read from the log under ``root``.

    >>> query(root, "SELECT p.prediction, f.label FROM predictions p "
    ...       "JOIN feedback f USING (prediction_id)", model="churn")  # doctest: +SKIP
    """
    con = read_window(root, model, feedback=True, storage_options=storage_options).connect()
    try:
        return frame_of(con, sql)
    finally:
        con.close()


def frame_of(con: duckdb.DuckDBPyConnection, sql: str) -> pd.DataFrame:
    """The result of ``sql`` as a DataFrame (empty for a statement without a result)."""
    try:
        relation = con.sql(sql)
        if relation is None:  # a statement without a result (SET, CREATE VIEW ...)
            return pd.DataFrame()
        # Through Arrow: DuckDB's own .df() trips a pandas 3 deprecation warning.
        return relation.to_arrow_table().to_pandas()
    except duckdb.Error as exc:
        raise InvalidInput(f"The SQL query failed: {exc}") from exc
