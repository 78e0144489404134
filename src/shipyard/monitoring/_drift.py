"""Drift tests: one small interface, six built-ins, registered in ``DRIFT_TESTS``.

Each test follows scikit-learn's estimator contract: the keyword-only ``__init__`` stores its
parameters and nothing else; ``fit(reference)`` takes one column of a reference ``Profile``,
validates the parameters, sets attributes ending in ``_`` and returns ``self``;
``score(state)`` compares the current window's state (see ``_state``) with it and returns a
``DriftScore``. A third-party test subclasses ``DriftTest`` the same way and is passed to
``compute_drift(..., tests=[*DRIFT_TESTS, MyTest])``.

>>> import pandas as pd
>>> from shipyard.dataset import profile_frame
>>> from shipyard.monitoring import CategoricalState
>>> ref = profile_frame(pd.DataFrame({"c": ["a"] * 50 + ["b"] * 50})).columns["c"]
>>> state = CategoricalState.empty(ref)
>>> state.update(pd.Series(["a"] * 50 + ["b"] * 50))
>>> JensenShannon(threshold=0.1).fit(ref).score(state).drifted
False
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from typing import Any, ClassVar, Literal, Self

import numpy as np
from pydantic import BaseModel, ConfigDict
from scipy import special

from shipyard.dataset import OTHER, CategoricalProfile, NumericProfile
from shipyard.errors import InvalidInput, InvalidTransition
from shipyard.monitoring._state import (
    CategoricalState,
    ColumnState,
    NumericState,
    reference_cdf,
    reference_quantile,
)

ScoreKind = Literal["p_value", "distance"]
ColumnKind = Literal["numeric", "categorical"]

#: Proportions below this are raised to it in PSI and CSI, so an empty bin costs a finite
#: amount: ``(q - p) * ln(q / p)`` with ``p = 1e-4`` instead of 0. At 1e-4 a bin must hold
#: more than one row in 10,000 before it moves the index at all, which is what keeps one
#: extreme outlier (alone in the above-range bin) from moving PSI.
EPSILON = 1e-4

#: PSI/CSI bands: below the first bound "stable", up to the second "minor", above "major".
PSI_BANDS = (0.1, 0.25)

#: Up to this effective n, KS p-values use scipy's ``kstwo``; above, its faster limit.
KS_EXACT_N = 10_000

UNSEEN = "__unseen__"
MISSING_BUCKET = "__missing__"


class DriftScore(BaseModel):
    """One test's verdict on one column.

    ``value`` is a p-value (drifted when below ``threshold``) or a distance (drifted when
    above); ``statistic`` is the raw test statistic (KS D, chi-square) and equals ``value`` for
    distances. ``value`` is None when the test cannot be computed (``detail`` says why).

    >>> DriftScore(name="psi", value=0.3, threshold=0.25, kind="distance", drifted=True).drifted
    True
    """

    model_config = ConfigDict(frozen=True)

    name: str
    value: float | None
    threshold: float
    kind: ScoreKind
    drifted: bool
    statistic: float | None = None
    band: Literal["stable", "minor", "major"] | None = None
    detail: str | None = None


class DriftTest(ABC):
    """The interface every drift test follows; subclasses set the four class attributes."""

    #: Unique name, used in configuration and reports.
    name: ClassVar[str]
    #: Whether ``value`` is a p-value or a distance.
    kind: ClassVar[ScoreKind]
    #: The column kind the test applies to.
    column_kind: ClassVar[ColumnKind]
    #: Threshold used when none is given.
    default_threshold: ClassVar[float]

    reference_: NumericProfile | CategoricalProfile
    threshold_: float

    def __init__(self, *, threshold: float | None = None) -> None:
        self.threshold = threshold

    def fit(self, reference: NumericProfile | CategoricalProfile) -> Self:
        """Validate parameters, learn what is needed from ``reference`` and return self."""
        self._check_params()
        if reference.kind != self.column_kind:
            raise InvalidInput(
                f"The {self.name} drift test applies to {self.column_kind} columns. "
                f"Got a {reference.kind} column profile instead.",
            )
        self.threshold_ = self.default_threshold if self.threshold is None else self.threshold
        self.reference_ = reference
        self._fit(reference)
        return self

    def score(self, current: ColumnState) -> DriftScore:
        """Compare the current window's ``current`` state with the fitted reference."""
        if not hasattr(self, "reference_"):
            raise InvalidTransition(
                f"This {type(self).__name__} is not fitted yet; call fit(reference) first.",
            )
        if current.kind != self.column_kind:
            raise InvalidInput(
                f"The {self.name} drift test scores {self.column_kind} states. "
                f"Got a {current.kind} state instead.",
            )
        return self._score(current)

    def _check_params(self) -> None:
        t = self.threshold
        if t is None:
            return
        if self.kind == "p_value" and not (_is_number(t) and 0 <= t <= 1):
            bound = "in [0, 1]"
        elif self.kind == "distance" and not (_is_number(t) and t >= 0):
            bound = ">= 0"
        else:
            return
        raise InvalidInput(
            f"The 'threshold' parameter of {self.name} must be a float {bound} or None. "
            f"Got {t!r} instead.",
        )

    def _fit(self, reference: Any) -> None:  # noqa: B027 - optional hook, nothing to learn
        """Learn what ``_score`` needs; the default needs only ``reference_``."""

    @abstractmethod
    def _score(self, current: Any) -> DriftScore: ...

    def _result(
        self,
        value: float | None,
        *,
        statistic: float | None = None,
        detail: str | None = None,
    ) -> DriftScore:
        if value is None:
            drifted = False
        elif self.kind == "p_value":
            drifted = value < self.threshold_
        else:
            drifted = value > self.threshold_
        return DriftScore(
            name=self.name,
            value=value,
            threshold=self.threshold_,
            kind=self.kind,
            drifted=drifted,
            statistic=value if statistic is None and self.kind == "distance" else statistic,
            band=psi_band(value) if self.name in ("psi", "csi") and value is not None else None,
            detail=detail,
        )

    def __repr__(self) -> str:
        params = ", ".join(f"{k}={v!r}" for k, v in vars(self).items() if not k.endswith("_"))
        return f"{type(self).__name__}({params})"


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def psi_band(value: float) -> Literal["stable", "minor", "major"]:
    """The usual reading of a PSI or CSI value.

    >>> psi_band(0.05), psi_band(0.1), psi_band(0.3)
    ('stable', 'minor', 'major')
    """
    if value < PSI_BANDS[0]:
        return "stable"
    return "minor" if value <= PSI_BANDS[1] else "major"


