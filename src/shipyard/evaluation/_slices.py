"""The slices gate: the primary metric on every value of every categorical input column.

Each slice is scored with the same metric statistic as the bootstrap, on its own rows.
Where ROC AUC is undefined in a slice (one class only), the slice is judged on accuracy
against the whole's accuracy, and the table says so.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from shipyard.config import METRICS, GateSettings
from shipyard.dataset import Schema
from shipyard.evaluation._gate import Gate
from shipyard.evaluation._metrics import class_codes, codes_statistic, metric_statistic
from shipyard.evaluation._scored import Scored

#: Column types whose values are slices.
SLICED = ("string", "categorical", "boolean")
#: Slices listed in the gate's data, worst first.
LISTED = 100


def slices_gate(scored: Scored, schema: Schema, settings: GateSettings) -> Gate:
    """The worst slice against the whole; fails only when ``max_slice_gap`` is set and the
    worst slice trails the whole by more."""
    primary = scored.primary
    names = [primary, "accuracy"] if primary == "roc_auc" else [primary]
    codes = _Codes(scored)
    # Rows by the candidate's score first: each slice's rows then arrive already sorted at
    # the rank statistic (ROC AUC), whose sort is linear on sorted input.
    proba = scored.candidate.proba
    by_score = np.argsort(proba[:, -1], kind="stable") if proba is not None else None
    whole = codes.score(names, "candidate", slice(None))
    columns = [c.name for c in schema.columns if c.dtype in SLICED]
    table: list[dict[str, Any]] = []
    for column in columns:
        values, uniques = pd.factorize(scored.frame[column], use_na_sentinel=False)
        counts = np.bincount(values, minlength=len(uniques))
        # Rows of each slice: one stable sort, then contiguous runs.
        if by_score is None:
            order = np.argsort(values, kind="stable")
        else:
            order = by_score[np.argsort(values[by_score], kind="stable")]
        ends = np.cumsum(counts)
        for code in np.flatnonzero(counts >= settings.min_slice_rows):
            rows = order[ends[code] - counts[code] : ends[code]]
            own = codes.score(names, "candidate", rows)
            metric, k = primary, 0
            if not np.isfinite(own[0]) and len(names) > 1:
                metric, k = "accuracy", 1  # AUC undefined in this slice: one class only
            gap = (whole[k] - own[k]) if METRICS[metric] else (own[k] - whole[k])
            row: dict[str, Any] = {
                "column": column,
                "value": _text(uniques[int(code)]),
                "rows": int(counts[code]),
                "metric": metric,
                "candidate": float(own[k]),
                "whole": float(whole[k]),
                "gap": float(gap),
            }
            if scored.champion is not None:
                row["champion"] = float(codes.score(names, "champion", rows)[k])
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


class _Codes:
    """Labels and predictions as class positions, computed once for every slice."""

    def __init__(self, scored: Scored) -> None:
        self.scored = scored
        classes = scored.classes or []
        self.k = len(classes)
        self.target = class_codes(scored.target, classes) if self.k else scored.target
        self.labels = {
            key: class_codes(out.labels, classes) if self.k else out.labels
            for key, out in (("candidate", scored.candidate), ("champion", scored.champion))
            if out is not None
        }

    def score(self, names: list[str], key: str, rows: Any) -> np.ndarray:
        """The metrics ``names`` of one model on ``rows`` (indices, or a slice)."""
        outputs = self.scored.candidate if key == "candidate" else self.scored.champion
        assert outputs is not None
        y, labels = self.target[rows], self.labels[key][rows]
        if self.k:
            proba = outputs.proba[rows] if outputs.proba is not None else None
            statistic = codes_statistic(names, y, labels, proba, self.k)
        else:
            statistic = metric_statistic(names, y, labels, None, None)
        return np.asarray(statistic(np.ones((1, len(y)))))[0]


def _text(value: Any) -> Any:
    if pd.api.types.is_scalar(value) and pd.isna(value):
        return None
    return value.item() if isinstance(value, np.generic) else value
