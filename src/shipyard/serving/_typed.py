"""The schema check's fast path: request values straight to typed numpy columns.

``Schema.coerce`` reads a DataFrame and handles every case (text to numbers, dates, mixed
types); for the one row of a REST request, building that frame and checking it costs several
times what onnxruntime needs to score the row. ``TypedSchema`` handles the values real models
get, when they are already right:

- JSON rows (``convert``): numbers for a float column (``null`` where the column had missing
  values in training), integers for an integer column (whole floats too), booleans, text for a
  text or categorical column (``null`` where nullable). An unseen category is no error on
  either path: the model sees the text (see ``categorical``).
- DataFrames of numpy columns (``convert_frame``), as the binary and gRPC decoders build them:
  float64 with NaN, int64, bool, object arrays of ``str``/``None`` (or pandas' text dtype).

Anything else (dates, text for a number, a missing value where training had none, infinities,
missing or extra columns) returns ``None`` and the caller takes the general path, so the
answer and every error message come from one place.

Either way the result is a ``Typed``: one numpy array per schema column, in schema order, with
the values ``Schema.coerce`` gives (tests compare the two on every kind of column).

>>> typed = TypedSchema.of(schema).convert(rows)  # doctest: +SKIP
>>> typed.arrays[0]  # doctest: +SKIP
array([41.])
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from itertools import chain
from typing import Any

import numpy as np
import pandas as pd

from shipyard.dataset import Categories, Schema, categorical, string_dtype
from shipyard.serving._inputs import Rows

_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1
_TWO63 = 2.0**63
_FLOAT = "float"
_INTEGER = "integer"
_BOOLEAN = "boolean"
_STRING = "string"
_CATEGORICAL = "categorical"
_KINDS = (_FLOAT, _INTEGER, _BOOLEAN, _STRING, _CATEGORICAL)
_NONE = type(None)
_OBJECT = np.dtype(object)
_FLOAT64 = np.dtype(np.float64)
_INT64 = np.dtype(np.int64)
_BOOL = np.dtype(np.bool_)
#: numpy dtype of each kind's arrays.
_DTYPES: dict[str, np.dtype[Any]] = {
    _FLOAT: _FLOAT64,
    _INTEGER: _INT64,
    _BOOLEAN: _BOOL,
    _STRING: _OBJECT,
    _CATEGORICAL: _OBJECT,
}


@dataclass(frozen=True, slots=True)
class Typed:
    """Rows that passed the schema: one 1-D array per schema column, in schema order.

    Float columns are float64 (NaN where missing), integer columns int64, boolean columns
    bool, text and categorical columns object arrays of ``str`` (NaN where missing). A
    nullable integer or boolean column has a ``masks`` entry (True where missing, its value
    then 0 or False); other columns have ``None``. ``frame()`` is the DataFrame
    ``Schema.coerce`` would return.
    """

    schema: TypedSchema
    arrays: list[np.ndarray]
    masks: list[np.ndarray | None]
    n: int
    #: The index of the frame these rows came from; ``None``: 0..n-1.
    index: pd.Index | None = None

    def __len__(self) -> int:
        return self.n

    def frame(self) -> pd.DataFrame:
        """The frame ``Schema.coerce`` gives for these rows (same columns, dtypes, values)."""
        data: dict[str, Any] = {}
        schema = self.schema
        for column, array, mask in zip(schema.columns, self.arrays, self.masks, strict=True):
            kind = column.kind
            if mask is not None:
                # A copy: the array may be the caller's own, and a masked array shares it.
                if kind == _INTEGER:
                    data[column.name] = pd.arrays.IntegerArray(array.copy(), mask)
                else:
                    data[column.name] = pd.arrays.BooleanArray(array.copy(), mask)
            elif kind == _STRING:
                text = schema.text
                data[column.name] = array if text == _OBJECT else pd.array(array, dtype=text)
            elif kind == _CATEGORICAL:
                data[column.name] = _categorical(array, column.categories)
            else:
                data[column.name] = array
        return pd.DataFrame(data, index=self.index, copy=False)

    def onnx_column(self, j: int, dtype: np.dtype[Any]) -> np.ndarray | None:
        """Column ``j`` as onnxruntime takes it in ``dtype`` (1-D), as ``make_feed`` would
        build it from ``frame()``; ``None`` when only the frame's route can say (a missing
        value in an int64 input, a number fed as text)."""
        array, mask = self.arrays[j], self.masks[j]
        if dtype == _OBJECT:
            if array.dtype != _OBJECT:
                return None
            if self.schema.columns[j].nullable and not _all_str(array):
                # onnxruntime takes no NaN in a string tensor: a missing text is "", which a
                # one-hot encoder with handle_unknown="ignore" reads as an unseen category.
                return np.array(["" if type(v) is not str else v for v in array], dtype=object)
            return array
        if array.dtype == _OBJECT:
            return None
        if mask is not None and mask.any():
            if dtype.kind != "f":
                return None
            out = array.astype(dtype)
            out[mask] = np.nan
            return out
        return array if array.dtype == dtype else array.astype(dtype)

    @staticmethod
    def concat(parts: list[Typed]) -> Typed:
        """One ``Typed`` of every row of ``parts`` (all of one schema), in order."""
        first = parts[0]
        if len(parts) == 1:
            return first
        width = len(first.arrays)
        arrays = [np.concatenate([part.arrays[j] for part in parts]) for j in range(width)]
        masks: list[np.ndarray | None] = [
            None
            if first.masks[j] is None
            else np.concatenate([_mask_of(part, j) for part in parts])
            for j in range(width)
        ]
        return Typed(first.schema, arrays, masks, sum(part.n for part in parts))


def _mask_of(part: Typed, j: int) -> np.ndarray:
    mask = part.masks[j]
    return np.zeros(part.n, dtype=bool) if mask is None else mask


@dataclass(frozen=True, slots=True)
class _Column:
    """What the fast path needs of one schema column."""

    name: str
    kind: str  # one of _KINDS, or "" when only the general path can check it (datetime)
    nullable: bool
    #: A categorical column's training categories (None: too many were seen to list them).
    categories: Categories | None


class TypedSchema:
    """What ``convert`` needs of a ``Schema``, worked out once per served model.

    ``usable`` is False when a column is of a kind the fast path leaves to the general one
    (datetime), or names repeat.
    """

    def __init__(self, schema: Schema) -> None:
        self.columns = [
            _Column(
                name=column.name,
                kind=column.dtype if column.dtype in _KINDS else "",
                nullable=column.nullable,
                categories=(
                    Categories.of(column.categories)
                    if column.dtype == _CATEGORICAL and column.categories is not None
                    else None
                ),
            )
            for column in schema.columns
        ]
        self.names = [column.name for column in self.columns]
        self.kinds = [column.kind for column in self.columns]
        self.usable = all(self.kinds) and len(set(self.names)) == len(self.names)
        self.position = {name: j for j, name in enumerate(self.names)}
        self.text = string_dtype()
        # Columns of one kind and nullability, by schema position: one numpy call per group,
        # not per column.
        groups: dict[tuple[str, bool], list[int]] = {}
        for j, column in enumerate(self.columns):
            groups.setdefault((column.kind, column.nullable), []).append(j)
        self.groups = [(kind, nullable, where) for (kind, nullable), where in groups.items()]

    @classmethod
    def of(cls, schema: Schema) -> TypedSchema:
        return cls(schema)

    # -- JSON rows -----------------------------------------------------------------------
    def convert(self, rows: Rows) -> Typed | None:
        """``rows`` as typed columns, or ``None`` when the general check must decide."""
        n = len(rows)
        order = self._order(rows.columns) if self.usable and n else None
        if order is None:
            return None
        if n == 1:
            values = rows.rows[0]
            if order:
                ordered: list[Any] = [None] * len(values)
                for value, j in zip(values, order, strict=True):
                    ordered[j] = value
                values = ordered
            columns: list[Sequence[Any]] = [(value,) for value in values]
        else:
            by_column: list[Sequence[Any]] = list(zip(*rows.rows, strict=True))
            if not order:
                columns = by_column
            else:
                columns = [()] * len(by_column)
                for column, j in zip(by_column, order, strict=True):
                    columns[j] = column
        arrays: list[np.ndarray] = [_EMPTY] * len(self.names)
        masks: list[np.ndarray | None] = [None] * len(self.names)
        for kind, nullable, positions in self.groups:
            block = [columns[j] for j in positions]
            typed = _values(kind, nullable, block, n)
            if typed is None:
                return None
            data, mask = typed
            for k, j in enumerate(positions):
                arrays[j] = data[k]
                masks[j] = None if mask is None else mask[k]
        return Typed(self, arrays, masks, n)

    def _order(self, names: list[Any]) -> list[int] | None:
        """``[]`` if ``names`` are the schema's in order, their positions if in another order,
        ``None`` if they are not exactly the schema's (the general check says how)."""
        if names == self.names:
            return []
        if len(names) != len(self.names) or set(names) != set(self.position):
            return None
        return [self.position[name] for name in names]

    # -- DataFrames of numpy columns -----------------------------------------------------
    def convert_frame(self, df: pd.DataFrame) -> Typed | None:
        """``df`` (numpy or text columns) as typed columns, or ``None`` as for ``convert``."""
        n = len(df)
        if not self.usable or n == 0 or not df.columns.is_unique:
            return None
        order = self._order(df.columns.tolist())
        if order is None:
            return None
        arrays: list[np.ndarray] = [_EMPTY] * len(self.names)
        masks: list[np.ndarray | None] = [None] * len(self.names)
        for k, source in enumerate(_column_arrays(df)):
            j = order[k] if order else k
            typed = _array(self.columns[j], source)
            if typed is None:
                return None
            arrays[j], masks[j] = typed
        index = df.index
        default = isinstance(index, pd.RangeIndex) and index.start == 0 and index.step == 1
        return Typed(self, arrays, masks, n, None if default else index)


