"""Bounded state of the current window for one column: counts only, never rows.

A numeric column keeps counts on a fixed *grid* built from the reference profile: every
distinct reference percentile, every PSI bin edge, and ``SUBDIVISIONS`` evenly spaced points
between consecutive percentiles. Each grid point ``g_i`` has two counters, one for values
exactly equal to it and one for the open interval just below it, plus one counter above the
last point; so ``2 * len(grid) + 1`` counters in all. Exact hits matter: integer columns put
all their mass on grid points, and spreading it over a cell would invent Wasserstein distance.

A categorical column keeps one counter per reference category, the number of unseen values,
and the names of the first ``MAX_UNSEEN`` distinct unseen values (for display).

Every counter is an integer, so the state of a window is the same whatever the chunking or the
order of rows, and two states of the same reference merge by addition.

>>> import pandas as pd
>>> from shipyard.dataset import profile_frame
>>> ref = profile_frame(pd.DataFrame({"x": [1.0, 2.0, 3.0, 4.0]}), n_bins=2).columns["x"]
>>> state = NumericState.empty(ref)
>>> state.update(pd.Series([0.5, 2.0, None, float("inf")]))
>>> state.rows, state.missing, state.posinf, state.below, state.n_finite
(4, 1, 1, 1, 2)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd
from pandas.api import types as pdt

from shipyard.dataset import (
    BAD,
    MISSING,
    OTHER,
    CategoricalProfile,
    ColumnType,
    NumericProfile,
    datetime_texts,
    parse_column,
    text_of,
)
from shipyard.errors import InvalidInput

#: Grid points between two consecutive distinct reference percentiles.
SUBDIVISIONS = 8
#: Distinct unseen categories whose names a state keeps; beyond that they are only counted.
MAX_UNSEEN = 100


def numeric_grid(reference: NumericProfile) -> np.ndarray:
    """The sorted grid points on which a numeric column's current values are counted.

    >>> import pandas as pd
    >>> from shipyard.dataset import profile_frame
    >>> ref = profile_frame(pd.DataFrame({"x": [0.0, 1.0]}), n_bins=2).columns["x"]
    >>> numeric_grid(ref)[[0, 4, -1]].tolist()
    [0.0, 0.005, 1.0]
    """
    quantiles = np.maximum.accumulate(np.asarray(reference.quantiles, dtype=np.float64))
    edges = np.asarray(reference.bin_edges, dtype=np.float64)
    distinct = np.unique(quantiles)
    if len(distinct) < 2:
        return np.unique(np.concatenate([distinct, edges]))
    steps = np.arange(SUBDIVISIONS) / SUBDIVISIONS
    inner = distinct[:-1, None] + np.diff(distinct)[:, None] * steps
    return np.unique(np.concatenate([inner.ravel(), distinct[-1:], edges]))


def reference_cdf(quantiles: Any, x: Any, *, left: bool = False) -> np.ndarray:
    """The reference CDF at ``x`` (its left limit if ``left``), from its 101 percentiles.

    Linear between distinct percentiles; a value shared by percentiles ``a..b`` is a point mass
    ``(b - a) / 100``, so integer columns keep their steps.

    >>> reference_cdf([0.0, 0.0, 0.0, 1.0, 2.0], [0.0, 0.5, 2.0]).tolist()
    [0.5, 0.625, 1.0]
    >>> reference_cdf([0.0, 0.0, 0.0, 1.0, 2.0], [0.0], left=True).tolist()
    [0.0]
    """
    q = np.maximum.accumulate(np.asarray(quantiles, dtype=np.float64))
    points = np.atleast_1d(np.asarray(x, dtype=np.float64))
    levels = np.linspace(0.0, 1.0, len(q))
    distinct, first = np.unique(q, return_index=True)
    last = np.append(first[1:] - 1, len(q) - 1)
    lo, hi = levels[first], levels[last]
    k = np.searchsorted(distinct, points, side="right") - 1
    out = np.zeros(len(points))
    inside = k >= 0
    kk = k[inside]
    p = points[inside]
    exact = p == distinct[kk]
    value = np.empty(len(kk))
    value[exact] = (lo if left else hi)[kk[exact]]
    between = ~exact & (kk < len(distinct) - 1)
    kb = kk[between]
    if len(kb):
        width = distinct[kb + 1] - distinct[kb]
        value[between] = hi[kb] + (lo[kb + 1] - hi[kb]) * (p[between] - distinct[kb]) / width
    value[~exact & (kk == len(distinct) - 1)] = 1.0
    out[inside] = value
    return out


def reference_quantile(quantiles: Any, level: float) -> float:
    """The reference value at quantile ``level`` in [0, 1], linear between percentiles."""
    q = np.maximum.accumulate(np.asarray(quantiles, dtype=np.float64))
    return float(np.interp(level, np.linspace(0.0, 1.0, len(q)), q))


@dataclass
class NumericState:
    """Counts of one numeric column's current values; see the module docstring for the grid.

    ``missing`` counts None/NaN/NA cells (and rows of chunks without the column, also counted
    in ``absent``), ``nan`` those stored as a float NaN, ``violations`` the values that cannot
    be read as the column's type. Infinities are counted apart and are not in ``counts``.

    >>> import pandas as pd
    >>> from shipyard.dataset import profile_frame
    >>> ref = profile_frame(pd.DataFrame({"x": [1, 2, 3]})).columns["x"]
    >>> state = NumericState.empty(ref)
    >>> state.update(pd.Series(["2", "x", 9]), dtype="integer")
    >>> state.violations, state.above, state.n_finite
    (1, 1, 2)
    """

    grid: np.ndarray
    counts: np.ndarray
    rows: int = 0
    missing: int = 0
    nan: int = 0
    posinf: int = 0
    neginf: int = 0
    violations: int = 0
    absent: int = 0
    kind: Literal["numeric"] = "numeric"

    @classmethod
    def empty(cls, reference: NumericProfile) -> NumericState:
        """A state with no rows yet, on the grid of ``reference``."""
        grid = numeric_grid(reference)
        return cls(grid=grid, counts=np.zeros(2 * len(grid) + 1, dtype=np.int64))

    @property
    def n_finite(self) -> int:
        """How many finite values were counted."""
        return int(self.counts.sum())

    @property
    def below(self) -> int:
        """Finite values below the reference minimum."""
        return int(self.counts[0]) if len(self.grid) else 0

    @property
    def above(self) -> int:
        """Finite values above the reference maximum (all of them if it had no finite value)."""
        return int(self.counts[-1])

    def update(self, column: pd.Series, dtype: ColumnType | None = None) -> None:
        """Count one chunk of the column; ``dtype`` is the schema's type, if known."""
        values, missing, nan, violations = _as_floats(column, dtype)
        self.rows += len(column)
        self.missing += missing
        self.nan += nan
        self.violations += violations
        finite = np.isfinite(values)
        n_finite = int(np.count_nonzero(finite))
        if n_finite < len(values):
            rest = values[~finite]
            self.posinf += int(np.count_nonzero(rest == np.inf))
            self.neginf += int(np.count_nonzero(rest == -np.inf))
            values = values[finite]
        # Sorting the chunk and looking the few grid points up in it is several times faster
        # than looking every value up in the grid. Below g_i: L_i values, up to g_i: R_i.
        ordered = np.sort(values)
        upto = np.empty(len(self.counts) + 1, dtype=np.int64)
        upto[0] = 0
        upto[1:-1:2] = np.searchsorted(ordered, self.grid, side="left")
        upto[2:-1:2] = np.searchsorted(ordered, self.grid, side="right")
        upto[-1] = len(ordered)
        self.counts += np.diff(upto)

    def add_absent(self, rows: int) -> None:
        """Count ``rows`` rows of a chunk that lacked this column: missing values."""
        self.rows += rows
        self.missing += rows
        self.absent += rows

    def cdf(self) -> tuple[np.ndarray, np.ndarray]:
        """The empirical CDF of the finite values at each grid point: left limits and values.

        Raises InvalidInput when there are no finite values.
        """
        n = self.n_finite
        if n == 0:
            raise InvalidInput("The current window has no finite value to build a CDF from.")
        cumulative = np.cumsum(self.counts) / n
        return cumulative[0:-1:2], cumulative[1::2]

    def cdf_at(self, x: Any) -> tuple[np.ndarray, np.ndarray]:
        """Left limits and values of the current CDF at any points (linear inside grid cells)."""
        left, right = self.cdf()
        points = np.atleast_1d(np.asarray(x, dtype=np.float64))
        i = np.searchsorted(self.grid, points, side="left")
        on_point = (i < len(self.grid)) & (self.grid[np.minimum(i, len(self.grid) - 1)] == points)
        out_left, out_right = np.empty(len(points)), np.empty(len(points))
        for j, (k, hit, p) in enumerate(zip(i.tolist(), on_point.tolist(), points, strict=True)):
            if hit:
                out_left[j], out_right[j] = left[k], right[k]
            elif k == 0:
                out_left[j] = out_right[j] = left[0]
            elif k == len(self.grid):
                out_left[j] = out_right[j] = right[-1]
            else:
                a, b = self.grid[k - 1], self.grid[k]
                value = right[k - 1] + (left[k] - right[k - 1]) * (p - a) / (b - a)
                out_left[j] = out_right[j] = value
        return out_left, out_right

    def merge(self, other: NumericState) -> None:
        """Add the counts of ``other``, a state on the same grid."""
        if not np.array_equal(self.grid, other.grid):
            raise InvalidInput("Cannot merge numeric states built from different references.")
        self.counts += other.counts
        for name in ("rows", "missing", "nan", "posinf", "neginf", "violations", "absent"):
            setattr(self, name, getattr(self, name) + getattr(other, name))


