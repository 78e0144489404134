"""Checking ground-truth labels before they enter the prediction log.

>>> ids, labels, stamps = check_feedback_frame(
...     pd.DataFrame({"prediction_id": ["a", "b"], "label": [1, 0]}))
>>> labels, stamps
([1, 0], None)
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import orjson
import pandas as pd

from shipyard.errors import InvalidInput

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
