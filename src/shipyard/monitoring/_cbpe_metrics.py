"""Expected classifier metrics from calibrated probabilities, and their sampling error.

If row ``i``'s label is drawn from its calibrated probabilities ``P[i]`` (independently of
the other rows), every count of the confusion matrix is a sum of independent draws, and its
expectation is a sum of probabilities: for the class ``k`` the model predicted on the rows
``pred == k``, ``E[TP_k] = sum P[pred == k, k]``. Each metric is the ratio of these expected
counts (as NannyML's CBPE): accuracy ``mean P[i, pred_i]``; precision ``E[TP]/predicted``;
recall ``E[TP]/E[positives]``; F1 ``2 E[TP] / (predicted + E[positives])``. Binary metrics are
the positive class's (``classes[1]``); multiclass ones macro averages. ROC AUC is the expected
number of correctly ordered (positive, negative) pairs over the expected number of pairs,
ranked by the model's own score (``scores``: ties count half, a row never pairs with itself);
multiclass: the macro one-vs-rest average.

Each metric also returns its gradient with respect to the one-hot labels (``(n, k)``), so the
variance of the *realised* metric under that label sampling is, to first order (the delta
method), ``sum_i [sum_k G_ik^2 P_ik - (sum_k G_ik P_ik)^2]`` (each row's labels are one
multinomial draw). For accuracy and binary precision this variance is exact.

>>> P = np.array([[0.9, 0.1], [0.2, 0.8], [0.4, 0.6]])
>>> out = expected_metrics(P, rankings(P), np.array([0, 1, 1]))
>>> value, gradient, reason = out["accuracy"]
>>> round(float(value), 4), round(label_variance(P, gradient), 5)
(0.7667, 0.05444)
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

#: The metrics estimated, in report order (the performance report's, without log loss).
ESTIMATED_METRICS = ("accuracy", "precision", "recall", "f1", "roc_auc")

#: A metric's value (None: undefined here), its gradient (``(n, k)``), and why it is None.
Estimate = tuple[float | None, np.ndarray | None, str | None]


class Ranking(NamedTuple):
    """The rows of one score column in ascending order, grouped by distinct score."""

    order: np.ndarray
    group: np.ndarray
    """Each sorted row's group."""
    starts: np.ndarray
    """Where each group starts in the sorted rows."""


def rankings(scores: np.ndarray) -> list[Ranking]:
    """The ``Ranking`` of each column of the model's ``scores`` (``(n, k)``), computed once
    per window: ROC AUC ranks the rows by them, whatever the calibrated probabilities."""
    out = []
    for column in scores.T:
        order = np.argsort(column, kind="mergesort")
        ordered = column[order]
        new = np.r_[True, ordered[1:] != ordered[:-1]]
        out.append(Ranking(order, np.cumsum(new) - 1, np.flatnonzero(new)))
    return out


def expected_metrics(
    proba: np.ndarray, ranks: list[Ranking], pred: np.ndarray, *, gradients: bool = True
) -> dict[str, Estimate]:
    """The metrics of ``ESTIMATED_METRICS`` for calibrated ``proba`` (``(n, k)``, rows sum to
    one), the ``rankings`` of the model's own scores and the predicted class indices
    ``pred``; without ``gradients`` the values only (the gradients are None)."""
    n, k = proba.shape
    onehot = np.zeros((n, k))
    onehot[np.arange(n), pred] = 1.0
    out: dict[str, Estimate] = {"accuracy": (float((proba * onehot).sum()) / n, onehot / n, None)}
    if k == 2:
        out.update(_binary_rates(proba, onehot))
        out["roc_auc"] = _in_column(_expected_auc(proba[:, 1], ranks[1], gradients), 1, n, k)
    else:
        out.update(_macro_rates(proba, onehot))
        out["roc_auc"] = _macro_auc(proba, ranks, gradients)
    if not gradients:
        return {name: (value, None, reason) for name, (value, _, reason) in out.items()}
    return out


def label_variance(proba: np.ndarray, gradient: np.ndarray) -> float:
    """The delta-method variance of a metric whose gradient is ``gradient`` when each row's
    label is one draw from its row of ``proba``."""
    first = (gradient * proba).sum(axis=1)
    second = (gradient * gradient * proba).sum(axis=1)
    return float(max((second - first * first).sum(), 0.0))


def _in_column(estimate: Estimate, column: int, n: int, k: int) -> Estimate:
    value, gradient, reason = estimate
    if gradient is None:
        return estimate
    full = np.zeros((n, k))
    full[:, column] = gradient[:, 0]
    return value, full, reason


