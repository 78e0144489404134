"""A model version ready to answer requests: its schema, its runtime, its batcher.

``ServedModel.coerce`` checks request rows against the schema: JSON rows and frames of numpy
columns whose values fit it become typed numpy columns (``Typed``, the fast path of ``_typed``),
anything else a DataFrame coerced by ``Schema.coerce``.
``ServedModel.score`` takes either and returns labels and probabilities. The native runtime
runs the model's own ``predict``/``predict_proba`` through a ``MicroBatcher``, which builds
one DataFrame per batch, and runs calls of fewer than ``_PARALLEL_ROWS`` rows with one OpenMP
thread (``one_thread``); the ONNX runtime feeds onnxruntime straight from the typed columns,
on the event loop for small requests (tens of microseconds, less than a thread hand-off).
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import os
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from shipyard.dataset import Schema
from shipyard.errors import ModelUnavailable, SchemaViolation
from shipyard.packaging import LoadedModel, OnnxInput, OnnxPredictor
from shipyard.serving._batcher import MicroBatcher
from shipyard.serving._inputs import Rows
from shipyard.serving._typed import Typed, TypedSchema
from shipyard.settings import ServeSettings

#: Up to this many rows, onnxruntime runs on the event loop: tens of microseconds, less than
#: handing the work to a thread and back.
_INLINE_ROWS = 64
#: Below this many rows, a native model call runs with one OpenMP thread (see ``one_thread``).
_PARALLEL_ROWS = 2_000

Scores = tuple[np.ndarray, np.ndarray | None]
#: What ``coerce`` returns and ``score`` takes: typed columns, or a coerced frame.
Coerced = Typed | pd.DataFrame
#: onnxruntime's numpy dtype per ONNX input type (``OnnxInput.onnx_type``).
_ONNX_DTYPES: dict[str, Any] = {
    "double": np.dtype(np.float64),
    "float": np.dtype(np.float32),
    "int64": np.dtype(np.int64),
    "string": np.dtype(object),
}
_FLOAT64 = np.dtype(np.float64)


def onnx_choice(model: LoadedModel, settings: ServeSettings) -> tuple[bool, str]:
    """Whether ``model`` runs on ONNX under ``settings.runtime``, and why (one line)."""
    summary = model.manifest.onnx or {}
    present = "model.onnx" in model.archive.members and bool(summary.get("converted"))
    raw_diff = summary.get("max_abs_diff")
    verified = present and summary.get("error") is None and raw_diff is not None
    diff = float(raw_diff) if raw_diff is not None else math.inf
    within = verified and diff <= settings.onnx_tolerance
    if settings.runtime == "native":
        return False, "native runtime requested"
    if not present:
        reason = "the archive has no ONNX export" + (
            f" ({summary['error']})" if summary.get("error") else ""
        )
    elif not verified:
        reason = f"the ONNX export did not pass its parity check ({summary.get('error')})"
    elif not within:
        reason = (
            f"the ONNX export differs from the native model by up to {diff:.3g}, more than "
            f"the tolerance {settings.onnx_tolerance:g}"
        )
    else:
        return True, f"verified ONNX export (max |onnx - native| = {diff:.3g})"
    if settings.runtime == "onnx":
        raise ModelUnavailable(
            f"{model.name} v{model.version} cannot run on ONNX: {reason}. Serve it with "
            "--runtime native or auto."
        )
    return False, reason


@dataclass(eq=False)
class ServedModel:
    """One loaded version and how it is run. ``eq=False``: identity matters for swaps."""

    loaded: LoadedModel
    runtime: str  # "onnx" | "native"
    runtime_reason: str
    settings: ServeSettings
    onnx: OnnxPredictor | None = None
    batcher: MicroBatcher | None = field(default=None, repr=False)
    typed: TypedSchema = field(init=False, repr=False)
    # (input name, schema position, dtype) per ONNX input fed by one column; [] for a model
    # fed one matrix of every column (``feed_from_columns``); None: feed from ``frame()``.
    _feed_plan: list[tuple[str, int, Any]] | None = field(init=False, repr=False)
    #: The classes as the log's probability keys (strings), built once.
    class_names: list[str] | None = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.typed = TypedSchema(self.schema)
        classes = self.classes
        self.class_names = None if classes is None else [str(c) for c in classes]
        self._feed_plan = None
        if self.onnx is not None and self.typed.usable:
            inputs = self.onnx.inputs
            position = self.typed.position
            if all(i.column is None for i in inputs):
                self._feed_plan = []
            elif all(i.column in position and i.onnx_type in _ONNX_DTYPES for i in inputs):
                self._feed_plan = [
                    (i.name, position[str(i.column)], _ONNX_DTYPES[i.onnx_type]) for i in inputs
                ]

    @classmethod
    def build(cls, loaded: LoadedModel, settings: ServeSettings) -> ServedModel:
        """Choose the runtime and prepare it (onnxruntime session, a warm-up prediction).

        Runs in a worker thread: it may take a while, and must not stall requests.
        """
        use_onnx, reason = onnx_choice(loaded, settings)
        predictor = None
        if use_onnx:
            inputs = [OnnxInput(**item) for item in (loaded.manifest.onnx or {})["inputs"]]
            predictor = OnnxPredictor(loaded.archive.members["model.onnx"], inputs).load()
        served = cls(loaded, "onnx" if use_onnx else "native", reason, settings, predictor)
        return served

    # -- facts -----------------------------------------------------------------------------
    @property
    def name(self) -> str:
        return self.loaded.name

    @property
    def version(self) -> int:
        return self.loaded.version

    @property
    def schema(self) -> Schema:
        return self.loaded.schema

    @property
    def classes(self) -> list[Any] | None:
        return self.loaded.classes if self.loaded.manifest.task == "classification" else None

    # -- scoring ---------------------------------------------------------------------------
    def coerce(self, raw: Rows | pd.DataFrame) -> Coerced:
        """``raw`` checked and converted to the training dtypes (``SchemaViolation`` if not).

        JSON rows and frames of numpy columns whose values fit the schema take the fast path
        (typed columns, no DataFrame); anything else, and every refusal, goes through
        ``Schema.coerce``.
        """
        if isinstance(raw, Rows):
            typed = self.typed.convert(raw)
            if typed is not None:
                return typed
            raw = raw.frame()
        elif isinstance(raw, pd.DataFrame):
            typed = self.typed.convert_frame(raw)
            if typed is not None:
                return typed
        return self.schema.coerce(raw)

    def feed(self, rows: Coerced) -> dict[str, np.ndarray]:
        """onnxruntime's inputs for coerced rows (the same arrays ``make_feed`` builds)."""
        assert self.onnx is not None
        if not isinstance(rows, Typed):
            return self.onnx.make_feed(rows)
        plan = self._feed_plan
        if plan:
            feed: dict[str, np.ndarray] = {}
            for name, position, dtype in plan:
                array = rows.onnx_column(position, dtype)
                if array is None:
                    return self.onnx.make_feed(rows.frame())
                feed[name] = array.reshape(-1, 1)
            return feed
        if plan is not None:  # one matrix of every (numeric) column
            columns = {}
            for j, name in enumerate(self.typed.names):
                array = rows.onnx_column(j, _FLOAT64)
                if array is None:
                    return self.onnx.make_feed(rows.frame())
                columns[name] = array
            return self.onnx.feed_from_columns(columns)
        return self.onnx.make_feed(rows.frame())

    def score_now(self, frame: Coerced) -> Scores:
        """Labels and probabilities for coerced rows, in the calling thread."""
        try:
            if self.onnx is not None:
                labels, proba = self.onnx.predict_arrays(self.feed(frame))
                return np.asarray(labels), proba
            if isinstance(frame, Typed):
                frame = frame.frame()
            model_input = self.loaded.prepare(frame, validate=False)
            model = self.loaded.model
            with one_thread() if len(frame) < _PARALLEL_ROWS else contextlib.nullcontext():
                if self.classes is not None and hasattr(model, "predict_proba"):
                    proba = np.asarray(model.predict_proba(model_input))
                    # Labels from the probabilities: one model call instead of two, and the
                    # same answer as predict() for scikit-learn classifiers.
                    labels = np.asarray(model.classes_)[proba.argmax(axis=1)]
                    return labels, proba
                return np.asarray(model.predict(model_input)), None
        except Exception as exc:  # the model's own error, raised on valid-looking rows
            raise _model_failed(exc) from exc

    async def score(self, frame: Coerced) -> Scores:
        """Labels and probabilities for coerced rows, without blocking the event loop."""
        if self.onnx is not None:
            if len(frame) <= _INLINE_ROWS:
                return self.score_now(frame)
            return await asyncio.to_thread(self.score_now, frame)
        if self.batcher is None:
            self.batcher = MicroBatcher(
                self.score_now,
                max_rows=self.settings.batch_max_rows,
                max_wait_s=self.settings.batch_max_wait_ms / 1000,
                combine=combine,
            )
        return await self.batcher.submit(frame)

    async def close(self) -> None:
        """Finish queued requests, then stop the batcher."""
        if self.batcher is not None:
            await self.batcher.close()


