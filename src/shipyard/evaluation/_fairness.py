"""The fairness gates: one per sensitive feature, with fairlearn's ``MetricFrame``.

Demographic parity ratio: the smallest group's selection rate (share of rows predicted as the
positive class) over the largest's; the four-fifths rule asks for at least 0.8. Equalized
odds difference: the larger of the groups' spreads in true-positive and false-positive rate.
Both are judged on the point estimate; their percentile-bootstrap intervals are reported.
With more than two classes each class is taken as the positive one in turn and the worst is
judged. Groups with fewer than ``min_slice_rows`` rows are listed but not judged (a handful of
rows makes any ratio), and a numeric feature with many values is cut into quartiles.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import pandas as pd

from shipyard.config import GateSettings
from shipyard.evaluation._gate import Gate
from shipyard.evaluation._scored import Scored
from shipyard.monitoring import bootstrap, percentile_interval

#: A numeric sensitive feature with more distinct values than this is cut into quartiles.
MAX_GROUPS = 10


def fairness_gate(feature: str, values: pd.Series, scored: Scored, settings: GateSettings) -> Gate:
    """The fairness gate of one sensitive feature (``values``: its column in the rows)."""
    name = f"fairness:{feature}"
    if scored.classes is None:
        return Gate(
            name,
            True,
            None,
            settings.min_parity_ratio,
            f"Not applicable: {feature!r} is judged by demographic parity and equalized "
            "odds, which are defined for classifiers, and this model is a regressor.",
            "fairness",
            {"feature": feature},
            applicable=False,
        )
    groups, binned = _groups(values)
    counts = groups.value_counts(dropna=False)
    judged = [g for g, c in counts.items() if c >= settings.min_slice_rows]
    small = {str(g): int(c) for g, c in counts.items() if c < settings.min_slice_rows}
    base: dict[str, Any] = {"feature": feature, "binned": binned, "small_groups": small}
    if len(judged) < 2:
        return Gate(
            name,
            True,
            None,
            settings.min_parity_ratio,
            f"Not applicable: fewer than two groups of {feature!r} have "
            f"{settings.min_slice_rows} rows or more ({len(judged)}).",
            "fairness",
            base,
            applicable=False,
        )
    keep = groups.isin(judged).to_numpy()
    codes, uniques = pd.factorize(groups[keep])
    positives = [scored.positive] if scored.binary else list(scored.classes)
    results = [
        _judge(
            c,
            scored.target[keep] == c,
            scored.candidate.labels[keep] == c,
            groups[keep],
            codes,
            len(uniques),
            settings,
        )
        for c in positives
    ]
    # The worst class: lowest parity ratio, then largest equalized-odds difference.
    worst = min(results, key=lambda r: (r["parity_ratio"], -r["equalized_odds"]))
    ratio, odds = worst["parity_ratio"], worst["equalized_odds"]
    ok_ratio = ratio >= settings.min_parity_ratio
    ok_odds = odds <= settings.max_equalized_odds
    ci = worst["parity_ratio_ci"]
    odds_ci = worst["equalized_odds_ci"]
    of_class = "" if scored.binary else f" (class {worst['positive']!r}, the worst)"
    detail = (
        f"{feature}{of_class}: demographic parity ratio {ratio:.3g} [{_f(ci[0])}, {_f(ci[1])}] "
        f"{'meets' if ok_ratio else 'is below'} the floor {settings.min_parity_ratio:g}; "
        f"equalized odds difference {odds:.3g} [{_f(odds_ci[0])}, {_f(odds_ci[1])}] "
        f"{'within' if ok_odds else 'above'} the ceiling {settings.max_equalized_odds:g} "
        f"({len(judged)} groups{', numeric values in quartiles' if binned else ''})."
    )
    data = {
        **base,
        **worst,
        "per_class": results if not scored.binary else None,
        "min_parity_ratio": settings.min_parity_ratio,
        "max_equalized_odds": settings.max_equalized_odds,
    }
    return Gate(
        name, ok_ratio and ok_odds, ratio, settings.min_parity_ratio, detail, "fairness", data
    )


def _groups(values: pd.Series) -> tuple[pd.Series, bool]:
    values = values.reset_index(drop=True)
    numeric = pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values)
    if numeric and values.nunique() > MAX_GROUPS:
        return pd.qcut(values, 4, duplicates="drop").astype(str), True
    return values.astype(object).where(values.notna(), "(missing)").astype(str), False


def _judge(
    positive: Any,
    y_true: np.ndarray,
    y_pred: np.ndarray,
    groups: pd.Series,
    codes: np.ndarray,
    n_groups: int,
    settings: GateSettings,
) -> dict[str, Any]:
    from fairlearn.metrics import (
        MetricFrame,
        count,
        false_positive_rate,
        selection_rate,
        true_positive_rate,
    )

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a group without positives: its rate is 0, said below
        frame = MetricFrame(
            metrics={
                "rows": count,
                "selection_rate": selection_rate,
                "true_positive_rate": true_positive_rate,
                "false_positive_rate": false_positive_rate,
            },
            y_true=y_true,
            y_pred=y_pred,
            sensitive_features=groups.to_numpy(),
        )
    by_group = frame.by_group
    rates = by_group["selection_rate"]
    ratio = float(rates.min() / rates.max()) if rates.max() > 0 else 1.0
    tpr, fpr = by_group["true_positive_rate"], by_group["false_positive_rate"]
    odds = float(max(tpr.max() - tpr.min(), fpr.max() - fpr.min()))
    draws = bootstrap(
        len(codes),
        _statistic(codes, n_groups, y_true, y_pred),
        resamples=settings.resamples,
        seed=0,
    )
    low, high, _ = percentile_interval(draws[:, 0], settings.confidence)
    odds_low, odds_high, _ = percentile_interval(draws[:, 1], settings.confidence)
    table = [
        {
            "group": str(group),
            "rows": int(row["rows"]),
            "selection_rate": float(row["selection_rate"]),
            "true_positive_rate": float(row["true_positive_rate"]),
            "false_positive_rate": float(row["false_positive_rate"]),
        }
        for group, row in by_group.iterrows()
    ]
    return {
        "positive": positive.item() if isinstance(positive, np.generic) else positive,
        "parity_ratio": ratio,
        "parity_ratio_ci": [low, high],
        "equalized_odds": odds,
        "equalized_odds_ci": [odds_low, odds_high],
        "groups": table,
    }


def _statistic(codes: np.ndarray, n_groups: int, y_true: np.ndarray, y_pred: np.ndarray) -> Any:
    """Bootstrap statistic: (parity ratio, equalized odds difference) per resample."""
    member = np.eye(n_groups)[codes]
    t, p = y_true.astype(float)[:, None], y_pred.astype(float)[:, None]
    matrix = np.hstack(
        [member, member * p, member * t, member * t * p, member * (1 - t), member * (1 - t) * p]
    )

    def statistic(w: np.ndarray) -> np.ndarray:
        sums = w @ matrix
        size, chosen, pos, hit, neg, false_hit = np.split(sums, 6, axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            selection = chosen / size
            tpr = np.where(pos > 0, hit / np.maximum(pos, 1e-300), 0.0)
            fpr = np.where(neg > 0, false_hit / np.maximum(neg, 1e-300), 0.0)
            top = selection.max(axis=1)
            ratio = np.where(top > 0, selection.min(axis=1) / top, 1.0)
        odds = np.maximum(np.ptp(tpr, axis=1), np.ptp(fpr, axis=1))
        return np.stack([ratio, odds], axis=1)

    return statistic


def _f(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3g}"