def _binary_rates(proba: np.ndarray, onehot: np.ndarray) -> dict[str, Estimate]:
    n, k = proba.shape
    p, d = proba[:, 1], onehot[:, 1]
    tp, predicted, positives = float(p @ d), float(d.sum()), float(p.sum())
    out: dict[str, Estimate] = {}
    if predicted == 0:
        out["precision"] = (None, None, "the model predicted the positive class for no row")
    else:
        out["precision"] = _in_column((tp / predicted, (d / predicted)[:, None], None), 1, n, k)
    if positives <= 0:
        out["recall"] = (None, None, "no row is expected to be of the positive class")
    else:
        recall = tp / positives
        out["recall"] = _in_column((recall, ((d - recall) / positives)[:, None], None), 1, n, k)
    if predicted + positives <= 0:
        out["f1"] = (None, None, "no positive prediction and no positive row expected")
    else:
        f1 = 2 * tp / (predicted + positives)
        gradient = ((2 * d - f1) / (predicted + positives))[:, None]
        out["f1"] = _in_column((f1, gradient, None), 1, n, k)
    return out


def _macro_rates(proba: np.ndarray, onehot: np.ndarray) -> dict[str, Estimate]:
    """Macro averages over the classes predicted or expected among the labels (as
    scikit-learn averages over the classes among labels or predictions; 0 when undefined)."""
    tp = (proba * onehot).sum(axis=0)
    predicted, positives = onehot.sum(axis=0), proba.sum(axis=0)
    present = (predicted > 0) | (positives > 1e-12)
    count = int(present.sum())
    with np.errstate(invalid="ignore", divide="ignore"):
        precision = np.where(predicted > 0, tp / predicted, 0.0)
        recall = np.where(positives > 0, tp / positives, 0.0)
        f1 = np.where(present, 2 * tp / (predicted + positives), 0.0)
        # d/dy_ik of each class's rate (only column k of row i moves class k's counts).
        g_precision = np.where(predicted > 0, onehot / predicted, 0.0)
        g_recall = np.where(positives > 0, (onehot - recall) / positives, 0.0)
        g_f1 = np.where(present, (2 * onehot - f1) / (predicted + positives), 0.0)
    mask = present.astype(float)
    return {
        name: (float((values * mask).sum() / count), gradient * mask / count, None)
        for name, values, gradient in (
            ("precision", precision, g_precision),
            ("recall", recall, g_recall),
            ("f1", f1, g_f1),
        )
    }


def _macro_auc(proba: np.ndarray, ranks: list[Ranking], gradients: bool) -> Estimate:
    n, k = proba.shape
    values, gradient = [], np.zeros((n, k))
    for column in range(k):
        value, g, reason = _expected_auc(proba[:, column], ranks[column], gradients)
        if value is None:
            return None, None, reason
        values.append(value)
        if g is not None:
            gradient[:, column] = g[:, 0] / k
    return float(np.mean(values)), gradient if gradients else None, None


def _expected_auc(p: np.ndarray, rank: Ranking, gradients: bool = True) -> Estimate:
    """Expected ROC AUC of ``score`` when row ``i`` is positive with probability ``p[i]``.

    ``U(y) = sum_{i != j} y_i (1 - y_j) w_ij`` (``w``: 1 when ``score_i > score_j``, 1/2 on
    ties) counts the correctly ordered pairs and ``D(y) = positives * negatives`` all pairs;
    the estimate is ``E[U] / E[D]``, the gradient that of ``U / D`` at ``y = p``.
    """
    q = 1.0 - p
    order, group, starts = rank
    ps, qs = p[order], q[order]
    pos, neg = np.add.reduceat(ps, starts), np.add.reduceat(qs, starts)
    neg_below = np.cumsum(neg) - neg
    pos_above = pos.sum() - np.cumsum(pos)
    self_pairs = float(p @ q)
    wins = float(pos @ (neg_below + 0.5 * neg)) - 0.5 * self_pairs
    positives, negatives = float(p.sum()), float(q.sum())
    pairs = positives * negatives - self_pairs
    if pairs <= 1e-12:
        return None, None, "the rows are not expected to hold both a positive and a negative"
    auc = wins / pairs
    if not gradients:
        return auc, None, None
    # dU/dy_r: pairs (r, j) with r positive gain, pairs (i, r) with r negative are lost.
    d_wins = (neg_below + 0.5 * neg)[group] - 0.5 * qs - (pos_above + 0.5 * pos)[group] + 0.5 * ps
    d_sorted = (d_wins - auc * (negatives - positives)) / pairs
    gradient = np.empty_like(d_sorted)
    gradient[order] = d_sorted
    return auc, gradient[:, None], None
