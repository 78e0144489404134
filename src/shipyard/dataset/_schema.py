"""A model's input schema: inferred from training data, then enforced on every request.

>>> train = pd.DataFrame({"age": [31, 45], "plan": ["basic", "pro"]})
>>> schema = infer_schema(train)
>>> schema.check(pd.DataFrame({"age": [1.5], "plan": ["pro"]}))
[FieldError(field='age', reason='expected integer, 1 value cannot be converted')]
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from functools import cached_property
from typing import Any

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict

from shipyard.dataset._convert import (
    OK,
    Categories,
    Parsed,
    categorical_values,
    is_missing,
    parse_column,
    parse_values,
    to_array,
)
from shipyard.dataset._dtypes import (
    DATETIME_UNIT,
    OBJECT,
    PANDAS_MAJOR,
    ColumnType,
    check_frame,
    column_type,
    string_dtype,
)
from shipyard.errors import InvalidInput, SchemaViolation

MAX_CATEGORIES = 200

# Up to this many rows, values are checked one by one in plain Python: one pandas call per
# column costs more than the whole check of a REST request's single row.
_SMALL_FRAME = 32

_NAN_REASON = "NaN not allowed (column had no missing values in training)"
_INF_REASON = "infinite values not allowed"


class FieldError(BaseModel):
    """One problem with a frame: a column name (``"$"`` for the frame itself) and why.

    Reasons count offending values but never quote them: inputs can be personal data.

    >>> FieldError(field="$", reason="no rows").model_dump()
    {'field': '$', 'reason': 'no rows'}
    """

    model_config = ConfigDict(frozen=True)

    field: str
    reason: str


class ColumnSchema(BaseModel):
    """What one training column was: its type, whether it had gaps, its categories and range.

    >>> ColumnSchema(name="age", dtype="integer", nullable=False, minimum=18, maximum=90).dtype
    'integer'
    """

    model_config = ConfigDict(frozen=True)

    name: str
    dtype: ColumnType
    nullable: bool
    categories: list[str] | None = None
    minimum: float | None = None
    maximum: float | None = None


class Schema(BaseModel):
    """The ordered columns a model was trained on; checks and coerces frames against them.

    >>> schema = Schema(columns=[ColumnSchema(name="x", dtype="float", nullable=False)])
    >>> schema.coerce(pd.DataFrame({"x": ["2.5"]})).dtypes.tolist()
    [dtype('float64')]
    """

    model_config = ConfigDict(frozen=True)

    columns: list[ColumnSchema]

    def names(self) -> list[str]:
        """Column names in training order.

        >>> Schema(columns=[ColumnSchema(name="x", dtype="float", nullable=False)]).names()
        ['x']
        """
        return [column.name for column in self.columns]

    def check(self, df: pd.DataFrame) -> list[FieldError]:
        """Every problem that keeps ``df`` from matching this schema; an empty list if none.

        Never raises. Unseen categories and out-of-range numbers are not schema errors (models
        handle unknown categories; monitoring watches ranges).

        >>> schema = Schema(columns=[ColumnSchema(name="x", dtype="float", nullable=False)])
        >>> schema.check(pd.DataFrame({"x": [float("nan")], "y": [1]}))
        [FieldError(field='x', reason='NaN not allowed (column had no missing values in training)'), FieldError(field='y', reason='unexpected column')]
        """  # noqa: E501
        return self._run(df, build=False)[1]

    def coerce(self, df: pd.DataFrame) -> pd.DataFrame:
        """``df`` with the schema's columns in order, converted to the training dtypes.

        Raises SchemaViolation listing every FieldError (in ``details["errors"]``). Integral
        floats become integers and numeric text becomes numbers; the index is kept.

        >>> schema = Schema(columns=[ColumnSchema(name="n", dtype="integer", nullable=False)])
        >>> schema.coerce(pd.DataFrame({"n": [3.0]}))["n"].tolist()
        [3]
        """
        out, errors = self._run(df)
        if errors or out is None:
            listed = "; ".join(f"{e.field!r}: {e.reason}" for e in errors)
            raise SchemaViolation(
                f"The input does not match the model's schema ({listed}); send exactly the "
                "schema's columns, with values of its types.",
                errors=[error.model_dump() for error in errors],
            )
        return out

    # -----------------------------------------------------------------------------------------

    @cached_property
    def _targets(self) -> list[Any]:
        # The pandas dtype of each column after coercion, built once per schema: building a
        # CategoricalDtype costs more than a whole one-row check. A cached_property, unlike a
        # private attribute, is left out of == (pydantic compares fields only).
        return [_target_dtype(column) for column in self.columns]

    def _target_dtypes(self) -> list[Any]:
        """The pandas dtype of each column after coercion: built on first use, then kept.

        Serving calls it when it loads a model, so that no request pays for building it.
        """
        return self._targets

    def _run(
        self, df: object, *, build: bool = True
    ) -> tuple[pd.DataFrame | None, list[FieldError]]:
        """The coerced frame (None if there are errors or ``build`` is false) and the errors."""
        if not isinstance(df, pd.DataFrame):
            reason = f"expected a DataFrame, got {type(df).__name__}"
            return None, [FieldError(field="$", reason=reason)]
        names = self.names()
        given = df.columns.tolist()
        in_order = given == names
        where, extra = (
            ({n: i for i, n in enumerate(names)}, []) if in_order else _locate(names, given)
        )
        n_rows = df.shape[0]
        errors = [] if n_rows else [FieldError(field="$", reason="no rows")]
        small = 0 < n_rows <= _SMALL_FRAME
        dtypes = df.dtypes.tolist() if small else []
        cells = _cells(df) if small else None
        replace: dict[int, Any] = {}  # schema position -> converted array
        for j, (column, target) in enumerate(zip(self.columns, self._targets, strict=True)):
            found = where[column.name]
            if isinstance(found, str):
                errors.append(FieldError(field=column.name, reason=found))
                continue
            if not n_rows:
                continue
            if cells is not None:
                values, dtype = cells[found], dtypes[found]
                if isinstance(dtype, pd.CategoricalDtype) and not _keeps(dtype, target):
                    values = categorical_values(df.iloc[:, found])  # exact, unlike cells
                counts, array = _convert_small(values, dtype, column, target)
            else:
                counts, array = _convert_large(df.iloc[:, found], column, target)
            if array is not None:
                replace[j] = array
            elif any(counts):
                errors.extend(
                    FieldError(field=column.name, reason=r) for r in _reasons(column, counts)
                )
        errors.extend(FieldError(field=str(name), reason="unexpected column") for name in extra)
        if errors or not build:
            return None, errors
        # pandas 3 copies on write, so a shallow copy cannot alter the caller's frame; pandas 2
        # shares memory unless asked for a deep copy. reindex makes a new frame on both.
        out = df.copy(deep=PANDAS_MAJOR < 3) if in_order else df.reindex(columns=names)
        for j, array in replace.items():
            out.isetitem(j, array)
        return out, errors


def _cells(df: pd.DataFrame) -> Any:
    """The values of a small frame, column by column, in one pandas call for all columns.

    Exact, except that a categorical of integers with a missing value gives floats.
    """
    if len(df) == 1:
        # A row as an object Series holds every value exactly (a float64 row would round
        # large integers), and costs half of to_numpy(dtype=object) on text columns.
        row = df.iloc[0]
        if row.dtype == OBJECT:
            return [[value] for value in row.tolist()]
    return df.to_numpy(dtype=object).T


def _locate(names: list[str], given: list[Any]) -> tuple[dict[str, int | str], list[Any]]:
    """Where each schema column is in the frame (or why not), and the frame's extra columns."""
    counts = Counter(given)
    where: dict[str, int | str] = {}
    for name in names:
        if counts[name] > 1:
            where[name] = "duplicate column"
        elif name in counts:
            where[name] = given.index(name)
        else:
            where[name] = "missing column"
    known = set(names)
    extra = list(dict.fromkeys(name for name in given if name not in known))
    return where, extra