def _as_floats(column: pd.Series, dtype: ColumnType | None) -> tuple[np.ndarray, int, int, int]:
    """The column as float64, and its missing, float-NaN and type-violation counts."""
    kind = column.dtype
    if isinstance(kind, np.dtype) and kind.kind in "iuf":
        values = column.to_numpy().astype(np.float64, copy=False)
        nan = int(np.count_nonzero(np.isnan(values))) if kind.kind == "f" else 0
        missing = nan
    elif pdt.is_extension_array_dtype(kind) and kind.kind in "iuf" and not pdt.is_bool_dtype(kind):
        missing = int(column.isna().sum())
        values, nan = column.to_numpy(dtype=np.float64, na_value=np.nan), 0
    else:
        # Text, objects, booleans...: the schema's conversion rules decide what is a number.
        parsed = parse_column(column, "float")
        status = parsed.status
        values = parsed.data
        gaps = status == MISSING
        missing = int(np.count_nonzero(gaps))
        raw = column.to_numpy(dtype=object)[gaps]
        nan = sum(1 for value in raw if isinstance(value, float | np.floating) and value != value)
        violations = int(np.count_nonzero(status == BAD))
        return values, missing, nan, violations + _fractional(values, dtype)
    return values, missing, nan, _fractional(values, dtype)