_EMPTY = np.empty(0)
Block = list[Sequence[Any]]


def _values(
    kind: str, nullable: bool, block: Block, n: int
) -> tuple[np.ndarray, np.ndarray | None] | None:
    """A block of columns of plain JSON values as a ``(columns, n)`` array and, for nullable
    integer and boolean columns, the missing values' mask; ``None`` if a value needs the
    general check."""
    types = set(map(type, chain.from_iterable(block)))
    has_none = _NONE in types
    if has_none and not nullable:
        return None  # a missing value where training had none: the general check says so
    if kind == _FLOAT:
        if not types <= {float, int, _NONE} or (int in types and not _int64(block)):
            return None  # beyond int64: the general check decides
        floats = np.array(block, dtype=np.float64)  # None becomes NaN
        if not _finite(floats, nullable):
            return None
        return floats, None
    if kind == _INTEGER:
        if types == {int}:
            if not _int64(block):
                return None
            return np.array(block, dtype=np.int64), _no_mask(nullable, len(block), n)
        if not types <= {int, float, _NONE}:
            return None
        return _integers(block, n, nullable)
    if kind == _BOOLEAN:
        if types == {bool}:
            return np.array(block, dtype=np.bool_), _no_mask(nullable, len(block), n)
        if not types <= {bool, _NONE}:
            return None
        mask = np.array([[v is None for v in column] for column in block], dtype=np.bool_)
        flags = [[v is True for v in column] for column in block]
        return np.array(flags, dtype=np.bool_), mask
    # text and categorical columns
    if types == {str}:
        return _objects(block), None
    if not types <= {str, _NONE}:
        return None
    return _objects([[math.nan if v is None else v for v in column] for column in block]), None


