"""Model performance once ground-truth labels arrive, joined to predictions by prediction id.

Classifiers: accuracy, precision, recall, F1, ROC AUC and log loss. With two classes the
positive class is the model's last class (``classes[-1]``, as in the archive's eval metrics);
with more, precision, recall and F1 are macro averages over the classes present among the
labels or predictions (scikit-learn's default label set, ``zero_division=0``) and ROC AUC is the
macro one-vs-rest average (defined only when every class has labels). Regressors: MAE, RMSE,
R2.

Intervals (95% by default): Wilson's score interval for metrics that are proportions (accuracy;
binary precision and recall), a seeded percentile bootstrap (``RESAMPLES`` resamples,
vectorised) for the others. Each metric carries the archive's eval value (``baseline``) and
the difference when the manifest has it.

Label coverage: of the window's predictions, those older than ``now - label_delay`` are
*eligible* (their labels had time to arrive); coverage is labelled eligible / eligible. Metrics
use every labelled prediction of the window, eligible or not. Per prediction the newest label
counts. Missing or NaN labels, labels that are not a class of the model (or not a number for a
regressor) and labels of unknown prediction ids are counted, reported and left out.

>>> preds = pd.DataFrame({"prediction_id": list("abcd"), "prediction": [1, 0, 1, 1],
...                       "proba_0": [0.2, 0.9, 0.4, 0.3], "proba_1": [0.8, 0.1, 0.6, 0.7]})
>>> labels = pd.DataFrame({"prediction_id": list("abcd"), "label": [1, 0, 0, 1]})
>>> report = compute_performance(preds, labels, task="classification", classes=[0, 1],
...                              baseline={"accuracy": 0.8})
>>> accuracy = report.metric("accuracy")
>>> accuracy.value, round(accuracy.difference, 2), accuracy.ci_method, report.coverage.coverage
(0.75, -0.05, 'wilson', 1.0)
"""

from __future__ import annotations

import math
import time
import warnings
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict

from shipyard.errors import InvalidInput, NotFound
from shipyard.monitoring._intervals import (
    RESAMPLES,
    SEED,
    bootstrap,
    percentile_interval,
    weighted_auc,
    wilson_interval,
)
from shipyard.monitoring._performance_data import class_index, numeric_labels
from shipyard.monitoring._rows import MetricRow

#: Metrics of classifiers and regressors, in report order.
CLASSIFIER_METRICS = ("accuracy", "precision", "recall", "f1", "roc_auc", "log_loss")
REGRESSOR_METRICS = ("mae", "rmse", "r2")
#: Metrics where lower is better.
LOWER_IS_BETTER = frozenset({"log_loss", "mae", "rmse"})


class MetricEstimate(BaseModel):
    """One metric on the labelled predictions: value, interval, archive baseline.

    ``value`` is None when the metric cannot be computed here; ``reason`` says why.
    ``difference`` is ``value - baseline``.
    """

    model_config = ConfigDict(frozen=True)

    name: str
    value: float | None
    ci_low: float | None = None
    ci_high: float | None = None
    ci_method: Literal["wilson", "bootstrap"] | None = None
    n: int = 0
    baseline: float | None = None
    difference: float | None = None
    higher_is_better: bool = True
    reason: str | None = None


class LabelCoverage(BaseModel):
    """How many of the window's predictions have labels.

    ``eligible``: predictions older than ``now - label_delay``; ``coverage`` is
    ``labelled_eligible / eligible`` (None when nothing is eligible yet).
    """

    model_config = ConfigDict(frozen=True)

    predictions: int
    eligible: int
    labelled: int
    labelled_eligible: int
    coverage: float | None
    label_delay_seconds: float


class PerformanceReport(BaseModel):
    """Performance of one window's labelled predictions. JSON: ``model_dump_json()``."""

    model_config = ConfigDict(frozen=True)

    task: Literal["classification", "regression"]
    classes: list[Any] | None
    average: str
    coverage: LabelCoverage
    n_used: int
    missing_labels: int
    unknown_labels: int
    unknown_examples: list[str]
    unmatched_labels: int
    relabelled: int
    metrics: list[MetricEstimate]
    confidence: float
    resamples: int
    seed: int
    message: str | None
    elapsed_seconds: float

    def metric(self, name: str) -> MetricEstimate:
        """The estimate called ``name``."""
        for metric in self.metrics:
            if metric.name == name:
                return metric
        raise NotFound(f"The performance report has no metric {name!r}.")

    def rows(self) -> list[MetricRow]:
        """Rows for the store: each computed metric with its ``.ci_low``/``.ci_high``, the
        label coverage and the number of labelled predictions used (feature ``*``)."""
        out = [
            MetricRow("label_coverage", "*", self.coverage.coverage, rows=self.coverage.eligible),
            MetricRow("labels", "*", float(self.n_used), rows=self.coverage.predictions),
        ]
        for m in self.metrics:
            if m.value is None:
                continue
            out.append(MetricRow(m.name, "*", m.value, rows=m.n))
            if m.ci_low is not None and m.ci_high is not None:
                out.append(MetricRow(f"{m.name}.ci_low", "*", m.ci_low, rows=m.n))
                out.append(MetricRow(f"{m.name}.ci_high", "*", m.ci_high, rows=m.n))
        return out