def stability_index(reference: Any, current: Any, *, epsilon: float = EPSILON) -> float:
    """PSI/CSI of two count vectors over the same bins: sum of (q - p) ln(q / p).

    Proportions below ``epsilon`` are raised to it (see ``EPSILON``).

    >>> round(stability_index([50, 50], [40, 60]), 4)
    0.0405
    """
    p = np.asarray(reference, dtype=np.float64)
    q = np.asarray(current, dtype=np.float64)
    p = np.maximum(p / p.sum(), epsilon)
    q = np.maximum(q / q.sum(), epsilon)
    return float(np.sum((q - p) * np.log(q / p)))


def _finite_reference(reference: NumericProfile) -> int:
    return reference.count - reference.missing - reference.posinf - reference.neginf


def categorical_buckets(
    reference: CategoricalProfile, current: CategoricalState, *, missing: bool
) -> tuple[list[str], np.ndarray, np.ndarray]:
    """Labels, reference counts and current counts over the reference categories, one
    ``"__unseen__"`` bucket (holding the reference's ``"__other__"``, if it had one) and, with
    ``missing``, one ``"__missing__"`` bucket. Missing values include type violations.

    >>> import pandas as pd
    >>> from shipyard.dataset import profile_frame
    >>> ref = profile_frame(pd.DataFrame({"c": ["a", "b", "a"]})).columns["c"]
    >>> state = CategoricalState.empty(ref)
    >>> state.update(pd.Series(["a", "z", None]))
    >>> labels, r, c = categorical_buckets(ref, state, missing=True)
    >>> labels, r.astype(int).tolist(), c.astype(int).tolist()
    (['a', 'b', '__unseen__', '__missing__'], [2, 1, 0, 0], [1, 0, 1, 1])
    """
    labels = [*current.categories, UNSEEN]
    ref_counts = [reference.frequencies.get(key, 0) for key in current.categories]
    ref_counts.append(reference.frequencies.get(OTHER, 0))
    cur_counts = [*current.counts.tolist(), current.unseen_total]
    if missing:
        labels.append(MISSING_BUCKET)
        ref_counts.append(reference.missing)
        cur_counts.append(current.missing + current.violations)
    return labels, np.asarray(ref_counts, dtype=np.float64), np.asarray(cur_counts, np.float64)