def _objects(block: Block) -> np.ndarray:
    array = np.empty((len(block), len(block[0])), dtype=object)
    array[:] = block  # np.array(block, dtype=object) would nest a column of sequences
    return array


def _no_mask(nullable: bool, width: int, n: int) -> np.ndarray | None:
    return np.zeros((width, n), dtype=np.bool_) if nullable else None


def _integers(block: Block, n: int, nullable: bool) -> tuple[np.ndarray, np.ndarray | None] | None:
    """Integer columns holding whole floats, ``None`` or NaN too (the general rules: 3.0 is 3,
    NaN is a missing value)."""
    data = np.zeros((len(block), n), dtype=np.int64)
    mask = np.zeros((len(block), n), dtype=np.bool_)
    for k, column in enumerate(block):
        for i, value in enumerate(column):
            if value is None:
                mask[k, i] = True
            elif type(value) is float:
                if value != value and nullable:  # NaN, as a float tensor says "missing"
                    mask[k, i] = True
                elif value.is_integer() and -_TWO63 <= value < _TWO63:
                    data[k, i] = int(value)
                else:
                    return None  # a fraction, NaN, infinity: the general check says so
            elif _INT64_MIN <= value <= _INT64_MAX:
                data[k, i] = value
            else:
                return None
    return data, mask if nullable else None


