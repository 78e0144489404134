"""Ground-truth labels: checked, joined by ``prediction_id`` to logged predictions, written to
the log (``record_feedback``), and read back with their predictions (``join_feedback``; with
the inputs each prediction was made from, in the order they were recorded, ``labelled_rows``).

>>> ids, labels, stamps = check_feedback_frame(
...     pd.DataFrame({"prediction_id": ["a", "b"], "label": [1, 0]}))
>>> labels, stamps
([1, 0], None)
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pandas as pd
import pyarrow as pa

from shipyard.errors import InvalidInput
from shipyard.names import check_name
from shipyard.predlog._location import Location, as_location
from shipyard.predlog._reader import frame_of, read_window
from shipyard.predlog._wal import FEEDBACK, PartitionKey
from shipyard.predlog._writer import WalWriter


@dataclass(frozen=True)
class FeedbackResult:
    """What happened to a batch of labels: stored for ``matched`` ids, refused for unknown ones.

    ``unknown_ids`` lists up to 100 of the unknown ids, to show the user.
    """

    matched: int
    unknown: int
    unknown_ids: list[str] = field(default_factory=list)


def record_feedback(
    wal: WalWriter, model: str, frame: pd.DataFrame, loc: Location | None = None
) -> FeedbackResult:
    """Write the labels of ``frame`` whose ids ``model`` logged predictions for (see
    ``PredictionLog.record_feedback_frame``); ``loc`` is where the log's Parquet is."""
    check_name(model)
    ids, labels, stamps = check_feedback_frame(frame)
    known = _known_ids(loc if loc is not None else Location.local(wal.root), model, ids)
    keep = [i for i, pid in enumerate(ids) if pid in known]
    unknown = [pid for pid in ids if pid not in known]
    if keep:
        data = feedback_lines(ids, labels, stamps, keep, time.time())
        wal.append_lines(PartitionKey(FEEDBACK, model, None), data, len(keep))
    return FeedbackResult(matched=len(keep), unknown=len(unknown), unknown_ids=unknown[:100])


def _known_ids(root: Path | Location, model: str, ids: list[str]) -> set[str]:
    con = read_window(root, model).connect()
    try:
        con.register("_ids", pa.table({"prediction_id": pa.array(ids, pa.string())}))
        rows = con.execute(
            "SELECT DISTINCT prediction_id FROM _ids SEMI JOIN "
            "(SELECT prediction_id FROM predictions WHERE status = 'ok') USING (prediction_id)"
        ).fetchall()
    finally:
        con.close()
    return {row[0] for row in rows}


