"""Classifier performance without labels: confidence-based performance estimation (CBPE), as
NannyML does it.

``CBPE`` follows the estimator contract: ``fit(reference_proba, reference_labels, classes)``
learns, from labelled reference rows (the archive's ``eval/outputs.parquet``), whether the
model's probabilities are calibrated; ``estimate(current_proba)`` turns a window's logged
probabilities (no labels needed) into expected accuracy, precision, recall, F1 and ROC AUC
(``_cbpe_metrics``), each with an interval, in a ``PerformanceEstimate``.

Calibration: for each class (binary: the positive class, ``classes[1]``; multiclass: one
versus rest), the Brier score of the raw probabilities is compared with that of isotonic
regression fitted out of fold (``folds`` folds, as NannyML compares calibration errors before
and after). Isotonic regression is used where it lowers the score, and the record says so
with both scores and the expected calibration errors (``PerformanceEstimate.calibration``);
multiclass rows are renormalised (``_calibration``). The Brier score, a proper scoring rule,
decides rather than the binned calibration error, which an isotonic fit lowers even on
calibrated probabilities (it then only adds the calibrator's noise).

Interval: how far this window's realised metric may fall from the estimate, ``value +- z *
sd`` clipped to [0, 1], from two independent errors. The luck of the labels: were each row's
label drawn from its calibrated probabilities, the realised metric's variance follows from
the per-row multinomial variances (delta method, ``_cbpe_metrics``; it shrinks with the
window). The calibration error: a finite reference pins the calibration down only so far,
least where it has few rows, which is where a shifted window may sit; so isotonic calibrators
are refitted on ``resamples`` bootstrap resamples of the reference and the metric's standard
deviation over them, on this window's scores, is added in quadrature (it shrinks with the
reference, not the window). It is added when raw probabilities are kept too: the check that
kept them has no more power than the reference. No interval covers a broken assumption.

Assumptions (``ASSUMPTIONS``, in every estimate): no concept drift (``P(y|x)`` as in the
reference), probabilities calibrated on the reference (after the calibration above), and a
shift of the inputs (covariate shift) within the region the reference covers.

>>> rng = np.random.default_rng(0)
>>> p = rng.uniform(0, 1, 4000)
>>> P = np.column_stack([1 - p, p])
>>> y = (rng.uniform(size=4000) < p).astype(int)
>>> estimator = CBPE().fit(P[:2000], y[:2000], classes=[0, 1])
>>> accuracy = estimator.estimate(P[2000:]).metric("accuracy")
>>> bool(abs(accuracy.value - np.maximum(p, 1 - p)[2000:].mean()) < 0.02)
True
>>> bool(accuracy.ci_low < accuracy.value < accuracy.ci_high)
True
"""

from __future__ import annotations

from typing import Any, Literal, Self

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict

from shipyard.errors import InvalidInput, InvalidTransition, NotFound
from shipyard.monitoring._calibration import (
    ClassCalibration,
    Curve,
    ReferenceScores,
    check_calibration,
)
from shipyard.monitoring._cbpe_metrics import (
    ESTIMATED_METRICS,
    expected_metrics,
    label_variance,
    rankings,
)
from shipyard.monitoring._intervals import _z
from shipyard.monitoring._performance_data import class_index
from shipyard.monitoring._rows import MetricRow

#: What the estimate takes for granted, as stated in its output.
ASSUMPTIONS = (
    "no concept drift (P(y|x) unchanged)",
    "probabilities calibrated on the reference",
    "covariate shift only, within the reference's range",
)
#: Rows may sum to 1 within this much.
SUM_TOLERANCE = 1e-3
#: Window rows the calibrator's error is measured on (a seeded sample beyond): it is a
#: mean over rows of the refitted calibrators' differences, steady long before this many.
SPREAD_ROWS = 10_000
#: The prefix of the stored metrics: ``estimated_accuracy``, ``estimated_f1``...
PREFIX = "estimated_"


