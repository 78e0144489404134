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
from shipyard.monitoring import percentile_interval

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
            codes,
            uniques,
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
    codes: np.ndarray,
    uniques: pd.Index,
    settings: GateSettings,
) -> dict[str, Any]:
    from fairlearn.metrics import (
        MetricFrame,
        false_positive_rate,
        selection_rate,
        true_positive_rate,
    )

    # Every rate depends on the rows only through the counts of (group, label, prediction)
    # cells: fairlearn scores the distinct cells weighted by their counts (the same values as
    # on the rows, and fast at any size), and the bootstrap draws the cells' counts directly.
    # Resampling n rows with replacement makes those counts multinomial(n, cell shares):
    # exactly the row bootstrap's distribution, without materialising resamples.
    g = len(uniques)
    cell = codes * 4 + y_true.astype(int) * 2 + y_pred.astype(int)
    counts = np.bincount(cell, minlength=4 * g).astype(float)
    present = np.flatnonzero(counts)
    weight = counts[present]
    cell_group = uniques.to_numpy()[present // 4].astype(str)
    cell_true, cell_pred = (present // 2) % 2, present % 2
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a group without positives: its rate is 0
        frame = MetricFrame(
            metrics={
                "selection_rate": selection_rate,
                "true_positive_rate": true_positive_rate,
                "false_positive_rate": false_positive_rate,
            },
            y_true=cell_true,
            y_pred=cell_pred,
            sensitive_features=cell_group,
            sample_params={
                name: {"sample_weight": weight}
                for name in ("selection_rate", "true_positive_rate", "false_positive_rate")
            },
        )
    by_group = frame.by_group
    rates = by_group["selection_rate"]
    ratio = float(rates.min() / rates.max()) if rates.max() > 0 else 1.0
    tpr, fpr = by_group["true_positive_rate"], by_group["false_positive_rate"]
    odds = float(max(tpr.max() - tpr.min(), fpr.max() - fpr.min()))
    rng = np.random.default_rng(0)
    draws = _rates(rng.multinomial(len(codes), counts / counts.sum(), size=settings.resamples), g)
    low, high, _ = percentile_interval(draws[:, 0], settings.confidence)
    odds_low, odds_high, _ = percentile_interval(draws[:, 1], settings.confidence)
    sizes = counts.reshape(g, 4).sum(axis=1)
    table = [
        {
            "group": str(group),
            "rows": int(sizes[list(uniques.astype(str)).index(str(group))]),
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


def _rates(cells: np.ndarray, g: int) -> np.ndarray:
    """(parity ratio, equalized odds difference) of each row of cell counts (b, 4g), cells
    ordered (group, label, prediction)."""
    c = cells.reshape(len(cells), g, 2, 2).astype(float)
    size = c.sum(axis=(2, 3))
    chosen = c[:, :, :, 1].sum(axis=2)
    pos, neg = c[:, :, 1, :].sum(axis=2), c[:, :, 0, :].sum(axis=2)
    with np.errstate(invalid="ignore", divide="ignore"):
        selection = chosen / size
        tpr = np.where(pos > 0, c[:, :, 1, 1] / np.maximum(pos, 1), 0.0)
        fpr = np.where(neg > 0, c[:, :, 0, 1] / np.maximum(neg, 1), 0.0)
        top = selection.max(axis=1)
        ratio = np.where(top > 0, selection.min(axis=1) / top, 1.0)
    odds = np.maximum(np.ptp(tpr, axis=1), np.ptp(fpr, axis=1))
    return np.stack([ratio, odds], axis=1)


def _f(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3g}"
