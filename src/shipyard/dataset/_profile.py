"""The reference profile of training data: the statistics monitoring compares live data with.

Numeric columns keep counts of missing and infinite values, moments, 101 quantiles (for KS and
Wasserstein) and a quantile-binned histogram (for PSI); other columns keep category
frequencies (for chi-square, Jensen-Shannon and CSI). Everything is computed with numpy, one
sort per numeric column.

>>> profile = profile_frame(pd.DataFrame({"x": [1.0, 2.0, 3.0, None], "c": ["a", "b", "a", "a"]}))
>>> profile.columns["x"].missing, profile.columns["c"].frequencies
(1, {'a': 3, 'b': 1})
"""

from __future__ import annotations

import math
from numbers import Integral
from typing import Annotated, Any, Literal

import numpy as np
import pandas as pd
from pandas.api import types as pdt
from pydantic import BaseModel, Field

from shipyard.dataset._convert import MISSING, datetime_texts, parse_column, text_of
from shipyard.dataset._dtypes import OBJECT, check_frame, column_type, naive_utc
from shipyard.errors import InvalidInput

N_QUANTILES = 101
MAX_FREQUENCIES = 1000
OTHER = "__other__"


class NumericProfile(BaseModel):
    """Statistics of an integer or float column; all but the counts are over finite values.

    ``missing`` counts None/NaN/NA cells and ``nan`` those of them stored as a float NaN (all
    of them in a float column, none in a nullable ``Int64`` one). ``std`` is the population
    standard deviation (ddof=0). Bins: the first is closed ``[e0, e1]``, the others
    half-open ``(a, b]``. A constant column has the single edge ``[c]`` and one bin, the point
    ``c``, holding every finite value; a column without finite values has no edges and no bins.

    >>> p = profile_frame(pd.DataFrame({"x": [1.0, 2.0, 3.0, 4.0]}), n_bins=2).columns["x"]
    >>> p.bin_edges, p.bin_counts
    ([1.0, 2.5, 4.0], [2, 2])
    """

    kind: Literal["numeric"] = "numeric"
    count: int
    missing: int
    nan: int
    posinf: int
    neginf: int
    min: float | None
    max: float | None
    mean: float | None
    std: float | None
    bin_edges: list[float]
    bin_counts: list[int]
    quantiles: list[float]

    def histogram(self, values: Any) -> np.ndarray:
        """Counts of the finite ``values`` in this profile's bins, to compare with bin_counts.

        Values below the first edge fall in the first bin and values above the last edge in
        the last one, as in PSI over quantile bins with open outer ends.

        >>> p = profile_frame(pd.DataFrame({"x": [1.0, 2.0, 3.0, 4.0]}), n_bins=2).columns["x"]
        >>> p.histogram([0.0, 2.5, 2.6, 9.0]).tolist()
        [2, 2]
        """
        data = np.asarray(values, dtype=np.float64)
        data = data[np.isfinite(data)]
        n_bins = len(self.bin_counts)
        if n_bins == 0:
            return np.zeros(0, dtype=np.int64)
        edges = np.asarray(self.bin_edges, dtype=np.float64)
        # side="left": a value equal to an inner edge belongs to the bin that edge closes.
        index = np.searchsorted(edges, data, side="left") - 1
        return np.bincount(np.clip(index, 0, n_bins - 1), minlength=n_bins)


class CategoricalProfile(BaseModel):
    """Frequencies of a text, categorical, boolean or datetime column.

    Keys are the values as text (booleans ``"True"``/``"False"``, datetimes ISO 8601, as in a
    schema's categories); the 1000 most frequent are kept and the rest summed under
    ``"__other__"``. ``n_distinct`` counts every distinct value, kept or not.

    >>> profile_frame(pd.DataFrame({"ok": [True, False, True]})).columns["ok"].frequencies
    {'True': 2, 'False': 1}
    """

    kind: Literal["categorical"] = "categorical"
    count: int
    missing: int
    frequencies: dict[str, int]
    n_distinct: int


ColumnProfile = Annotated[NumericProfile | CategoricalProfile, Field(discriminator="kind")]


class Profile(BaseModel):
    """The profile of a whole frame: one entry per column, in column order.

    >>> profile = profile_frame(pd.DataFrame({"x": [1, 2, 3]}), n_bins=2)
    >>> Profile.model_validate(profile.model_dump(mode="json")) == profile
    True
    """

    n_rows: int
    n_bins: int
    columns: dict[str, ColumnProfile]


def profile_frame(df: pd.DataFrame, *, n_bins: int = 10) -> Profile:
    """Profile every column of ``df``: numeric for integer/float columns, categorical otherwise.

    Raises InvalidInput for a bad ``n_bins``, repeated or non-string column names and values
    that cannot be described.

    >>> profile_frame(pd.DataFrame({"x": [1.0, 5.0]}), n_bins=4).columns["x"].quantiles[50]
    3.0
    """
    if not isinstance(n_bins, Integral) or isinstance(n_bins, bool) or not 2 <= n_bins <= 1000:
        raise InvalidInput(
            "The 'n_bins' parameter of profile_frame must be an int in [2, 1000]. "
            f"Got {n_bins!r} instead.",
        )
    check_frame(df, "profile_frame")
    columns: dict[str, NumericProfile | CategoricalProfile] = {}
    for i in range(df.shape[1]):
        series = df.iloc[:, i]
        kind = column_type(series)
        if kind in ("integer", "float"):
            columns[str(series.name)] = _numeric(series, int(n_bins))
        else:
            columns[str(series.name)] = _categorical(series)
    return Profile(n_rows=len(df), n_bins=int(n_bins), columns=columns)


