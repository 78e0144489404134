"""The schema check's fast path: plain JSON rows straight to typed numpy columns.

``Schema.coerce`` reads a DataFrame and handles every case (text to numbers, categories,
nullable columns, dates); for the one row of a REST request, building that frame and checking
it costs several times what onnxruntime needs to score the row. ``TypedSchema.convert`` handles
only rows that are already right: exactly the schema's columns, and in each column values of
its plain JSON type (numbers for a float column, integers for an integer column, booleans for a
boolean column, text for a text column), no nulls. Anything else returns ``None`` and the caller
takes the general path, so the answer and every error message come from one place.

Either way the result is a ``Typed``: one numpy array per schema column, in schema order, with
the values ``Schema.coerce`` gives (tests compare the two on every kind of column).

>>> typed = TypedSchema.of(schema).convert(rows)  # doctest: +SKIP
>>> typed.arrays[0]  # doctest: +SKIP
array([41.])
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import chain
from typing import Any

import numpy as np
import pandas as pd

from shipyard.dataset import Schema, string_dtype
from shipyard.serving._inputs import Rows

_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1
_FLOAT = "float"
_INTEGER = "integer"
_BOOLEAN = "boolean"
_STRING = "string"
#: numpy dtype of each kind's arrays.
_DTYPES: dict[str, Any] = {
    _FLOAT: np.dtype(np.float64),
    _INTEGER: np.dtype(np.int64),
    _BOOLEAN: np.dtype(np.bool_),
    _STRING: np.dtype(object),
}


@dataclass(frozen=True, slots=True)
class Typed:
    """Rows that passed the schema: one 1-D array per schema column, in schema order.

    Float columns are float64, integer columns int64, boolean columns bool, text columns
    object arrays of ``str``. ``frame()`` is the DataFrame ``Schema.coerce`` would return.
    """

    schema: TypedSchema
    arrays: list[np.ndarray]
    n: int

    def __len__(self) -> int:
        return self.n

    def frame(self) -> pd.DataFrame:
        """The frame ``Schema.coerce`` gives for these rows (same columns, dtypes, values)."""
        data: dict[str, Any] = {}
        for name, kind, array in zip(
            self.schema.names, self.schema.kinds, self.arrays, strict=True
        ):
            data[name] = pd.array(array, dtype=self.schema.text) if kind == _STRING else array
        return pd.DataFrame(data, copy=False)

    @staticmethod
    def concat(parts: list[Typed]) -> Typed:
        """One ``Typed`` of every row of ``parts`` (all of one schema), in order."""
        first = parts[0]
        if len(parts) == 1:
            return first
        arrays = [
            np.concatenate([part.arrays[j] for part in parts]) for j in range(len(first.arrays))
        ]
        return Typed(first.schema, arrays, sum(part.n for part in parts))


class TypedSchema:
    """What ``convert`` needs of a ``Schema``, worked out once per served model.

    ``usable`` is False when a column is of a kind the fast path leaves to the general one
    (categorical, datetime, or any column that had missing values in training).
    """

    def __init__(self, schema: Schema) -> None:
        self.names = schema.names()
        self.kinds: list[str] = []
        for column in schema.columns:
            plain = column.dtype in _DTYPES and not column.nullable
            self.kinds.append(column.dtype if plain else "")
        self.usable = all(self.kinds) and len(set(self.names)) == len(self.names)
        self.position = {name: j for j, name in enumerate(self.names)}
        self.text = string_dtype()
        # Columns of each kind, by schema position: one numpy call per kind, not per column.
        self.groups = [
            (kind, [j for j, k in enumerate(self.kinds) if k == kind])
            for kind in (_FLOAT, _INTEGER, _BOOLEAN, _STRING)
            if kind in self.kinds
        ]

    @classmethod
    def of(cls, schema: Schema) -> TypedSchema:
        return cls(schema)

    def convert(self, rows: Rows) -> Typed | None:
        """``rows`` as typed columns, or ``None`` when the general check must decide."""
        n = len(rows)
        if not self.usable or n == 0:
            return None
        names = rows.columns
        if names == self.names:
            order: list[int] | None = None
        else:
            if len(names) != len(self.names) or set(names) != set(self.names):
                return None  # missing, extra or repeated columns: the general check says which
            order = [self.position[name] for name in names]
        if n == 1:
            values = rows.rows[0]
            if order is not None:
                ordered: list[Any] = [None] * len(values)
                for value, j in zip(values, order, strict=True):
                    ordered[j] = value
                values = ordered
            columns: list[Any] = [(value,) for value in values]
        else:
            by_column = list(zip(*rows.rows, strict=True))
            if order is None:
                columns = by_column
            else:
                columns = [()] * len(by_column)
                for column, j in zip(by_column, order, strict=True):
                    columns[j] = column
        arrays: list[np.ndarray] = [_EMPTY] * len(self.names)
        for kind, positions in self.groups:
            block = [columns[j] for j in positions]
            if not _plain(kind, block):
                return None
            typed = np.array(block, dtype=_DTYPES[kind])  # (columns of the kind, n)
            if kind == _FLOAT and not np.isfinite(typed).all():
                return None  # JSON has no NaN or infinity; other sources go the general way
            for j, array in zip(positions, typed, strict=True):
                arrays[j] = array
        return Typed(self, arrays, n)


_EMPTY = np.empty(0)


def _plain(kind: str, block: list[Any]) -> bool:
    """True if every value in ``block`` (a list of columns) is of ``kind``'s JSON type."""
    types = set(map(type, chain.from_iterable(block)))
    if kind == _FLOAT:
        if not types <= {float, int}:
            return False
        return int not in types or _int64(block)  # beyond int64: the general check decides
    if kind == _INTEGER:
        return types == {int} and _int64(block)
    if kind == _BOOLEAN:
        return types == {bool}
    return types == {str}


def _int64(block: list[Any]) -> bool:
    return all(
        _INT64_MIN <= value <= _INT64_MAX
        for value in chain.from_iterable(block)
        if type(value) is int
    )
