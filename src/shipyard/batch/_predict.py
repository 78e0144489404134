"""One chunk in, one scored chunk out: the step shared by the pandas and the Spark engines."""

from __future__ import annotations

import os
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from shipyard.errors import InvalidInput, SchemaViolation
from shipyard.packaging import LoadedModel, flat_predictions

ID_COLUMN = "prediction_id"
PREDICTION_COLUMN = "prediction"
MODEL_COLUMN = "model"
VERSION_COLUMN = "version"

# Two hex digits per byte value, to turn random bytes into ids without a Python loop.
_HEX = np.array([f"{i:02x}".encode() for i in range(256)], dtype="S2")


def output_columns(loaded: LoadedModel) -> list[str]:
    """The columns scoring appends to the input's, in order.

    >>> output_columns(loaded)  # doctest: +SKIP
    ['prediction_id', 'prediction', 'proba_churn', 'proba_stay', 'model', 'version']
    """
    return [ID_COLUMN, PREDICTION_COLUMN, *proba_columns(loaded), MODEL_COLUMN, VERSION_COLUMN]


def proba_columns(loaded: LoadedModel) -> list[str]:
    """``proba_<class>`` for each class of a classifier with ``predict_proba``; else none."""
    if not _has_proba(loaded) or not loaded.classes:
        return []
    return [f"proba_{c}" for c in loaded.classes]


def check_columns(loaded: LoadedModel, columns: list[str], *, source: str) -> None:
    """Refuse an input that lacks a schema column or already has an output column."""
    missing = [name for name in loaded.schema.names() if name not in columns]
    if missing:
        raise InvalidInput(
            f"'{source}' lacks the column(s) {', '.join(map(repr, missing))} that "
            f"{loaded.name} v{loaded.version} needs; add them (its input schema has "
            f"{', '.join(loaded.schema.names())})."
        )
    taken = [name for name in output_columns(loaded) if name in columns]
    if taken:
        raise InvalidInput(
            f"'{source}' already has the column(s) {', '.join(map(repr, taken))} that scoring "
            "writes; rename or drop them first."
        )


def model_input(loaded: LoadedModel, chunk: pd.DataFrame, *, rows: str) -> pd.DataFrame:
    """The schema's columns of ``chunk``, checked and coerced; ``rows`` names the rows in errors."""
    try:
        return loaded.schema.coerce(chunk[loaded.schema.names()])
    except SchemaViolation as exc:
        fields = sorted({str(e["field"]) for e in exc.details.get("errors", [])})
        raise SchemaViolation(
            f"{rows} do not match the input schema of {loaded.name} v{loaded.version} "
            f"(field(s) {', '.join(map(repr, fields))}): {exc.message}",
            rows=rows,
            **exc.details,
        ) from exc


def predict_with_proba(
    loaded: LoadedModel, X: pd.DataFrame
) -> tuple[np.ndarray, np.ndarray | None]:
    """``loaded.predict(X)`` and ``loaded.predict_proba(X)`` for a coerced ``X``, exactly.

    A scikit-learn pipeline's transformers run once, not once per method: ``Pipeline.predict``
    is its final step's ``predict`` on the transformed input, so the results are the same.
    """
    prepared = loaded.prepare(X, validate=False)
    model = loaded.model
    if not _has_proba(loaded):
        return flat_predictions(model.predict(prepared)), None
    features, final = prepared, model
    if _is_pipeline(model) and len(model.steps) > 1:
        features, final = _transform(model, prepared), model[-1]
    both = _one_pass(final, features)
    if both is not None:
        return both
    return flat_predictions(final.predict(features)), np.asarray(final.predict_proba(features))


def _transform(pipeline: Any, X: Any) -> Any:
    """``X`` through every step but the last, as ``Pipeline.predict`` does. Not
    ``pipeline[:-1].transform``: that checks the slice is fitted, which fails when its last
    step is a stateless transformer of the user's (no fitted attributes to find)."""
    for _, step in pipeline.steps[:-1]:
        if step is not None and step != "passthrough":
            X = step.transform(X)
    return X