_FLOAT64 = np.dtype(np.float64)


def _target_dtype(column: ColumnSchema) -> Any:
    kind = column.dtype
    if kind == "float":
        return _FLOAT64
    if kind == "integer":
        return pd.Int64Dtype() if column.nullable else np.dtype(np.int64)
    if kind == "boolean":
        return pd.BooleanDtype() if column.nullable else np.dtype(np.bool_)
    if kind == "string":
        return string_dtype()
    if kind == "categorical":
        return None if column.categories is None else Categories.of(column.categories)
    return np.dtype(f"datetime64[{DATETIME_UNIT}]")


def _keeps(dtype: Any, target: Any) -> bool:
    """True if a column of ``dtype`` already holds valid values of ``target`` (maybe missing)."""
    if isinstance(target, Categories):
        target = target.dtype
    # An object column can hold anything, so it is always converted. The identity and type
    # tests first: comparing a numpy dtype with a pandas one costs microseconds.
    if target is None or dtype is OBJECT:
        return False
    return dtype is target or (type(dtype) is type(target) and bool(dtype == target))


Counts = tuple[int, int, int]  # bad, missing, infinite


def _convert_small(
    values: np.ndarray, dtype: Any, column: ColumnSchema, target: Any
) -> tuple[Counts, Any]:
    if not _keeps(dtype, target):
        # Shortcuts for what JSON requests carry most: known categories as text, whole
        # numbers for a float column, text (pandas 2). Anything else takes the general rules.
        if isinstance(target, Categories):
            codes = [target.codes.get(v, -1) if type(v) is str else -1 for v in values]
            if min(codes) >= 0:
                array = pd.Categorical.from_codes(np.array(codes), dtype=target.dtype)
                return (0, 0, 0), array
        elif target is _FLOAT64 and isinstance(dtype, np.dtype) and dtype.kind in "iu":
            return (0, 0, 0), np.array(values, dtype=np.float64)
        elif target is OBJECT and dtype is OBJECT and all(type(v) is str for v in values):
            return (0, 0, 0), None  # text where pandas 2 keeps text: nothing to convert
        return _finish(parse_values(values, column.dtype), column, target)
    if column.dtype == "float":
        missing = infinite = 0
        for value in values:
            if value != value:
                missing += 1
            elif value == math.inf or value == -math.inf:
                infinite += 1
        return (0, missing, infinite), None
    if isinstance(dtype, np.dtype) and dtype.kind in "iub":
        return (0, 0, 0), None  # numpy integers and booleans cannot be missing
    return (0, sum(1 for value in values if is_missing(value)), 0), None


