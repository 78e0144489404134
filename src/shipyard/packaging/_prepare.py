"""Turn a fitted model and its data into a ``PreparedArchive`` (no database involved)."""

from __future__ import annotations

import io
import json
import os
import platform
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from shipyard.dataset import (
    Schema,
    infer_output_schema,
    infer_schema,
    profile_frame,
    training_checks,
)
from shipyard.errors import InvalidInput
from shipyard.packaging._archive import EVAL_ROWS, EVAL_TARGET, PreparedArchive
from shipyard.packaging._code import collect_code
from shipyard.packaging._environment import package_versions, requirements_lock
from shipyard.packaging._flavors import Flavor, flavor_for
from shipyard.packaging._load_check import CHECK_ROWS, LoadCheck
from shipyard.packaging._manifest import Lineage
from shipyard.packaging._metrics import evaluate
from shipyard.packaging._onnx import flat_predictions
from shipyard.packaging._runtime import RUNTIME_LOCK, runtime_lock

#: Rows of the output profile: predictions on this many rows are enough for a reference.
_OUTPUT_PROFILE_ROWS = 50_000


def as_frame(X: Any, *, what: str) -> tuple[pd.DataFrame, str]:
    """``X`` as a DataFrame, and whether the model sees a "frame" or a plain "array"."""
    if isinstance(X, pd.DataFrame):
        frame, kind = X, "frame"
    elif isinstance(X, np.ndarray) and X.ndim == 2:
        frame, kind = pd.DataFrame(X, columns=[f"x{i}" for i in range(X.shape[1])]), "array"
    else:
        raise InvalidInput(
            f"{what} must be a pandas DataFrame (or a 2-D numpy array); got {type(X).__name__}."
        )
    if frame.empty:
        raise InvalidInput(f"{what} is empty: it needs at least one row and one column.")
    return frame, kind


def _check_lengths(X: pd.DataFrame, y: Any, *, x_name: str, y_name: str) -> np.ndarray:
    y_arr = np.asarray(y)
    if y_arr.ndim != 1:
        raise InvalidInput(f"{y_name} must be one-dimensional; got shape {y_arr.shape}.")
    if len(y_arr) != len(X):
        raise InvalidInput(
            f"{x_name} has {len(X)} rows but {y_name} has {len(y_arr)}: they must have one "
            "label per row."
        )
    return y_arr


def prepare_archive(
    model: Any,
    *,
    X_train: Any,
    y_train: Any = None,
    X_eval: Any = None,
    y_eval: Any = None,
    lineage: Lineage | None = None,
    onnx: bool = True,
    code_paths: Sequence[str | os.PathLike[str]] = (),
    load_check: bool = True,
) -> PreparedArchive:
    """Validate the inputs and compute every member of the archive.

    The model's own modules (outside installed packages; see ``_code``) and ``code_paths``
    (files or package folders) become ``code/`` members; the installed distributions the
    model needs, closed over their requirements, become ``runtime.lock`` (``_runtime``). A
    model that needs code members, or that has classes pickled by value, is loaded from the
    archive in a fresh Python process first (``load_check``; ``False`` skips it): one that
    would not load elsewhere is refused.

    The model's flavor (``FLAVORS``) decides whether it is fitted, its task and classes, how
    it is stored and its ONNX export. Raises ``InvalidInput`` for a model no flavor packages,
    an unfitted model, an empty frame, X/y of different lengths, a model whose predict fails
    on the training rows,
    a code path that does not exist, or a model that fails the load check.
    """
    flavor = flavor_for(model)
    adapt = getattr(flavor, "adapt", None)
    if adapt is not None:  # a framework without scikit-learn's API (river): wrapped first
        model = adapt(model, y_train)
    flavor.check_fitted(model)
    code = collect_code(model, code_paths)
    check = LoadCheck.start(code) if load_check and code.needed else None
    try:
        prepared = _prepare(model, flavor, X_train, y_train, X_eval, y_eval, lineage, onnx)
        prepared.members.update(code.members)
        closure = runtime_lock(code.libraries, flavor.frameworks(model))
        prepared.members[RUNTIME_LOCK] = closure.encode()
        prepared.code_modules, prepared.pickled_by_value = code.modules, code.by_value
        if check is not None:
            rows = X_eval if X_eval is not None else X_train
            _check_elsewhere(check, model, prepared, as_frame(rows, what="X_train")[0])
    finally:
        if check is not None:
            check.close()
    return prepared


