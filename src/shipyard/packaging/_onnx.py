"""ONNX export of scikit-learn models, with a parity check, and a fast ONNX predictor.

``export_onnx`` converts a fitted estimator or pipeline with skl2onnx, runs the ONNX model on
evaluation rows and compares it with the native model. It never raises for a conversion
problem: the reason is recorded in ``OnnxExport.error`` and the archive ships without ONNX::

    export = export_onnx(pipeline, X_train.head(100), X_valid, task="classification")
    if export.model_bytes is not None and export.error is None:
        predictor = OnnxPredictor(export.model_bytes, export.inputs).load()
        proba = predictor.predict_proba(X_new)

Inputs. A frame with only numeric columns becomes one ``[None, n]`` matrix (column order kept
in the model's metadata); otherwise each column is its own ``[None, 1]`` input, because
skl2onnx maps a ``ColumnTransformer``'s column names onto graph inputs of the same name.

Precision. skl2onnx feeds float32 by default: the scaler then computes in float32 and the
tree ensemble compares with float32 thresholds, so a value sitting on a threshold (a training
row, or any rounded value: ages, prices) can take the other branch. On the 14-numeric,
6-categorical HistGradientBoosting pipeline of the issue, float32 moved probabilities by up
to 0.09 on training rows (1.1% of rows by more than 1e-2) and 0.12 on unseen rows of
one-decimal data; double inputs stay within 1e-7. We convert with double inputs first and
fall back to float only when the double conversion fails or does not agree.

Converters. For this call only (``custom_conversion_functions``, nothing patched globally):
tree ensembles with double thresholds (``_onnx_trees``) and ``SimpleImputer`` as
``Where(IsNaN(X), statistics_, X)`` in the input's type (``_onnx_imputer``): skl2onnx's own
uses ai.onnx.ml's float-only ``Imputer``, so every pipeline with an imputer ran on float.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd

from shipyard.errors import InvalidInput, SchemaViolation
from shipyard.packaging._onnx_boosters import register_booster_converters
from shipyard.packaging._onnx_imputer import imputer_converters
from shipyard.packaging._onnx_run import SessionRunner
from shipyard.packaging._onnx_trees import ML_OPSET, tree_converters

__all__ = [
    "OnnxExport",
    "OnnxInput",
    "OnnxPredictor",
    "export_onnx",
    "flat_predictions",
    "verify_onnx",
]

_TASKS = ("classification", "regression")
_DTYPES: dict[str, Any] = {
    "double": np.float64,
    "float": np.float32,
    "int64": np.int64,
    "string": object,
}
#: Name of the single input when all columns form one matrix.
_MATRIX_INPUT = "X"
#: Frames up to this many rows are fed through one object array (see _feed_via_rows).
_ROW_ROUTE_MAX_ROWS = 512
#: Metadata key holding the column order of the matrix input (JSON list).
COLUMNS_KEY = "shipyard.columns"
#: Metadata key set to "false" when a classifier's second output holds decision scores, not
#: probabilities (the model has no predict_proba).
_PROBABILITIES_KEY = "shipyard.probabilities"
#: A row disagrees when ``|onnx - native| > atol + rtol * |native|`` (see ``export_onnx``).
_ATOL = 1e-4
_RTOL = 1e-5
_NON_NAME = re.compile(r"[^0-9A-Za-z_]")


@dataclass(frozen=True)
class OnnxInput:
    """One input of the ONNX graph and the frame column that feeds it.

    ``column`` is ``None`` for the single matrix input of an all-numeric frame; its column
    order is stored in the ONNX model's metadata under ``shipyard.columns``.
    """

    name: str
    column: str | None
    onnx_type: str  # "double" | "float" | "int64" | "string"

    def to_dict(self) -> dict[str, object]:
        """JSON-safe form, as written in the manifest."""
        return {"name": self.name, "column": self.column, "onnx_type": self.onnx_type}


@dataclass(frozen=True)
class OnnxExport:
    """The outcome of ``export_onnx``: the model (or why there is none) and how faithful it is.

    ``max_abs_diff`` is ``max |onnx - native|`` over the evaluation rows, on probabilities for
    classifiers and predictions for regressors; ``share_over_1e3`` is the share of those rows
    whose largest difference exceeds 1e-3. Classifiers without ``predict_proba`` (LinearSVC,
    RidgeClassifier) are compared on labels and leave both ``None``. ``error`` is one line
    when the conversion or the parity check failed; the bytes are kept when only the parity
    check failed.
    """

    model_bytes: bytes | None
    inputs: tuple[OnnxInput, ...]
    precision: str
    max_abs_diff: float | None
    share_over_1e3: float | None
    n_eval_rows: int
    error: str | None

    @classmethod
    def none(cls, reason: str, n_rows: int, precision: str = "double") -> OnnxExport:
        """No export, and why (one line): what a flavor without a converter returns."""
        return cls(None, (), precision, None, None, n_rows, reason)

    def to_manifest(self) -> dict[str, object]:
        """JSON-safe summary of everything but the bytes.

        >>> OnnxExport(None, (), "double", None, None, 0, "no converter").to_manifest()["error"]
        'no converter'
        """
        return {
            "converted": self.model_bytes is not None,
            "inputs": [inp.to_dict() for inp in self.inputs],
            "precision": self.precision,
            # JSON has no infinity: a NaN on one side only is reported by ``error`` instead.
            "max_abs_diff": _finite_or_none(self.max_abs_diff),
            "share_over_1e3": _finite_or_none(self.share_over_1e3),
            "n_eval_rows": self.n_eval_rows,
            "error": self.error,
        }


class OnnxPredictor:
    """Predictions of an exported model with onnxruntime, fed from a DataFrame or arrays.

    ``predict`` and ``predict_proba`` take a frame holding the training columns (in any
    order, extra columns ignored). The serving path can run the session once for both
    outputs, and skip pandas altogether when it holds plain column values::

        predictor = OnnxPredictor(export.model_bytes, export.inputs).load()
        labels, proba = predictor.predict_arrays(predictor.make_feed(frame))
        labels, proba = predictor.predict_arrays(
            predictor.feed_from_columns({"age": [41], "city": ["Oslo"]})
        )

    ``intra_op_num_threads`` defaults to 1: serving runs small batches on many workers,
    where more threads only add hand-off latency.
    """

    def __init__(
        self,
        model_bytes: bytes,
        inputs: Sequence[OnnxInput],
        *,
        intra_op_num_threads: int = 1,
    ) -> None:
        self.model_bytes = model_bytes
        self.inputs = inputs
        self.intra_op_num_threads = intra_op_num_threads

    def load(self) -> OnnxPredictor:
        """Create the onnxruntime session and the feeding plan; returns ``self``."""
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = self.intra_op_num_threads
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        # onnxruntime logs warnings (e.g. about unused initializers) to stderr by itself.
        options.log_severity_level = 3
        session = ort.InferenceSession(
            self.model_bytes, sess_options=options, providers=["CPUExecutionProvider"]
        )
        outputs = [out.name for out in session.get_outputs()]
        self._session = session
        self._runner = SessionRunner(session)  # run() without the Python-side checks
        self._output_name = outputs[0]
        metadata = session.get_modelmeta().custom_metadata_map
        scores_only = metadata.get(_PROBABILITIES_KEY) == "false"
        has_proba = len(outputs) > 1 and not scores_only
        self._proba_name: str | None = outputs[1] if has_proba else None
        self._both_outputs = outputs[:2] if has_proba else outputs[:1]

        # Everything make_feed needs is resolved here, once: the frame columns it reads, in
        # order, and the inputs fed from each dtype group (indices into those columns).
        matrix = [inp for inp in self.inputs if inp.column is None]
        if matrix:
            columns = json.loads(metadata[COLUMNS_KEY])
            self._matrix: tuple[str, Any] | None = (matrix[0].name, _DTYPES[matrix[0].onnx_type])
        else:
            columns = [inp.column for inp in self.inputs if inp.column is not None]
            self._matrix = None
        self._columns: list[str] = columns
        self._index = pd.Index(columns)
        self._identity = list(range(len(columns)))
        groups: dict[str, list[tuple[str, int]]] = {}
        for k, inp in enumerate(self.inputs if not matrix else ()):
            groups.setdefault(inp.onnx_type, []).append((inp.name, k))
        self._groups = [
            (_DTYPES[onnx_type], [name for name, _ in members], [k for _, k in members])
            for onnx_type, members in groups.items()
        ]
        self._single_row_shortcut = all(dtype is not np.int64 for dtype, _, _ in self._groups)
        return self

    def make_feed(self, X: pd.DataFrame) -> dict[str, np.ndarray]:
        """The arrays onnxruntime is fed for ``X``: one ``(n, 1)`` array per input.

        Missing strings become ``""``, an unseen category (all zeros after
        ``OneHotEncoder(handle_unknown="ignore")``); numeric NaN flows through as NaN.
        Raises ``SchemaViolation`` when a column is missing.
        """
        positions = self._positions(X)
        if self._matrix is not None:
            name, dtype = self._matrix
            frame = X if positions == self._identity else X.iloc[:, positions]
            return {name: frame.to_numpy(dtype=dtype)}
        if len(X) <= _ROW_ROUTE_MAX_ROWS:
            feed = self._feed_via_rows(X, positions)
            if feed is not None:
                return feed
        return self._feed_via_columns(X, positions)

    def feed_from_columns(self, columns: Mapping[str, Any]) -> dict[str, np.ndarray]:
        """The feed for plain column values, e.g. ``{"age": [41, 37], "city": ["Oslo", None]}``.

        The fast path for callers that parsed JSON themselves: no DataFrame is built.
        ``None`` becomes NaN in numeric columns and ``""`` in string ones.
        """
        missing = [c for c in self._columns if c not in columns]
        if missing:
            raise _missing_columns(missing)
        if self._matrix is not None:
            name, dtype = self._matrix
            arrays = [np.asarray(columns[c], dtype=dtype) for c in self._columns]
            return {name: np.column_stack(arrays)}
        feed: dict[str, np.ndarray] = {}
        for inp, column in zip(self.inputs, self._columns, strict=True):
            dtype = _DTYPES[inp.onnx_type]
            values = np.asarray(columns[column], dtype=dtype).reshape(-1, 1)
            feed[inp.name] = _as_strings(values) if dtype is object else values
        return feed

    def predict_arrays(
        self, feed: Mapping[str, np.ndarray]
    ) -> tuple[np.ndarray, np.ndarray | None]:
        """Labels (or values) and probabilities (or ``None``, as ``predict_proba``) in one run.

        ``feed`` maps each ``OnnxInput.name`` to a 2-D array of its ``onnx_type`` (``object``
        holding ``str`` for strings), as ``make_feed`` and ``feed_from_columns`` build it.
        """
        outputs = self._runner.run(self._both_outputs, feed)
        proba = outputs[1] if len(outputs) > 1 else None
        return flat_predictions(outputs[0]), proba

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        """Labels for a classifier, values for a regressor; one entry per row."""
        (output,) = self._runner.run([self._output_name], self.make_feed(X))
        return flat_predictions(output)

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray | None:
        """Class probabilities, ``(n_rows, n_classes)``; ``None`` for regressors and for
        classifiers without ``predict_proba`` (their ONNX graph outputs decision scores)."""
        if self._proba_name is None:
            return None
        (proba,) = self._runner.run([self._proba_name], self.make_feed(X))
        return np.asarray(proba)

    def _positions(self, X: pd.DataFrame) -> list[int]:
        """Where each needed column sits in ``X``."""
        # The common case, a frame with exactly the training columns, costs one comparison;
        # Index.get_indexer would cost ~60 us per call.
        if X.columns.equals(self._index):
            return self._identity
        lookup = {str(column): i for i, column in enumerate(X.columns)}
        missing = [c for c in self._columns if c not in lookup]
        if missing:
            raise _missing_columns(missing)
        return [lookup[c] for c in self._columns]

    def _feed_via_rows(self, X: pd.DataFrame, positions: list[int]) -> dict[str, np.ndarray] | None:
        """Feed built from one object array of ``X``; ``None`` when a value won't convert.

        With pandas 3, ``X[column]`` costs ~10 us, so twenty columns cost 200 us for a single
        row; ``to_numpy(object)`` costs ~70 us however many columns there are. Boxing every
        value makes it the slower route from about 1,000 rows on.
        """
        if len(X) == 1 and self._single_row_shortcut:
            # The row as one Series costs half of to_numpy(object) (~35 us against ~70 us).
            # pandas gives it the columns' common dtype, so int64 inputs (beyond 2**53 once
            # upcast to float) do not take this shortcut.
            values = X.iloc[0].to_numpy().reshape(1, -1)
        else:
            values = X.to_numpy(dtype=object)
        feed: dict[str, np.ndarray] = {}
        for dtype, names, ks in self._groups:
            block = values[:, [positions[k] for k in ks]]
            if dtype is object:
                for j, name in enumerate(names):
                    feed[name] = _as_strings(block[:, j : j + 1].copy())
                continue
            try:
                # Fortran order makes each (n, 1) column slice contiguous, as onnxruntime wants.
                converted = block.astype(dtype, order="F")
            except (TypeError, ValueError):  # e.g. pd.NA in a nullable integer column
                return None
            for j, name in enumerate(names):
                feed[name] = converted[:, j : j + 1]
        return feed

    def _feed_via_columns(self, X: pd.DataFrame, positions: list[int]) -> dict[str, np.ndarray]:
        """Feed built column by column: the route for large frames."""
        feed: dict[str, np.ndarray] = {}
        for inp, position in zip(self.inputs, positions, strict=True):
            dtype = _DTYPES[inp.onnx_type]
            column = X.iloc[:, position]
            if dtype is object:
                feed[inp.name] = _as_strings(column.to_numpy(dtype=object).reshape(-1, 1))
            else:
                feed[inp.name] = column.to_numpy(dtype=dtype, na_value=np.nan).reshape(-1, 1)
        return feed


def export_onnx(
    model: Any,
    X_sample: pd.DataFrame,
    X_eval: pd.DataFrame | None = None,
    *,
    task: str,
    atol: float = _ATOL,
    rtol: float = _RTOL,
) -> OnnxExport:
    """Convert a fitted scikit-learn model to ONNX and check it against the native model.

    ``X_sample`` gives the input columns and their types (a few rows suffice); ``X_eval``
    (default ``X_sample``) gives the rows on which ONNX and native outputs are compared.
    Parity holds when no row differs by more than ``atol + rtol * |native|``: the ``rtol``
    term lets regressors with large targets pass, since tree ensembles output float32.

    Input layouts and precisions are tried in order (double first); the first conversion
    whose parity holds is returned, else the closest one with ``error`` set, else an export
    without bytes whose ``error`` says why the conversion failed. Never raises for a
    conversion problem::

        export = export_onnx(pipeline, X_train.head(200), X_valid, task="classification")
        export.precision, export.max_abs_diff  # ("double", 8.7e-08) for the issue pipeline
    """
    if task not in _TASKS:
        raise InvalidInput(
            f"The 'task' parameter of export_onnx must be one of {_TASKS}. Got {task!r} instead."
        )
    X_eval = X_sample if X_eval is None else X_eval
    n_rows = len(X_eval)
    try:
        plans = _plans(X_sample)
    except _Unsupported as exc:
        return OnnxExport(None, (), "double", None, None, n_rows, str(exc))
    native = _Native.of(model, X_eval, task)
    best: OnnxExport | None = None
    conversion_errors: list[str] = []
    for plan in plans:
        try:
            model_bytes, inputs = _convert(model, plan, task)
            export, settled = _compare(
                model_bytes, inputs, plan.precision, X_eval, native, atol, rtol
            )
        # skl2onnx raises whatever its converters raise (RuntimeError, NotImplementedError,
        # ValueError, TypeError, its own MissingConverter...) and onnxruntime raises its own
        # types on load or run: all of them mean "this plan does not work".
        except Exception as exc:
            conversion_errors.append(f"ONNX conversion failed: {_one_line(exc)}")
            continue
        if settled:
            return export
        if best is None or _closer(export, best):
            best = export
    if best is not None:
        return best
    return OnnxExport(None, (), plans[0].precision, None, None, n_rows, conversion_errors[-1])


def verify_onnx(
    model: Any,
    model_bytes: bytes,
    inputs: Sequence[OnnxInput],
    X_eval: pd.DataFrame,
    *,
    task: str,
    precision: str,
    atol: float = _ATOL,
    rtol: float = _RTOL,
) -> OnnxExport:
    """The parity check of ``export_onnx`` for a graph converted elsewhere (e.g. by the
    framework's own exporter): runs it on ``X_eval`` and compares with ``model``.

    Never raises for a graph that does not load or run: ``error`` says why, without bytes.
    """
    native = _Native.of(model, X_eval, task)
    try:
        export, _ = _compare(model_bytes, tuple(inputs), precision, X_eval, native, atol, rtol)
    except Exception as exc:  # onnxruntime's own error types, on load or on run
        error = f"the ONNX model does not run: {_one_line(exc)}"
        return OnnxExport(None, tuple(inputs), precision, None, None, len(X_eval), error)
    return export


@dataclass(frozen=True)
class _Native:
    """What the ONNX model must reproduce on the evaluation rows, or why it cannot be had."""

    values: np.ndarray | None
    error: str | None
    on_proba: bool
    on_labels: bool

    @classmethod
    def of(cls, model: Any, X_eval: pd.DataFrame, task: str) -> _Native:
        # Classifiers without predict_proba (LinearSVC, RidgeClassifier) are compared on labels.
        on_proba = task == "classification" and hasattr(model, "predict_proba")
        on_labels = task == "classification" and not on_proba
        try:
            values = _native_output(model, X_eval, on_proba=on_proba)
        except Exception as exc:  # the model's own predict failing is reported, not raised
            return cls(None, f"native prediction failed: {_one_line(exc)}", on_proba, on_labels)
        return cls(values, None, on_proba, on_labels)


def _compare(
    model_bytes: bytes,
    inputs: tuple[OnnxInput, ...],
    precision: str,
    X_eval: pd.DataFrame,
    native: _Native,
    atol: float,
    rtol: float,
) -> tuple[OnnxExport, bool]:
    """The export with its parity figures, and whether it is final (parity holds, or cannot
    be checked); raises what onnxruntime raises when the graph does not load or run."""
    predictor = OnnxPredictor(model_bytes, inputs).load()
    labels, proba = predictor.predict_arrays(predictor.make_feed(X_eval))
    n_rows = len(X_eval)
    onnx_out = proba if native.on_proba else labels
    if native.values is None or onnx_out is None:
        error = native.error or "the ONNX model has no probabilities output"
        return OnnxExport(model_bytes, inputs, precision, None, None, n_rows, error), True
    check = (
        _label_parity(onnx_out, native.values)
        if native.on_labels
        else _parity(onnx_out, native.values, atol=atol, rtol=rtol)
    )
    export = OnnxExport(
        model_bytes,
        inputs,
        precision,
        check.max_abs_diff,
        check.share_over_1e3,
        n_rows,
        None if check.ok else f"parity check failed with {precision} inputs: {check}",
    )
    return export, check.ok


# --- input plans ----------------------------------------------------------------------------


class _Unsupported(Exception):
    """The frame has a column ONNX export cannot represent."""


@dataclass(frozen=True)
class _Plan:
    """One way to declare the graph inputs: a precision and a type per column."""

    precision: Literal["double", "float"]
    columns: tuple[str, ...]
    types: tuple[str, ...]  # onnx_type per column
    matrix: bool


def _plans(X: pd.DataFrame) -> list[_Plan]:
    """The input layouts to try, best first."""
    if not X.columns.is_unique:
        raise _Unsupported("ONNX export needs unique column names; rename the duplicates.")
    columns = tuple(str(c) for c in X.columns)
    if len(set(columns)) != len(columns):
        raise _Unsupported("ONNX export needs column names that stay unique as strings.")
    kinds = tuple(_kind(X[c]) for c in X.columns)
    plans = []
    for precision in ("double", "float"):
        numeric = tuple(precision if k in ("float", "int") else k for k in kinds)
        if all(k in ("float", "int") for k in kinds):
            plans.append(_Plan(precision, columns, numeric, matrix=True))
        plans.append(_Plan(precision, columns, numeric, matrix=False))
        if "int" in kinds:
            # Integer columns go in as floats first (scalers, trees and one-hot encoders of
            # codes all accept them); a converter that refuses floats may take int64.
            as_int = tuple(
                "int64" if k == "int" else t for k, t in zip(kinds, numeric, strict=True)
            )
            plans.append(_Plan(precision, columns, as_int, matrix=False))
    return plans


def _kind(column: pd.Series) -> str:
    """``float``, ``int`` or ``string``: how a column is fed to ONNX."""
    dtype = column.dtype
    if pd.api.types.is_bool_dtype(dtype) or pd.api.types.is_float_dtype(dtype):
        return "float"
    if pd.api.types.is_integer_dtype(dtype):
        return "int"
    if (
        pd.api.types.is_object_dtype(dtype)
        or pd.api.types.is_string_dtype(dtype)
        or isinstance(dtype, pd.CategoricalDtype)
    ):
        return "string"
    raise _Unsupported(
        f"Column {column.name!r} has dtype {dtype}, which ONNX export does not support; "
        "convert it to a number or a string first."
    )


# --- conversion -----------------------------------------------------------------------------


def _convert(model: Any, plan: _Plan, task: str) -> tuple[bytes, tuple[OnnxInput, ...]]:
    """Serialized ONNX model and its inputs for one plan; raises when skl2onnx fails."""
    from skl2onnx import convert_sklearn, get_latest_tested_opset_version
    from skl2onnx.common.data_types import (
        DoubleTensorType,
        FloatTensorType,
        Int64TensorType,
        StringTensorType,
    )

    tensor_types = {
        "double": DoubleTensorType,
        "float": FloatTensorType,
        "int64": Int64TensorType,
        "string": StringTensorType,
    }
    if plan.matrix:
        initial_types = [(_MATRIX_INPUT, tensor_types[plan.precision]([None, len(plan.columns)]))]
    else:
        # Raw column names, so that a ColumnTransformer's column names find their inputs;
        # they are sanitised after conversion.
        initial_types = [
            (column, tensor_types[t]([None, 1]))
            for column, t in zip(plan.columns, plan.types, strict=True)
        ]
    try:
        register_booster_converters()
    except ImportError as exc:
        raise RuntimeError(
            "XGBoost and LightGBM models need onnxmltools for their ONNX export: "
            "pip install onnxmltools"
        ) from exc
    options = _classifier_options(model) if task == "classification" else None
    imputers, imputer_shapes = imputer_converters()
    onnx_model = convert_sklearn(
        model,
        initial_types=initial_types,
        options=options,
        target_opset={"": get_latest_tested_opset_version(), "ai.onnx.ml": ML_OPSET},
        custom_conversion_functions={**tree_converters(), **imputers},
        custom_shape_calculators=imputer_shapes,
    )
    if task == "classification" and not hasattr(model, "predict_proba"):
        entry = onnx_model.metadata_props.add()
        entry.key, entry.value = _PROBABILITIES_KEY, "false"
    inputs: tuple[OnnxInput, ...]
    if plan.matrix:
        inputs = (OnnxInput(_MATRIX_INPUT, None, plan.precision),)
        entry = onnx_model.metadata_props.add()
        entry.key, entry.value = COLUMNS_KEY, json.dumps(list(plan.columns))
    else:
        inputs = _sanitise_inputs(onnx_model, plan)
    return onnx_model.SerializeToString(), inputs


def _classifier_options(model: Any) -> dict[int, dict[str, object]] | None:
    """Probabilities as a plain tensor rather than a list of dicts (ZipMap): faster, and
    comparable with predict_proba directly. Only where the converter has the option
    (LinearSVC's refuses it by name)."""
    from skl2onnx import get_model_alias
    from skl2onnx.common._registration import get_converter
    from sklearn.pipeline import Pipeline

    final = model
    while isinstance(final, Pipeline):
        final = final.steps[-1][1]
    try:
        allowed = get_converter(get_model_alias(type(final))).get_allowed_options() or {}
    except (RuntimeError, ValueError):  # no converter: the conversion itself will say so
        return None
    return {id(final): {"zipmap": False}} if "zipmap" in allowed else None


def _sanitise_inputs(onnx_model: Any, plan: _Plan) -> tuple[OnnxInput, ...]:
    """Rename graph inputs to ``[A-Za-z0-9_]`` names and pair them with their columns.

    skl2onnx already replaces most symbols (``"x 1"`` becomes ``"x_1"``) but keeps ``+`` and
    non-ASCII letters; plain ASCII names keep the model usable from any runtime and in URLs.
    skl2onnx keeps every declared input, unused ones too, in the declared order.
    """
    graph = onnx_model.graph
    declared = [value.name for value in graph.input]
    if len(declared) != len(plan.columns):
        raise RuntimeError(
            f"skl2onnx produced {len(declared)} graph inputs for {len(plan.columns)} columns"
        )
    # Names of everything but the inputs, then each new input name as it is chosen: "a b"
    # and "a_b" become "a_b" and "a_b_1" (renamed in one pass, so swaps are safe).
    taken = {name for node in graph.node for name in (*node.input, *node.output)}
    taken |= {init.name for init in graph.initializer} | {out.name for out in graph.output}
    taken -= set(declared)
    renames: dict[str, str] = {}
    for old, column in zip(declared, plan.columns, strict=True):
        name = _NON_NAME.sub("_", column) or "_"
        if name[0].isdigit():
            name = f"_{name}"
        base, i = name, 1
        while name in taken:
            name, i = f"{base}_{i}", i + 1
        taken.add(name)
        renames[old] = name
    for value in graph.input:
        value.name = renames[value.name]
    for node in graph.node:
        for i, name in enumerate(node.input):
            if name in renames:
                node.input[i] = renames[name]
    return tuple(
        OnnxInput(renames[old], column, onnx_type)
        for old, column, onnx_type in zip(declared, plan.columns, plan.types, strict=True)
    )


# --- parity ---------------------------------------------------------------------------------


def _native_output(model: Any, X: pd.DataFrame, *, on_proba: bool) -> np.ndarray:
    """What the ONNX model must reproduce: probabilities, or predictions (labels, values)."""
    if on_proba:
        return np.asarray(model.predict_proba(X), dtype=np.float64)
    return flat_predictions(model.predict(X))


@dataclass(frozen=True)
class _Parity:
    max_abs_diff: float | None  # None when labels are compared
    share_over_1e3: float | None
    n_disagree: int
    n_rows: int
    problem: str | None = None

    @property
    def ok(self) -> bool:
        return self.problem is None and self.n_disagree == 0 and self.n_rows > 0

    def __str__(self) -> str:
        if self.problem is not None:
            return self.problem
        if self.n_rows == 0:
            return "no evaluation rows"
        if self.max_abs_diff is None:
            return f"{self.n_disagree} of {self.n_rows} labels differ"
        return (
            f"max |onnx - native| = {self.max_abs_diff:.3g}, "
            f"{self.n_disagree} of {self.n_rows} rows outside tolerance"
        )


def _parity(onnx_out: np.ndarray, native: np.ndarray, *, atol: float, rtol: float) -> _Parity:
    """Row-wise comparison; a NaN on one side only counts as an infinite difference."""
    n_rows = len(native)
    if n_rows == 0:
        return _Parity(None, None, 0, 0)
    got = np.asarray(onnx_out, dtype=np.float64)
    if got.size != native.size:  # e.g. a multi-output model's list of probability arrays
        problem = f"ONNX output has shape {got.shape}, the model's {native.shape}"
        return _Parity(None, None, n_rows, n_rows, problem)
    got, want = got.reshape(n_rows, -1), native.reshape(n_rows, -1)
    both_nan = np.isnan(got) & np.isnan(want)
    diff = np.where(both_nan, 0.0, np.abs(got - want))
    diff = np.where(np.isnan(diff), np.inf, diff)
    row_diff = diff.max(axis=1)
    outside = (diff > atol + rtol * np.abs(np.nan_to_num(want))).any(axis=1)
    return _Parity(
        max_abs_diff=float(row_diff.max()),
        share_over_1e3=float((row_diff > 1e-3).mean()),
        n_disagree=int(outside.sum()),
        n_rows=n_rows,
    )


def _label_parity(onnx_labels: np.ndarray, native: np.ndarray) -> _Parity:
    """Exact label agreement, for classifiers without probabilities."""
    n_rows = len(native)
    if np.shape(onnx_labels) != native.shape:
        problem = f"ONNX labels have shape {np.shape(onnx_labels)}, the model's {native.shape}"
        return _Parity(None, None, n_rows, n_rows, problem)
    return _Parity(None, None, int((onnx_labels != native).sum()), n_rows)


def _closer(candidate: OnnxExport, current: OnnxExport) -> bool:
    """Whether ``candidate`` agrees with the native model better than ``current``."""

    def key(export: OnnxExport) -> float:
        return math.inf if export.max_abs_diff is None else export.max_abs_diff

    return key(candidate) < key(current)


# --- small helpers --------------------------------------------------------------------------


def _as_strings(values: np.ndarray) -> np.ndarray:
    """Object array of ``str``: onnxruntime rejects None, NaN and non-str values."""
    if all(type(v) is str for v in values.flat):
        return values
    cleaned = ["" if _is_missing(v) else str(v) for v in values.flat]
    return np.array(cleaned, dtype=object).reshape(values.shape)


def _missing_columns(missing: list[str]) -> SchemaViolation:
    return SchemaViolation(
        f"The input lacks the model's columns {missing}; send every column it was trained on.",
        errors=[{"field": column, "reason": "missing column"} for column in missing],
    )


def _is_missing(value: object) -> bool:
    return value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value))


def flat_predictions(output: Any) -> np.ndarray:
    """One entry per row, as scikit-learn's ``predict`` gives: ONNX regressors and CatBoost's
    multiclass ``predict`` return ``(n, 1)``.

    >>> flat_predictions(np.array([[1], [2]])).tolist()
    [1, 2]
    """
    array = np.asarray(output)
    return array.ravel() if array.ndim == 2 and array.shape[1] == 1 else array


def _one_line(exc: BaseException) -> str:
    """``Type: first line``, plus the cause's; capped, as skl2onnx errors can dump whole models."""

    def line(error: BaseException) -> str:
        text = str(error).strip()
        first = text.splitlines()[0] if text else ""
        first = first if len(first) <= 200 else first[:197] + "..."
        return f"{type(error).__name__}: {first}" if first else type(error).__name__

    cause = exc.__cause__
    return line(exc) if cause is None else f"{line(exc)} (caused by {line(cause)})"


def _finite_or_none(value: float | None) -> float | None:
    return value if value is not None and math.isfinite(value) else None