# ---------------------------------------------------------------------------------------------
# Numeric tests


class PSI(DriftTest):
    """Population stability index over the reference's quantile bins (distance; 0.25 = major).

    Bins: below the reference minimum, the reference bins (fixed from its quantiles, as many as
    the profile's ``n_bins``, or ``n_bins`` bins at quantile levels k/n_bins when given), above
    its maximum, and missing (with type violations); -inf and +inf count below and above.
    Empty bins use ``EPSILON``.

    >>> import pandas as pd
    >>> from shipyard.dataset import profile_frame
    >>> ref = profile_frame(pd.DataFrame({"x": [1.0, 2.0, 3.0, 4.0]}), n_bins=2).columns["x"]
    >>> state = NumericState.empty(ref)
    >>> state.update(pd.Series([1.0, 2.0, 3.0, 4.0]))
    >>> PSI().fit(ref).score(state).value
    0.0
    """

    reference_: NumericProfile
    name = "psi"
    kind = "distance"
    column_kind = "numeric"
    default_threshold = 0.25

    def __init__(self, *, threshold: float | None = None, n_bins: int | None = None) -> None:
        self.threshold = threshold
        self.n_bins = n_bins

    def _check_params(self) -> None:
        super()._check_params()
        n = self.n_bins
        if n is not None and (not isinstance(n, int) or isinstance(n, bool) or not 2 <= n <= 1000):
            raise InvalidInput(
                "The 'n_bins' parameter of psi must be an int in [2, 1000] or None. "
                f"Got {n!r} instead.",
            )

    def _fit(self, reference: NumericProfile) -> None:
        if self.n_bins is None or not reference.quantiles:
            self.edges_ = np.asarray(reference.bin_edges, dtype=np.float64)
            inner = np.asarray(reference.bin_counts, dtype=np.float64)
        else:
            levels = np.linspace(0.0, 1.0, self.n_bins + 1)
            self.edges_ = np.unique([reference_quantile(reference.quantiles, u) for u in levels])
            inner = _bin_counts(
                reference_cdf(reference.quantiles, self.edges_, left=True),
                reference_cdf(reference.quantiles, self.edges_),
                _finite_reference(reference),
            )
        self.reference_counts_ = np.concatenate(
            [[reference.neginf], inner, [reference.posinf], [reference.missing]]
        )

    def _score(self, current: NumericState) -> DriftScore:
        if current.rows == 0:
            return self._result(None, detail="no rows in the current window")
        if len(self.edges_) == 0 or current.n_finite == 0:
            inner = np.zeros(len(self.reference_counts_) - 3)
        else:
            left, right = current.cdf_at(self.edges_)
            inner = _bin_counts(left, right, current.n_finite)
        below = current.below + current.neginf
        above = current.above + current.posinf  # all finite values if the reference had none
        counts = np.concatenate([[below], inner, [above], [current.missing + current.violations]])
        return self._result(stability_index(self.reference_counts_, counts))


