"""The slices gate: the primary metric on every value of every categorical input column.

Each slice is a row of 0/1 weights, so one call of the metric statistic scores all slices of
a column at once (the same statistic the bootstrap uses). Where ROC AUC is undefined in a
slice (one class only), the slice is judged on accuracy against the whole's accuracy, and
the table says so.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from shipyard.config import METRICS, GateSettings
from shipyard.dataset import Schema
from shipyard.evaluation._gate import Gate
from shipyard.evaluation._metrics import metric_statistic
from shipyard.evaluation._scored import Outputs, Scored

#: Column types whose values are slices.
SLICED = ("string", "categorical", "boolean")
#: Slices listed in the gate's data, worst first.
LISTED = 100
#: Slices scored per call of the statistic.
_BLOCK = 16


def slices_gate(scored: Scored, schema: Schema, settings: GateSettings) -> Gate:
    """The worst slice against the whole; fails only when ``max_slice_gap`` is set and the
    worst slice trails the whole by more."""
    primary = scored.primary
    names = [primary, "accuracy"] if primary == "roc_auc" else [primary]
    cand = _statistic(names, scored, scored.candidate)
    champ = _statistic(names, scored, scored.champion) if scored.champion else None
    whole = cand(np.ones((1, scored.n)))[0]
    columns = [c.name for c in schema.columns if c.dtype in SLICED]
    table: list[dict[str, Any]] = []
    for column in columns:
        values = scored.frame[column]
        codes, uniques = pd.factorize(values, use_na_sentinel=False)
        counts = np.bincount(codes, minlength=len(uniques))
        big = np.flatnonzero(counts >= settings.min_slice_rows)
        if len(big) == 0:
            continue
        # Blocks of slices keep the weight matrix small however many values a column has.
        own = _by_blocks(cand, codes, big)
        other = _by_blocks(champ, codes, big) if champ is not None else None
        for j, code in enumerate(big):
            metric, k = primary, 0
            if not np.isfinite(own[j, 0]) and len(names) > 1:
                metric, k = "accuracy", 1  # AUC undefined in this slice: one class only
            gap = (whole[k] - own[j, k]) if METRICS[metric] else (own[j, k] - whole[k])
            row: dict[str, Any] = {
                "column": column,
                "value": _text(uniques[code]),
                "rows": int(counts[code]),
                "metric": metric,
                "candidate": float(own[j, k]),
                "whole": float(whole[k]),
                "gap": float(gap),
            }
            if other is not None:
                row["champion"] = float(other[j, k])
            table.append(row)
    table.sort(key=lambda r: -r["gap"])
    data: dict[str, Any] = {
        "metric": primary,
        "whole": float(whole[0]),
        "columns": columns,
        "min_slice_rows": settings.min_slice_rows,
        "max_slice_gap": settings.max_slice_gap,
        "slices": table[:LISTED],
        "n_slices": len(table),
    }
    if not table:
        reason = (
            "the model has no categorical input columns"
            if not columns
            else f"no slice of {columns} has {settings.min_slice_rows} rows or more"
        )
        return Gate(
            "slices",
            True,
            None,
            settings.max_slice_gap,
            f"No slices: {reason}.",
            "slices",
            data,
            applicable=False,
        )
    worst = table[0]
    fallback = [f"{r['column']}={r['value']}" for r in table if r["metric"] != primary]
    note = (
        f" ROC AUC is undefined (one class) in {len(fallback)} slice(s), judged on accuracy."
        if fallback
        else ""
    )
    data["worst"] = worst
    limit = settings.max_slice_gap
    passed = limit is None or worst["gap"] <= limit
    judged = (
        "reported, not a gate (max_slice_gap is not set)"
        if limit is None
        else f"{'within' if passed else 'beyond'} max_slice_gap {limit:g}"
    )
    side = "worse" if worst["gap"] >= 0 else "better"
    detail = (
        f"Worst of {len(table)} slices: {worst['column']} = {worst['value']!r} "
        f"({worst['rows']} rows), {worst['metric']} {worst['candidate']:.4g} against "
        f"{worst['whole']:.4g} overall ({abs(worst['gap']):.4g} {side}); {judged}.{note}"
    )
    return Gate("slices", passed, worst["gap"], limit, detail, "slices", data)


def _statistic(names: list[str], scored: Scored, outputs: Outputs | None) -> Any:
    assert outputs is not None
    return metric_statistic(names, scored.target, outputs.labels, outputs.proba, scored.classes)


def _by_blocks(statistic: Any, codes: np.ndarray, slices: np.ndarray) -> np.ndarray:
    parts = []
    for start in range(0, len(slices), _BLOCK):
        block = slices[start : start + _BLOCK]
        parts.append(statistic((codes[None, :] == block[:, None]).astype(np.float64)))
    return np.vstack(parts)


def _text(value: Any) -> Any:
    if pd.api.types.is_scalar(value) and pd.isna(value):
        return None
    return value.item() if isinstance(value, np.generic) else value
