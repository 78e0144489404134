"""profile_frame: exact statistics, bins, quantiles and frequencies; validation; JSON."""

from __future__ import annotations

import time

import numpy as np
import pandas as pd
import pytest

from shipyard.dataset import CategoricalProfile, NumericProfile, Profile, profile_frame
from shipyard.errors import InvalidInput


def numeric(values: object, n_bins: int = 10) -> NumericProfile:
    column = profile_frame(pd.DataFrame({"v": values}), n_bins=n_bins).columns["v"]
    assert isinstance(column, NumericProfile)
    return column


def categorical(values: object) -> CategoricalProfile:
    column = profile_frame(pd.DataFrame({"v": values})).columns["v"]
    assert isinstance(column, CategoricalProfile)
    return column


def test_bins_by_hand() -> None:
    # Quartiles of 1..10 are 1, 3.25, 5.5, 7.75, 10: bins [1, 3.25], (3.25, 5.5], ...
    profile = numeric(np.arange(1, 11), n_bins=4)
    assert profile.bin_edges == [1.0, 3.25, 5.5, 7.75, 10.0]
    assert profile.bin_counts == [3, 2, 2, 3]
    assert (profile.min, profile.max, profile.mean) == (1.0, 10.0, 5.5)
    assert profile.std == pytest.approx(np.sqrt(8.25))  # population std of 1..10


def test_tied_quantiles_are_merged_and_values_on_an_edge_fall_left() -> None:
    # Quartile levels of [0,0,0,0,1,1,2,3]: 0, 0, 0.5, 1.25, 3 -> edges 0, 0.5, 1.25, 3.
    profile = numeric([0, 0, 0, 0, 1, 1, 2, 3], n_bins=4)
    assert profile.bin_edges == [0.0, 0.5, 1.25, 3.0]
    assert profile.bin_counts == [4, 2, 2]


def test_constant_column_has_one_point_bin() -> None:
    profile = numeric([5.0, 5.0, 5.0, np.nan])
    assert profile.bin_edges == [5.0]
    assert profile.bin_counts == [3]
    assert profile.quantiles == [5.0] * 101
    assert (profile.min, profile.max, profile.std) == (5.0, 5.0, 0.0)
    assert profile.histogram([5.0, 4.0, 9.0, np.nan]).tolist() == [3]


def test_counts_of_missing_and_infinite_values() -> None:
    profile = numeric([1.0, np.nan, np.inf, -np.inf, np.inf, None, 3.0])
    assert (profile.count, profile.missing, profile.nan) == (7, 2, 2)
    assert (profile.posinf, profile.neginf) == (2, 1)
    assert (profile.min, profile.max, profile.mean) == (1.0, 3.0, 2.0)
    assert sum(profile.bin_counts) == 2

    nullable = numeric(pd.array([1, None, 3], dtype="Int64"))
    assert (nullable.count, nullable.missing, nullable.nan) == (3, 1, 0)


def test_a_column_without_finite_values() -> None:
    profile = numeric([np.nan, np.inf])
    assert profile.model_dump() == {
        "kind": "numeric",
        "count": 2,
        "missing": 1,
        "nan": 1,
        "posinf": 1,
        "neginf": 0,
        "min": None,
        "max": None,
        "mean": None,
        "std": None,
        "bin_edges": [],
        "bin_counts": [],
        "quantiles": [],
    }
    assert profile.histogram([1.0, 2.0]).tolist() == []


def test_statistics_match_numpy_on_random_data() -> None:
    rng = np.random.default_rng(0)
    values = rng.lognormal(size=10_001)
    values[rng.integers(0, len(values), 50)] = np.nan
    finite = values[np.isfinite(values)]
    profile = numeric(values, n_bins=7)
    assert profile.quantiles == np.quantile(finite, np.linspace(0, 1, 101)).tolist()
    edges = np.quantile(finite, np.linspace(0, 1, 8))
    assert profile.bin_edges == edges.tolist()
    expected = np.histogram(finite, bins=edges)[0]  # numpy closes the LAST bin, not the first
    assert sum(profile.bin_counts) == len(finite)
    # No value sits exactly on an inner edge of continuous data, so the two agree.
    assert profile.bin_counts == expected.tolist()
    assert profile.mean == pytest.approx(finite.mean(), rel=1e-12)
    assert profile.std == pytest.approx(finite.std(), rel=1e-12)
    assert profile.missing == np.isnan(values).sum()
    # The histogram of the reference data reproduces its own bins.
    assert profile.histogram(values).tolist() == profile.bin_counts


def test_values_near_the_float_limit_do_not_overflow() -> None:
    profile = numeric([1.7e308, -1.7e308, 0.0, 1.7e308], n_bins=2)
    assert profile.bin_edges == [-1.7e308, 8.5e307, 1.7e308]
    assert profile.bin_counts == [2, 2]
    assert profile.std is None  # overflows: unknown rather than infinite
    assert all(np.isfinite(profile.quantiles))
    assert Profile.model_validate(
        profile_frame(pd.DataFrame({"v": [1.7e308, -1.7e308]})).model_dump(mode="json")
    ).columns["v"] == numeric([1.7e308, -1.7e308])


def test_histogram_puts_out_of_range_values_in_the_outer_bins() -> None:
    profile = numeric(np.arange(1, 11), n_bins=4)  # edges 1, 3.25, 5.5, 7.75, 10
    current = [-100.0, 1.0, 3.25, 3.26, 5.5, 10.0, 11.0, np.nan, np.inf]
    assert profile.histogram(current).tolist() == [3, 2, 0, 2]


