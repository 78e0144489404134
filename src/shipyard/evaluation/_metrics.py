"""Metrics of both models with a PAIRED bootstrap: every resample weighs the same rows for the
candidate and the champion, so the difference between them has an interval of its own (much
narrower than the two intervals side by side: the rows' difficulty cancels out).

Every metric is written with per-row weights (a resample is a row of draw counts, see
``shipyard.monitoring.bootstrap``), so all resamples of all metrics are a few matrix products.
Binary classifiers: the positive class is the second of ``classes`` (scikit-learn's order);
precision, recall and F1 are the positive class's. More classes: macro averages over the
classes present among labels or predictions, ROC AUC the macro one-vs-rest average, Brier the
sum over classes. With weights of ones each equals scikit-learn's value.

>>> y = np.array([0, 0, 1, 1]); proba = np.array([[.9, .1], [.4, .6], [.3, .7], [.2, .8]])
>>> stat = metric_statistic(["accuracy", "roc_auc"], y, proba.argmax(1), proba, [0, 1])
>>> stat(np.ones((1, 4))).tolist()
[[0.75, 1.0]]
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from shipyard.config import METRICS
from shipyard.errors import InvalidInput
from shipyard.monitoring import bootstrap, percentile_interval, weighted_auc

CLASSIFIER = (
    "accuracy",
    "balanced_accuracy",
    "precision",
    "recall",
    "f1",
    "roc_auc",
    "log_loss",
    "brier",
)
PROBABILISTIC = frozenset({"roc_auc", "log_loss", "brier"})
REGRESSOR = ("mae", "rmse", "r2")
Statistic = Callable[[np.ndarray], np.ndarray]
#: Draw counts per block of resamples (see ``shipyard.monitoring.bootstrap``).
_BLOCK = 100_000


def applicable(task: str, has_proba: bool) -> list[str]:
    """The metrics of ``METRICS`` that apply to the task (and to a model without
    probabilities), in report order.

    >>> applicable("regression", False)
    ['mae', 'rmse', 'r2']
    """
    if task == "regression":
        return list(REGRESSOR)
    return [m for m in CLASSIFIER if has_proba or m not in PROBABILISTIC]


def check_applies(metric: str, task: str, has_proba: bool, *, where: str) -> None:
    """``InvalidInput`` (one sentence) when ``metric`` does not apply to the model.

    >>> check_applies("rmse", "classification", True, where="the gate")
    Traceback (most recent call last):
    ...
    shipyard.errors.InvalidInput: The gate names 'rmse', which does not apply to a classification model; use one of: accuracy, balanced_accuracy, precision, recall, f1, roc_auc, log_loss, brier.
    """  # noqa: E501
    if metric not in METRICS or metric not in applicable(task, has_proba):
        raise InvalidInput(
            f"{where[0].upper()}{where[1:]} names {metric!r}, which does not apply to a {task} "
            f"model; use one of: {', '.join(applicable(task, has_proba))}."
        )


def metric_statistic(
    names: Sequence[str],
    y: np.ndarray,
    labels: np.ndarray,
    proba: np.ndarray | None,
    classes: list[Any] | None,
) -> Statistic:
    """A bootstrap statistic: ``(b, n)`` weights -> ``(b, len(names))`` metric values."""
    if classes is None:
        return _regression(names, y.astype(float), labels.astype(float))
    return _classification(names, y, labels, proba, classes)


def _classification(
    names: Sequence[str],
    y: np.ndarray,
    labels: np.ndarray,
    proba: np.ndarray | None,
    classes: list[Any],
) -> Statistic:
    return codes_statistic(
        names, class_codes(y, classes), class_codes(labels, classes), proba, len(classes)
    )


def codes_statistic(
    names: Sequence[str], yi: np.ndarray, pi: np.ndarray, proba: np.ndarray | None, k: int
) -> Statistic:
    """``metric_statistic`` of a classifier, from the labels' and predictions' positions in
    its ``k`` classes (``class_codes``)."""
    eye = np.vstack([np.eye(k), np.zeros((1, k))])  # index -1: no class
    true, pred = eye[yi].T, eye[pi].T
    # One (columns, rows) matrix: correct | true per class | predicted per class | both per
    # class | the losses asked for.
    columns = [(yi == pi).astype(float)[None, :], true, pred, true * pred]
    extra: dict[str, int] = {}
    if proba is not None and "log_loss" in names:
        eps = np.finfo(float).eps
        picked = proba[np.arange(len(yi)), np.maximum(yi, 0)]
        extra["log_loss"] = sum(len(c) for c in columns)
        columns.append(-np.log(np.clip(picked, eps, 1 - eps))[None, :])
    if proba is not None and "brier" in names:
        squares = (proba[:, 1] - true[1]) ** 2 if k == 2 else ((proba - true.T) ** 2).sum(1)
        extra["brier"] = sum(len(c) for c in columns)
        columns.append(squares[None, :])
    matrix = np.vstack(columns)
    aucs: list[Statistic] = []
    if proba is not None and "roc_auc" in names:
        positives = [1] if k == 2 else list(range(k))
        aucs = [weighted_auc(yi == c, proba[:, c]) for c in positives]

    def statistic(w: np.ndarray) -> np.ndarray:
        sums = _weighted_sums(w, matrix)
        total = w.sum(axis=1)
        t, q, tp = sums[:, 1 : 1 + k], sums[:, 1 + k : 1 + 2 * k], sums[:, 1 + 2 * k : 1 + 3 * k]
        with np.errstate(invalid="ignore", divide="ignore"):
            precision = np.where(q > 0, tp / q, 0.0)
            recall = np.where(t > 0, tp / t, 0.0)
            f1 = np.where(t + q > 0, 2 * tp / (t + q), 0.0)
            present = (t + q) > 0
            out: dict[str, np.ndarray] = {
                "accuracy": sums[:, 0] / total,
                "balanced_accuracy": (recall * (t > 0)).sum(1) / (t > 0).sum(1),
            }
            for name, per_class in (("precision", precision), ("recall", recall), ("f1", f1)):
                out[name] = (
                    per_class[:, 1] if k == 2 else (per_class * present).sum(1) / present.sum(1)
                )
            for name, column in extra.items():
                out[name] = sums[:, column] / total
            if aucs:
                out["roc_auc"] = np.mean([auc(w) for auc in aucs], axis=0)
        return np.stack([out[name] for name in names], axis=1)

    return statistic


def _weighted_sums(w: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    """``w @ matrix.T`` for weights ``(b, n)`` and per-row columns stored as ``(c, n)``.

    einsum, not BLAS: for the few rows of a block, a threaded BLAS gemv measured 30x slower
    on a busy two-core machine (thread hand-offs), einsum is one pass over the memory.
    """
    return np.einsum("bn,cn->bc", w, matrix)


def class_codes(values: np.ndarray, classes: list[Any]) -> np.ndarray:
    """The position of each value in ``classes`` (-1: not a class).

    >>> class_codes(np.array(["no", "yes", "maybe"], dtype=object), ["no", "yes"]).tolist()
    [0, 1, -1]
    """
    return np.asarray(pd.Index(classes).get_indexer(values), dtype=np.int64)


def _regression(names: Sequence[str], y: np.ndarray, pred: np.ndarray) -> Statistic:
    error = pred - y
    matrix = np.stack([np.abs(error), error**2, y, y**2])

    def statistic(w: np.ndarray) -> np.ndarray:
        sums = _weighted_sums(w, matrix)
        total = w.sum(axis=1)
        mean_y = sums[:, 2] / total
        spread = sums[:, 3] - total * mean_y**2
        with np.errstate(invalid="ignore", divide="ignore"):
            out = {
                "mae": sums[:, 0] / total,
                "rmse": np.sqrt(sums[:, 1] / total),
                "r2": np.where(spread > 0, 1 - sums[:, 1] / spread, np.nan),
            }
        return np.stack([out[name] for name in names], axis=1)

    return statistic


@dataclass(frozen=True)
class Interval:
    """A point estimate and its percentile-bootstrap interval."""

    value: float
    low: float | None
    high: float | None

    def to_json(self) -> dict[str, float | None]:
        return {"value": self.value, "ci_low": self.low, "ci_high": self.high}


@dataclass(frozen=True)
class MetricTable:
    """Every applicable metric of the candidate, the champion and their difference
    (candidate - champion), with intervals from the same resamples."""

    names: list[str]
    candidate: dict[str, Interval]
    champion: dict[str, Interval] | None
    difference: dict[str, Interval] | None
    confidence: float
    resamples: int

    def to_json(self) -> dict[str, Any]:
        def side(table: dict[str, Interval] | None) -> dict[str, Any] | None:
            return None if table is None else {k: v.to_json() for k, v in table.items()}

        return {
            "candidate": side(self.candidate),
            "champion": side(self.champion),
            "difference": side(self.difference),
            "confidence": self.confidence,
            "resamples": self.resamples,
        }


def paired_metrics(
    names: list[str],
    candidate: Statistic,
    champion: Statistic | None,
    n: int,
    *,
    confidence: float,
    resamples: int,
    seed: int = 0,
) -> MetricTable:
    """Point values and paired-bootstrap intervals of ``names`` for both models."""
    m = len(names)

    def both(w: np.ndarray) -> np.ndarray:
        if champion is None:
            return candidate(w)
        return np.hstack([candidate(w), champion(w)])

    point = both(np.ones((1, n)))[0]
    # Blocks of about one resample of 100k rows: the rank statistic then stays in cache
    # (3x faster than the default blocks at 100k rows).
    draws = bootstrap(n, both, resamples=resamples, seed=seed, block=_BLOCK)

    def intervals(values: np.ndarray, sample: np.ndarray) -> dict[str, Interval]:
        out = {}
        for i, name in enumerate(names):
            low, high, _ = percentile_interval(sample[:, i], confidence)
            out[name] = Interval(float(values[i]), low, high)
        return out

    cand = intervals(point[:m], draws[:, :m])
    if champion is None:
        return MetricTable(names, cand, None, None, confidence, resamples)
    champ = intervals(point[m:], draws[:, m:])
    diff = intervals(point[:m] - point[m:], draws[:, :m] - draws[:, m:])
    return MetricTable(names, cand, champ, diff, confidence, resamples)
