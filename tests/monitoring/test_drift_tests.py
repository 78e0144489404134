"""Every drift test: the shared contract, then known values from scipy and by hand."""

from __future__ import annotations

import inspect
import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from scipy.spatial.distance import jensenshannon

from shipyard.dataset import CategoricalProfile, NumericProfile, profile_frame
from shipyard.errors import InvalidInput, InvalidTransition
from shipyard.monitoring import (
    CSI,
    DRIFT_TESTS,
    EPSILON,
    PSI,
    CategoricalState,
    ChiSquare,
    DriftTest,
    JensenShannon,
    KolmogorovSmirnov,
    NumericState,
    Wasserstein,
    get_drift_test,
    psi_band,
)


def numeric(reference: np.ndarray, current: np.ndarray, n_bins: int = 10) -> tuple:
    ref = profile_frame(pd.DataFrame({"x": reference}), n_bins=n_bins).columns["x"]
    assert isinstance(ref, NumericProfile)
    state = NumericState.empty(ref)
    state.update(pd.Series(current))
    return ref, state


def categorical(reference: list, current: list) -> tuple:
    ref = profile_frame(pd.DataFrame({"c": pd.Series(reference, dtype=object)})).columns["c"]
    assert isinstance(ref, CategoricalProfile)
    state = CategoricalState.empty(ref)
    state.update(pd.Series(current, dtype=object))
    return ref, state


def same_data(test: type[DriftTest]) -> tuple:
    rng = np.random.default_rng(0)
    if test.column_kind == "numeric":
        data = rng.normal(size=2000)
        return numeric(data, data)
    values = rng.choice(["a", "b", "c"], 2000).tolist()
    return categorical(values, values)


# ---------------------------------------------------------------------------------------------
# The contract, run over every built-in (scikit-learn's parametrize_with_checks, in small).


@pytest.mark.parametrize("test", DRIFT_TESTS, ids=lambda t: t.name)
def test_init_is_keyword_only_and_stores_params(test: type[DriftTest]) -> None:
    params = inspect.signature(test.__init__).parameters
    assert all(p.kind is p.KEYWORD_ONLY for name, p in params.items() if name != "self")
    instance = test(threshold=0.5)
    assert vars(instance) == {name: p.default for name, p in params.items() if name != "self"} | {
        "threshold": 0.5
    }, "__init__ must store its parameters and nothing else"


@pytest.mark.parametrize("test", DRIFT_TESTS, ids=lambda t: t.name)
def test_fit_returns_self_and_sets_trailing_underscore_attributes(test: type[DriftTest]) -> None:
    ref, _ = same_data(test)
    instance = test()
    before = set(vars(instance))
    assert instance.fit(ref) is instance
    added = set(vars(instance)) - before
    assert added and all(name.endswith("_") for name in added)
    assert instance.threshold is None and instance.threshold_ == test.default_threshold


@pytest.mark.parametrize("test", DRIFT_TESTS, ids=lambda t: t.name)
def test_score_before_fit_says_how_to_fix(test: type[DriftTest]) -> None:
    _, state = same_data(test)
    with pytest.raises(InvalidTransition, match=r"call fit\(reference\) first"):
        test().score(state)


@pytest.mark.parametrize("test", DRIFT_TESTS, ids=lambda t: t.name)
def test_identical_data_does_not_drift(test: type[DriftTest]) -> None:
    ref, state = same_data(test)
    score = test().fit(ref).score(state)
    assert score.name == test.name and score.kind == test.kind
    assert not score.drifted
    assert score.value is not None
    assert score.value > 0.5 if test.kind == "p_value" else score.value < 0.02


@pytest.mark.parametrize("test", DRIFT_TESTS, ids=lambda t: t.name)
def test_wrong_column_kind_is_refused(test: type[DriftTest]) -> None:
    other = KolmogorovSmirnov if test.column_kind == "categorical" else ChiSquare
    ref, state = same_data(other)
    with pytest.raises(InvalidInput, match=f"applies to {test.column_kind} columns"):
        test().fit(ref)
    fitted = test().fit(same_data(test)[0])
    with pytest.raises(InvalidInput, match=f"scores {test.column_kind} states"):
        fitted.score(state)