def _finite(floats: np.ndarray, nullable: bool) -> bool:
    """No infinity, and no NaN unless the column may miss values (NaN is a missing value)."""
    if nullable:
        return not np.isinf(floats).any()
    return bool(np.isfinite(floats).all())


def _int64(block: Iterable[Iterable[Any]]) -> bool:
    return all(
        _INT64_MIN <= value <= _INT64_MAX
        for value in chain.from_iterable(block)
        if type(value) is int
    )


def _all_str(values: Iterable[Any]) -> bool:
    return all(type(v) is str for v in values)


def _column_arrays(df: pd.DataFrame) -> list[Any]:
    """The frame's columns as arrays (numpy, or pandas' extension arrays), in order.

    pandas' own column iterator: building a Series per column costs ~10 us each, more than
    the rest of a one-row check; the public route is the fallback should pandas drop it.
    """
    iterate = getattr(df, "_iter_column_arrays", None)
    if iterate is not None:
        return list(iterate())
    return [df.iloc[:, j].array for j in range(df.shape[1])]


def _array(column: _Column, source: Any) -> tuple[np.ndarray, np.ndarray | None] | None:
    """One frame column as the fast path's array and mask, or ``None`` (general path)."""
    dtype = source.dtype
    if isinstance(source, np.ndarray):
        if dtype == _OBJECT:
            # Python values, as JSON gives them: the same rules as for rows.
            typed = _values(column.kind, column.nullable, [source.tolist()], len(source))
            if typed is None:
                return None
            data, mask = typed
            return data[0], None if mask is None else mask[0]
        return _numbers(column, source)
    if isinstance(dtype, pd.StringDtype) and column.kind in (_STRING, _CATEGORICAL):
        missing = np.asarray(source.isna(), dtype=np.bool_)
        if missing.any() and not column.nullable:
            return None
        return source.to_numpy(dtype=object, na_value=math.nan), None
    return None  # categorical, nullable Int64, datetime ...: the general path


def _numbers(column: _Column, source: np.ndarray) -> tuple[np.ndarray, np.ndarray | None] | None:
    """A numeric or boolean numpy column for a float, integer or boolean schema column."""
    kind, dkind = column.kind, source.dtype.kind
    if kind == _FLOAT and dkind in "iuf":
        floats = source.astype(np.float64, copy=False)
        return (floats, None) if _finite(floats, column.nullable) else None
    if kind == _INTEGER and dkind in "iu":
        if dkind == "u" and source.size and source.max() > _INT64_MAX:
            return None
        ints = source.astype(np.int64, copy=False)
        return ints, np.zeros(len(ints), dtype=np.bool_) if column.nullable else None
    if kind == _INTEGER and dkind == "f":
        floats = source.astype(np.float64, copy=False)
        missing = np.isnan(floats)
        if missing.any() and not column.nullable:
            return None
        present = floats[~missing]
        whole = (present == np.floor(present)) & (present >= -_TWO63) & (present < _TWO63)
        if not whole.all():
            return None  # fractions, infinities: the general check says so
        ints = np.where(missing, 0, floats).astype(np.int64)
        return ints, missing if column.nullable else None
    if kind == _BOOLEAN and dkind == "b":
        return source, np.zeros(len(source), dtype=np.bool_) if column.nullable else None
    return None


def _categorical(values: np.ndarray, known: Categories | None) -> pd.Categorical:
    """Text values (NaN where missing) as ``Schema.coerce`` makes them categorical: codes of
    the training categories, and an unseen value as a category after them."""
    if known is not None:
        lookup = known.codes
        codes = [lookup.get(v, -1) for v in values]
        if min(codes) >= 0:
            return pd.Categorical.from_codes(np.array(codes), dtype=known.dtype)
    missing = np.array([type(v) is not str for v in values], dtype=np.bool_)
    return categorical(values, missing, known)
