"""Data quality of one feature in the current window, against the reference as baseline.

Each metric is a count, a share of a stated denominator, the baseline share expected from
the reference, and the limit above which it is breached (see ``QualityConfig``).

>>> import pandas as pd
>>> from shipyard.dataset import profile_frame
>>> from shipyard.monitoring import NumericState, QualityConfig
>>> ref = profile_frame(pd.DataFrame({"x": [float(i) for i in range(100)]})).columns["x"]
>>> state = NumericState.empty(ref)
>>> state.update(pd.Series([1.0] * 90 + [None] * 10))
>>> [m.name for m in quality_metrics(ref, state, QualityConfig()) if m.breached]
['missing', 'nan']
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

from shipyard.dataset import OTHER, CategoricalProfile, NumericProfile
from shipyard.monitoring._config import QualityConfig
from shipyard.monitoring._state import CategoricalState, ColumnState, NumericState


class QualityMetric(BaseModel):
    """One data-quality measure: ``count`` of ``denominator`` values, their ``share``, the
    ``baseline`` share and the ``limit`` above which the share is ``breached``. ``share`` and
    ``limit`` are None when the denominator is 0.

    >>> QualityMetric(name="missing", count=0, denominator=0, share=None, baseline=0.0,
    ...               limit=None, breached=False).breached
    False
    """

    model_config = ConfigDict(frozen=True)

    name: str
    count: int
    denominator: int
    share: float | None
    baseline: float
    limit: float | None
    breached: bool


def quality_metrics(
    reference: NumericProfile | CategoricalProfile, state: ColumnState, config: QualityConfig
) -> list[QualityMetric]:
    """Every quality metric that applies to the column's kind, in a fixed order."""
    rows, n_ref = state.rows, reference.count
    measures: list[tuple[str, int, int, float, int]] = [
        ("absent", state.absent, rows, 0.0, n_ref),
        ("type_violations", state.violations, rows, 0.0, n_ref),
        ("missing", state.missing, rows, _share(reference.missing, n_ref), n_ref),
    ]
    if isinstance(reference, NumericProfile) and isinstance(state, NumericState):
        finite_ref = n_ref - reference.missing - reference.posinf - reference.neginf
        measures += [
            ("nan", state.nan, rows, _share(reference.nan, n_ref), n_ref),
            ("posinf", state.posinf, rows, _share(reference.posinf, n_ref), n_ref),
            ("neginf", state.neginf, rows, _share(reference.neginf, n_ref), n_ref),
            (
                "out_of_range",
                state.below + state.above,
                state.n_finite,
                # Exchangeable draws: a new one is the smallest or largest of n + 1 with
                # chance 2 / (n + 1), whatever the (continuous) distribution.
                2 / (finite_ref + 1),
                finite_ref,
            ),
        ]
    elif isinstance(reference, CategoricalProfile) and isinstance(state, CategoricalState):
        present_ref = n_ref - reference.missing
        if OTHER in reference.frequencies:
            outside = reference.frequencies[OTHER]
        else:
            # Good-Turing: the chance that the next value is new is about the share of values
            # seen exactly once.
            outside = sum(1 for n in reference.frequencies.values() if n == 1)
        measures.append(
            (
                "unseen",
                state.unseen_total,
                state.n_present,
                _share(outside, present_ref),
                present_ref,
            )
        )
    metrics = []
    for name, count, denominator, baseline, n_baseline in measures:
        if denominator == 0:
            metrics.append(
                QualityMetric(
                    name=name,
                    count=count,
                    denominator=0,
                    share=None,
                    baseline=baseline,
                    limit=None,
                    breached=False,
                )
            )
            continue
        share = count / denominator
        limit = config.limit(name, baseline, denominator, n_baseline)
        metrics.append(
            QualityMetric(
                name=name,
                count=count,
                denominator=denominator,
                share=share,
                baseline=baseline,
                limit=limit,
                breached=count > 0 and share > limit,
            )
        )
    return metrics


def _share(count: int, total: int) -> float:
    return count / total if total else 0.0