def _bin_counts(left: np.ndarray, right: np.ndarray, n: int) -> np.ndarray:
    """Counts in bins [e0, e1], (e1, e2], ... from a CDF's left limits and values at the edges."""
    if len(right) == 1:  # one edge: the single bin is the point itself
        return np.array([(right[0] - left[0]) * n])
    upto = right.copy()
    upto[0] = left[0]
    return np.diff(upto) * n


class KolmogorovSmirnov(DriftTest):
    """Two-sample Kolmogorov-Smirnov test against the reference CDF (p-value).

    D is the largest gap between the current CDF and the reference CDF (read from the
    profile's 101 percentiles, so D is known to about 0.01), over finite values; the p-value
    is scipy's asymptotic ``kstwo.sf(D, round(n_ref * n_cur / (n_ref + n_cur)))``, as
    ``scipy.stats.ks_2samp(method="asymp")`` computes it, up to n_eff = ``KS_EXACT_N``, and
    the limiting ``kstwobign.sf(D * sqrt(n_eff))`` above.

    >>> import pandas as pd
    >>> from shipyard.dataset import profile_frame
    >>> ref = profile_frame(pd.DataFrame({"x": range(1000)})).columns["x"]
    >>> state = NumericState.empty(ref)
    >>> state.update(pd.Series(range(500, 1500)))
    >>> score = KolmogorovSmirnov().fit(ref).score(state)
    >>> round(score.statistic, 2), score.drifted
    (0.5, True)
    """

    reference_: NumericProfile
    name = "ks"
    kind = "p_value"
    column_kind = "numeric"
    default_threshold = 1e-4

    def _score(self, current: NumericState) -> DriftScore:
        n_ref, n_cur = _finite_reference(self.reference_), current.n_finite
        if n_ref == 0 or n_cur == 0:
            return self._result(None, detail="no finite values in one of the windows")
        left, right = current.cdf()
        q = self.reference_.quantiles
        gap = np.maximum(
            np.abs(left - reference_cdf(q, current.grid, left=True)),
            np.abs(right - reference_cdf(q, current.grid)),
        )
        d = float(gap.max())
        n_eff = max(1.0, float(np.round(n_ref * n_cur / (n_ref + n_cur))))
        if n_eff <= KS_EXACT_N:
            from scipy import stats  # ~60 MB of imports: only small windows need it

            p = float(stats.kstwo.sf(d, n_eff))
        else:
            # kstwo costs up to seconds at n ~ 1e6; its limit is within 1% from 10,000 on.
            p = float(special.kolmogorov(d * math.sqrt(n_eff)))  # == stats.kstwobign.sf
        return self._result(min(max(p, 0.0), 1.0), statistic=d)