def join_feedback(
    root: str | Path | Location,
    model: str,
    *,
    version: int,
    start: datetime,
    end: datetime,
    storage_options: dict[str, Any] | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The accepted predictions of one version in ``[start, end)`` (``prediction_id``, ``ts``,
    ``prediction``, ``proba__<class>``) and every label recorded for them (``prediction_id``,
    ``label``, ``ts``).

    >>> predictions, labels = join_feedback(root, "churn", version=3,
    ...                                     start=monday, end=tuesday)  # doctest: +SKIP
    """
    where = (
        f"version = {int(version)} AND status = 'ok' "
        f"AND epoch(ts) >= {start.timestamp()} AND epoch(ts) < {end.timestamp()}"
    )
    con = read_window(as_location(root, storage_options), model, feedback=True).connect()
    try:
        columns = frame_of(con, "SELECT * FROM predictions LIMIT 0").columns
        if "prediction" not in columns:
            return _empty_predictions(), _empty_labels()
        probas = [c for c in columns if c.startswith("proba__")]
        select = ", ".join(["prediction_id", "ts", "prediction", *(f'"{c}"' for c in probas)])
        predictions = frame_of(con, f"SELECT {select} FROM predictions WHERE {where}")
        labels = frame_of(
            con,
            "SELECT * FROM feedback WHERE prediction_id IN "
            f"(SELECT prediction_id FROM predictions WHERE {where})",
        )
    finally:
        con.close()
    if "label" not in labels.columns:  # no label was ever recorded for this model
        return predictions, _empty_labels()
    return predictions, labels[["prediction_id", "label", "ts"]]


@dataclass(frozen=True)
class LabelledRows:
    """Labels of a model's logged predictions with the inputs each was made from, oldest
    first: by when the label was recorded, a request's labels by prediction id (a server's
    ids start with their clock).

    ``inputs`` has one row per label, the logged input columns as the request sent them;
    ``stamps`` is when each label was recorded (epoch seconds).
    """

    inputs: pd.DataFrame
    labels: list[Any]
    stamps: list[float]

    def __len__(self) -> int:
        return len(self.labels)


def labelled_rows(
    root: str | Path | Location,
    model: str,
    *,
    since: float | None = None,
    until: float | None = None,
    last: int | None = None,
) -> LabelledRows:
    """The labels recorded for ``model``'s predictions in ``[since, until)`` (epoch seconds;
    default: all), or the ``last`` of them, with their predictions' inputs, oldest first.
    A prediction answered twice under one id (a shadow's answer) counts once.

    >>> found = labelled_rows(root, "fraud", since=version.created_at.timestamp())  # doctest: +SKIP
    >>> len(found), found.inputs.columns.tolist()                                 # doctest: +SKIP
    (812, ['a', 'b'])
    """
    labels = "SELECT prediction_id, label, ts FROM feedback WHERE true"
    if since is not None:
        labels += f" AND epoch(ts) >= {float(since)!r}"
    if until is not None:
        labels += f" AND epoch(ts) < {float(until)!r}"
    if last is not None:
        labels += f" ORDER BY ts DESC, prediction_id DESC LIMIT {int(last)}"
    con = read_window(as_location(root), model, feedback=True).connect()
    try:
        if "label" not in frame_of(con, "SELECT * FROM feedback LIMIT 0").columns:
            return LabelledRows(pd.DataFrame(), [], [])  # no label recorded yet
        found = frame_of(
            con,
            f"WITH f AS ({labels}) "
            "SELECT p.*, f.label AS __label, epoch(f.ts) AS __stamp FROM f JOIN ("
            "  SELECT * FROM predictions WHERE status = 'ok'"
            "  AND prediction_id IN (SELECT prediction_id FROM f)"
            "  QUALIFY row_number() OVER (PARTITION BY prediction_id ORDER BY ts) = 1"
            ") p USING (prediction_id) ORDER BY f.ts, p.prediction_id",
        )
    finally:
        con.close()
    inputs = [c for c in found.columns if c.startswith("in__")]
    return LabelledRows(
        found[inputs].rename(columns=lambda c: c[len("in__") :]).reset_index(drop=True),
        found["__label"].tolist(),
        found["__stamp"].astype(float).tolist(),
    )


def _empty_predictions() -> pd.DataFrame:
    return pd.DataFrame({"prediction_id": [], "ts": [], "prediction": []})


def _empty_labels() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "prediction_id": pd.Series([], dtype=object),
            "label": pd.Series([], dtype=object),
            "ts": pd.Series([], dtype="datetime64[us, UTC]"),
        }
    )


_LABEL_TYPES = (str, bool, int, float)


def _type_name(values: pd.Series) -> str:
    odd = next((v for v in values if not isinstance(v, _LABEL_TYPES)), None)
    return str(values.dtype) if odd is None else type(odd).__name__


def check_feedback_frame(frame: Any) -> tuple[list[str], list[Any], list[float] | None]:
    """Validate a labels frame; return its ids, labels and epoch-second stamps (or None)."""
    if not isinstance(frame, pd.DataFrame):
        raise InvalidInput(f"Feedback must be a pandas DataFrame. Got {type(frame).__name__}.")
    missing = [c for c in ("prediction_id", "label") if c not in frame.columns]
    if missing:
        raise InvalidInput(
            f"Feedback needs the columns 'prediction_id' and 'label'; missing {missing}. "
            f"Got the columns {[str(c) for c in frame.columns]}."
        )
    if frame.empty:
        raise InvalidInput("Feedback is empty: give at least one (prediction_id, label) row.")

    ids = frame["prediction_id"].tolist()
    bad_ids = sum(1 for v in ids if not isinstance(v, str) or not v)
    if bad_ids:
        raise InvalidInput(
            f"The 'prediction_id' column of feedback must hold non-empty strings; {bad_ids} "
            f"of {len(ids)} rows do not (column type {frame['prediction_id'].dtype})."
        )

    column = frame["label"]
    if isinstance(column.dtype, pd.CategoricalDtype):
        column = column.astype(object)
    labels = [v.item() if isinstance(v, np.generic) else v for v in column.tolist()]
    if any(not isinstance(v, _LABEL_TYPES) for v in labels if v is not None):
        raise InvalidInput(
            "The 'label' column of feedback must hold strings, numbers or booleans. "
            f"Got {_type_name(pd.Series(labels, dtype=object))} instead."
        )
    missing_labels = sum(
        1 for v in labels if v is None or (isinstance(v, float) and not math.isfinite(v))
    )
    if missing_labels:
        raise InvalidInput(
            f"The 'label' column of feedback has {missing_labels} missing or non-finite values; "
            "drop those rows or fill them in."
        )

    stamps = _stamps(frame["ts"]) if "ts" in frame.columns else None
    return ids, labels, stamps


def _stamps(column: pd.Series) -> list[float]:
    if pd.api.types.is_datetime64_any_dtype(column.dtype):
        if column.dt.tz is None:
            column = column.dt.tz_localize("UTC")  # naive times are UTC, as everywhere in the log
        if column.isna().any():
            raise InvalidInput("The 'ts' column of feedback has missing times.")
        nanos = column.dt.tz_convert("UTC").astype("int64")
        return (nanos / 1e9).tolist()
    if pd.api.types.is_numeric_dtype(column.dtype) and not pd.api.types.is_bool_dtype(column):
        values = column.astype(float)
        if not np.isfinite(values).all():
            raise InvalidInput("The 'ts' column of feedback has missing or non-finite times.")
        return values.tolist()
    raise InvalidInput(
        "The 'ts' column of feedback must hold datetimes or epoch seconds. "
        f"Got {column.dtype} instead."
    )


def feedback_lines(
    ids: list[str], labels: list[Any], stamps: list[float] | None, keep: list[int], now: float
) -> bytes:
    """WAL lines (JSON, newline-terminated) for the rows at ``keep``."""
    parts: list[bytes] = []
    for i in keep:
        body = {
            "prediction_id": ids[i],
            "ts": now if stamps is None else stamps[i],
            "label": labels[i],
        }
        parts += (orjson.dumps(body), b"\n")
    return b"".join(parts)