def _numeric(series: pd.Series, n_bins: int) -> NumericProfile:
    # Values near the float limit overflow in a mean, std or interpolation; those statistics
    # are handled below, and a warning (an error under -W error) would only get in the way.
    with np.errstate(over="ignore", invalid="ignore"):
        return _numeric_profile(series, n_bins)


def _numeric_profile(series: pd.Series, n_bins: int) -> NumericProfile:
    values, missing, nan = _floats(series)
    finite = np.sort(values[np.isfinite(values)])
    stats: dict[str, Any] = {
        "count": len(series),
        "missing": missing,
        "nan": nan,
        "posinf": int(np.count_nonzero(values == math.inf)),
        "neginf": int(np.count_nonzero(values == -math.inf)),
    }
    if len(finite) == 0:
        empty: dict[str, Any] = {"min": None, "max": None, "mean": None, "std": None}
        return NumericProfile(**stats, **empty, bin_edges=[], bin_counts=[], quantiles=[])
    # One quantile call for both lists: on sorted data numpy's selection is cheap.
    levels = np.concatenate([np.linspace(0, 1, N_QUANTILES), np.linspace(0, 1, n_bins + 1)])
    found = np.quantile(finite, levels)
    if not np.isfinite(found).all():
        found = _quantiles_without_overflow(finite, levels)
    quantiles, edges = found[:N_QUANTILES], np.unique(found[N_QUANTILES:])
    if len(edges) == 1:
        counts = np.array([len(finite)])
    else:
        # First bin [e0, e1], then (a, b]: rows up to each edge, inclusive; e0 is the minimum.
        upto = np.searchsorted(finite, edges, side="right")
        upto[0] = 0
        counts = np.diff(upto)
    return NumericProfile(
        **stats,
        min=float(finite[0]),
        max=float(finite[-1]),
        mean=_finite_or_none(finite.mean()),
        std=_finite_or_none(finite.std()),
        bin_edges=edges.tolist(),
        bin_counts=counts.tolist(),
        quantiles=quantiles.tolist(),
    )


def _quantiles_without_overflow(ordered: np.ndarray, levels: np.ndarray) -> np.ndarray:
    """numpy's linear quantiles, interpolated as a*(1-t) + b*t, which cannot overflow.

    numpy computes a + (b-a)*t, and b-a overflows between values of opposite sign near the
    float limit; the two formulas differ by at most an ulp elsewhere.
    """
    position = levels * (len(ordered) - 1)
    below = np.floor(position).astype(np.intp)
    above = np.minimum(below + 1, len(ordered) - 1)
    t = position - below
    result: np.ndarray = ordered[below] * (1 - t) + ordered[above] * t
    return result


def _floats(series: pd.Series) -> tuple[np.ndarray, int, int]:
    """The column as float64 (NaN where missing), its missing count and its float-NaN count."""
    dtype = series.dtype
    if isinstance(dtype, np.dtype) and dtype.kind in "iuf":
        values = series.to_numpy().astype(np.float64, copy=False)
        missing = int(np.count_nonzero(np.isnan(values)))
        return values, missing, missing
    if pdt.is_extension_array_dtype(dtype) and dtype.kind in "iuf":
        missing = int(series.isna().sum())
        return series.to_numpy(dtype=np.float64, na_value=np.nan), missing, 0
    # An object column of numbers: the schema's rules read it, so the two agree.
    parsed = parse_column(series, "float")
    missing = int(np.count_nonzero(parsed.status == MISSING))
    raw = series.to_numpy(dtype=object)
    nan = sum(1 for value in raw if isinstance(value, float | np.floating) and value != value)
    return parsed.data, missing, nan


def _finite_or_none(value: float) -> float | None:
    # A mean or std of values near the float limit overflows; "unknown" beats "infinite".
    return float(value) if math.isfinite(value) else None


def _categorical(series: pd.Series) -> CategoricalProfile:
    missing = int(series.isna().sum())
    keys: list[Any]
    if pdt.is_datetime64_any_dtype(series.dtype):
        counted = pd.Series(naive_utc(series)).value_counts(dropna=True)
        keys = datetime_texts(counted.index.to_numpy())
    elif series.dtype == OBJECT and pdt.infer_dtype(series, skipna=True) not in ("string", "empty"):
        # value_counts would merge True with 1 and 1 with 1.0 in a mixed column: key first.
        raw = series.to_numpy(dtype=object)
        counted = pd.Series([text_of(value) for value in raw], dtype=object).value_counts()
        keys = counted.index.tolist()
    else:
        counted = series.value_counts(dropna=True)
        keys = [key if isinstance(key, str) else text_of(key) for key in counted.index]
    totals: dict[str, int] = {}
    for key, n in zip(keys, counted.to_numpy().tolist(), strict=True):
        if n:  # a categorical dtype lists its unobserved categories, with 0
            totals[key] = totals.get(key, 0) + n
    ranked = sorted(totals.items(), key=lambda item: (-item[1], item[0]))
    frequencies = dict(ranked[:MAX_FREQUENCIES])
    rest = sum(n for _, n in ranked[MAX_FREQUENCIES:])
    if rest:
        # A real value "__other__" would be summed with the rest: a documented conflation.
        frequencies[OTHER] = frequencies.get(OTHER, 0) + rest
    return CategoricalProfile(
        count=len(series), missing=missing, frequencies=frequencies, n_distinct=len(totals)
    )