class EstimatedMetric(BaseModel):
    """One estimated metric: the expectation, its standard error (``sd``, from the labels'
    luck ``sd_labels`` and the calibrator's error ``sd_calibration``) and interval;
    ``value`` None when undefined (``reason``)."""

    model_config = ConfigDict(frozen=True)

    name: str
    value: float | None
    sd: float | None = None
    sd_labels: float | None = None
    sd_calibration: float | None = None
    ci_low: float | None = None
    ci_high: float | None = None
    reason: str | None = None


class PerformanceEstimate(BaseModel):
    """Label-free performance of one window. JSON: ``model_dump_json()``."""

    model_config = ConfigDict(frozen=True)

    method: Literal["cbpe"] = "cbpe"
    classes: list[Any]
    average: str
    n: int
    reference_rows: int
    calibration: list[ClassCalibration]
    metrics: list[EstimatedMetric]
    confidence: float
    interval: str
    assumptions: list[str]

    def metric(self, name: str) -> EstimatedMetric:
        """The estimate called ``name`` (``accuracy``, ``f1``...)."""
        for metric in self.metrics:
            if metric.name == name:
                return metric
        raise NotFound(f"The performance estimate has no metric {name!r}.")

    def summary(self) -> str:
        """One line: the method, the calibration used and the assumptions."""
        calibrated = [c.label for c in self.calibration if c.method == "isotonic"]
        how = (
            f"isotonic calibration of class {', '.join(calibrated)}"
            if calibrated
            else "logged probabilities judged calibrated"
        )
        return (
            f"CBPE estimate ({how}; {self.reference_rows:,} reference rows) assumes "
            f"{'; '.join(self.assumptions)}."
        )

    def rows(self) -> list[MetricRow]:
        """Rows for the store: ``estimated_<metric>`` with ``.ci_low``/``.ci_high``."""
        out = []
        for m in self.metrics:
            if m.value is None:
                continue
            out.append(MetricRow(f"{PREFIX}{m.name}", "*", m.value, rows=self.n))
            if m.ci_low is not None and m.ci_high is not None:
                out.append(MetricRow(f"{PREFIX}{m.name}.ci_low", "*", m.ci_low, rows=self.n))
                out.append(MetricRow(f"{PREFIX}{m.name}.ci_high", "*", m.ci_high, rows=self.n))
        return out