def test_object_columns_of_numbers_are_numeric() -> None:
    profile = numeric(pd.Series([1, 2.5, None, float("nan"), float("inf")], dtype=object))
    assert (profile.count, profile.missing, profile.nan, profile.posinf) == (5, 2, 1, 1)
    assert (profile.min, profile.max) == (1.0, 2.5)


def test_text_that_looks_numeric_stays_categorical() -> None:
    # As in the schema: one text value makes the column text.
    assert categorical(pd.Series([1, 2.5, "inf"], dtype=object)).frequencies == {
        "1": 1,
        "2.5": 1,
        "inf": 1,
    }


def test_categorical_frequencies() -> None:
    profile = categorical(["b", "a", "b", None, "c", "b", "a"])
    assert profile.model_dump() == {
        "kind": "categorical",
        "count": 7,
        "missing": 1,
        "frequencies": {"b": 3, "a": 2, "c": 1},
        "n_distinct": 3,
    }


def test_only_the_top_1000_categories_are_kept() -> None:
    # Category i appears i+1 times (i < 1500), so the top 1000 are 500..1499.
    values = np.repeat([f"k{i:04d}" for i in range(1500)], np.arange(1, 1501))
    profile = categorical(values)
    assert len(profile.frequencies) == 1001
    assert list(profile.frequencies)[:2] == ["k1499", "k1498"]
    assert profile.frequencies["k0500"] == 501
    assert profile.frequencies["__other__"] == sum(range(1, 501))
    assert profile.n_distinct == 1500
    assert sum(profile.frequencies.values()) == len(values)


def test_booleans_categoricals_and_datetimes_are_categorical() -> None:
    assert categorical([True, False, True]).frequencies == {"True": 2, "False": 1}
    assert categorical(pd.array([True, None], dtype="boolean")).missing == 1
    unobserved = categorical(pd.Categorical(["x", "x"], categories=["x", "never"]))
    assert (unobserved.frequencies, unobserved.n_distinct) == ({"x": 2}, 1)
    integer_categories = categorical(pd.Categorical([1, 2, 2, None]))
    assert integer_categories.frequencies == {"2": 2, "1": 1}
    stamps = pd.to_datetime(
        pd.Series(["2024-01-01", "2024-01-01", "2024-01-02 10:30"]), format="ISO8601"
    )
    assert categorical(stamps).frequencies == {"2024-01-01": 2, "2024-01-02T10:30": 1}
    aware = stamps.dt.tz_localize("Europe/Paris")
    assert categorical(aware).frequencies == {"2023-12-31T23:00": 2, "2024-01-02T09:30": 1}
    # A mixed object column: True, 1 and 1.0 are different values.
    mixed = categorical(pd.Series([True, 1, 1.0, "1", None], dtype=object))
    assert mixed.frequencies == {"1": 2, "1.0": 1, "True": 1}


@pytest.mark.parametrize("n_bins", [1, 1001, 2.5, True, "10", None])
def test_n_bins_is_validated(n_bins: object) -> None:
    with pytest.raises(InvalidInput) as caught:
        profile_frame(pd.DataFrame({"x": [1.0]}), n_bins=n_bins)  # type: ignore[arg-type]
    assert caught.value.message == (
        "The 'n_bins' parameter of profile_frame must be an int in [2, 1000]. "
        f"Got {n_bins!r} instead."
    )


def test_n_bins_message_reads_like_scikit_learn() -> None:
    with pytest.raises(InvalidInput) as caught:
        profile_frame(pd.DataFrame({"x": [1.0]}), n_bins=1)
    assert str(caught.value) == (
        "The 'n_bins' parameter of profile_frame must be an int in [2, 1000]. Got 1 instead."
    )


def test_frames_that_cannot_be_profiled() -> None:
    with pytest.raises(InvalidInput, match="unique column names"):
        profile_frame(pd.DataFrame([[1, 2]], columns=["a", "a"]))
    empty = profile_frame(pd.DataFrame({"x": pd.Series([], dtype=float)}))
    assert empty.n_rows == 0
    assert empty.columns["x"].count == 0


def test_profile_json_round_trip_is_lossless() -> None:
    rng = np.random.default_rng(3)
    frame = pd.DataFrame(
        {
            "x": rng.normal(size=500) * 1e-7 + 1 / 3,
            "n": rng.integers(0, 9, size=500),
            "c": rng.choice(["a", "b"], size=500),
        }
    )
    profile = profile_frame(frame, n_bins=20)
    restored = Profile.model_validate(profile.model_dump(mode="json"))
    assert restored == profile
    assert isinstance(restored.columns["x"], NumericProfile)
    assert isinstance(restored.columns["c"], CategoricalProfile)
    assert Profile.model_validate_json(profile.model_dump_json()) == profile
    assert list(restored.columns) == ["x", "n", "c"]


def test_a_million_rows_profile_in_seconds() -> None:
    rng = np.random.default_rng(11)
    rows = 1_000_000
    frame = pd.DataFrame({f"x{i}": rng.normal(size=rows) for i in range(4)})
    frame["c"] = pd.Categorical(rng.choice(["a", "b", "c"], size=rows))
    start = time.perf_counter()
    profile = profile_frame(frame)
    elapsed = time.perf_counter() - start
    assert sum(profile.columns["x0"].bin_counts) == rows  # type: ignore[union-attr]
    # About 0.1 s a numeric column here; generous for a busy CI machine.
    assert elapsed < 5.0
