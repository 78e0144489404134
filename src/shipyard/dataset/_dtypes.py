"""How a pandas column maps to one of Shipyard's six column types, and back to a pandas dtype.

Shared by the schema, the profile and the fingerprint so the three agree on what a column is:

>>> column_type(pd.Series([1, 2, None], dtype="Int64"))
'integer'
>>> column_type(pd.Series(["a", "b"], dtype="category"))
'categorical'
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
import pandas as pd
from pandas.api import types as pdt

from shipyard.errors import InvalidInput

ColumnType = Literal["integer", "float", "boolean", "string", "categorical", "datetime"]

PANDAS_MAJOR = int(pd.__version__.split(".", 1)[0])
OBJECT = np.dtype(object)

# What pandas.api.types.infer_dtype says about an object column, as a column type. Kinds not
# listed here (bytes, complex, timedelta, period, interval, time...) are refused.
_OBJECT_TYPES: dict[str, ColumnType] = {
    "string": "string",
    "empty": "string",  # all missing: nothing says otherwise
    "mixed": "string",  # e.g. strings and numbers: described as text
    "mixed-integer": "string",
    "boolean": "boolean",
    "integer": "integer",
    "floating": "float",
    "mixed-integer-float": "float",
    "decimal": "float",
    "datetime": "datetime",
    "datetime64": "datetime",
    "date": "datetime",
}

# Numpy cannot hold datetimes finer than this without a separate nanosecond field; pandas 3
# infers microseconds from text where pandas 2 always used nanoseconds, so "the training dtype"
# of a datetime column is the one this pandas gives by default.
DATETIME_UNIT = "us" if PANDAS_MAJOR >= 3 else "ns"


def column_type(column: pd.Series) -> ColumnType:
    """The Shipyard column type of a pandas column; raises InvalidInput for unsupported dtypes.

    >>> column_type(pd.Series([1.5, None]))
    'float'
    """
    dtype = column.dtype
    if isinstance(dtype, pd.CategoricalDtype):
        return "categorical"
    if pdt.is_bool_dtype(dtype):
        return "boolean"
    if pdt.is_integer_dtype(dtype):
        return "integer"
    if pdt.is_float_dtype(dtype):
        return "float"
    if pdt.is_datetime64_any_dtype(dtype):
        return "datetime"
    if pdt.is_string_dtype(dtype) and dtype != OBJECT:
        return "string"
    if dtype == OBJECT:
        kind = pdt.infer_dtype(column, skipna=True)
        if kind in _OBJECT_TYPES:
            return _OBJECT_TYPES[kind]
        raise InvalidInput(
            f"Column {column.name!r} holds {kind} values, which Shipyard cannot describe; "
            "convert them to numbers, text, booleans or datetimes first.",
            column=str(column.name),
        )
    raise InvalidInput(
        f"Column {column.name!r} has dtype {dtype}, which Shipyard cannot describe; "
        "convert it to numbers, text, booleans or datetimes first.",
        column=str(column.name),
    )


def naive_utc(column: pd.Series) -> np.ndarray:
    """A datetime column (numpy or Arrow, aware or naive) as naive datetime64, aware in UTC.

    >>> pd.Timestamp(naive_utc(pd.Series(pd.to_datetime(["2024-01-01T12:00+02:00"])))[0])
    Timestamp('2024-01-01 10:00:00')
    """
    if column.dt.tz is not None:
        column = column.dt.tz_convert(None)
    values: np.ndarray = column.to_numpy()
    return values


def string_dtype() -> Any:
    """The dtype pandas gives text by default: ``str`` on pandas 3, ``object`` on pandas 2.

    >>> string_dtype() == pd.Series(["a"]).dtype
    True
    """
    if PANDAS_MAJOR >= 3:
        return pd.StringDtype(na_value=np.nan)
    # pandas 2.x: text is object unless the user opted in to pandas 3's behaviour.
    if pd.get_option("future.infer_string"):
        return pd.Series(["a"]).dtype
    return OBJECT


def check_frame(df: object, what: str) -> pd.DataFrame:
    """Refuse what cannot be described column by column: non-frames, odd or repeated names.

    ``what`` names the calling function in messages, e.g. ``"infer_schema"``.

    >>> check_frame(pd.DataFrame({"a": [1]}), "infer_schema").shape
    (1, 1)
    """
    if not isinstance(df, pd.DataFrame):
        raise InvalidInput(
            f"{what} needs a pandas DataFrame. Got {type(df).__name__} instead.",
        )
    bad = [name for name in df.columns if not isinstance(name, str)]
    if bad:
        raise InvalidInput(
            f"{what} needs string column names. Got {bad[:5]!r}; rename them, "
            "e.g. df.columns = df.columns.astype(str).",
            columns=[str(name) for name in bad],
        )
    if df.columns.has_duplicates:
        dups = sorted(set(df.columns[df.columns.duplicated()]))
        raise InvalidInput(
            f"{what} needs unique column names. Got {dups!r} more than once; rename or drop them.",
            columns=dups,
        )
    return df