class CBPE:
    """Confidence-based performance estimation of a classifier (see the module docstring).

    ``calibration``: ``"auto"`` (isotonic where it lowers the Brier score out of fold),
    ``"isotonic"`` or ``"none"``. ``bins``: equal-count bins of the calibration error;
    ``folds``: folds of the out-of-fold check; ``resamples``: bootstrap refits of the
    calibrators for the interval (0: label sampling only); ``seed``: shuffles and resamples.
    """

    def __init__(
        self,
        *,
        calibration: Literal["auto", "isotonic", "none"] = "auto",
        confidence: float = 0.95,
        bins: int = 10,
        folds: int = 5,
        resamples: int = 50,
        seed: int = 0,
    ) -> None:
        self.calibration = calibration
        self.confidence = confidence
        self.bins = bins
        self.folds = folds
        self.resamples = resamples
        self.seed = seed

    def fit(self, reference_proba: Any, reference_labels: Any, classes: list[Any]) -> Self:
        """Check (and fit) the calibration of each class on the labelled reference rows:
        ``reference_proba`` ``(n, len(classes))`` in the order of ``classes``."""
        self._check_params()
        classes = list(classes)
        if len(classes) < 2 or len({str(c) for c in classes}) != len(classes):
            raise InvalidInput(f"CBPE needs two or more distinct classes. Got {classes}.")
        proba = _proba(reference_proba, classes, "reference")
        labels = _indices(reference_labels, classes, len(proba), "reference labels")
        seen = np.unique(labels)
        if len(seen) < 2:
            raise InvalidInput(
                f"The reference labels hold one class only ({classes[int(seen[0])]!r}): "
                "calibration needs rows of at least two classes."
            )
        columns = [1] if len(classes) == 2 else list(range(len(classes)))
        self.classes_ = classes
        self.n_reference_ = len(proba)
        self.calibrators_: dict[int, Curve] = {}
        self.references_: dict[int, ReferenceScores] = {}
        checks = []
        for column in columns:
            reference = ReferenceScores(proba[:, column], labels == column)
            check, calibrator = check_calibration(
                reference,
                str(classes[column]),
                mode=self.calibration,
                bins=self.bins,
                folds=self.folds,
                seed=self.seed,
            )
            checks.append(check)
            if calibrator is not None:
                self.calibrators_[column] = calibrator
            if reference.y.any():
                self.references_[column] = reference
        self.calibration_ = checks
        return self

    def calibrated(self, proba: Any) -> np.ndarray:
        """``proba`` after the fitted calibration (rows sum to one)."""
        self._check_fitted()
        return self._apply(_proba(proba, self.classes_, "current"), self.calibrators_)

    def estimate(self, current_proba: Any, *, predictions: Any = None) -> PerformanceEstimate:
        """The expected metrics of the rows whose probabilities are ``current_proba``;
        ``predictions`` are the model's predicted classes (default: the most probable)."""
        self._check_fitted()
        scores = _proba(current_proba, self.classes_, "current")
        if predictions is None:
            pred = scores.argmax(axis=1)
        else:
            pred = _indices(predictions, self.classes_, len(scores), "predictions")
        proba = self._apply(scores, self.calibrators_)
        z = _z(self.confidence)
        ranks = rankings(scores)
        spread = self._calibration_spread(scores, ranks, pred)
        metrics = []
        for name, (value, gradient, reason) in expected_metrics(proba, ranks, pred).items():
            if value is None or gradient is None:
                metrics.append(EstimatedMetric(name=name, value=None, reason=reason))
                continue
            sd_labels = float(np.sqrt(label_variance(proba, gradient)))
            sd_calibration = spread.get(name, 0.0)
            sd = float(np.hypot(sd_labels, sd_calibration))
            metrics.append(
                EstimatedMetric(
                    name=name,
                    value=float(value),
                    sd=sd,
                    sd_labels=sd_labels,
                    sd_calibration=sd_calibration,
                    ci_low=max(0.0, float(value) - z * sd),
                    ci_high=min(1.0, float(value) + z * sd),
                )
            )
        metrics.sort(key=lambda m: ESTIMATED_METRICS.index(m.name))
        k = len(self.classes_)
        return PerformanceEstimate(
            classes=self.classes_,
            average=f"binary (positive class {self.classes_[1]!r})" if k == 2 else "macro",
            n=len(scores),
            reference_rows=self.n_reference_,
            calibration=self.calibration_,
            metrics=metrics,
            confidence=self.confidence,
            interval=(
                f"{100 * self.confidence:g}%, normal: the luck of this window's labels (each "
                "row's label drawn from its calibrated probabilities, delta method)"
                + (
                    f" and the calibration error the reference cannot rule out ({self.resamples} "
                    "isotonic refits on bootstrap resamples of it)"
                    if self.references_ and self.resamples
                    else ""
                )
            ),
            assumptions=list(ASSUMPTIONS),
        )

    # -----------------------------------------------------------------------------------------

    def _check_params(self) -> None:
        if self.calibration not in ("auto", "isotonic", "none"):
            raise InvalidInput(
                "The 'calibration' parameter of CBPE must be 'auto', 'isotonic' or 'none'. "
                f"Got {self.calibration!r} instead."
            )
        for name, low in (("bins", 2), ("folds", 2), ("resamples", 0)):
            value = getattr(self, name)
            if not isinstance(value, int) or value < low:
                raise InvalidInput(
                    f"The {name!r} parameter of CBPE must be an int >= {low}. Got {value!r}."
                )
        _z(self.confidence)

    def _check_fitted(self) -> None:
        if not hasattr(self, "classes_"):
            raise InvalidTransition("This CBPE is not fitted yet; call fit(...) first.")

    def _calibration_spread(
        self, scores: np.ndarray, ranks: list[Any], pred: np.ndarray
    ) -> dict[str, float]:
        """The standard deviation of each metric over calibrators refitted on bootstrap
        resamples of the reference (empty without calibrators or resamples)."""
        if not self.references_ or not self.resamples:
            return {}
        rng = np.random.default_rng(self.seed)
        if len(scores) > SPREAD_ROWS:
            rows = np.sort(rng.choice(len(scores), SPREAD_ROWS, replace=False))
            scores, pred = scores[rows], pred[rows]
            ranks = rankings(scores)
        n = self.n_reference_
        draws: dict[str, list[float]] = {}
        for _ in range(self.resamples):
            # Resampling rows in sorted order is resampling rows: no need to gather weights.
            weights = np.bincount(rng.integers(0, n, n), minlength=n).astype(float)
            refitted = {column: r.fit(weights) for column, r in self.references_.items()}
            proba = self._apply(scores, refitted)
            for name, (value, _, _) in expected_metrics(
                proba, ranks, pred, gradients=False
            ).items():
                if value is not None:
                    draws.setdefault(name, []).append(value)
        return {name: float(np.std(values, ddof=1)) for name, values in draws.items()}

    def _apply(self, scores: np.ndarray, calibrators: dict[int, Curve]) -> np.ndarray:
        if not calibrators:
            return scores
        if len(self.classes_) == 2:
            positive = calibrators[1].predict(scores[:, 1])
            return np.column_stack([1.0 - positive, positive])
        out = scores.copy()
        for column, calibrator in calibrators.items():
            out[:, column] = calibrator.predict(scores[:, column])
        total = out.sum(axis=1, keepdims=True)
        # A row every calibrator sends to 0 keeps its logged probabilities.
        return np.where(total > 0, out / np.where(total > 0, total, 1.0), scores)

    def __repr__(self) -> str:
        params = ", ".join(f"{k}={v!r}" for k, v in vars(self).items() if not k.endswith("_"))
        return f"CBPE({params})"


