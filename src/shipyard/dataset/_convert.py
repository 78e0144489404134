"""Value conversion to a column type: one set of rules, applied per value or vectorised.

Every cell gets a status: ``OK``, ``MISSING`` (None, NaN, NA, NaT), ``BAD`` (cannot be converted)
or ``INF`` (an infinite number). The rules are written once, per value, in the ``_parse_*``
functions. A large column is converted with numpy when its dtype allows, and otherwise by
factorizing it and parsing each distinct value once; a small frame (one REST request) is parsed
value by value in plain Python, which is much faster than a pandas call per column. Tests check
that the two routes agree.

>>> parsed = parse_column(pd.Series(["1", "2.5", "x", None]), "float")
>>> parsed.data[:2].tolist(), parsed.status.tolist()
([1.0, 2.5], [0, 0, 2, 1])
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import numpy as np
import pandas as pd
from pandas.api import types as pdt

from shipyard.dataset._dtypes import DATETIME_UNIT, OBJECT, ColumnType, naive_utc

OK, MISSING, BAD, INF = 0, 1, 2, 3

_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1
_TWO63 = 2.0**63
_TRUE = frozenset({"true", "1"})
_FALSE = frozenset({"false", "0"})
_NUMPY_DATA: dict[str, Any] = {
    "float": np.float64,
    "integer": np.int64,
    "boolean": np.bool_,
    "string": object,
    "categorical": object,
    "datetime": f"datetime64[{DATETIME_UNIT}]",
}


@dataclass(frozen=True, slots=True)
class Parsed:
    """A converted column: ``data`` in the type's numpy dtype and ``status`` per cell.

    ``data`` holds a placeholder (NaN, 0, False, NaN, NaT) wherever ``status`` is not OK,
    except that float data keeps +inf and -inf where ``status`` is INF.
    """

    data: np.ndarray
    status: np.ndarray

    def counts(self) -> tuple[int, int, int, int]:
        """How many cells are OK, MISSING, BAD and INF."""
        ok, missing, bad, inf = np.bincount(self.status, minlength=4)[:4].tolist()
        return ok, missing, bad, inf


# ---------------------------------------------------------------------------------------------
# The rules, per value. Each returns (converted value or placeholder, status).


def is_missing(value: object) -> bool:
    """True for the values pandas treats as missing: None, NaN, NA, NaT."""
    if value is None or value is pd.NA or value is pd.NaT:
        return True
    if isinstance(value, float | np.floating):
        return bool(value != value)
    if isinstance(value, np.datetime64 | np.timedelta64):
        return bool(np.isnat(value))
    return False


def _number(value: object) -> int | float | None:
    """The number a value stands for, or None. Booleans are not numbers in a schema."""
    if isinstance(value, bool | np.bool_):
        return None
    if isinstance(value, int | np.integer):
        return int(value)
    if isinstance(value, float | np.floating | Decimal):
        return float(value)
    if isinstance(value, str):
        try:
            return int(value)
        except ValueError:
            pass
        try:
            return float(value)
        except ValueError:
            return None
    return None


def _parse_float(value: object) -> tuple[float, int]:
    if is_missing(value):
        return math.nan, MISSING
    number = _number(value)
    if number is None:
        return math.nan, BAD
    try:
        result = float(number)
    except OverflowError:  # an int beyond float range
        return math.nan, BAD
    if result != result:  # "nan" as text
        return math.nan, MISSING
    if math.isinf(result):
        return result, INF  # the sign is kept: profiles count +inf and -inf apart
    return result, OK


def _parse_int(value: object) -> tuple[int, int]:
    if is_missing(value):
        return 0, MISSING
    number = _number(value)
    if number is None:
        return 0, BAD
    if isinstance(number, float):
        if number != number:
            return 0, MISSING
        if math.isinf(number):
            return 0, INF
        if not number.is_integer() or not -_TWO63 <= number < _TWO63:
            return 0, BAD
        return int(number), OK
    if not _INT64_MIN <= number <= _INT64_MAX:
        return 0, BAD
    return number, OK


def _parse_bool(value: object) -> tuple[bool, int]:
    if is_missing(value):
        return False, MISSING
    if isinstance(value, bool | np.bool_):
        return bool(value), OK
    if isinstance(value, str):
        text = value.strip().lower()
        if text in _TRUE:
            return True, OK
        if text in _FALSE:
            return False, OK
        return False, BAD
    number = _number(value)
    if number == 1:
        return True, OK
    if number == 0:
        return False, OK
    return False, BAD


def _parse_str(value: object) -> tuple[object, int]:
    if is_missing(value):
        return math.nan, MISSING
    if isinstance(value, str):
        return str(value), OK  # str() turns numpy's str_ into str
    if isinstance(value, bool | np.bool_):
        return str(bool(value)), OK
    if isinstance(value, int | np.integer):
        return str(int(value)), OK
    if isinstance(value, float | np.floating):
        return str(float(value) + 0.0), OK  # + 0.0 writes -0.0 as "0.0": they are equal
    if isinstance(value, Decimal):
        return str(value), OK
    return math.nan, BAD


def text_of(value: object) -> str | None:
    """A value as text, as profile keys write it; None if missing.

    Datetimes are written in ISO 8601, in UTC, as precise as they need
    (``np.datetime_as_string(unit="auto")``); other values as ``parse_values(..., "string")``
    would, falling back to ``str``.

    >>> text_of(pd.Timestamp("2024-05-01 12:00", tz="Europe/Paris")), text_of(True), text_of(3)
    ('2024-05-01T10:00', 'True', '3')
    """
    if isinstance(value, dt.date | np.datetime64) and not is_missing(value):
        stamp = pd.Timestamp(value)
        if stamp.tz is not None:
            stamp = stamp.tz_convert(None)
        return str(np.datetime_as_string(stamp.to_datetime64(), unit="auto"))
    text, status = _parse_str(value)
    if status == MISSING:
        return None
    return str(value) if status == BAD else str(text)


def datetime_texts(values: np.ndarray) -> list[str]:
    """``text_of`` for a naive datetime64 array, vectorised.

    >>> datetime_texts(np.array(["2024-05-01T10:00"], dtype="datetime64[s]"))
    ['2024-05-01T10:00']
    """
    texts: list[str] = np.datetime_as_string(values, unit="auto").tolist()
    return texts


_PARSERS: dict[str, Callable[[object], tuple[Any, int]]] = {
    "float": _parse_float,
    "integer": _parse_int,
    "boolean": _parse_bool,
    "string": _parse_str,
    "categorical": _parse_str,
}


def parse_values(values: Sequence[object] | np.ndarray, kind: ColumnType) -> Parsed:
    """Convert plain values one by one (a small frame, or the distinct values of a large one).

    >>> parse_values(["3", 4.0, 4.5], "integer").status.tolist()
    [0, 0, 2]
    """
    if kind == "datetime":
        return _parse_datetimes(np.asarray(values, dtype=object))
    parser = _PARSERS[kind]
    pairs = [parser(value) for value in values]
    data = np.array([pair[0] for pair in pairs], dtype=_NUMPY_DATA[kind])
    status = np.array([pair[1] for pair in pairs], dtype=np.uint8)
    return Parsed(data, status)


def _parse_datetimes(values: np.ndarray) -> Parsed:
    status = np.full(len(values), OK, dtype=np.uint8)
    stamps = np.empty(len(values), dtype=object)  # None where not usable
    for i, value in enumerate(values):
        if is_missing(value):
            status[i] = MISSING
        elif isinstance(value, str | dt.datetime | np.datetime64):
            stamps[i] = value
        elif isinstance(value, dt.date):
            stamps[i] = dt.datetime(value.year, value.month, value.day)
        else:
            # Numbers are refused rather than read as epoch offsets in an unknown unit.
            status[i] = BAD
    usable = status == OK
    # utc=True accepts a mix of aware and naive values; naive ones are taken to be UTC.
    parsed = pd.to_datetime(
        pd.Series(stamps, dtype=object), errors="coerce", utc=True, format="ISO8601"
    )
    status[usable & parsed.isna().to_numpy()] = BAD
    return _datetime_unit(parsed.dt.tz_convert(None).to_numpy(), status)


_UNITS = ["Y", "M", "W", "D", "h", "m", "s", "ms", "us", "ns", "ps", "fs", "as"]


def _datetime_unit(data: np.ndarray, status: np.ndarray) -> Parsed:
    """Bring naive datetime64 data to DATETIME_UNIT, marking values outside its range BAD."""
    target = np.dtype(f"datetime64[{DATETIME_UNIT}]")
    if data.dtype == target:
        return Parsed(data, status)
    unit = np.datetime_data(data.dtype)[0]
    if _UNITS.index(unit) > _UNITS.index(DATETIME_UNIT):
        # Finer than the target: the range is wider, so only precision is lost.
        return Parsed(data.astype(target), status)
    limit = np.iinfo(np.int64).max - 1  # the int64 minimum is NaT
    lo, hi = np.array([-limit, limit], dtype=np.int64).view(target).astype(data.dtype)
    outside = ~np.isnat(data) & ((data < lo) | (data > hi))
    if outside.any():
        status = np.where(outside, BAD, status).astype(np.uint8)
        data = np.where(outside, np.datetime64("NaT"), data)
    return Parsed(data.astype(target), status)


# ---------------------------------------------------------------------------------------------
# The same rules, vectorised over a pandas column.


def parse_column(column: pd.Series, kind: ColumnType) -> Parsed:
    """Convert a whole column to ``kind``, vectorised. Equivalent to ``parse_values``.

    >>> parse_column(pd.Series([1.0, 2.0, 2.5]), "integer").status.tolist()
    [0, 0, 2]
    """
    dtype = column.dtype
    if isinstance(dtype, np.dtype) and dtype.kind in "iuf" and kind in _NUMERIC_ROUTES:
        return _NUMERIC_ROUTES[kind](column.to_numpy())
    if pdt.is_extension_array_dtype(dtype) and dtype.kind in "iuf" and kind in _NUMERIC_ROUTES:
        # Nullable Int64/Float64: NA becomes NaN, exact for every value a float can hold; the
        # integer route reads integers exactly instead.
        if kind == "integer" and dtype.kind in "iu":
            return _masked_int(column)
        return _NUMERIC_ROUTES[kind](column.to_numpy(dtype=np.float64, na_value=np.nan))
    if pdt.is_bool_dtype(dtype) and not isinstance(dtype, pd.CategoricalDtype):
        return _from_bool(column, kind)
    if pdt.is_datetime64_any_dtype(dtype):
        if kind != "datetime":
            return _all_bad(column, kind)
        data = naive_utc(column)
        return _datetime_unit(data, np.where(np.isnat(data), MISSING, OK).astype(np.uint8))
    if isinstance(dtype, pd.StringDtype) and kind == "string":
        # Text stays text: only missing values need finding, no value needs parsing.
        missing = column.isna().to_numpy()
        data = column.to_numpy(dtype=object, na_value=np.nan)
        return Parsed(data, np.where(missing, MISSING, OK).astype(np.uint8))
    return _by_distinct_values(column, kind)


# infer_dtype answers for object columns whose values all have one type; for those, equal values
# convert alike. Otherwise factorize could merge values that convert differently: True == 1 == 1.0
# hash alike, yet True is no number and 1.0 is text "1.0".
_ONE_TYPE = frozenset({"string", "integer", "floating", "boolean", "empty", "decimal", "datetime"})


def categorical_values(column: pd.Series) -> np.ndarray:
    """The values of a categorical column as objects, None where missing.

    ``np.asarray(column, dtype=object)`` would turn integer categories into floats as soon as
    one value is missing.

    >>> categorical_values(pd.Series(pd.Categorical([1, None]))).tolist()
    [1, None]
    """
    array = column.array
    lookup = np.empty(len(array.categories) + 1, dtype=object)  # the last slot is for code -1
    lookup[:-1] = np.asarray(array.categories, dtype=object)
    values: np.ndarray = lookup[array.codes]
    return values


def _by_distinct_values(column: pd.Series, kind: ColumnType) -> Parsed:
    """Parse each distinct value once, then spread the results back to the rows."""
    if column.dtype == OBJECT:
        inferred = pdt.infer_dtype(column, skipna=True)
        numbers = _object_numbers(column, inferred, kind)
        if numbers is not None:
            return numbers
        if inferred not in _ONE_TYPE:
            return parse_values(column.to_numpy(dtype=object), kind)
    codes, uniques = pd.factorize(column, use_na_sentinel=True)
    parsed = parse_values(np.asarray(uniques, dtype=object), kind)
    # One extra slot at the end, for code -1 (a missing value).
    placeholder = parse_values([None], kind)
    data = np.concatenate([parsed.data, placeholder.data])[codes]
    status = np.concatenate([parsed.status, placeholder.status])[codes]
    return Parsed(data, status)


def _object_numbers(column: pd.Series, inferred: str, kind: ColumnType) -> Parsed | None:
    """An object column of plain numbers, converted by numpy where that gives the same result
    as the per-value rules (a million distinct floats would take seconds value by value)."""
    if kind not in _NUMERIC_ROUTES:
        return None
    try:
        if inferred == "floating" or (inferred in _INTEGERS_OR_FLOATS and kind != "integer"):
            # float(n) is what the per-value rules do to an int, too.
            return _NUMERIC_ROUTES[kind](column.to_numpy(dtype=np.float64, na_value=np.nan))
        if inferred == "integer":  # to integer: exactly, not through a float
            missing = column.isna().to_numpy()
            ints = column.to_numpy(dtype=np.int64, na_value=0)
            return Parsed(ints, np.where(missing, MISSING, OK).astype(np.uint8))
    except (OverflowError, TypeError, ValueError):
        return None  # e.g. an integer beyond int64 or float range: the per-value rules decide
    return None


_INTEGERS_OR_FLOATS = frozenset({"integer", "mixed-integer-float"})


def _from_float_to_float(values: np.ndarray) -> Parsed:
    data = values.astype(np.float64, copy=False)
    status = np.where(np.isnan(data), MISSING, np.where(np.isinf(data), INF, OK))
    return Parsed(data, status.astype(np.uint8))


def _from_number_to_int(values: np.ndarray) -> Parsed:
    if values.dtype.kind == "i":
        # A copy: the result may become a nullable Int64 column, which must not share memory
        # with the caller's frame.
        return Parsed(values.astype(np.int64), np.zeros(len(values), np.uint8))
    if values.dtype.kind == "u":
        bad = values > np.uint64(_INT64_MAX)
        data = np.where(bad, 0, values).astype(np.int64)
        return Parsed(data, np.where(bad, BAD, OK).astype(np.uint8))
    floats = values.astype(np.float64, copy=False)
    with np.errstate(invalid="ignore"):
        fractional = (floats != np.floor(floats)) | (floats < -_TWO63) | (floats >= _TWO63)
    status = np.select(
        [np.isnan(floats), np.isinf(floats), fractional], [MISSING, INF, BAD], OK
    ).astype(np.uint8)
    data = np.where(status == OK, floats, 0).astype(np.int64)
    return Parsed(data, status)


def _masked_int(column: pd.Series) -> Parsed:
    missing = column.isna().to_numpy()
    if column.dtype.kind == "u":
        filled = column.to_numpy(dtype=np.uint64, na_value=0)
        parsed = _from_number_to_int(filled)
        return Parsed(parsed.data, np.where(missing, MISSING, parsed.status).astype(np.uint8))
    data = column.to_numpy(dtype=np.int64, na_value=0, copy=True)
    return Parsed(data, np.where(missing, MISSING, OK).astype(np.uint8))


def _from_number_to_bool(values: np.ndarray) -> Parsed:
    floats = values.astype(np.float64, copy=False)
    status = np.select([np.isnan(floats), (floats != 0) & (floats != 1)], [MISSING, BAD], OK)
    return Parsed(floats == 1, status.astype(np.uint8))


_NUMERIC_ROUTES: dict[str, Callable[[np.ndarray], Parsed]] = {
    "float": _from_float_to_float,
    "integer": _from_number_to_int,
    "boolean": _from_number_to_bool,
}


def _from_bool(column: pd.Series, kind: ColumnType) -> Parsed:
    missing = column.isna().to_numpy()
    if kind == "boolean":
        data = column.to_numpy(dtype=np.bool_, na_value=False, copy=True)
        return Parsed(data, np.where(missing, MISSING, OK).astype(np.uint8))
    if kind in ("string", "categorical"):
        return _by_distinct_values(column, kind)
    return _all_bad(column, kind)


def _all_bad(column: pd.Series, kind: ColumnType) -> Parsed:
    status = np.where(column.isna().to_numpy(), MISSING, BAD).astype(np.uint8)
    placeholder = parse_values([None], kind).data
    return Parsed(np.repeat(placeholder, len(column)), status)


# ---------------------------------------------------------------------------------------------
# From parsed data to the pandas array a model was trained on.


def to_array(parsed: Parsed, kind: ColumnType, target: Any) -> Any:
    """The array of dtype ``target`` for data whose status is OK or MISSING.

    ``target`` is the column's training dtype: float64; int64 or, for a column that had missing
    values in training, pandas' nullable ``Int64`` (likewise bool / ``boolean``); the default
    text dtype; datetime64. For a categorical column it is its ``Categories`` (or None when
    training had too many to list).

    >>> to_array(parse_values([1, None], "integer"), "integer", pd.Int64Dtype())
    <IntegerArray>
    [1, <NA>]
    Length: 2, dtype: Int64
    """
    data, missing = parsed.data, parsed.status == MISSING
    if isinstance(target, pd.Int64Dtype):
        return pd.arrays.IntegerArray(data, missing)
    if isinstance(target, pd.BooleanDtype):
        return pd.arrays.BooleanArray(data, missing)
    if kind == "string":
        return data if target == OBJECT else pd.array(data, dtype=target)
    if kind == "categorical":
        return categorical(data, missing, target)
    return data


@dataclass(frozen=True, slots=True)
class Categories:
    """A categorical column's training categories, with their dtype and codes built once.

    >>> Categories.of(["CA", "TX"]).dtype.categories.tolist()
    ['CA', 'TX']
    """

    names: list[str]
    dtype: pd.CategoricalDtype
    codes: dict[str, int]

    @classmethod
    def of(cls, names: list[str]) -> Categories:
        """Categories ``names``, in this order.

        >>> Categories.of(["a", "b"]).codes
        {'a': 0, 'b': 1}
        """
        return cls(list(names), pd.CategoricalDtype(names), {n: i for i, n in enumerate(names)})


def categorical(data: np.ndarray, missing: np.ndarray, known: Categories | None) -> pd.Categorical:
    """Text values as a categorical: the ``known`` categories first, so codes match training,
    then unseen ones, sorted.

    >>> values = np.array(["b", "z"], dtype=object)
    >>> coded = categorical(values, np.zeros(2, bool), Categories.of(["a", "b"]))
    >>> coded.categories.tolist(), coded.codes.tolist()
    (['a', 'b', 'z'], [1, 2])
    """
    present = data[~missing]
    small = len(data) <= 64
    seen = set(present.tolist() if small else pd.unique(present).tolist())
    if known is None:
        known = Categories.of(sorted(seen))
    elif not seen.issubset(known.codes):
        known = Categories.of([*known.names, *sorted(seen.difference(known.codes))])
    if small:
        lookup = known.codes
        codes = np.array(
            [-1 if gone else lookup[value] for value, gone in zip(data, missing, strict=True)],
            dtype=np.int64,
        )
    else:
        present_only = data.astype(object)  # a copy: missing slots are set to None below
        present_only[missing] = None
        codes = known.dtype.categories.get_indexer(pd.Index(present_only, dtype=object))
    return pd.Categorical.from_codes(codes, dtype=known.dtype)
