"""The streaming accumulator: bounded, chunking- and order-independent, merge-able."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from shipyard.dataset import CategoricalProfile, NumericProfile, infer_schema, profile_frame
from shipyard.errors import InvalidInput
from shipyard.monitoring import (
    CategoricalState,
    DriftAccumulator,
    DriftReport,
    NumericState,
    compute_drift,
)


def _comparable(report: DriftReport) -> dict:
    data = report.model_dump()
    data.pop("elapsed_seconds")
    return data


def _same_states(a: DriftAccumulator, b: DriftAccumulator) -> None:
    for name, state in a.states.items():
        other = b.states[name]
        assert vars(state).keys() == vars(other).keys()
        for key, value in vars(state).items():
            if isinstance(value, np.ndarray):
                np.testing.assert_array_equal(value, vars(other)[key])
            else:
                assert value == vars(other)[key], (name, key)


def test_results_do_not_depend_on_chunking_order_or_engine_input(
    mixed_frame: Callable[..., pd.DataFrame],
) -> None:
    reference = profile_frame(mixed_frame(5000, 1))
    current = mixed_frame(20_000, 2, drift=True)
    whole = DriftAccumulator(reference).update(current)
    chunked = DriftAccumulator(reference)
    for start in range(0, len(current), 3001):
        chunked.update(current.iloc[start : start + 3001])
    shuffled = DriftAccumulator(reference).update(current.sample(frac=1.0, random_state=3))
    batches = DriftAccumulator(reference)
    for batch in pa.Table.from_pandas(current, preserve_index=False).to_batches(max_chunksize=4096):
        batches.update(batch)
    for other in (chunked, shuffled, batches):
        _same_states(whole, other)
    first = compute_drift(reference, current)
    again = compute_drift(reference, (current.iloc[i : i + 999] for i in range(0, 20_000, 999)))
    assert _comparable(first) == _comparable(again)


def test_merge_of_partitions_equals_one_pass(mixed_frame: Callable[..., pd.DataFrame]) -> None:
    reference = profile_frame(mixed_frame(5000, 1))
    current = mixed_frame(10_000, 4, drift=True)
    left = DriftAccumulator(reference).update(current.iloc[:3000])
    right = DriftAccumulator(reference).update(current.iloc[3000:])
    _same_states(left.merge(right), DriftAccumulator(reference).update(current))
    other = DriftAccumulator(profile_frame(mixed_frame(100, 9)))
    with pytest.raises(InvalidInput, match="different reference"):
        left.merge(other)


def test_state_size_does_not_grow_with_rows(mixed_frame: Callable[..., pd.DataFrame]) -> None:
    reference = profile_frame(mixed_frame(5000, 1))
    small = DriftAccumulator(reference).update(mixed_frame(1000, 2))
    large = DriftAccumulator(reference)
    for seed in range(5):
        large.update(mixed_frame(50_000, seed))
    for name, state in small.states.items():
        if isinstance(state, NumericState):
            assert state.counts.shape == large.states[name].counts.shape
            assert len(state.counts) < 2 * 8 * 101 + 30
    # Unseen names are capped; the count of unseen values is not.
    ref = profile_frame(pd.DataFrame({"c": ["a", "b"]})).columns["c"]
    assert isinstance(ref, CategoricalProfile)
    state = CategoricalState.empty(ref)
    state.update(pd.Series([f"id{i}" for i in range(5000)]))
    assert state.unseen_total == 5000 and len(state.unseen) == 100


def test_missing_nan_infinities_and_range_are_counted() -> None:
    ref = profile_frame(pd.DataFrame({"x": np.arange(100.0)})).columns["x"]
    assert isinstance(ref, NumericProfile)
    state = NumericState.empty(ref)
    state.update(pd.Series([np.nan, np.inf, -np.inf, -1.0, 100.5, 5.0, 5.0, 99.0, 0.0]))
    state.update(pd.Series([1, None, 3], dtype="Int64"))
    assert (state.rows, state.missing, state.nan, state.posinf, state.neginf) == (12, 2, 1, 1, 1)
    assert (state.below, state.above, state.n_finite) == (1, 1, 8)
    left, right = state.cdf()
    assert right[-1] == pytest.approx(7 / 8) and left[0] == pytest.approx(1 / 8)


def test_type_violations_follow_the_schema() -> None:
    train = pd.DataFrame({"n": [1, 2, 3], "ok": [True, False, True], "c": ["a", "b", "a"]})
    schema = infer_schema(train)
    current = pd.DataFrame(
        {
            "n": pd.Series(["2", "x", 2.5, None], dtype=object),
            "ok": pd.Series(["true", "maybe", True, None], dtype=object),
            "c": pd.Series(["a", ["list"], "z", None], dtype=object),
        }
    )
    acc = DriftAccumulator(profile_frame(train), schema=schema).update(current)
    n, ok, c = acc.states["n"], acc.states["ok"], acc.states["c"]
    assert isinstance(n, NumericState) and isinstance(ok, CategoricalState)
    assert isinstance(c, CategoricalState)
    assert (n.violations, n.missing, n.n_finite) == (2, 1, 2)
    assert (ok.violations, ok.missing, ok.counts.tolist()) == (1, 1, [2, 0])
    assert (c.violations, c.unseen_total, c.missing) == (1, 1, 1)
    # Without a schema, a numeric column still counts what is not a number.
    plain = DriftAccumulator(profile_frame(train)).update(current)
    assert plain.states["n"].violations == 1


def test_absent_and_unexpected_columns() -> None:
    reference = profile_frame(pd.DataFrame({"x": [1.0, 2.0], "c": ["a", "b"]}))
    acc = DriftAccumulator(reference).update(pd.DataFrame({"x": [1.0], "extra": [0]}))
    assert acc.states["c"].absent == 1 and acc.states["c"].missing == 1
    assert acc.unexpected_columns == ["extra"]
    with pytest.raises(InvalidInput, match="unique column names"):
        acc.update(pd.DataFrame([[1.0, 2.0]], columns=["x", "x"]))


def test_categorical_keys_match_the_profile_for_booleans_numbers_and_datetimes() -> None:
    train = pd.DataFrame(
        {
            "b": [True, False, True],
            "k": pd.Categorical([1, 2, 1]),
            "d": pd.to_datetime(["2024-01-01", "2024-01-02", "2024-01-01"]),
        }
    )
    acc = DriftAccumulator(profile_frame(train)).update(train)
    for name in train.columns:
        state = acc.states[name]
        assert isinstance(state, CategoricalState)
        assert state.unseen_total == 0 and state.counts.tolist() == [2, 1], name


def test_constant_and_all_missing_reference_columns() -> None:
    train = pd.DataFrame({"k": [3.0] * 50, "gone": [np.nan] * 50})
    report = compute_drift(
        profile_frame(train), pd.DataFrame({"k": [3.0] * 40 + [4.0] * 10, "gone": [1.0] * 50})
    )
    k, gone = report.feature("k"), report.feature("gone")
    psi = k.score("psi").value
    assert psi is not None and psi > 0.25
    assert k.quality_breached  # 20% out of the training range
    assert gone.test is None and "fewer than 30" in gone.reason
    assert gone.score("psi").drifted  # all values leave the missing bin
    assert compute_drift(profile_frame(train), train).flagged() == []


def test_empty_window_gives_a_report_without_verdicts() -> None:
    reference = profile_frame(pd.DataFrame({"x": np.arange(100.0), "c": ["a", "b"] * 50}))
    report = compute_drift(reference, [])
    assert report.n_rows == 0 and report.n_judged == 0 and not report.drifted
    assert all(m.share is None for f in report.features for m in f.quality)
