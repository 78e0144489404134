"""The models' outputs on the rows, computed once per model and shared by every gate."""

from __future__ import annotations

import time
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from shipyard.errors import InvalidInput, ShipyardError
from shipyard.evaluation._gate import EvalInputs
from shipyard.packaging import LoadedModel


@dataclass(frozen=True)
class Outputs:
    """One model's labels (values, for a regressor) and class probabilities on the rows."""

    labels: np.ndarray
    proba: np.ndarray | None
    seconds: float


@dataclass(frozen=True)
class Scored:
    """Both models' outputs on the same rows, and what the metrics need to read them.

    ``champion_error`` says why the champion has no outputs when it has one but could not
    score the rows (its schema needs a column the rows lack).
    """

    task: str
    classes: list[Any] | None
    target: np.ndarray
    frame: pd.DataFrame
    candidate: Outputs
    champion: Outputs | None
    champion_error: str | None
    champion_frame: pd.DataFrame | None = None

    @property
    def n(self) -> int:
        return len(self.target)

    @property
    def binary(self) -> bool:
        return self.classes is not None and len(self.classes) == 2

    @property
    def positive(self) -> Any:
        """The positive class of a binary classifier: the second in scikit-learn's order."""
        assert self.classes is not None
        return self.classes[1]

    @property
    def primary(self) -> str:
        """roc_auc (binary, with probabilities), accuracy (other classifiers), rmse."""
        if self.task == "regression":
            return "rmse"
        return "roc_auc" if self.binary and self.candidate.proba is not None else "accuracy"


def score(inputs: EvalInputs) -> Scored:
    """Run the candidate (and the champion) once on the rows."""
    candidate = inputs.candidate
    task = candidate.manifest.task
    classes = candidate.classes if task == "classification" else None
    frame = candidate.schema.coerce(inputs.rows[candidate.schema.names()])
    target = _target(inputs.target, classes, len(frame))
    cand = outputs_of(candidate, frame)
    champ: Outputs | None = None
    champ_frame: pd.DataFrame | None = None
    error: str | None = None
    if inputs.champion is not None:
        champion = inputs.champion
        missing = [c for c in champion.schema.names() if c not in inputs.rows.columns]
        if missing:
            error = f"the rows lack the champion's column(s) {missing}"
        elif champion.manifest.task != task:
            error = f"the champion is a {champion.manifest.task} model"
        elif classes is not None and set(map(str, champion.classes or [])) != set(
            map(str, classes)
        ):
            error = f"the champion's classes {champion.classes} are not the candidate's {classes}"
        else:
            try:
                champ_frame = champion.schema.coerce(inputs.rows[champion.schema.names()])
                champ = _in_order(outputs_of(champion, champ_frame), champion.classes, classes)
                if champ.proba is None and cand.proba is not None:
                    error = "the champion gives no class probabilities to compare with"
                    champ, champ_frame = None, None
            except ShipyardError as exc:
                error, champ_frame = exc.message, None
    return Scored(task, classes, target, frame, cand, champ, error, champ_frame)


def _in_order(outputs: Outputs, theirs: list[Any] | None, ours: list[Any] | None) -> Outputs:
    """The champion's probabilities in the candidate's class order."""
    if outputs.proba is None or theirs is None or ours is None or list(theirs) == list(ours):
        return outputs
    where = {str(c): i for i, c in enumerate(theirs)}
    order = [where[str(c)] for c in ours]
    return Outputs(outputs.labels, outputs.proba[:, order], outputs.seconds)


def outputs_of(model: LoadedModel, frame: pd.DataFrame) -> Outputs:
    """Labels and probabilities of ``model`` on a coerced ``frame``. A classifier with
    ``predict_proba`` is called once and labelled by its most probable class, as the server
    does (the same answer as ``predict`` for scikit-learn classifiers)."""
    started = time.perf_counter()
    native = model.model
    model_input = model.prepare(frame, validate=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # feature-name notices of some frameworks
        if model.manifest.task == "classification" and hasattr(native, "predict_proba"):
            proba = np.asarray(native.predict_proba(model_input), dtype=float)
            labels = np.asarray(native.classes_)[proba.argmax(axis=1)]
        else:
            proba = None
            labels = np.asarray(native.predict(model_input))
    return Outputs(labels, proba, time.perf_counter() - started)


def _target(target: Any, classes: list[Any] | None, n_rows: int) -> np.ndarray:
    y = np.asarray(target)
    if y.ndim != 1 or len(y) != n_rows:
        raise InvalidInput(
            f"The target must hold one label per row: {n_rows} rows, target of shape {y.shape}."
        )
    if classes is None:
        try:
            return y.astype(float)
        except (TypeError, ValueError):
            raise InvalidInput("The target of a regressor must be numeric.") from None
    if pd.Series(y).isin(list(classes)).all():
        return y
    # Labels read back from a file may be text where the model's classes are numbers.
    by_text = {str(c): c for c in classes}
    unknown = sorted({str(v) for v in y} - set(by_text))
    if unknown:
        raise InvalidInput(
            f"The target holds labels the candidate does not know ({unknown[:5]}); its classes "
            f"are {classes}."
        )
    return np.asarray([by_text[str(v)] for v in y], dtype=object)