class Wasserstein(DriftTest):
    """Wasserstein-1 distance / reference std, winsorised at its 1st/99th percentile (distance).

    Both windows are clipped to the reference's ``winsorize`` and ``1 - winsorize``
    quantiles first: the profile keeps no quantile finer than 1%, so its tails are unknown,
    and clipping also keeps one extreme value from dominating. Equal to
    ``scipy.stats.wasserstein_distance(clip(ref), clip(cur)) / ref_std`` up to the grid.

    >>> import pandas as pd
    >>> from shipyard.dataset import profile_frame
    >>> ref = profile_frame(pd.DataFrame({"x": range(1000)})).columns["x"]
    >>> state = NumericState.empty(ref)
    >>> state.update(pd.Series(range(1000)))
    >>> Wasserstein().fit(ref).score(state).value < 0.01
    True
    """

    reference_: NumericProfile
    name = "wasserstein"
    kind = "distance"
    column_kind = "numeric"
    default_threshold = 0.1

    def __init__(self, *, threshold: float | None = None, winsorize: float = 0.01) -> None:
        self.threshold = threshold
        self.winsorize = winsorize

    def _check_params(self) -> None:
        super()._check_params()
        w = self.winsorize
        if not _is_number(w) or not 0 <= w < 0.5:
            raise InvalidInput(
                "The 'winsorize' parameter of wasserstein must be a float in [0, 0.5). "
                f"Got {w!r} instead.",
            )

    def _fit(self, reference: NumericProfile) -> None:
        if not reference.quantiles:
            self.range_ = None
            self.scale_ = 1.0
            return
        q = reference.quantiles
        self.range_ = (
            reference_quantile(q, self.winsorize),
            reference_quantile(q, 1 - self.winsorize),
        )
        # A constant reference has std 0: any change would be infinitely far, so use its
        # magnitude (or 1) as the unit instead.
        std = reference.std or 0.0
        self.scale_ = std if std > 0 else max(abs(q[0]), 1.0)

    def _score(self, current: NumericState) -> DriftScore:
        if self.range_ is None or current.n_finite == 0:
            return self._result(None, detail="no finite values in one of the windows")
        a, b = self.range_
        if b <= a:
            # Winsorised to a point: all mass sits at it in both windows.
            return self._result(0.0)
        grid = current.grid
        inside = grid[(grid > a) & (grid < b)]
        points = np.concatenate([[a], inside, [b]])
        cur_left, cur_right = current.cdf_at(points)
        q = self.reference_.quantiles
        ref_left, ref_right = reference_cdf(q, points, left=True), reference_cdf(q, points)
        # On each open segment both CDFs are linear: from the value at its start to the left
        # limit at its end. Integrate |difference| exactly, sign changes included.
        d0 = (cur_right - ref_right)[:-1]
        d1 = (cur_left - ref_left)[1:]
        width = np.diff(points)
        same = d0 * d1 >= 0
        area = np.where(
            same,
            (np.abs(d0) + np.abs(d1)) / 2,
            (d0**2 + d1**2) / (2 * np.maximum(np.abs(d0) + np.abs(d1), 1e-300)),
        )
        distance = float(np.sum(area * width)) / self.scale_
        return self._result(distance)


# ---------------------------------------------------------------------------------------------
# Categorical tests


class CSI(DriftTest):
    """Characteristic stability index: PSI over categories, unseen and missing (distance).

    >>> import pandas as pd
    >>> from shipyard.dataset import profile_frame
    >>> ref = profile_frame(pd.DataFrame({"c": ["a", "b"] * 50})).columns["c"]
    >>> state = CategoricalState.empty(ref)
    >>> state.update(pd.Series(["a"] * 60 + ["b"] * 40))
    >>> round(CSI().fit(ref).score(state).value, 4)
    0.0405
    """

    reference_: CategoricalProfile
    name = "csi"
    kind = "distance"
    column_kind = "categorical"
    default_threshold = 0.25

    def _score(self, current: CategoricalState) -> DriftScore:
        if current.rows == 0:
            return self._result(None, detail="no rows in the current window")
        _, ref, cur = categorical_buckets(self.reference_, current, missing=True)
        return self._result(stability_index(ref, cur))