def combine(parts: list[Coerced]) -> Coerced:
    """One batch of the rows of ``parts``, in order (runs in the batcher's worker thread)."""
    if len(parts) == 1:
        return parts[0]
    if all(isinstance(part, Typed) for part in parts):
        typed = [part for part in parts if isinstance(part, Typed)]
        if all(part.schema is typed[0].schema for part in typed):
            return Typed.concat(typed)
    frames = [part.frame() if isinstance(part, Typed) else part for part in parts]
    return pd.concat(frames, ignore_index=True)


@contextlib.contextmanager
def one_thread() -> Iterator[None]:
    """OpenMP parallel regions started by the calling thread use one thread, inside the block.

    scikit-learn's HistGradientBoosting (and other OpenMP code) starts a team of one thread
    per available core for every call. For the few rows of a request that costs more than it
    saves, and where the other cores are busy (other workers, the load, other programs) the
    call waits for a thread that cannot run: a one-row call measured 2x slower on 2 busy
    cores. The limit is the calling thread's own (OpenMP keeps it per thread; BLAS is not
    touched), costs ~6 us, and is skipped when the process may use one core only (OpenMP
    then starts one thread anyway).
    """
    controller = _openmp_controller()
    if controller is None:
        yield
        return
    with controller.limit(limits=1):
        yield


