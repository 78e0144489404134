"""Weighted metrics equal scikit-learn's; paired bootstrap intervals cover the truth."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn import metrics as skm

from shipyard.evaluation._metrics import applicable, metric_statistic, paired_metrics


def _one(statistic, n: int) -> np.ndarray:  # type: ignore[no-untyped-def]
    return statistic(np.ones((1, n)))[0]


def test_binary_metrics_equal_scikit_learn() -> None:
    rng = np.random.default_rng(0)
    n = 500
    y = rng.choice(np.array(["no", "yes"], dtype=object), n)
    p = np.clip((y == "yes") * 0.3 + rng.random(n) * 0.7, 0, 1)
    proba = np.c_[1 - p, p]
    labels = np.where(p > 0.5, "yes", "no").astype(object)
    names = applicable("classification", True)
    got = dict(
        zip(names, _one(metric_statistic(names, y, labels, proba, ["no", "yes"]), n), strict=True)
    )
    t = y == "yes"
    assert got["accuracy"] == pytest.approx(skm.accuracy_score(y, labels))
    assert got["balanced_accuracy"] == pytest.approx(skm.balanced_accuracy_score(y, labels))
    assert got["precision"] == pytest.approx(skm.precision_score(y, labels, pos_label="yes"))
    assert got["recall"] == pytest.approx(skm.recall_score(y, labels, pos_label="yes"))
    assert got["f1"] == pytest.approx(skm.f1_score(y, labels, pos_label="yes"))
    assert got["roc_auc"] == pytest.approx(skm.roc_auc_score(t, p))
    assert got["log_loss"] == pytest.approx(skm.log_loss(y, proba, labels=["no", "yes"]))
    assert got["brier"] == pytest.approx(skm.brier_score_loss(t, p))


def test_multiclass_macro_metrics_equal_scikit_learn() -> None:
    rng = np.random.default_rng(1)
    n, classes = 600, ["a", "b", "c"]
    y = rng.choice(np.array(classes, dtype=object), n)
    proba = rng.dirichlet([1, 1, 1], n)
    proba[np.arange(n), [classes.index(v) for v in y]] += 0.5
    proba /= proba.sum(1, keepdims=True)
    labels = np.asarray(classes, dtype=object)[proba.argmax(1)]
    names = ["accuracy", "precision", "recall", "f1", "roc_auc", "balanced_accuracy"]
    got = dict(zip(names, _one(metric_statistic(names, y, labels, proba, classes), n), strict=True))
    assert got["precision"] == pytest.approx(skm.precision_score(y, labels, average="macro"))
    assert got["recall"] == pytest.approx(skm.recall_score(y, labels, average="macro"))
    assert got["f1"] == pytest.approx(skm.f1_score(y, labels, average="macro"))
    assert got["balanced_accuracy"] == pytest.approx(skm.balanced_accuracy_score(y, labels))
    assert got["roc_auc"] == pytest.approx(
        skm.roc_auc_score(y, proba, multi_class="ovr", labels=classes)
    )


def test_regression_metrics_equal_scikit_learn() -> None:
    rng = np.random.default_rng(2)
    y = rng.normal(10, 3, 400)
    pred = y + rng.normal(0, 1, 400)
    got = _one(metric_statistic(["mae", "rmse", "r2"], y, pred, None, None), 400)
    assert got[0] == pytest.approx(skm.mean_absolute_error(y, pred))
    assert got[1] == pytest.approx(np.sqrt(skm.mean_squared_error(y, pred)))
    assert got[2] == pytest.approx(skm.r2_score(y, pred))


def test_paired_intervals_cover_the_truth_and_the_difference_is_narrower() -> None:
    # Two classifiers right on 80% and 78% of rows of the same population (known truth).
    rng = np.random.default_rng(3)
    n = 4_000
    y = rng.choice(np.array([0, 1]), n)
    hard = rng.random(n)  # the rows' difficulty, shared by both models
    right_a, right_b = hard < 0.80, hard < 0.78
    labels_a, labels_b = np.where(right_a, y, 1 - y), np.where(right_b, y, 1 - y)
    stat_a = metric_statistic(["accuracy"], y, labels_a, None, [0, 1])
    stat_b = metric_statistic(["accuracy"], y, labels_b, None, [0, 1])
    table = paired_metrics(["accuracy"], stat_a, stat_b, n, confidence=0.95, resamples=400)
    cand, champ, diff = (
        table.candidate["accuracy"],
        table.champion["accuracy"],  # type: ignore[index]
        table.difference["accuracy"],  # type: ignore[index]
    )
    assert cand.low is not None and cand.high is not None
    assert cand.low < 0.80 < cand.high and champ.low < 0.78 < champ.high  # type: ignore[operator]
    assert diff.value == pytest.approx(right_a.mean() - right_b.mean())
    assert diff.low < 0.02 < diff.high  # type: ignore[operator]
    # pairing: the difference's interval is far narrower than either model's
    assert (diff.high - diff.low) < 0.5 * (cand.high - cand.low)  # type: ignore[operator]
    assert diff.low > 0  # type: ignore[operator] # the better model is better, with confidence
    # seeded: the same data gives the same intervals
    again = paired_metrics(["accuracy"], stat_a, stat_b, n, confidence=0.95, resamples=400)
    assert again.difference == table.difference