def compute_performance(
    predictions: pd.DataFrame,
    labels: pd.DataFrame,
    *,
    task: Literal["classification", "regression"],
    classes: list[Any] | None = None,
    baseline: Mapping[str, float] | None = None,
    now: datetime | None = None,
    label_delay: timedelta = timedelta(0),
    confidence: float = 0.95,
    resamples: int = RESAMPLES,
    seed: int = SEED,
) -> PerformanceReport:
    """Performance of ``predictions`` (``prediction_id``, ``prediction``, optional ``ts`` and
    ``proba_<class>``) against ``labels`` (``prediction_id``, ``label``, optional ``ts``).

    ``classes``: the model's classes (their order gives the positive class and the
    ``proba_<class>`` columns); ``baseline``: the archive's eval metrics.
    """
    started = time.perf_counter()
    _check_frame(predictions, "predictions", ("prediction_id", "prediction"))
    _check_frame(labels, "labels", ("prediction_id", "label"))
    if task not in ("classification", "regression"):
        raise InvalidInput(f"task must be 'classification' or 'regression'. Got {task!r}.")
    if label_delay < timedelta(0):
        raise InvalidInput(f"The label delay must not be negative. Got {label_delay}.")
    now = now or datetime.now(UTC)

    label_values = labels["label"]
    missing = _is_missing(label_values)
    present = labels.loc[~missing.to_numpy()]
    if "ts" in present.columns:
        present = present.sort_values("ts", kind="stable")
    newest = present.drop_duplicates("prediction_id", keep="last")
    relabelled = len(present) - len(newest)
    pred_ids = pd.Index(predictions["prediction_id"])
    if not pred_ids.is_unique:
        raise InvalidInput("The predictions have duplicate prediction ids; each must be unique.")
    matched = newest["prediction_id"].isin(pred_ids).to_numpy()
    unmatched = int((~matched).sum())
    newest = newest.loc[matched]
    has_label = pred_ids.isin(newest["prediction_id"])
    coverage = _coverage(predictions, has_label, now, label_delay)

    joined = predictions.merge(
        newest[["prediction_id", "label"]], on="prediction_id", how="inner", validate="1:1"
    )
    if task == "classification":
        cls = classes if classes is not None else _classes_from(predictions)
        usable, unknown, examples, estimates, average = _classification(
            joined, cls, confidence=confidence, resamples=resamples, seed=seed
        )
    else:
        cls = None
        usable, unknown, examples, estimates, average = _regression(
            joined, confidence=confidence, resamples=resamples, seed=seed
        )
    base = baseline or {}
    estimates = [_with_baseline(e, base.get(e.name)) for e in estimates]
    message = None
    if len(newest) == 0:
        message = (
            "No labels yet for these predictions: send them with 'shipyard feedback' "
            "(or POST /models/{name}/feedback) and run again."
        )
    elif usable == 0:
        message = f"None of the {len(newest)} labels is usable: {unknown} are not valid labels."
    return PerformanceReport(
        task=task,
        classes=cls,
        average=average,
        coverage=coverage,
        n_used=usable,
        missing_labels=int(missing.sum()),
        unknown_labels=unknown,
        unknown_examples=examples,
        unmatched_labels=unmatched,
        relabelled=relabelled,
        metrics=estimates,
        confidence=confidence,
        resamples=resamples,
        seed=seed,
        message=message,
        elapsed_seconds=time.perf_counter() - started,
    )


def _check_frame(frame: Any, what: str, needed: tuple[str, ...]) -> None:
    if not isinstance(frame, pd.DataFrame):
        raise InvalidInput(f"The {what} must be a pandas DataFrame. Got {type(frame).__name__}.")
    lacking = [c for c in needed if c not in frame.columns]
    if lacking:
        raise InvalidInput(
            f"The {what} need the columns {list(needed)}; missing {lacking}. "
            f"Got {[str(c) for c in frame.columns]}."
        )