def _convert_large(series: pd.Series, column: ColumnSchema, target: Any) -> tuple[Counts, Any]:
    if _keeps(series.dtype, target):
        if column.dtype == "float":
            values = series.to_numpy()
            return (0, int(np.isnan(values).sum()), int(np.isinf(values).sum())), None
        return (0, int(series.isna().sum()), 0), None
    return _finish(parse_column(series, column.dtype), column, target)


def _finish(parsed: Parsed, column: ColumnSchema, target: Any) -> tuple[Counts, Any]:
    _, missing, bad, infinite = parsed.counts()
    if bad or infinite or (missing and not column.nullable):
        return (bad, missing, infinite), None
    array = to_array(parsed, column.dtype, target)
    return (bad, missing, infinite), array


def _reasons(column: ColumnSchema, counts: Counts) -> list[str]:
    bad, missing, infinite = counts
    reasons = []
    if bad:
        noun = "value" if bad == 1 else "values"
        reasons.append(f"expected {column.dtype}, {bad} {noun} cannot be converted")
    if missing and not column.nullable:
        reasons.append(_NAN_REASON)
    if infinite:
        reasons.append(_INF_REASON)
    return reasons


# ---------------------------------------------------------------------------------------------


def infer_schema(df: pd.DataFrame) -> Schema:
    """The schema of a training frame: each column's type, gaps, categories and numeric range.

    Raises InvalidInput for an empty frame, repeated or non-string column names, and columns
    whose values cannot be described (bytes, lists, complex numbers...).

    >>> schema = infer_schema(pd.DataFrame({"x": [1.5, None], "ok": [True, False]}))
    >>> [(c.name, c.dtype, c.nullable, c.categories) for c in schema.columns]
    [('x', 'float', True, None), ('ok', 'boolean', False, ['False', 'True'])]
    """
    check_frame(df, "infer_schema")
    if df.shape[0] == 0 or df.shape[1] == 0:
        raise InvalidInput(
            "infer_schema needs at least one row and one column. "
            f"Got a frame of shape {df.shape} instead.",
        )
    return Schema(columns=[_infer_column(df.iloc[:, i]) for i in range(df.shape[1])])