def _check_elsewhere(
    check: LoadCheck, model: Any, prepared: PreparedArchive, rows: pd.DataFrame
) -> None:
    """The fresh process must predict the first rows of ``rows`` as ``model`` does here."""
    sample = rows.head(CHECK_ROWS).reset_index(drop=True)
    coerced = Schema.model_validate(prepared.input_schema).coerce(sample)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        native = coerced.to_numpy() if prepared.input_kind == "array" else coerced
        expected = np.asarray(model.predict(native))
    check.run(prepared, sample, expected)


def _prepare(
    model: Any,
    flavor: Flavor,
    X_train: Any,
    y_train: Any,
    X_eval: Any,
    y_eval: Any,
    lineage: Lineage | None,
    onnx: bool,
) -> PreparedArchive:
    X_train_f, kind = as_frame(X_train, what="X_train")
    y_train_a: np.ndarray | None = None
    if y_train is not None:
        y_train_a = _check_lengths(X_train_f, y_train, x_name="X_train", y_name="y_train")
    if (X_eval is None) != (y_eval is None):
        raise InvalidInput("Pass X_eval and y_eval together (or neither).")
    X_eval_f: pd.DataFrame | None = None
    y_eval_a: np.ndarray | None = None
    if X_eval is not None:
        X_eval_f, _ = as_frame(X_eval, what="X_eval")
        y_eval_a = _check_lengths(X_eval_f, y_eval, x_name="X_eval", y_name="y_eval")
        if list(X_eval_f.columns) != list(X_train_f.columns):
            raise InvalidInput("X_eval must have the same columns, in the same order, as X_train.")

    task = flavor.task(model)
    classes = flavor.classes(model)

    def model_input(frame: pd.DataFrame) -> Any:
        return frame.to_numpy() if kind == "array" else frame

    _check_predictions(model, model_input(X_train_f.head(5)), task, classes)

    metrics: dict[str, float] = {}
    if X_eval_f is not None:
        metrics = evaluate(model, model_input(X_eval_f), y_eval_a, task=task)

    members = dict(flavor.save(model))
    members["requirements.lock"] = requirements_lock().encode()
    reference = {
        "inputs": profile_frame(X_train_f).model_dump(mode="json"),
        "outputs": _output_profile(
            model, model_input, X_eval_f if X_eval_f is not None else X_train_f, task, classes
        ),
    }
    members["reference_profile.json"] = json.dumps(reference).encode()
    if y_train_a is not None:
        checks = training_checks(X_train_f, y_train_a, task=task)
        members["data_checks.json"] = json.dumps(checks).encode()
    if X_eval_f is not None and y_eval_a is not None:
        members.update(_eval_members(model, model_input, X_eval_f, y_eval_a, task, classes))

    onnx_summary: dict[str, Any] | None = None
    if onnx and kind == "frame":
        export = flavor.export_onnx(model, X_train_f.head(200), X_eval_f, task=task)
        onnx_summary = export.to_manifest()
        if export.model_bytes is not None:
            members["model.onnx"] = export.model_bytes

    frameworks = package_versions(flavor.frameworks(model))
    return PreparedArchive(
        flavor=flavor.name,
        frameworks=frameworks,
        python=platform.python_version(),
        task=task,
        classes=classes,
        input_kind=kind,
        input_schema=infer_schema(X_train_f).model_dump(mode="json"),
        output_schema=infer_output_schema(y_train, task=task, classes=classes),
        metrics=metrics,
        lineage=lineage or Lineage(),
        onnx=onnx_summary,
        members=members,
    )