def _is_missing(values: pd.Series) -> pd.Series:
    missing = values.isna()
    if values.dtype == object:
        missing |= values.map(lambda v: isinstance(v, float) and not math.isfinite(v)).astype(bool)
    elif pd.api.types.is_float_dtype(values.dtype):
        missing |= ~np.isfinite(values.to_numpy(dtype=float, na_value=np.nan))
    return missing


def _coverage(
    predictions: pd.DataFrame, has_label: np.ndarray, now: datetime, delay: timedelta
) -> LabelCoverage:
    n = len(predictions)
    if "ts" in predictions.columns:
        stamps = pd.to_datetime(predictions["ts"], utc=True)
        eligible = (stamps <= pd.Timestamp(now - delay)).to_numpy()
    else:
        eligible = np.ones(n, dtype=bool)
    n_eligible = int(eligible.sum())
    labelled_eligible = int((eligible & has_label).sum())
    return LabelCoverage(
        predictions=n,
        eligible=n_eligible,
        labelled=int(has_label.sum()),
        labelled_eligible=labelled_eligible,
        coverage=labelled_eligible / n_eligible if n_eligible else None,
        label_delay_seconds=delay.total_seconds(),
    )


def _classes_from(predictions: pd.DataFrame) -> list[Any]:
    values = predictions["prediction"].dropna().unique().tolist()
    return sorted(values, key=str)


def _with_baseline(estimate: MetricEstimate, baseline: float | None) -> MetricEstimate:
    if baseline is None or not math.isfinite(baseline):
        return estimate
    difference = None if estimate.value is None else estimate.value - baseline
    return estimate.model_copy(update={"baseline": float(baseline), "difference": difference})


def _none(name: str, reason: str, n: int = 0) -> MetricEstimate:
    return MetricEstimate(
        name=name, value=None, n=n, reason=reason, higher_is_better=name not in LOWER_IS_BETTER
    )


# ---------------------------------------------------------------------------------------------
# Classification


def _classification(
    joined: pd.DataFrame, classes: list[Any], *, confidence: float, resamples: int, seed: int
) -> tuple[int, int, list[str], list[MetricEstimate], str]:
    from sklearn import metrics as skm  # here, not at import: a drift run never needs it

    k = len(classes)
    if k < 2:
        raise InvalidInput(f"A classifier needs at least two classes. Got {classes}.")
    y_all = class_index(joined["label"], classes)
    p_all = class_index(joined["prediction"], classes)
    bad = y_all < 0
    examples = sorted({str(v) for v in joined["label"].to_numpy()[bad]})[:10]
    keep = ~bad & (p_all >= 0)
    y, p = y_all[keep], p_all[keep]
    proba = _proba(joined.loc[keep], classes)
    n = len(y)
    average = f"binary (positive class {classes[-1]!r})" if k == 2 else "macro"
    if n == 0:
        reason = "no usable labels in this window"
        return 0, int(bad.sum()), examples, [_none(m, reason) for m in CLASSIFIER_METRICS], average
    hits = int((y == p).sum())
    low, high = wilson_interval(hits, n, confidence)
    out = [
        MetricEstimate(
            name="accuracy",
            value=float(skm.accuracy_score(y, p)),
            ci_low=low,
            ci_high=high,
            ci_method="wilson",
            n=n,
        )
    ]
    boot: dict[str, Callable[[np.ndarray], np.ndarray]] = {}
    values: dict[str, float] = {}
    if k == 2:
        out += _binary_rates(y, p, classes, confidence)
        tp, fp, fn = (y == 1) & (p == 1), (y == 0) & (p == 1), (y == 1) & (p == 0)
        if tp.sum() + fp.sum() + fn.sum() == 0:
            out.append(_none("f1", f"no label or prediction is the positive class {classes[-1]!r}"))
        else:
            values["f1"] = float(skm.f1_score(y, p, pos_label=1, zero_division=0))
            boot["f1"] = _f1_binary(tp, fp, fn)
    else:
        macro = _macro(y, p, k)
        for name, sk in (
            ("precision", skm.precision_score),
            ("recall", skm.recall_score),
            ("f1", skm.f1_score),
        ):
            values[name] = float(sk(y, p, average="macro", zero_division=0))
            boot[name] = _column(macro, ("precision", "recall", "f1").index(name))
    out += _probability_metrics(y, proba, classes, values, boot)
    out += _bootstrapped(
        n,
        _stack(list(boot.values())),
        {name: values[name] for name in boot},
        confidence=confidence,
        resamples=resamples,
        seed=seed,
    )
    order = {name: i for i, name in enumerate(CLASSIFIER_METRICS)}
    out.sort(key=lambda e: order[e.name])
    return n, int(bad.sum()), examples, out, average


