"""A dataset's fingerprint: a content hash that survives re-reads, plus its schema and profile.

The hash covers the column names, their order, the row order and every value, but not how
pandas happens to store them. Before hashing, each column is brought to one canonical form:

* numbers (int64, nullable Int64, float, numbers in an object column, a categorical of
  numbers) become float64 when every value fits exactly (|n| <= 2**53), with one NaN for every
  kind of missing value and -0.0 as 0.0; larger integers are hashed exactly as integers;
* text (object, ``str``, ``string``, a categorical of text) becomes UTF-8, length-prefixed;
* booleans (bool, nullable boolean, an object column of booleans) become 0/1/missing;
* datetimes become UTC seconds and nanoseconds, whatever their unit or time zone;
* a column with no values at all is hashed as such, whatever its dtype.

So the hash holds across CSV and Parquet round trips that preserve row order, a new index,
int64 vs Int64, and object vs string vs category; it changes when a value, a column name, the
column order or the row order does.

>>> df = pd.DataFrame({"x": [1, 2, None], "s": ["a", "b", "c"]})
>>> a = fingerprint(df, name="train")
>>> b = fingerprint(df.astype({"x": "Int64", "s": "category"}), name="train")
>>> a.content_hash == b.content_hash, a.content_hash.startswith("sha256:")
(True, True)
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from pandas.api import types as pdt
from pydantic import BaseModel, ConfigDict, Field

from shipyard.dataset._convert import MISSING, OK, categorical_values, parse_column, text_of
from shipyard.dataset._dtypes import OBJECT, check_frame, naive_utc
from shipyard.dataset._profile import Profile, profile_frame
from shipyard.dataset._schema import Schema, infer_schema
from shipyard.errors import InvalidInput

# Bump when the canonical form changes: old and new hashes must never be compared as equal.
_VERSION = b"shipyard-dataset-hash/1"
_EXACT_FLOAT = 2**53


class Fingerprint(BaseModel):
    """What identifies a dataset: its content hash, size, schema and profile.

    ``schema_`` is written ``"schema"`` in JSON (``schema`` is a pydantic method name).

    >>> fp = fingerprint(pd.DataFrame({"x": [1.0, 2.0], "y": [0, 1]}), name="train", target="y")
    >>> (fp.n_rows, fp.n_columns, fp.target, fp.schema_.names())
    (2, 2, 'y', ['x', 'y'])
    >>> Fingerprint.model_validate(fp.model_dump(mode="json")) == fp
    True
    """

    model_config = ConfigDict(
        serialize_by_alias=True, validate_by_name=True, validate_by_alias=True
    )

    name: str
    content_hash: str
    n_rows: int
    n_columns: int
    target: str | None
    schema_: Schema = Field(alias="schema")
    profile: Profile


def fingerprint(df: pd.DataFrame, *, name: str, target: str | None = None) -> Fingerprint:
    """Fingerprint a dataset: content hash, row and column counts, schema and profile.

    Raises InvalidInput for an empty frame, a ``target`` that is not a column, or anything
    ``infer_schema`` refuses.

    >>> fingerprint(pd.DataFrame({"x": [1]}), name="train").content_hash[:7]
    'sha256:'
    """
    if not isinstance(name, str) or not name.strip():
        raise InvalidInput(
            f"The 'name' parameter of fingerprint must be a non-empty str. Got {name!r} instead."
        )
    check_frame(df, "fingerprint")
    if df.shape[0] == 0 or df.shape[1] == 0:
        raise InvalidInput(
            "fingerprint needs at least one row and one column. "
            f"Got a frame of shape {df.shape} instead.",
        )
    if target is not None and target not in df.columns:
        raise InvalidInput(
            f"The 'target' parameter of fingerprint must be a column of the frame. Got "
            f"{target!r}, which is not among its {df.shape[1]} columns.",
        )
    return Fingerprint(
        name=name,
        content_hash=content_hash(df),
        n_rows=df.shape[0],
        n_columns=df.shape[1],
        target=target,
        schema=infer_schema(df),
        profile=profile_frame(df),
    )


def content_hash(df: pd.DataFrame) -> str:
    """``"sha256:<hex>"`` of the frame's canonical form (see the module docstring).

    >>> content_hash(pd.DataFrame({"x": [1]})) == content_hash(pd.DataFrame({"x": [1.0]}))
    True
    """
    digest = hashlib.sha256(_VERSION)
    digest.update(np.array(df.shape, dtype="<i8").tobytes())
    for i in range(df.shape[1]):
        series = df.iloc[:, i]
        _update_text(digest, [str(series.name)])
        for chunk in _canonical(series):
            digest.update(chunk)
    return f"sha256:{digest.hexdigest()}"


def _canonical(series: pd.Series) -> Iterator[bytes]:
    """A type tag, then the column's values in canonical form, as bytes.

    No tag is a prefix of another, and the row count (hashed first) or the lengths written
    before any text fix the size of every payload, so distinct frames give distinct streams.
    """
    if series.isna().all():
        yield b"null"
        return
    if isinstance(series.dtype, pd.CategoricalDtype):
        # A categorical is hashed as the values it stands for.
        series = pd.Series(categorical_values(series), dtype=object)
    dtype, kind = series.dtype, _object_kind(series)
    if pdt.is_bool_dtype(dtype) or kind == "boolean":
        parsed = parse_column(series, "boolean")
        yield b"bool"
        yield np.where(parsed.status == OK, parsed.data, 2).astype(np.uint8).tobytes()
    elif pdt.is_integer_dtype(dtype) or kind == "integer":
        yield from _integers(series)
    elif pdt.is_float_dtype(dtype) or kind in ("floating", "mixed-integer-float"):
        yield from _floats(parse_column(series, "float").data)
    elif pdt.is_datetime64_any_dtype(dtype) or kind in ("datetime", "datetime64", "date"):
        yield from _datetimes(series)
    elif (pdt.is_string_dtype(dtype) and dtype != OBJECT) or kind == "string":
        yield b"text"
        yield from _text_chunks(series)
    else:  # mixed objects, timedeltas...: hashed as their text
        yield b"other"
        yield from _text_chunks([text_of(value) for value in series.to_numpy(dtype=object)])


def _object_kind(series: pd.Series) -> str | None:
    return pdt.infer_dtype(series, skipna=True) if series.dtype == OBJECT else None


def _floats(values: np.ndarray) -> Iterator[bytes]:
    # One NaN bit pattern for every missing value, and 0.0 for -0.0 (they are equal).
    canonical = np.where(np.isnan(values), np.nan, values) + 0.0
    yield b"number"
    yield canonical.astype("<f8").tobytes()


def _integers(series: pd.Series) -> Iterator[bytes]:
    parsed = parse_column(series, "integer")
    if (parsed.status > MISSING).any():  # beyond int64: hash the digits
        yield b"other"
        yield from _text_chunks([text_of(value) for value in series.to_numpy(dtype=object)])
        return
    missing = parsed.status == MISSING
    if np.all(np.abs(parsed.data[~missing]) <= _EXACT_FLOAT):
        # The float a CSV re-read (or a column with gaps) would give: hash that.
        yield from _floats(np.where(missing, np.nan, parsed.data.astype(np.float64)))
        return
    yield b"integer"
    yield np.where(missing, 0, parsed.data).astype("<i8").tobytes()
    yield missing.astype(np.uint8).tobytes()


def _datetimes(series: pd.Series) -> Iterator[bytes]:
    if pdt.is_datetime64_any_dtype(series.dtype):
        values = naive_utc(series)
    else:  # an object column of datetimes and dates: read them as the schema does
        values = parse_column(series, "datetime").data
    missing = np.isnat(values)
    # Seconds, then the rest in nanoseconds: exact and the same for every unit.
    seconds = values.astype("datetime64[s]")
    rest = (values - seconds.astype(values.dtype)).astype("timedelta64[ns]")
    yield b"datetime"
    yield np.where(missing, 0, seconds.view(np.int64)).astype("<i8").tobytes()
    yield np.where(missing, -1, rest.view(np.int64)).astype("<i8").tobytes()


def _text_chunks(values: Any) -> Iterator[bytes]:
    """UTF-8 of each value, after a length per value (-1 for missing), so the split is exact."""
    array: Any = pa.array(values, type=pa.large_string(), from_pandas=True)
    if isinstance(array, pa.ChunkedArray):
        array = array.combine_chunks()
    missing = array.is_null().to_numpy(zero_copy_only=False)
    if array.null_count:
        # Arrow leaves the bytes under a null slot unspecified; make them empty.
        array = pc.fill_null(array, "")
    offsets_buffer, data_buffer = array.buffers()[1:3]
    offsets = np.frombuffer(offsets_buffer, dtype=np.int64)[
        array.offset : array.offset + len(array) + 1
    ]
    lengths = np.where(missing, -1, np.diff(offsets))
    yield lengths.astype("<i8").tobytes()
    if len(offsets) and data_buffer is not None:
        yield memoryview(data_buffer)[offsets[0] : offsets[-1]].tobytes()


def _update_text(digest: Any, texts: list[str]) -> None:
    for chunk in _text_chunks(texts):
        digest.update(chunk)