def _fractional(values: np.ndarray, dtype: ColumnType | None) -> int:
    """Finite non-integral values, which an integer column's schema cannot read."""
    if dtype != "integer":
        return 0
    with np.errstate(invalid="ignore"):
        return int(np.count_nonzero(np.isfinite(values) & (values != np.round(values))))


@dataclass
class CategoricalState:
    """Counts of one categorical column's current values, by reference category.

    When the reference kept only its most frequent categories (``"__other__"`` in its
    frequencies), values outside them count as unseen, like the rest did in the reference.

    >>> import pandas as pd
    >>> from shipyard.dataset import profile_frame
    >>> ref = profile_frame(pd.DataFrame({"c": ["a", "b", "a"]})).columns["c"]
    >>> state = CategoricalState.empty(ref)
    >>> state.update(pd.Series(["a", "z", None, "z"]))
    >>> state.counts.tolist(), state.unseen_total, state.unseen, state.missing
    ([1, 0], 2, {'z': 2}, 1)
    """

    categories: list[str]
    counts: np.ndarray
    unseen_total: int = 0
    unseen: dict[str, int] = field(default_factory=dict)
    rows: int = 0
    missing: int = 0
    violations: int = 0
    absent: int = 0
    kind: Literal["categorical"] = "categorical"

    @classmethod
    def empty(cls, reference: CategoricalProfile) -> CategoricalState:
        """A state with no rows yet, counting the categories of ``reference``."""
        categories = [key for key in reference.frequencies if key != OTHER]
        return cls(categories=categories, counts=np.zeros(len(categories), dtype=np.int64))

    @property
    def n_present(self) -> int:
        """Values that are neither missing nor type violations."""
        return int(self.counts.sum()) + self.unseen_total

    def update(self, column: pd.Series, dtype: ColumnType | None = None) -> None:
        """Count one chunk of the column; ``dtype`` is the schema's type, if known."""
        totals, missing, violations = _category_counts(column, dtype)
        self.rows += len(column)
        self.missing += missing
        self.violations += violations
        index = {key: i for i, key in enumerate(self.categories)}
        for key, n in totals.items():
            i = index.get(key)
            if i is not None:
                self.counts[i] += n
            else:
                self._add_unseen(key, n)

    def _add_unseen(self, key: str, n: int) -> None:
        self.unseen_total += n
        if key in self.unseen or len(self.unseen) < MAX_UNSEEN:
            self.unseen[key] = self.unseen.get(key, 0) + n

    def add_absent(self, rows: int) -> None:
        """Count ``rows`` rows of a chunk that lacked this column: missing values."""
        self.rows += rows
        self.missing += rows
        self.absent += rows

    def merge(self, other: CategoricalState) -> None:
        """Add the counts of ``other``, a state of the same reference categories."""
        if self.categories != other.categories:
            raise InvalidInput("Cannot merge categorical states built from different references.")
        self.counts += other.counts
        for key, n in other.unseen.items():
            if key in self.unseen or len(self.unseen) < MAX_UNSEEN:
                self.unseen[key] = self.unseen.get(key, 0) + n
        self.unseen_total += other.unseen_total
        for name in ("rows", "missing", "violations", "absent"):
            setattr(self, name, getattr(self, name) + getattr(other, name))