class ChiSquare(DriftTest):
    """Chi-square test of homogeneity of the two windows' category counts (p-value).

    A 2 x k table of present values (reference categories plus one unseen bucket), as
    ``scipy.stats.chi2_contingency(table, correction=False)``; categories with an expected
    count below 5 in either window are pooled into one first, the usual validity rule.

    >>> import pandas as pd
    >>> from shipyard.dataset import profile_frame
    >>> ref = profile_frame(pd.DataFrame({"c": ["a", "b"] * 50})).columns["c"]
    >>> state = CategoricalState.empty(ref)
    >>> state.update(pd.Series(["a"] * 90 + ["b"] * 10))
    >>> ChiSquare().fit(ref).score(state).drifted
    True
    """

    reference_: CategoricalProfile
    name = "chi_square"
    kind = "p_value"
    column_kind = "categorical"
    default_threshold = 1e-4

    def _score(self, current: CategoricalState) -> DriftScore:
        _, ref, cur = categorical_buckets(self.reference_, current, missing=False)
        table = _pool_small(np.vstack([ref, cur]))
        if table[0].sum() == 0 or table[1].sum() == 0:
            return self._result(None, detail="no present values in one of the windows")
        if table.shape[1] < 2:
            return self._result(1.0, statistic=0.0)
        expected = np.outer(table.sum(axis=1), table.sum(axis=0)) / table.sum()
        statistic = float(np.sum((table - expected) ** 2 / expected))
        p = float(special.chdtrc(table.shape[1] - 1, statistic))  # == stats.chi2.sf
        return self._result(p, statistic=statistic)


def _pool_small(table: np.ndarray, minimum: float = 5.0) -> np.ndarray:
    """Drop empty columns and pool those with an expected count below ``minimum``."""
    table = table[:, table.sum(axis=0) > 0]
    total = table.sum()
    if total == 0:
        return table
    expected = np.outer(table.sum(axis=1), table.sum(axis=0)) / total
    small = (expected < minimum).any(axis=0)
    if small.sum() < 1:
        return table
    pooled = table[:, small].sum(axis=1, keepdims=True)
    return np.hstack([table[:, ~small], pooled])


class JensenShannon(DriftTest):
    """Jensen-Shannon distance (base 2, in [0, 1]) between category shares (distance).

    Over present values: reference categories plus one unseen bucket; equal to
    ``scipy.spatial.distance.jensenshannon(p, q, base=2)``.

    >>> import pandas as pd
    >>> from shipyard.dataset import profile_frame
    >>> ref = profile_frame(pd.DataFrame({"c": ["a", "b"] * 50})).columns["c"]
    >>> state = CategoricalState.empty(ref)
    >>> state.update(pd.Series(["c"] * 100))
    >>> JensenShannon().fit(ref).score(state).value
    1.0
    """

    reference_: CategoricalProfile
    name = "jensen_shannon"
    kind = "distance"
    column_kind = "categorical"
    default_threshold = 0.1

    def _score(self, current: CategoricalState) -> DriftScore:
        _, ref, cur = categorical_buckets(self.reference_, current, missing=False)
        if ref.sum() == 0 or cur.sum() == 0:
            return self._result(None, detail="no present values in one of the windows")
        p, q = ref / ref.sum(), cur / cur.sum()
        m = (p + q) / 2
        divergence = (_kl(p, m) + _kl(q, m)) / 2
        return self._result(float(np.sqrt(max(divergence, 0.0))))


def _kl(p: np.ndarray, m: np.ndarray) -> float:
    """Kullback-Leibler divergence in bits, with 0 log 0 = 0."""
    keep = p > 0
    return float(np.sum(p[keep] * np.log2(p[keep] / m[keep])))


#: The built-in drift tests, in the order reports list their scores.
DRIFT_TESTS: tuple[type[DriftTest], ...] = (
    PSI,
    KolmogorovSmirnov,
    Wasserstein,
    CSI,
    ChiSquare,
    JensenShannon,
)


def get_drift_test(name: str, tests: tuple[type[DriftTest], ...] = DRIFT_TESTS) -> type[DriftTest]:
    """The drift test class called ``name`` among ``tests``.

    >>> get_drift_test("ks").__name__
    'KolmogorovSmirnov'
    """
    for test in tests:
        if test.name == name:
            return test
    known = ", ".join(repr(test.name) for test in tests)
    raise InvalidInput(f"Unknown drift test {name!r}; choose one of {known}.")
