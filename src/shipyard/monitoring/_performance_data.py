"""The inputs of performance monitoring: labels matched to a model's classes, and a window's
predictions and labels read from the prediction log.

Labels go through JSON and Parquet on their way to the log, and a column whose type changed
within one segment is stored as text, so a class ``1`` may come back as ``1``, ``1.0`` or
``"1"``: ``class_index`` matches them all to the class, and nothing else.

>>> class_index(pd.Series([1, "1", 1.0, "yes", 0]), [0, 1]).tolist()
[1, 1, 1, -1, 0]
>>> values, bad = numeric_labels(pd.Series([2.5, "3", "high", True], dtype=object))
>>> values[:2].tolist(), bad.tolist()
([2.5, 3.0], [False, False, True, True])
"""

from __future__ import annotations

import contextlib
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd


def _candidates(value: Any) -> list[str]:
    """Keys under which ``value`` may match a class, most exact first."""
    if isinstance(value, bool | np.bool_):
        text = str(bool(value))
        return [f"b:{text.lower()}", f"s:{text}", f"s:{text.lower()}"]
    if isinstance(value, int | np.integer):
        return [f"n:{int(value)}", f"s:{int(value)}"]
    if isinstance(value, float | np.floating):
        number = float(value)
        if number.is_integer():
            return [f"n:{int(number)}", f"s:{int(number)}", f"s:{number!r}"]
        return [f"n:{number!r}", f"s:{number!r}"]
    if isinstance(value, str):
        out = [f"s:{value}"]
        if value.lower() in ("true", "false"):
            out.append(f"b:{value.lower()}")
        with contextlib.suppress(ValueError):
            out += _candidates(float(value))[:1]
        return out
    return []


def class_index(values: pd.Series, classes: list[Any]) -> np.ndarray:
    """The index of each value's class in ``classes``; -1 for values that are not a class."""
    lookup: dict[str, int] = {}
    for i, cls in enumerate(classes):
        lookup.setdefault(_candidates(cls)[0], i)
    codes, uniques = pd.factorize(values.astype(object), use_na_sentinel=True)
    mapped = np.array(
        [next((lookup[k] for k in _candidates(u) if k in lookup), -1) for u in uniques] + [-1],
        dtype=np.int64,
    )
    return mapped[codes]  # code -1 (missing) picks the trailing -1


def numeric_labels(values: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """Labels as floats and a mask of those that are not finite numbers (text, booleans)."""
    if pd.api.types.is_numeric_dtype(values.dtype) and not pd.api.types.is_bool_dtype(values):
        numbers = values.to_numpy(dtype=float, na_value=np.nan)
        return numbers, ~np.isfinite(numbers)
    codes, uniques = pd.factorize(values.astype(object), use_na_sentinel=True)
    parsed = np.array([_number(u) for u in uniques] + [np.nan], dtype=float)
    numbers = parsed[codes]
    return numbers, ~np.isfinite(numbers)


def _number(value: Any) -> float:
    if isinstance(value, bool | np.bool_):
        return np.nan
    if isinstance(value, int | float | np.integer | np.floating):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return np.nan
    return np.nan


def labelled_window(
    root: Path, model: str, version: int, start: datetime, end: datetime
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The accepted predictions of one version in ``[start, end)`` (``prediction_id``, ``ts``,
    ``prediction``, ``proba_<class>``) and every label recorded for them (``prediction_id``,
    ``label``, ``ts``)."""
    from shipyard.predlog import join_feedback

    predictions, labels = join_feedback(root, model, version=version, start=start, end=end)
    names = [str(c) for c in predictions.columns]
    probas = {c: "proba_" + c.removeprefix("proba__") for c in names if c.startswith("proba__")}
    return predictions.rename(columns=probas), labels