def _infer_column(series: pd.Series) -> ColumnSchema:
    name = str(series.name)
    kind = column_type(series)
    if isinstance(series.dtype, pd.StringDtype):
        # Text needs no parsing; its own unique() spares turning every value into an object.
        distinct = series.dropna().unique()
        listed = sorted(str(v) for v in distinct) if len(distinct) <= MAX_CATEGORIES else None
        return ColumnSchema(
            name=name, dtype="string", nullable=bool(series.isna().any()), categories=listed
        )
    parsed = parse_column(series, kind)
    ok, missing, bad, _ = parsed.counts()
    if bad:
        noun = "value" if bad == 1 else "values"
        raise InvalidInput(
            f"Column {name!r} looks like {kind} but {bad} {noun} cannot be read as {kind}; "
            "clean or convert the column first.",
            column=name,
        )
    minimum = maximum = None
    categories = None
    if kind in ("integer", "float") and ok:
        finite = parsed.data[parsed.status == OK]
        minimum, maximum = float(finite.min()), float(finite.max())
    elif kind == "categorical":
        declared = parse_values(np.asarray(series.cat.categories, dtype=object), "string")
        unique = list(dict.fromkeys(declared.data[declared.status == OK].tolist()))
        categories = unique if len(unique) <= MAX_CATEGORIES else None
    elif kind in ("string", "boolean"):
        seen = parsed.data[parsed.status == OK]
        distinct = pd.unique(seen.astype(str) if kind == "boolean" else seen)
        if len(distinct) <= MAX_CATEGORIES:
            categories = sorted(str(value) for value in distinct)
    return ColumnSchema(
        name=name,
        dtype=kind,
        nullable=missing > 0,
        categories=categories,
        minimum=minimum,
        maximum=maximum,
    )


_TASKS = ("classification", "regression")


def infer_output_schema(
    y: Any, *, task: str, classes: Sequence[Any] | np.ndarray | None
) -> dict[str, Any]:
    """What a model returns: the label's type, and for a classifier its classes and the names
    of the probability columns, in the order of ``classes`` (e.g. ``model.classes_``).

    ``classes`` defaults to the sorted distinct labels of ``y``. Values are JSON-ready.

    >>> infer_output_schema(["no", "yes", "no"], task="classification", classes=None)
    {'task': 'classification', 'name': None, 'dtype': 'string', 'classes': ['no', 'yes'], 'probability_columns': ['proba_no', 'proba_yes']}
    >>> infer_output_schema([1.5, 2.0], task="regression", classes=None)["dtype"]
    'float'
    """  # noqa: E501
    if task not in _TASKS:
        raise InvalidInput(
            "The 'task' parameter of infer_output_schema must be a str among "
            f"{{'classification', 'regression'}}. Got {task!r} instead.",
        )
    labels = y if isinstance(y, pd.Series) else pd.Series(np.asarray(y))
    name = labels.name if isinstance(labels.name, str) else None
    if len(labels) == 0:
        raise InvalidInput("infer_output_schema needs at least one label. Got an empty y instead.")
    if task == "regression":
        if classes is not None:
            raise InvalidInput(
                "The 'classes' parameter of infer_output_schema must be None for regression. "
                f"Got {len(classes)} classes instead.",
            )
        return {
            "task": task,
            "name": name,
            "dtype": "float",
            "classes": None,
            "probability_columns": [],
        }
    if classes is None:
        present = labels[~labels.isna()]
        found = [_json_value(value) for value in pd.unique(present)]
        try:
            classes = sorted(found)
        except TypeError as exc:  # e.g. numbers and text together
            raise InvalidInput(
                "infer_output_schema cannot order labels of mixed types; pass classes= "
                "(e.g. model.classes_).",
            ) from exc
    listed = [_json_value(value) for value in classes]
    if len(listed) < 2:
        raise InvalidInput(
            "A classifier needs at least two classes. "
            f"Got {len(listed)} instead; check y or pass classes= (e.g. model.classes_).",
        )
    columns = [f"proba_{value}" for value in listed]
    if len(set(columns)) != len(columns):
        raise InvalidInput(
            "Classes must be distinct once written as text (they name probability columns). "
            f"Got {listed!r} instead.",
        )
    return {
        "task": task,
        "name": name,
        "dtype": _label_type(listed),
        "classes": listed,
        "probability_columns": columns,
    }


def _json_value(value: Any) -> Any:
    """A class label as a plain JSON value: numpy scalars unwrapped, others as text."""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, bool | int | str) or (isinstance(value, float) and math.isfinite(value)):
        return value
    return str(value)


def _label_type(classes: list[Any]) -> ColumnType:
    if all(isinstance(value, bool) for value in classes):
        return "boolean"
    if all(isinstance(value, int) and not isinstance(value, bool) for value in classes):
        return "integer"
    if all(isinstance(value, int | float) and not isinstance(value, bool) for value in classes):
        return "float"
    return "string"
