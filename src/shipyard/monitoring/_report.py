"""The result document of one drift and data-quality check, and the one call that makes it.

>>> import numpy as np, pandas as pd
>>> from shipyard.dataset import profile_frame
>>> rng = np.random.default_rng(0)
>>> train = pd.DataFrame({"x": rng.normal(size=20_000), "c": rng.choice(["a", "b"], 20_000)})
>>> report = compute_drift(profile_frame(train), [train.assign(x=train["x"] + 1)])
>>> report.feature("x").test, report.feature("x").drifted, report.feature("c").drifted
('wasserstein', True, False)
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Any, Literal

import pandas as pd
import pyarrow as pa
from pydantic import BaseModel, ConfigDict

from shipyard.dataset import CategoricalProfile, NumericProfile, Profile, Schema
from shipyard.errors import InvalidInput, NotFound
from shipyard.monitoring._accumulate import Chunk, DriftAccumulator
from shipyard.monitoring._config import DriftConfig
from shipyard.monitoring._drift import DRIFT_TESTS, DriftScore, DriftTest
from shipyard.monitoring._quality import QualityMetric, quality_metrics
from shipyard.monitoring._state import CategoricalState, ColumnState, NumericState


class FeatureReport(BaseModel):
    """One feature: the test the rule chose (``test``, with ``reason``), every applicable
    test's score, the drift verdict, and data quality.

    ``n_values`` counts the values drift is judged on in each window: finite numbers, or
    present categories (reference first).
    """

    model_config = ConfigDict(frozen=True)

    name: str
    kind: Literal["numeric", "categorical"]
    test: str | None
    reason: str
    drifted: bool
    scores: list[DriftScore]
    quality: list[QualityMetric]
    quality_breached: bool
    n_rows: int
    n_values: tuple[int, int]

    def score(self, name: str) -> DriftScore:
        """The score of the test called ``name``."""
        for score in self.scores:
            if score.name == name:
                return score
        raise NotFound(f"Feature {self.name!r} has no {name!r} score.")


class DriftReport(BaseModel):
    """Drift and data quality of a current window against a reference profile.

    ``drifted`` is the dataset-level flag: at least ``config.drift_share`` of the judged
    features drifted. JSON with ``report.model_dump_json()``.
    """

    model_config = ConfigDict(frozen=True)

    drifted: bool
    quality_breached: bool
    n_features: int
    n_judged: int
    n_drifted: int
    drift_share: float
    n_rows: int
    n_reference_rows: int
    elapsed_seconds: float
    unexpected_columns: list[str]
    features: list[FeatureReport]
    config: DriftConfig

    def feature(self, name: str) -> FeatureReport:
        """The report of the feature called ``name``."""
        for feature in self.features:
            if feature.name == name:
                return feature
        raise NotFound(f"The report has no feature {name!r}.")

    def flagged(self) -> list[str]:
        """Names of the features that drifted or breached a data-quality limit."""
        return [f.name for f in self.features if f.drifted or f.quality_breached]


def compute_drift(
    reference: Profile | dict[str, Any],
    current: Chunk | Iterable[Chunk],
    *,
    schema: Schema | None = None,
    config: DriftConfig | None = None,
    tests: tuple[type[DriftTest], ...] = DRIFT_TESTS,
) -> DriftReport:
    """Stream ``current`` (one frame or batch, or an iterable of them) and compare it with
    ``reference``, e.g. ``archive["inputs"]`` or ``archive["outputs"]`` of a reference profile.
    """
    started = time.perf_counter()
    config = config or DriftConfig()
    config.check_tests(tests)
    if isinstance(reference, dict):
        reference = Profile.model_validate(reference)
    if not isinstance(reference, Profile):
        raise InvalidInput(
            f"compute_drift needs a Profile as reference. Got {type(reference).__name__} instead."
        )
    accumulator = DriftAccumulator(reference, schema=schema)
    chunks = [current] if isinstance(current, pd.DataFrame | pa.RecordBatch | pa.Table) else current
    for chunk in chunks:
        accumulator.update(chunk)
    return build_report(accumulator, config=config, tests=tests, started=started)


def build_report(
    accumulator: DriftAccumulator,
    *,
    config: DriftConfig | None = None,
    tests: tuple[type[DriftTest], ...] = DRIFT_TESTS,
    started: float | None = None,
) -> DriftReport:
    """The report of an accumulator's window (``started``: a ``time.perf_counter()`` value)."""
    started = time.perf_counter() if started is None else started
    config = config or DriftConfig()
    config.check_tests(tests)
    features = [
        _feature(name, accumulator.reference.columns[name], state, config, tests)
        for name, state in accumulator.states.items()
    ]
    judged = [f for f in features if f.test is not None]
    n_drifted = sum(f.drifted for f in judged)
    share = n_drifted / len(judged) if judged else 0.0
    return DriftReport(
        drifted=bool(judged) and share >= config.drift_share,
        quality_breached=any(f.quality_breached for f in features),
        n_features=len(features),
        n_judged=len(judged),
        n_drifted=n_drifted,
        drift_share=share,
        n_rows=accumulator.n_rows,
        n_reference_rows=accumulator.reference.n_rows,
        elapsed_seconds=time.perf_counter() - started,
        unexpected_columns=list(accumulator.unexpected_columns),
        features=features,
        config=config,
    )


def _feature(
    name: str,
    reference: NumericProfile | CategoricalProfile,
    state: ColumnState,
    config: DriftConfig,
    tests: tuple[type[DriftTest], ...],
) -> FeatureReport:
    if isinstance(reference, NumericProfile) and isinstance(state, NumericState):
        n_ref = reference.count - reference.missing - reference.posinf - reference.neginf
        n_cur = state.n_finite
    elif isinstance(reference, CategoricalProfile) and isinstance(state, CategoricalState):
        n_ref, n_cur = reference.count - reference.missing, state.n_present
    else:  # pragma: no cover - the accumulator builds states from the same profile
        raise InvalidInput(f"Feature {name!r}: the state does not match the reference kind.")
    scores = []
    for test in tests:
        if test.column_kind == reference.kind:
            threshold = config.thresholds.get(test.name)
            fitted = test(threshold=None if threshold is None else threshold.value).fit(reference)
            scores.append(fitted.score(state))
    buckets = len(state.categories) + 1 if isinstance(state, CategoricalState) else 2
    chosen, reason = config.choose(
        reference.kind, n_reference=n_ref, n_current=n_cur, n_buckets=buckets
    )
    decisive = next((s for s in scores if s.name == chosen), None)
    quality = quality_metrics(reference, state, config.quality)
    return FeatureReport(
        name=name,
        kind=reference.kind,
        test=chosen,
        reason=reason,
        drifted=decisive is not None and decisive.drifted,
        scores=scores,
        quality=quality,
        quality_breached=any(metric.breached for metric in quality),
        n_rows=state.rows,
        n_values=(n_ref, n_cur),
    )