@pytest.mark.parametrize("test", DRIFT_TESTS, ids=lambda t: t.name)
def test_bad_threshold_message(test: type[DriftTest]) -> None:
    ref, _ = same_data(test)
    with pytest.raises(InvalidInput, match=rf"The 'threshold' parameter of {test.name} must be"):
        test(threshold=-1.0).fit(ref)


@pytest.mark.parametrize("test", DRIFT_TESTS, ids=lambda t: t.name)
def test_registered_with_a_one_line_docstring(test: type[DriftTest]) -> None:
    assert get_drift_test(test.name) is test
    assert test.__doc__ and test.__doc__.strip().splitlines()[0].endswith(")."), (
        f"Start {test.__name__}'s docstring with one line ending in '(p-value).' or '(distance).'"
    )


def test_names_are_unique_and_unknown_names_are_refused() -> None:
    assert len({t.name for t in DRIFT_TESTS}) == len(DRIFT_TESTS)
    with pytest.raises(InvalidInput, match="Unknown drift test 'nope'; choose one of 'psi'"):
        get_drift_test("nope")


def test_score_is_json_ready() -> None:
    ref, state = same_data(PSI)
    score = PSI().fit(ref).score(state)
    assert type(score).model_validate_json(score.model_dump_json()) == score


# ---------------------------------------------------------------------------------------------
# Known values


def test_psi_matches_a_hand_computed_example() -> None:
    # Reference 1..10 in 2 quantile bins: [1, 5.5] and (5.5, 10], 5 values each.
    ref, state = numeric(np.arange(1.0, 11.0), np.array([0, 2, 3, 7, 8, 9, 20, np.nan]), n_bins=2)
    assert ref.bin_edges == [1.0, 5.5, 10.0]
    # Bins: below, [1, 5.5], (5.5, 10], above, missing. Reference 0, 5, 5, 0, 0 of 10, so
    # shares 0, .5, .5, 0, 0 -> epsilon, .5, .5, epsilon, epsilon. Current 1, 2, 3, 1, 1 of 8.
    e = 1e-4
    expected = (
        (1 / 8 - e) * math.log((1 / 8) / e)  # below
        + (2 / 8 - 0.5) * math.log((2 / 8) / 0.5)
        + (3 / 8 - 0.5) * math.log((3 / 8) / 0.5)
        + (1 / 8 - e) * math.log((1 / 8) / e)  # above
        + (1 / 8 - e) * math.log((1 / 8) / e)  # missing
    )
    assert e == EPSILON
    assert round(expected, 4) == 2.8812
    score = PSI().fit(ref).score(state)
    assert score.value == pytest.approx(expected, rel=1e-12)
    assert score.drifted and score.band == "major"


def test_psi_honours_n_bins_of_the_profile_and_of_the_test() -> None:
    rng = np.random.default_rng(1)
    ref, state = numeric(rng.normal(size=20_000), rng.normal(0.5, 1, 5000), n_bins=5)
    fitted = PSI().fit(ref)
    assert len(fitted.reference_counts_) == 5 + 3  # below, 5 bins, above, missing
    four = PSI(n_bins=4).fit(ref)
    assert len(four.edges_) == 5 and len(four.reference_counts_) == 4 + 3
    # Same data, bins at quantile levels k/4: each reference bin holds a quarter.
    np.testing.assert_allclose(four.reference_counts_[1:-2], 5000, rtol=1e-9)
    # Current counts on the grid agree with a direct count in the same bins.
    cur = rng.normal(0.5, 1, 5000)
    state = NumericState.empty(ref)
    state.update(pd.Series(cur))
    edges = four.edges_
    direct = np.histogram(np.clip(cur, edges[0], edges[-1]), bins=edges)[0]
    inner_ref = four.reference_counts_[1:-2] / 20_000
    shares = np.maximum(direct / 5000, EPSILON)
    below, above = np.mean(cur < edges[0]), np.mean(cur > edges[-1])
    direct[0] -= np.sum(cur < edges[0])
    direct[-1] -= np.sum(cur > edges[-1])
    shares = np.maximum(np.concatenate([[below], direct / 5000, [above], [0]]), EPSILON)
    ref_shares = np.maximum(np.concatenate([[0], inner_ref, [0], [0]]), EPSILON)
    expected = np.sum((shares - ref_shares) * np.log(shares / ref_shares))
    assert four.score(state).value == pytest.approx(expected, rel=0.02)
    with pytest.raises(
        InvalidInput, match=r"'n_bins' parameter of psi must be an int in \[2, 1000\]"
    ):
        PSI(n_bins=1).fit(ref)