def _one_pass(final: Any, features: Any) -> tuple[np.ndarray, np.ndarray] | None:
    """Both outputs of a HistGradientBoostingClassifier from one pass over its trees, or None.

    Its ``predict`` and ``predict_proba`` each walk every tree (``_raw_predict``), which is
    most of the scoring time. This repeats the two methods' bodies in scikit-learn 1.4-1.9 on
    one raw prediction; it uses private attributes, so anything unexpected falls back to the
    two public calls, and tests/batch checks the result against them.
    """
    try:
        from sklearn.ensemble import HistGradientBoostingClassifier
    except ImportError:  # pragma: no cover - scikit-learn is a dependency
        return None
    if type(final) is not HistGradientBoostingClassifier:
        return None
    raw_predict, loss = getattr(final, "_raw_predict", None), getattr(final, "_loss", None)
    if raw_predict is None or loss is None or not hasattr(loss, "predict_proba"):
        return None
    raw = raw_predict(features)
    if raw.ndim != 2:
        return None
    proba = np.asarray(loss.predict_proba(raw))
    # HistGradientBoostingClassifier.predict: "> 0", not ">= 0", like argmax([0.5, 0.5]) == 0.
    encoded = (raw.ravel() > 0).astype(int) if raw.shape[1] == 1 else np.argmax(raw, axis=1)
    return np.asarray(final.classes_[encoded]), proba


def new_ids(n: int) -> np.ndarray:
    """``n`` random UUID4s as 32-character hex strings (``uuid.uuid4().hex``, vectorised).

    A Python loop over ``uuid.uuid4()`` costs about a second per million rows.
    """
    return _hex_ids(n).view("S32").ravel().astype(str)


def new_id_array(n: int) -> pa.Array:
    """``new_ids(n)`` as an Arrow string array, built straight from the hex bytes.

    Every id is 32 ASCII bytes, so the array is the bytes plus evenly spaced offsets: no
    Python strings and no UTF-32 round trip (10 ms -> 1 ms per 50,000 ids).
    """
    if n > _MAX_IDS_PER_ARRAY:  # 32-bit offsets: split, one piece per 2**25 ids
        pieces = [
            new_id_array(min(_MAX_IDS_PER_ARRAY, n - start))
            for start in range(0, n, _MAX_IDS_PER_ARRAY)
        ]
        return pa.chunked_array(pieces, type=pa.string())
    offsets = np.arange(0, 32 * (n + 1), 32, dtype=np.int32)
    return pa.StringArray.from_buffers(n, pa.py_buffer(offsets), pa.py_buffer(_hex_ids(n)))


_MAX_IDS_PER_ARRAY = 2**25


def _hex_ids(n: int) -> np.ndarray:
    """``n`` UUID4s in hex, as one contiguous (n, 16) array of 2-byte strings."""
    raw = np.frombuffer(os.urandom(16 * n), dtype=np.uint8).reshape(n, 16).copy()
    raw[:, 6] = (raw[:, 6] & 0x0F) | 0x40  # version 4
    raw[:, 8] = (raw[:, 8] & 0x3F) | 0x80  # RFC 4122 variant
    return np.ascontiguousarray(_HEX[raw])


def scored_columns(loaded: LoadedModel, X: pd.DataFrame) -> dict[str, Any]:
    """The output columns for the coerced rows ``X``, as arrays, in ``output_columns`` order."""
    prediction, proba = predict_with_proba(loaded, X)
    n = len(X)
    out: dict[str, Any] = {ID_COLUMN: new_ids(n), PREDICTION_COLUMN: prediction}
    if proba is not None:
        for j, name in enumerate(proba_columns(loaded)):
            out[name] = proba[:, j]
    out[MODEL_COLUMN] = np.full(n, loaded.name, dtype=object)
    out[VERSION_COLUMN] = np.full(n, loaded.version, dtype=np.int64)
    return out


def scored_arrow(loaded: LoadedModel, X: pd.DataFrame) -> pa.Table:
    """``scored_columns`` as an Arrow table (the file engine's output), built column by column
    in Arrow: the ids from their bytes, ``model`` and ``version`` repeated by Arrow."""
    prediction, proba = predict_with_proba(loaded, X)
    n = len(X)
    columns: dict[str, Any] = {ID_COLUMN: new_id_array(n), PREDICTION_COLUMN: prediction}
    if proba is not None:
        for j, name in enumerate(proba_columns(loaded)):
            columns[name] = proba[:, j]
    columns[MODEL_COLUMN] = pa.repeat(pa.scalar(loaded.name, pa.string()), n)
    columns[VERSION_COLUMN] = np.full(n, loaded.version, dtype=np.int64)
    return pa.table(columns)


def _has_proba(loaded: LoadedModel) -> bool:
    # The same rule as LoadedModel.predict_proba.
    return loaded.manifest.task == "classification" and hasattr(loaded.model, "predict_proba")


def _is_pipeline(model: Any) -> bool:
    try:
        from sklearn.pipeline import Pipeline
    except ImportError:  # pragma: no cover - scikit-learn is a dependency
        return False
    return isinstance(model, Pipeline)