def _binary_rates(
    y: np.ndarray, p: np.ndarray, classes: list[Any], confidence: float
) -> list[MetricEstimate]:
    tp = int(((y == 1) & (p == 1)).sum())
    predicted, actual = int((p == 1).sum()), int((y == 1).sum())
    positive = classes[-1]
    out = []
    for name, denominator, reason in (
        ("precision", predicted, f"the model predicted no {positive!r} among labelled rows"),
        ("recall", actual, f"no label is the positive class {positive!r}"),
    ):
        if denominator == 0:
            out.append(_none(name, reason, len(y)))
            continue
        low, high = wilson_interval(tp, denominator, confidence)
        out.append(
            MetricEstimate(
                name=name,
                value=tp / denominator,
                ci_low=low,
                ci_high=high,
                ci_method="wilson",
                n=denominator,
            )
        )
    return out


def _proba(joined: pd.DataFrame, classes: list[Any]) -> np.ndarray | None:
    names = [f"proba_{c}" for c in classes]
    if not all(name in joined.columns for name in names):
        return None
    proba = joined[names].to_numpy(dtype=float, na_value=np.nan)
    sums = proba.sum(axis=1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        # Logged probabilities went through JSON: renormalise the last few ulps away.
        return np.where(sums > 0, proba / sums, np.nan)


def _probability_metrics(
    y: np.ndarray,
    proba: np.ndarray | None,
    classes: list[Any],
    values: dict[str, float],
    boot: dict[str, Callable[[np.ndarray], np.ndarray]],
) -> list[MetricEstimate]:
    """ROC AUC and log loss into ``values``/``boot``; estimates for those not computable."""
    from sklearn import metrics as skm

    if proba is None:
        reason = "the log holds no class probabilities (proba_<class>) for this model"
        return [_none("roc_auc", reason, len(y)), _none("log_loss", reason, len(y))]
    if not np.isfinite(proba).all():
        reason = "some labelled predictions have missing probabilities"
        return [_none("roc_auc", reason, len(y)), _none("log_loss", reason, len(y))]
    out = []
    k = len(classes)
    seen = np.bincount(y, minlength=k) > 0
    if k == 2 and not seen.all():
        only = classes[int(np.flatnonzero(seen)[0])]
        out.append(
            _none(
                "roc_auc",
                f"only one class ({only!r}) among the labels: ROC AUC needs both",
                len(y),
            )
        )
    elif not seen.all():
        absent = [classes[i] for i in np.flatnonzero(~seen)]
        out.append(
            _none("roc_auc", f"classes {absent} have no labels: one-vs-rest AUC needs all", len(y))
        )
    elif k == 2:
        values["roc_auc"] = float(skm.roc_auc_score(y, proba[:, 1]))
        boot["roc_auc"] = weighted_auc(y == 1, proba[:, 1])
    else:
        values["roc_auc"] = float(
            skm.roc_auc_score(y, proba, multi_class="ovr", average="macro", labels=range(k))
        )
        per_class = [weighted_auc(y == i, proba[:, i]) for i in range(k)]
        boot["roc_auc"] = lambda w: np.mean([stat(w) for stat in per_class], axis=0)
    with warnings.catch_warnings():
        # A single class among the labels is fine: ``labels`` gives the full set.
        warnings.simplefilter("ignore", UserWarning)
        values["log_loss"] = float(skm.log_loss(y, proba, labels=list(range(k))))
    eps = np.finfo(proba.dtype).eps
    losses = -np.log(np.clip(proba[np.arange(len(y)), y], eps, 1 - eps))
    n = len(y)
    boot["log_loss"] = lambda w: w @ losses / n
    return out


def _f1_binary(
    tp: np.ndarray, fp: np.ndarray, fn: np.ndarray
) -> Callable[[np.ndarray], np.ndarray]:
    tp_f, miss = tp.astype(float), (fp | fn).astype(float)

    def statistic(w: np.ndarray) -> np.ndarray:
        hits = w @ tp_f
        denominator = 2 * hits + w @ miss
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(denominator > 0, 2 * hits / denominator, np.nan)

    return statistic


def _macro(y: np.ndarray, p: np.ndarray, k: int) -> Callable[[np.ndarray], np.ndarray]:
    """Macro precision, recall and F1 over the classes present in the resample."""
    eye = np.eye(k)
    true, pred = eye[y], eye[p]
    both = true * pred

    def statistic(w: np.ndarray) -> np.ndarray:
        tp, t, q = w @ both, w @ true, w @ pred
        present = (t + q) > 0
        with np.errstate(invalid="ignore", divide="ignore"):
            precision = np.where(q > 0, tp / q, 0.0)
            recall = np.where(t > 0, tp / t, 0.0)
            f1 = np.where(present, 2 * tp / (t + q), 0.0)
        count = present.sum(axis=1)
        return np.stack([(m * present).sum(axis=1) / count for m in (precision, recall, f1)], 1)

    return statistic


def _bootstrapped(
    n: int,
    statistic: Callable[[np.ndarray], np.ndarray],
    values: Mapping[str, float],
    *,
    confidence: float,
    resamples: int,
    seed: int,
) -> list[MetricEstimate]:
    """Estimates for ``values`` with percentile-bootstrap intervals: column ``i`` of
    ``statistic``'s draws is the ``i``-th metric of ``values`` (extra columns are ignored)."""
    if not values:
        return []
    draws = bootstrap(n, statistic, resamples=resamples, seed=seed)
    out = []
    for i, (name, value) in enumerate(values.items()):
        low, high, _ = percentile_interval(draws[:, i], confidence)
        out.append(
            MetricEstimate(
                name=name,
                value=value,
                ci_low=low,
                ci_high=high,
                ci_method="bootstrap" if low is not None else None,
                n=n,
                higher_is_better=name not in LOWER_IS_BETTER,
            )
        )
    return out


def _column(statistic: Callable[[np.ndarray], np.ndarray], i: int) -> Callable[..., np.ndarray]:
    return lambda w: statistic(w)[:, i]


def _stack(statistics: list[Callable[[np.ndarray], np.ndarray]]) -> Callable[..., np.ndarray]:
    return lambda w: np.stack([s(w) for s in statistics], axis=1)


# ---------------------------------------------------------------------------------------------
# Regression


def _regression(
    joined: pd.DataFrame, *, confidence: float, resamples: int, seed: int
) -> tuple[int, int, list[str], list[MetricEstimate], str]:
    from sklearn import metrics as skm

    y_all, bad = numeric_labels(joined["label"])
    examples = sorted({str(v) for v in joined["label"].to_numpy()[bad]})[:10]
    pred = pd.to_numeric(joined["prediction"], errors="coerce").to_numpy(dtype=float)
    keep = ~bad & np.isfinite(pred)
    y, p = y_all[keep], pred[keep]
    n = len(y)
    if n == 0:
        reason = "no usable labels in this window"
        return 0, int(bad.sum()), examples, [_none(m, reason) for m in REGRESSOR_METRICS], "-"
    err = y - p
    abs_err, sq_err, y_sq = np.abs(err), err * err, y * y
    values = {
        "mae": float(skm.mean_absolute_error(y, p)),
        "rmse": float(np.sqrt(skm.mean_squared_error(y, p))),
    }

    def statistic(w: np.ndarray) -> np.ndarray:
        sse = w @ sq_err
        sst = w @ y_sq - (w @ y) ** 2 / n
        with np.errstate(invalid="ignore", divide="ignore"):
            r2 = np.where(sst > 1e-12 * np.maximum(w @ y_sq, 1.0), 1 - sse / sst, np.nan)
        return np.stack([w @ abs_err / n, np.sqrt(sse / n), r2], axis=1)

    out: list[MetricEstimate] = []
    if n < 2:
        out.append(_none("r2", "R2 needs at least two labelled predictions", n))
    elif np.ptp(y) == 0:
        out.append(_none("r2", "every label has the same value: R2 is undefined", n))
    else:
        values["r2"] = float(skm.r2_score(y, p))
    # ``values`` is in the order of ``statistic``'s columns (mae, rmse, then r2 if defined).
    out += _bootstrapped(
        n, statistic, values, confidence=confidence, resamples=resamples, seed=seed
    )
    order = {name: i for i, name in enumerate(REGRESSOR_METRICS)}
    out.sort(key=lambda e: order[e.name])
    return n, int(bad.sum()), examples, out, "-"