def test_one_extreme_outlier_barely_moves_psi() -> None:
    rng = np.random.default_rng(2)
    reference = rng.normal(size=50_000)
    for n in (1000, 10_000):
        current = rng.normal(0.4, 1, n)  # a drifted window: PSI around 0.15
        with_outlier = current.copy()
        with_outlier[0] = 1e12
        ref, clean = numeric(reference, current)
        _, dirty = numeric(reference, with_outlier)
        a, b = PSI().fit(ref).score(clean).value, PSI().fit(ref).score(dirty).value
        assert a is not None and b is not None
        assert abs(b - a) < 0.03 * a, (n, a, b)
        w = Wasserstein().fit(ref)
        assert abs(w.score(dirty).value - w.score(clean).value) < 0.01  # type: ignore[operator]


def test_psi_bands() -> None:
    assert [psi_band(v) for v in (0.0, 0.099, 0.1, 0.25, 0.2501)] == [
        "stable",
        "stable",
        "minor",
        "minor",
        "major",
    ]


def test_csi_counts_unseen_and_missing_buckets() -> None:
    ref, state = categorical(
        ["a"] * 60 + ["b"] * 40, ["a"] * 50 + ["b"] * 30 + ["z"] * 10 + [None] * 10
    )
    p = np.maximum(np.array([0.6, 0.4, 0.0, 0.0]), EPSILON)
    q = np.array([0.5, 0.3, 0.1, 0.1])
    assert CSI().fit(ref).score(state).value == pytest.approx(np.sum((q - p) * np.log(q / p)))


@pytest.mark.parametrize(
    ("reference", "current"),
    [
        (lambda r: r.normal(size=20_000), lambda r: r.normal(0.1, 1, 2000)),
        (lambda r: r.lognormal(0, 1, 20_000), lambda r: r.lognormal(0.1, 1.1, 3000)),
        (lambda r: r.normal(size=5000), lambda r: r.normal(size=5000)),
    ],
    ids=["normal-shift", "lognormal", "same"],
)
def test_ks_agrees_with_scipy_ks_2samp(reference, current) -> None:  # type: ignore[no-untyped-def]
    rng = np.random.default_rng(3)
    x, y = reference(rng), current(rng)
    ref, state = numeric(x, y)
    score = KolmogorovSmirnov().fit(ref).score(state)
    expected = stats.ks_2samp(x, y, method="asymp")
    # The reference CDF is known at its percentiles: D to within 0.01.
    assert score.statistic == pytest.approx(expected.statistic, abs=0.01)
    n_eff = round(len(x) * len(y) / (len(x) + len(y)))
    assert score.value == stats.kstwo.sf(score.statistic, n_eff)
    lo = stats.kstwo.sf(expected.statistic + 0.01, n_eff)
    hi = stats.kstwo.sf(max(expected.statistic - 0.01, 0), n_eff)
    assert lo <= score.value <= hi


