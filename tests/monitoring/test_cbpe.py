"""CBPE: label-free performance estimates against known values, the calibration check with
and without an injected miscalibration, interval coverage, covariate shift, bad input."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import rankdata
from sklearn import metrics as skm
from sklearn.linear_model import LogisticRegression

from shipyard.errors import InvalidInput, InvalidTransition
from shipyard.monitoring import CBPE, PerformanceEstimate


def _binary(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Perfectly calibrated probabilities and labels drawn from them."""
    rng = np.random.default_rng(seed)
    p = rng.beta(0.7, 0.7, n)
    return np.column_stack([1 - p, p]), (rng.uniform(size=n) < p).astype(int)


def _draw(proba: np.ndarray, rng: np.random.Generator, times: int) -> np.ndarray:
    """``times`` label vectors drawn from the rows of ``proba`` (one row of labels each)."""
    u = rng.uniform(size=(times, len(proba), 1))
    return (u > np.cumsum(proba, axis=1)[None]).sum(axis=2)


def test_calibrated_probabilities_give_the_mean_confidence() -> None:
    P, y = _binary(6_000, 0)
    estimator = CBPE().fit(P[:3_000], y[:3_000], classes=[0, 1])
    (check,) = estimator.calibration_
    assert check.method == "none" and check.label == "1"  # calibrated: kept as logged
    assert check.brier_after is not None and check.brier_after >= check.brier_before
    estimate = estimator.estimate(P[3_000:])
    current = P[3_000:, 1]
    confidence = np.maximum(current, 1 - current).mean()
    assert estimate.metric("accuracy").value == pytest.approx(confidence, abs=1e-12)
    pred = (current > 0.5).astype(float)
    assert estimate.metric("precision").value == pytest.approx(current @ pred / pred.sum())
    assert estimate.metric("recall").value == pytest.approx(current @ pred / current.sum())
    assert estimate.n == 3_000 and estimate.reference_rows == 3_000
    assert estimate.average == "binary (positive class 1)"
    assert "no concept drift" in estimate.summary() and len(estimate.summary()) < 240
    rows = {row.metric: row for row in estimate.rows()}
    assert set(rows) >= {"estimated_accuracy", "estimated_accuracy.ci_low", "estimated_roc_auc"}
    assert rows["estimated_f1.ci_high"].value == estimate.metric("f1").ci_high
    assert rows["estimated_accuracy"].rows == 3_000 and rows["estimated_accuracy"].feature == "*"


def test_realised_metrics_fall_in_the_interval_most_of_the_time() -> None:
    # Labels drawn again and again from the same calibrated probabilities: the realised
    # metric of each draw should land in the 95% interval about 95% of the time.
    P, y = _binary(4_000, 1)
    estimate = CBPE().fit(P[:2_000], y[:2_000], [0, 1]).estimate(P[2_000:])
    current = P[2_000:]
    pred = current.argmax(axis=1)
    draws = _draw(current, np.random.default_rng(2), 300)
    tp, positives = draws @ pred, draws.sum(axis=1)
    ranks = rankdata(current[:, 1])  # Mann-Whitney: ROC AUC of every draw at once
    realised = {
        "accuracy": (draws == pred).mean(axis=1),
        "f1": 2 * tp / (pred.sum() + positives),
        "roc_auc": (draws @ ranks - positives * (positives + 1) / 2)
        / (positives * (len(pred) - positives)),
    }
    assert realised["roc_auc"][0] == pytest.approx(skm.roc_auc_score(draws[0], current[:, 1]))
    for name, values in realised.items():
        m = estimate.metric(name)
        assert m.value == pytest.approx(values.mean(), abs=0.005), name
        assert m.sd_labels is not None and m.ci_low is not None and m.ci_high is not None
        # The labels' luck alone gives a 95% interval; the calibration term (what the
        # reference cannot rule out) only widens it.
        low, high = m.value - 1.96 * m.sd_labels, m.value + 1.96 * m.sd_labels
        assert 0.9 <= ((low <= values) & (values <= high)).mean() <= 0.99, name
        assert ((m.ci_low <= values) & (values <= m.ci_high)).mean() >= 0.95, name
        assert m.ci_high - m.ci_low < 2.5 * (high - low), name


def test_the_interval_covers_the_calibrators_error() -> None:
    # Miscalibrated scores, a new reference and a new window each time: the estimate then
    # errs by the calibrator's error too, which the interval must include to cover.
    rng = np.random.default_rng(8)
    inside = []
    for _ in range(30):
        p = rng.beta(0.7, 0.7, 6_000)
        y = (rng.uniform(size=6_000) < p).astype(int)
        sharp = p**3 / (p**3 + (1 - p) ** 3)
        S = np.column_stack([1 - sharp, sharp])
        estimator = CBPE(resamples=30, seed=int(rng.integers(1_000))).fit(
            S[:2_000], y[:2_000], [0, 1]
        )
        m = estimator.estimate(S[2_000:]).metric("accuracy")
        realised = ((sharp[2_000:] > 0.5) == y[2_000:]).mean()
        inside.append(m.ci_low <= realised <= m.ci_high)
    assert np.mean(inside) >= 0.85