def _proba(values: Any, classes: list[Any], what: str) -> np.ndarray:
    """``values`` as a float ``(n, k)`` array of probabilities, or ``InvalidInput``."""
    try:
        proba = np.asarray(values, dtype=float)
    except (TypeError, ValueError) as exc:
        raise InvalidInput(f"The {what} probabilities must be numbers: {exc}.") from exc
    k = len(classes)
    if proba.ndim != 2 or proba.shape[1] != k:
        raise InvalidInput(
            f"The {what} probabilities need one column per class ({k}: {classes}). "
            f"Got shape {proba.shape}."
        )
    if len(proba) == 0:
        raise InvalidInput(f"The {what} probabilities are empty: there are no rows to use.")
    finite = np.isfinite(proba).all(axis=1)
    if not finite.all():
        row = int(np.flatnonzero(~finite)[0])
        raise InvalidInput(f"Row {row} of the {what} probabilities is missing or not finite.")
    outside = ((proba < -1e-9) | (proba > 1 + 1e-9)).any(axis=1)
    sums = proba.sum(axis=1)
    bad = outside | (np.abs(sums - 1.0) > SUM_TOLERANCE)
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raise InvalidInput(
            f"Row {row} of the {what} probabilities ({np.round(proba[row], 4).tolist()}) is "
            f"not a distribution: each row must be in [0, 1] and sum to 1 within "
            f"{SUM_TOLERANCE}."
        )
    return np.clip(proba, 0.0, 1.0)


def _indices(values: Any, classes: list[Any], n: int, what: str) -> np.ndarray:
    series = pd.Series(np.asarray(values, dtype=object).ravel())
    if len(series) != n:
        raise InvalidInput(f"There are {len(series)} {what} for {n} rows of probabilities.")
    index = class_index(series, classes)
    if (index < 0).any():
        example = series.iloc[int(np.flatnonzero(index < 0)[0])]
        raise InvalidInput(f"The {what} hold {example!r}, which is not a class of {classes}.")
    return index