@pytest.mark.parametrize(
    ("reference", "current", "tolerance", "light_tails"),
    [
        (lambda r: r.normal(size=20_000), lambda r: r.normal(0.3, 1.2, 5000), 0.01, True),
        (lambda r: r.lognormal(0, 1, 20_000), lambda r: r.lognormal(0.2, 1, 5000), 0.01, False),
        (lambda r: r.poisson(3, 20_000), lambda r: r.poisson(3.5, 5000), 0.03, True),
        (lambda r: r.integers(18, 91, 20_000), lambda r: r.integers(18, 91, 5000), 0.01, True),
    ],
    ids=["normal", "lognormal", "poisson", "uniform-int"],
)
def test_wasserstein_agrees_with_scipy(reference, current, tolerance, light_tails) -> None:  # type: ignore[no-untyped-def]
    rng = np.random.default_rng(4)
    x, y = reference(rng).astype(float), current(rng).astype(float)
    ref, state = numeric(x, y)
    lo, hi = np.quantile(x, [0.01, 0.99])
    expected = stats.wasserstein_distance(np.clip(x, lo, hi), np.clip(y, lo, hi)) / x.std()
    assert Wasserstein().fit(ref).score(state).value == pytest.approx(expected, abs=tolerance)
    if not light_tails:
        return  # the profile cannot say where the top 1% of a heavy tail lies: hence winsorize
    unclipped = stats.wasserstein_distance(x, y) / x.std()
    assert Wasserstein(winsorize=0.0).fit(ref).score(state).value == pytest.approx(
        unclipped, abs=max(tolerance, 0.05 * unclipped)
    )


def test_wasserstein_parameter_check() -> None:
    ref, _ = same_data(Wasserstein)
    with pytest.raises(InvalidInput, match=r"'winsorize' parameter of wasserstein"):
        Wasserstein(winsorize=0.5).fit(ref)


def test_chi_square_equals_scipy_chi2_contingency() -> None:
    rng = np.random.default_rng(5)
    reference = rng.choice(["a", "b", "c", "d"], 3000, p=[0.4, 0.3, 0.2, 0.1]).tolist()
    current = rng.choice(["a", "b", "c", "d", "new"], 800, p=[0.35, 0.3, 0.2, 0.1, 0.05]).tolist()
    current[:20] = [None] * 20  # missing values are not part of the test
    ref, state = categorical(reference, current)
    score = ChiSquare().fit(ref).score(state)
    present = [v for v in current if v is not None]
    table = np.array(
        [
            [reference.count(k) for k in ["a", "b", "c", "d"]] + [0],
            [present.count(k) for k in ["a", "b", "c", "d", "new"]],
        ]
    )
    expected = stats.chi2_contingency(table, correction=False)
    assert score.statistic == pytest.approx(expected.statistic, rel=1e-12)
    assert score.value == pytest.approx(expected.pvalue, rel=1e-9)
    assert score.drifted


def test_chi_square_pools_sparse_categories() -> None:
    ref, state = categorical(["a"] * 500 + ["b"] * 498 + ["r1", "r2"], ["a"] * 50 + ["b"] * 50)
    score = ChiSquare().fit(ref).score(state)
    # r1, r2 and the empty unseen bucket pool into one column: a 2 x 3 table.
    table = np.array([[500, 498, 2], [50, 50, 0]])
    expected = stats.chi2_contingency(table, correction=False)
    assert score.value == pytest.approx(expected.pvalue, rel=1e-9)


def test_jensen_shannon_equals_scipy() -> None:
    rng = np.random.default_rng(6)
    reference = rng.choice(["a", "b", "c"], 5000, p=[0.5, 0.3, 0.2]).tolist()
    current = rng.choice(["a", "b", "c", "z"], 4000, p=[0.3, 0.3, 0.3, 0.1]).tolist()
    ref, state = categorical(reference, current)
    p = np.array([reference.count(k) for k in ["a", "b", "c"]] + [0]) / 5000
    q = np.array([current.count(k) for k in ["a", "b", "c", "z"]]) / 4000
    expected = jensenshannon(p, q, base=2)
    assert JensenShannon().fit(ref).score(state).value == pytest.approx(expected, rel=1e-12)
