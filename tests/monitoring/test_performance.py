"""Performance with labels: metrics equal scikit-learn, intervals are right and seeded,
coverage honours the label delay, and bad labels are counted, not crashed on."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import pytest
from sklearn import metrics as skm

from shipyard.errors import InvalidInput
from shipyard.monitoring import (
    bootstrap,
    compute_performance,
    newcombe_interval,
    wilson_interval,
)
from shipyard.monitoring._intervals import weighted_auc


def _binary(n: int, seed: int) -> tuple[pd.DataFrame, pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    p1 = np.clip(0.35 * y + rng.uniform(0, 0.65, n), 0, 1)
    ids = [f"p{i}" for i in range(n)]
    preds = pd.DataFrame(
        {
            "prediction_id": ids,
            "prediction": (p1 > 0.5).astype(int),
            "proba_0": 1 - p1,
            "proba_1": p1,
        }
    )
    return preds, pd.DataFrame({"prediction_id": ids, "label": y}), p1


def test_binary_metrics_equal_sklearn_with_intervals_and_baseline() -> None:
    preds, labels, p1 = _binary(3_000, 0)
    y, p = labels["label"].to_numpy(), preds["prediction"].to_numpy()
    report = compute_performance(
        preds, labels, task="classification", classes=[0, 1], baseline={"roc_auc": 0.9}
    )
    expected = {
        "accuracy": skm.accuracy_score(y, p),
        "precision": skm.precision_score(y, p),
        "recall": skm.recall_score(y, p),
        "f1": skm.f1_score(y, p),
        "roc_auc": skm.roc_auc_score(y, p1),
        "log_loss": skm.log_loss(y, np.c_[1 - p1, p1]),
    }
    for name, value in expected.items():
        metric = report.metric(name)
        assert metric.value == pytest.approx(value, abs=1e-12), name
        assert metric.ci_low is not None and metric.ci_high is not None
        assert metric.ci_low <= metric.value <= metric.ci_high, name
        assert metric.ci_high - metric.ci_low < 0.1, name
    assert report.metric("accuracy").ci_method == "wilson"
    assert report.metric("f1").ci_method == "bootstrap"
    auc = report.metric("roc_auc")
    assert auc.baseline == 0.9 and auc.difference == pytest.approx(auc.value - 0.9)
    assert report.coverage.coverage == 1.0 and report.n_used == 3_000
    again = compute_performance(preds, labels, task="classification", classes=[0, 1])
    assert again.metric("f1").ci_low == report.metric("f1").ci_low  # seeded
    other = compute_performance(preds, labels, task="classification", classes=[0, 1], seed=1)
    assert other.metric("f1").ci_low != report.metric("f1").ci_low


def test_wilson_interval_known_values() -> None:
    # Wilson (1927) score interval, 95%: 8 of 10 -> [0.4902, 0.9433]; 0 of 10 -> [0, 0.2775]
    assert wilson_interval(8, 10) == pytest.approx((0.4902, 0.9433), abs=1e-4)
    assert wilson_interval(0, 10) == pytest.approx((0.0, 0.2775), abs=1e-4)
    with pytest.raises(InvalidInput, match="successes"):
        wilson_interval(11, 10)


def test_newcombe_interval_matches_the_published_example() -> None:
    # Newcombe (1998), Table II, example (a): 56/70 - 48/80, 95%: (0.0524, 0.3339).
    low, high = newcombe_interval(56, 70, 48, 80, 0.95)
    assert (round(low, 4), round(high, 4)) == (0.0524, 0.3339)


def test_bootstrap_weights_reproduce_the_plain_estimate_and_auc_with_ties() -> None:
    rng = np.random.default_rng(3)
    score = rng.integers(0, 5, 500).astype(float)  # many ties
    positive = rng.random(500) < 0.3 + 0.1 * score
    stat = weighted_auc(positive, score)
    assert stat(np.ones((1, 500)))[0] == pytest.approx(skm.roc_auc_score(positive, score))
    draws = bootstrap(500, stat, resamples=300, seed=0, block=10_000)  # many blocks
    assert draws.shape == (300,)
    assert np.array_equal(draws, bootstrap(500, stat, resamples=300, seed=0, block=10_000))


def test_multiclass_macro_equals_sklearn() -> None:
    rng = np.random.default_rng(1)
    n, classes = 2_000, ["a", "b", "c"]
    y = rng.integers(0, 3, n)
    proba = rng.dirichlet([1, 1, 1], n)
    proba[np.arange(n), y] += 1.0
    proba /= proba.sum(1, keepdims=True)
    pred = proba.argmax(1)
    ids = [str(i) for i in range(n)]
    preds = pd.DataFrame({"prediction_id": ids, "prediction": np.array(classes)[pred]})
    for i, c in enumerate(classes):
        preds[f"proba_{c}"] = proba[:, i]
    labels = pd.DataFrame({"prediction_id": ids, "label": np.array(classes)[y]})
    report = compute_performance(preds, labels, task="classification", classes=classes)
    assert report.average == "macro"
    for name, sk in (
        ("precision", skm.precision_score),
        ("recall", skm.recall_score),
        ("f1", skm.f1_score),
    ):
        assert report.metric(name).value == pytest.approx(sk(y, pred, average="macro"))
        assert report.metric(name).ci_method == "bootstrap"
    assert report.metric("roc_auc").value == pytest.approx(
        skm.roc_auc_score(y, proba, multi_class="ovr")
    )
    assert report.metric("log_loss").value == pytest.approx(skm.log_loss(y, proba))


def test_label_delay_and_coverage() -> None:
    now = datetime(2026, 11, 23, 12, tzinfo=UTC)
    ages = [timedelta(hours=h) for h in (5, 4, 3, 2, 0.5, 0.1)]
    preds = pd.DataFrame(
        {
            "prediction_id": list("abcdef"),
            "ts": [now - a for a in ages],
            "prediction": [1, 0, 1, 0, 1, 0],
        }
    )
    labels = pd.DataFrame({"prediction_id": ["a", "b", "e"], "label": [1, 1, 1]})
    report = compute_performance(
        preds,
        labels,
        task="classification",
        classes=[0, 1],
        now=now,
        label_delay=timedelta(hours=1),
    )
    cov = report.coverage
    assert (cov.predictions, cov.eligible, cov.labelled, cov.labelled_eligible) == (6, 4, 3, 2)
    assert cov.coverage == 0.5 and cov.label_delay_seconds == 3600
    assert report.n_used == 3  # metrics use every labelled prediction
    late = compute_performance(
        preds,
        labels,
        task="classification",
        classes=[0, 1],
        now=now,
        label_delay=timedelta(days=1),
    )
    assert late.coverage.eligible == 0 and late.coverage.coverage is None


def test_bad_labels_are_counted_and_degenerate_cases_explained() -> None:
    preds, _, _ = _binary(6, 0)
    labels = pd.DataFrame(
        {
            "prediction_id": ["p0", "p1", "p2", "p3", "p4", "nope", "p5"],
            "label": pd.Series([1, "1", "yes", None, float("nan"), 0, 1.0], dtype=object),
        }
    )
    report = compute_performance(preds, labels, task="classification", classes=[0, 1])
    assert report.missing_labels == 2 and report.unmatched_labels == 1
    assert report.unknown_labels == 1 and report.unknown_examples == ["yes"]
    assert report.n_used == 3  # p0, p1 ("1"), p5 (1.0): all class 1
    auc = report.metric("roc_auc")
    assert auc.value is None and "only one class (1)" in (auc.reason or "")

    none = compute_performance(preds, labels.head(0), task="classification", classes=[0, 1])
    assert none.n_used == 0 and "No labels yet" in (none.message or "")
    assert all(m.value is None for m in none.metrics)
    assert none.coverage.coverage == 0.0

    with pytest.raises(InvalidInput, match="missing \\['label'\\]"):
        compute_performance(preds, labels[["prediction_id"]], task="classification")


def test_regression_metrics_equal_sklearn() -> None:
    rng = np.random.default_rng(2)
    y = rng.normal(10, 3, 1_000)
    p = y + rng.normal(0, 1, 1_000)
    ids = [str(i) for i in range(1_000)]
    preds = pd.DataFrame({"prediction_id": ids, "prediction": p})
    labels = pd.DataFrame({"prediction_id": ids, "label": pd.Series(y, dtype=object)})
    labels.loc[0, "label"] = "high"  # wrong type
    report = compute_performance(preds, labels, task="regression", baseline={"rmse": 1.0})
    yy, pp = y[1:], p[1:]
    assert report.unknown_labels == 1 and report.n_used == 999
    assert report.metric("mae").value == pytest.approx(skm.mean_absolute_error(yy, pp))
    assert report.metric("rmse").value == pytest.approx(np.sqrt(skm.mean_squared_error(yy, pp)))
    assert report.metric("r2").value == pytest.approx(skm.r2_score(yy, pp))
    for name in ("mae", "rmse", "r2"):
        m = report.metric(name)
        assert m.ci_low is not None and m.ci_high is not None
        assert m.ci_low <= m.value <= m.ci_high and m.ci_method == "bootstrap"
    assert report.metric("rmse").higher_is_better is False
    single = compute_performance(
        preds.head(1), labels.iloc[1:2].assign(prediction_id="0"), task="regression"
    )
    assert single.metric("r2").value is None and "two" in (single.metric("r2").reason or "")
    rows = {r.metric for r in report.rows()}
    assert {"mae", "mae.ci_low", "mae.ci_high", "label_coverage", "labels"} <= rows