def _category_counts(
    column: pd.Series, dtype: ColumnType | None
) -> tuple[dict[str, int], int, int]:
    """Counts by text key (as profiles write keys), missing count and type violations."""
    violations = 0
    if dtype in ("boolean", "datetime") and not _already(column, dtype):
        parsed = parse_column(column, dtype)
        violations = int(np.count_nonzero(parsed.status == BAD))
        good = parsed.status == 0
        missing = int(np.count_nonzero(parsed.status == MISSING))
        column = pd.Series(parsed.data[good])
    else:
        missing = int(column.isna().sum())
    if column.dtype == object and pdt.infer_dtype(column, skipna=True) not in ("string", "empty"):
        # value_counts would merge True with 1 and 1 with 1.0: key first, as profiles do.
        raw = column.to_numpy(dtype=object)
        column = pd.Series([_text_or_none(value) for value in raw], dtype=object)
        violations += int(column.map(lambda v: v is _UNREADABLE).sum())
        column = column[column.map(lambda v: v is not _UNREADABLE)]
    if pdt.is_datetime64_any_dtype(column.dtype):
        if isinstance(column.dtype, pd.DatetimeTZDtype):
            column = column.dt.tz_convert(None)
        counted = column.value_counts(dropna=True)
        keys: list[Any] = datetime_texts(counted.index.to_numpy())
    else:
        counted = column.value_counts(dropna=True)
        keys = counted.index.tolist()
    totals: dict[str, int] = {}
    for key, n in zip(keys, counted.to_numpy().tolist(), strict=True):
        if not n:  # a categorical dtype lists its unobserved categories, with 0
            continue
        if isinstance(key, str):
            text: str | None = key
        else:
            text = None if _text_or_none(key) is _UNREADABLE else text_of(key)
        if text is None:
            violations += n
            continue
        totals[text] = totals.get(text, 0) + n
    return totals, missing, violations


_UNREADABLE = object()


def _text_or_none(value: object) -> object:
    """``text_of(value)``, or a marker for values no schema type reads (lists, bytes...)."""
    if isinstance(value, list | tuple | dict | set | bytes | bytearray):
        return _UNREADABLE
    return text_of(value)


def _already(column: pd.Series, dtype: ColumnType) -> bool:
    if dtype == "boolean":
        return pdt.is_bool_dtype(column.dtype) and not isinstance(column.dtype, pd.CategoricalDtype)
    return pdt.is_datetime64_any_dtype(column.dtype)


ColumnState = NumericState | CategoricalState