def _openmp_controller() -> Any:
    """threadpoolctl's handle on the loaded OpenMP runtimes, or None if there is nothing to limit.

    Looked up again whenever modules were imported since the last look (a model library
    loaded with a new version brings its own runtime); otherwise the answer is remembered.
    """
    return _OPENMP.controller()


class _OpenMPRuntimes:
    """The lookup behind ``_openmp_controller``, redone after imports (``len(sys.modules)``)."""

    def __init__(self) -> None:
        self._modules = -1
        self._controller: Any = None

    def controller(self) -> Any:
        modules = len(sys.modules)
        if modules != self._modules:  # benign race: two threads may both look
            self._controller = self._lookup()
            self._modules = modules
        return self._controller

    @staticmethod
    def _lookup() -> Any:
        if _usable_cpus() < 2:
            return None
        from threadpoolctl import ThreadpoolController  # a scikit-learn dependency

        controller = ThreadpoolController().select(user_api="openmp")
        return controller if controller.lib_controllers else None


_OPENMP = _OpenMPRuntimes()


def _usable_cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))  # what taskset / cgroups leave this process
    except AttributeError:  # macOS, Windows
        return os.cpu_count() or 1


def _model_failed(exc: Exception) -> SchemaViolation:
    # The exception's text is not passed on: scikit-learn quotes offending values in it
    # ("Found unknown categories ['x']"), and inputs can be personal data.
    return SchemaViolation(
        f"The model could not score these rows ({type(exc).__name__}) although they match "
        "its schema; check the values against the training data.",
        errors=[{"field": "$", "reason": f"the model raised {type(exc).__name__}"}],
    )


def json_floats(array: np.ndarray) -> list[Any]:
    """``array`` as JSON-ready lists; NaN and infinities become ``None``."""
    values: list[Any] = array.tolist()
    if array.dtype.kind == "f" and not np.isfinite(array).all():
        return _replace_non_finite(values)
    return values


def _replace_non_finite(values: list[Any]) -> list[Any]:
    out: list[Any] = []
    for v in values:
        if isinstance(v, list):
            out.append(_replace_non_finite(v))
        else:
            out.append(None if isinstance(v, float) and not math.isfinite(v) else v)
    return out