def _check_predictions(model: Any, rows: Any, task: str, classes: list[Any] | None) -> None:
    """The model predicts on a few training rows, one value per row (numbers for a regressor,
    its classes for a classifier); else one sentence, before anything is written."""
    name = type(model).__name__
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            predictions = flat_predictions(model.predict(rows))
    except Exception as exc:  # the model's own code: whatever it raises, say so in one line
        first = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else ""
        raise InvalidInput(
            f"The {name}'s predict failed on the first rows of X_train "
            f"({type(exc).__name__}: {first}); it must take the frame it was trained on."
        ) from exc
    if predictions.shape != (len(rows),):
        raise InvalidInput(
            f"The {name}'s predict must return one value per row; for {len(rows)} rows it "
            f"returned shape {predictions.shape}."
        )
    if task == "regression" and not np.issubdtype(predictions.dtype, np.number):
        raise InvalidInput(
            f"The {name}'s predict returns {predictions.dtype} values, not numbers: give it a "
            "classes_ attribute (the class labels) to register it as a classifier."
        )
    unknown = sorted({str(p) for p in predictions} - {str(c) for c in classes or []})
    if classes is not None and unknown:
        raise InvalidInput(
            f"The {name}'s predict returns labels {unknown} that are not among its classes "
            f"{classes}: its classes_ must list every label it predicts."
        )


def _output_profile(
    model: Any, model_input: Any, X: pd.DataFrame, task: str, classes: list[Any] | None
) -> dict[str, Any]:
    """Profile of the model's own outputs on reference rows, for prediction drift."""
    sample = X.head(_OUTPUT_PROFILE_ROWS)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # feature-name notices from some frameworks
        out = pd.DataFrame({"prediction": flat_predictions(model.predict(model_input(sample)))})
        if task == "classification" and hasattr(model, "predict_proba") and classes:
            proba = np.asarray(model.predict_proba(model_input(sample)), dtype=float)
            for i, cls in enumerate(classes):
                out[f"proba_{cls}"] = proba[:, i]
    if task == "classification":
        out["prediction"] = out["prediction"].astype(str)
    return profile_frame(out).model_dump(mode="json")


def _eval_members(
    model: Any,
    model_input: Any,
    X: pd.DataFrame,
    y: np.ndarray,
    task: str,
    classes: list[Any] | None,
) -> dict[str, bytes]:
    """The eval rows with their labels (``eval/rows.parquet``) and the model's outputs on
    them (``eval/outputs.parquet``: ``prediction``, ``proba_<class>``, the label): what
    ``shipyard validate`` falls back to without fresh data, and what a label-free performance
    estimate calibrates on, without unpickling the model. At most ``EVAL_ROWS`` rows (a
    seeded sample beyond)."""
    if len(X) > EVAL_ROWS:
        keep = np.sort(np.random.default_rng(0).choice(len(X), EVAL_ROWS, replace=False))
        X, y = X.iloc[keep], y[keep]
    X = X.reset_index(drop=True)
    rows = X.assign(**{EVAL_TARGET: y})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        outputs = pd.DataFrame({"prediction": flat_predictions(model.predict(model_input(X)))})
        if task == "classification" and hasattr(model, "predict_proba") and classes:
            proba = np.asarray(model.predict_proba(model_input(X)), dtype=float)
            for i, cls in enumerate(classes):
                outputs[f"proba_{cls}"] = proba[:, i]
    outputs[EVAL_TARGET] = y
    return {
        "eval/rows.parquet": _parquet(rows),
        "eval/outputs.parquet": _parquet(outputs),
    }


def _parquet(frame: pd.DataFrame) -> bytes:
    buffer = io.BytesIO()
    # Column names as strings (Parquet needs them); values as they are.
    frame.rename(columns=str).to_parquet(buffer, index=False)
    return buffer.getvalue()