def test_the_estimate_tracks_accuracy_under_covariate_shift() -> None:
    # P(y|x) = sigmoid(3 (x - 1.5)) everywhere; the reference has x ~ N(0, 1), the current
    # windows move towards the decision boundary, where the model is least sure.
    rng = np.random.default_rng(4)

    def sample(mean: float, n: int) -> tuple[np.ndarray, np.ndarray]:
        x = rng.normal(mean, 1.0, n)
        return x[:, None], (rng.uniform(size=n) < 1 / (1 + np.exp(-3 * (x - 1.5)))).astype(int)

    x_train, y_train = sample(0.0, 5_000)
    model = LogisticRegression().fit(x_train, y_train)
    x_ref, y_ref = sample(0.0, 5_000)
    estimator = CBPE().fit(model.predict_proba(x_ref), y_ref, classes=[0, 1])
    realised, estimated = [], []
    for shift in (0.0, 0.75, 1.5):
        x, y = sample(shift, 5_000)
        proba = model.predict_proba(x)
        estimate = estimator.estimate(proba, predictions=model.predict(x))
        realised.append(float((model.predict(x) == y).mean()))
        estimated.append(estimate.metric("accuracy").value)
        auc = skm.roc_auc_score(y, proba[:, 1])
        assert estimate.metric("roc_auc").value == pytest.approx(auc, abs=0.03)
    assert realised[0] - realised[-1] > 0.08  # a real drop...
    assert np.abs(np.subtract(estimated, realised)).max() < 0.025  # ...tracked without labels


def test_multiclass_macro_estimates() -> None:
    rng = np.random.default_rng(5)
    logits = rng.normal(size=(6_000, 3)) * 2
    P = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    y = _draw(P, rng, 1)[0]
    labels = np.array(["a", "b", "c"])[y]
    estimator = CBPE().fit(P[:3_000], labels[:3_000], classes=["a", "b", "c"])
    assert [c.label for c in estimator.calibration_] == ["a", "b", "c"]
    estimate = estimator.estimate(P[3_000:])
    assert estimate.average == "macro"
    current = P[3_000:]
    pred = current.argmax(axis=1)
    assert estimate.metric("accuracy").value == pytest.approx(current.max(axis=1).mean(), 0.01)
    draws = _draw(current, rng, 40)
    for name, realised in (
        ("f1", [skm.f1_score(d, pred, average="macro") for d in draws]),
        ("recall", [skm.recall_score(d, pred, average="macro") for d in draws]),
        ("roc_auc", [skm.roc_auc_score(d, current, multi_class="ovr") for d in draws]),
    ):
        assert estimate.metric(name).value == pytest.approx(np.mean(realised), abs=0.01), name


def test_logged_predictions_are_used_when_given() -> None:
    P, y = _binary(2_000, 6)
    estimator = CBPE().fit(P, y, [0, 1])
    everything_positive = estimator.estimate(P, predictions=np.ones(len(P), dtype=int))
    assert everything_positive.metric("accuracy").value == pytest.approx(P[:, 1].mean())
    assert everything_positive.metric("recall").value == pytest.approx(1.0)
    nothing_positive = estimator.estimate(P, predictions=["0"] * len(P))  # text, as logged
    assert nothing_positive.metric("precision").value is None
    assert "predicted the positive class for no row" in str(
        nothing_positive.metric("precision").reason
    )
    assert isinstance(PerformanceEstimate.model_validate_json(nothing_positive.model_dump_json()),
                      PerformanceEstimate)  # fmt: skip


@pytest.mark.parametrize(
    ("proba", "labels", "classes", "message"),
    [
        ([[0.5, 0.6], [0.2, 0.8]], [0, 1], [0, 1], r"Row 0 of the reference probabilities"),
        ([[0.2, 0.3, 0.5], [0.1, 0.1, 0.8]], [0, 1], [0, 1], r"one column per class \(2"),
        (np.empty((0, 2)), [], [0, 1], "are empty"),
        ([[0.3, 0.7], [0.4, 0.6]], [1, 1], [0, 1], r"one class only \(1\)"),
        ([[0.3, 0.7], [0.4, 0.6]], [1, "x"], [0, 1], "'x', which is not a class"),
        ([[0.3, 0.7], [np.nan, 0.6]], [0, 1], [0, 1], "Row 1 .* not finite"),
        ([[0.3, 0.7], [0.4, 0.6]], [0, 1, 1], [0, 1], "3 reference labels for 2 rows"),
        ([[0.3, 0.7], [0.4, 0.6]], [0, 1], [1], "two or more distinct classes"),
    ],
)
def test_bad_input_is_one_sentence(
    proba: object, labels: list[object], classes: list[object], message: str
) -> None:
    with pytest.raises(InvalidInput, match=message) as caught:
        CBPE().fit(proba, labels, classes)
    text = str(caught.value)
    assert "\n" not in text and text.endswith(".") and len(text) < 160


def test_bad_current_rows_parameters_and_order_of_calls() -> None:
    P, y = _binary(500, 7)
    with pytest.raises(InvalidTransition, match="not fitted yet"):
        CBPE().estimate(P)
    estimator = CBPE().fit(P, y, [0, 1])
    with pytest.raises(InvalidInput, match="Row 1 of the current probabilities"):
        estimator.estimate([[0.3, 0.7], [0.9, 0.9]])
    with pytest.raises(InvalidInput, match="one column per class"):
        estimator.estimate(P[:, :1])
    with pytest.raises(InvalidInput, match="'calibration' parameter of CBPE"):
        CBPE(calibration="platt").fit(P, y, [0, 1])  # type: ignore[arg-type]
    with pytest.raises(InvalidInput, match="'folds' parameter of CBPE must be an int >= 2"):
        CBPE(folds=1).fit(P, y, [0, 1])
    with pytest.raises(InvalidInput, match="confidence level"):
        CBPE(confidence=1.5).fit(P, y, [0, 1])
    assert repr(CBPE(folds=3)).startswith("CBPE(calibration='auto'")
