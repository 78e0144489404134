"""The schema check's fast path (``_typed``) gives what the general path gives, or steps aside.

JSON rows and frames of numpy columns are typed straight into numpy arrays when their values
fit the schema; anything else takes ``Schema.coerce``. Both must give identical frames, and
every refusal must come from the general path. Served models: ``test_typed_models.py``.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
import pytest

from shipyard.dataset import ColumnSchema, Schema
from shipyard.errors import SchemaViolation
from shipyard.serving._inputs import Rows, rows_from_records, rows_from_split
from shipyard.serving._runtime import combine
from shipyard.serving._typed import Typed, TypedSchema

SCHEMA = Schema(
    columns=[
        ColumnSchema(name="x", dtype="float", nullable=False),
        ColumnSchema(name="xn", dtype="float", nullable=True),
        ColumnSchema(name="n", dtype="integer", nullable=False),
        ColumnSchema(name="nn", dtype="integer", nullable=True),
        ColumnSchema(name="ok", dtype="boolean", nullable=False, categories=["False", "True"]),
        ColumnSchema(name="okn", dtype="boolean", nullable=True, categories=["False", "True"]),
        ColumnSchema(name="city", dtype="string", nullable=False, categories=["Oslo", "Rome"]),
        ColumnSchema(name="cityn", dtype="string", nullable=True, categories=None),
        ColumnSchema(name="state", dtype="categorical", nullable=False, categories=["CA", "TX"]),
        ColumnSchema(name="staten", dtype="categorical", nullable=True, categories=["a", "b"]),
        ColumnSchema(name="code", dtype="categorical", nullable=True, categories=None),
    ]
)
TYPED = TypedSchema(SCHEMA)

#: Values the fast path types itself, per column: what real requests carry (nulls where
#: training had missing values, unseen categories, whole floats for integers, ints for floats).
FAST: dict[str, list[Any]] = {
    "x": [1.5, 2, -0.0, 1e308, 2**62],
    "xn": [1.5, 2, None],
    "n": [3, -(2**63), 2**63 - 1, 3.0],
    "nn": [3, 4.0, None],
    "ok": [True, False],
    "okn": [True, False, None],
    "city": ["Oslo", "unseen", ""],
    "cityn": ["Oslo", "x", None],
    "state": ["CA", "TX", "ZZ"],  # ZZ: a state training never saw
    "staten": ["a", "zz", None],
    "code": ["q", "r", None],
}
#: Values only the general path may judge: wrong types (converted or refused), missing values
#: where training had none, numbers beyond int64.
GENERAL: dict[str, list[Any]] = {
    "x": [None, "1.5", True, 2**70, 2**63],
    "xn": ["nan", False, "x"],
    "n": [None, 3.5, "3", True, 2**63, 1e20, 1e300],
    "nn": [2.5, "4", False],
    "ok": [None, 1, "true", "yes"],
    "okn": [0, "false", 2.0],
    "city": [None, 5, 1.5, True],
    "cityn": [7, False],
    "state": [None, 5],
    "staten": [3, 1.5],
    "code": [True, 0],
}


def _record(rng: random.Random, general_share: float) -> dict[str, Any]:
    return {
        name: rng.choice(GENERAL[name] if rng.random() < general_share else values)
        for name, values in FAST.items()
    }


def _general(frame: pd.DataFrame) -> pd.DataFrame | SchemaViolation:
    try:
        return SCHEMA.coerce(frame)
    except SchemaViolation as exc:
        return exc


def _same(typed: Typed | None, expected: pd.DataFrame | SchemaViolation) -> None:
    """The fast path either stepped aside, or gave exactly the general path's frame."""
    if typed is None:
        return
    assert isinstance(expected, pd.DataFrame), f"fast path accepted what coerce refuses: {expected}"
    pd.testing.assert_frame_equal(typed.frame(), expected, check_exact=True)


def _decoded(records: list[dict[str, Any]]) -> pd.DataFrame:
    """The frame a binary or gRPC decoder builds of ``_decoded_columns``."""
    return pd.DataFrame(_decoded_columns(records), copy=False)


def _decoded_columns(records: list[dict[str, Any]]) -> dict[str, np.ndarray]:
    """What a binary or gRPC decoder reads: one numpy array per column (float64 with NaN for
    FP tensors, int64, bool, object arrays of str/None for BYTES), in the records' order."""
    data: dict[str, np.ndarray] = {}
    for name in records[0]:
        values = [record[name] for record in records]
        present = {type(v) for v in values if v is not None}
        exact = all(abs(v) <= 2**53 for v in values if type(v) is int)
        if present <= {float, int} and present and (float in present or None in values) and exact:
            data[name] = np.array([math.nan if v is None else v for v in values], np.float64)
            continue
        if present == {int} and None not in values:
            try:
                data[name] = np.array(values, dtype=np.int64)
                continue
            except OverflowError:
                pass
        if present == {bool} and None not in values:
            data[name] = np.array(values, dtype=np.bool_)
            continue
        column = np.empty(len(values), dtype=object)
        column[:] = values
        data[name] = column
    return data


# -- JSON rows -------------------------------------------------------------------------------


@pytest.mark.parametrize("n_rows", [1, 2, 40])  # 40: beyond the general path's small frames
def test_real_values_take_the_fast_path_and_match_schema_coerce(n_rows: int) -> None:
    rng = random.Random(n_rows)
    for _ in range(40):
        records = [_record(rng, 0.0) for _ in range(n_rows)]
        rows = rows_from_records(records)
        typed = TYPED.convert(rows)
        assert typed is not None, records
        expected = _general(rows.frame())
        assert isinstance(expected, pd.DataFrame)
        pd.testing.assert_frame_equal(typed.frame(), expected, check_exact=True)


@pytest.mark.parametrize("n_rows", [1, 3, 40])
def test_any_value_mix_gives_the_general_answer_or_steps_aside(n_rows: int) -> None:
    def both(records: list[dict[str, Any]]) -> tuple[Typed | None, Any]:
        rows = rows_from_records(records)
        return TYPED.convert(rows), _general(rows.frame())

    _check_mixes(random.Random(100 + n_rows), n_rows, both)


def _check_mixes(
    rng: random.Random,
    n_rows: int,
    both: Callable[[list[dict[str, Any]]], tuple[Typed | None, Any]],
) -> None:
    """150 requests, about one in three with an unusual value: the fast path steps aside for
    some, and gives exactly the general answer for the rest."""
    share = 1 / (len(FAST) * n_rows)
    stepped_aside = 0
    for _ in range(150):
        typed, expected = both([_record(rng, share) for _ in range(n_rows)])
        stepped_aside += typed is None
        _same(typed, expected)
    assert 0 < stepped_aside < 150


@pytest.mark.parametrize("column", list(GENERAL))
def test_each_unusual_value_is_left_to_the_general_path(column: str) -> None:
    base = {name: values[0] for name, values in FAST.items()}
    for value in GENERAL[column]:
        rows = rows_from_records([{**base, column: value}])
        assert TYPED.convert(rows) is None, (column, value)


def test_missing_extra_and_repeated_columns_are_left_to_the_general_path() -> None:
    base = {name: values[0] for name, values in FAST.items()}
    without = {k: v for k, v in base.items() if k != "x"}
    assert TYPED.convert(rows_from_records([without])) is None
    assert TYPED.convert(rows_from_records([{**base, "extra": 1}])) is None
    names = list(base)
    repeated = Rows([*names[:-1], names[0]], [[*list(base.values())[:-1], 1.5]])
    assert TYPED.convert(repeated) is None


def test_column_order_does_not_matter() -> None:
    rng = random.Random(5)
    records = [_record(rng, 0.0) for _ in range(3)]
    names = list(FAST)
    for order in (names[::-1], names[3:] + names[:3]):
        reordered = [{name: record[name] for name in order} for record in records]
        rows = rows_from_records(reordered)
        typed = TYPED.convert(rows)
        assert typed is not None
        expected = _general(rows.frame())
        assert isinstance(expected, pd.DataFrame)
        pd.testing.assert_frame_equal(typed.frame(), expected, check_exact=True)
        assert typed.frame().columns.tolist() == names


def test_split_rows_take_the_fast_path_too() -> None:
    rng = random.Random(6)
    records = [_record(rng, 0.0) for _ in range(2)]
    names = list(FAST)[::-1]
    rows = rows_from_split(names, [[record[name] for name in names] for record in records])
    typed = TYPED.convert(rows)
    assert typed is not None
    _same(typed, _general(rows.frame()))


def test_unknown_categories_behave_as_in_the_general_path() -> None:
    """Not an error, not a missing value: an unseen level becomes a category after the
    training ones (the model then treats it as it was trained to, e.g. all-zero one-hot)."""
    base = {name: values[0] for name, values in FAST.items()}
    rows = rows_from_records([{**base, "state": "ZZ"}, {**base, "state": "AA"}])
    typed = TYPED.convert(rows)
    assert typed is not None
    state = typed.frame()["state"]
    assert state.cat.categories.tolist() == ["CA", "TX", "AA", "ZZ"]
    assert state.tolist() == ["ZZ", "AA"]
    assert typed.arrays[TYPED.position["state"]].tolist() == ["ZZ", "AA"]  # ONNX gets the text


def test_nulls_in_nullable_columns_are_missing_values() -> None:
    base = {name: values[0] for name, values in FAST.items()}
    nulls = {"xn": None, "nn": None, "okn": None, "cityn": None, "staten": None, "code": None}
    typed = TYPED.convert(rows_from_records([{**base, **nulls}]))
    assert typed is not None
    frame = typed.frame()
    assert frame[list(nulls)].isna().all().all()
    assert frame["nn"].dtype == "Int64" and frame["okn"].dtype == "boolean"
    assert math.isnan(typed.arrays[TYPED.position["xn"]][0])


def test_a_schema_with_a_datetime_column_uses_the_general_path() -> None:
    schema = Schema(
        columns=[
            ColumnSchema(name="x", dtype="float", nullable=False),
            ColumnSchema(name="at", dtype="datetime", nullable=False),
        ]
    )
    typed = TypedSchema(schema)
    assert not typed.usable
    assert typed.convert(rows_from_records([{"x": 1.0, "at": "2024-01-01"}])) is None


# -- frames of numpy columns (the binary and gRPC decoders) ----------------------------------


@pytest.mark.parametrize("n_rows", [1, 2, 40])
def test_decoded_frames_take_the_fast_path_and_match_schema_coerce(n_rows: int) -> None:
    rng = random.Random(200 + n_rows)
    for _ in range(40):
        frame = _decoded([_record(rng, 0.0) for _ in range(n_rows)])
        typed = TYPED.convert_frame(frame)
        assert typed is not None, frame.dtypes
        expected = _general(frame)
        assert isinstance(expected, pd.DataFrame)
        pd.testing.assert_frame_equal(typed.frame(), expected, check_exact=True)


@pytest.mark.parametrize("n_rows", [1, 3, 40])
def test_decoded_frames_of_any_values_give_the_general_answer_or_step_aside(n_rows: int) -> None:
    def both(records: list[dict[str, Any]]) -> tuple[Typed | None, Any]:
        frame = _decoded(records)
        return TYPED.convert_frame(frame), _general(frame)

    _check_mixes(random.Random(300 + n_rows), n_rows, both)


def _frame_with(column: str, values: Any, n: int = 3) -> pd.DataFrame:
    rng = random.Random(9)
    frame = _decoded([_record(rng, 0.0) for _ in range(n)])
    frame[column] = values
    return frame


@pytest.mark.parametrize(
    ("column", "values", "fast"),
    [
        ("x", np.array([1.5, 2.5, 3.5], dtype=np.float32), True),
        ("x", np.array([1, 2, 3], dtype=np.uint8), True),
        ("x", np.array([1.5, np.nan, 2.0]), False),  # NaN where training had none
        ("xn", np.array([1.5, np.nan, np.inf]), False),  # infinities are refused
        ("xn", np.array([True, False, True]), False),
        ("n", np.array([1.0, 2.0, 3.0]), True),
        ("n", np.array([1.0, 2.5, 3.0]), False),
        ("n", np.array([1, 2, 2**64 - 1], dtype=np.uint64), False),
        ("nn", np.array([1.0, np.nan, 3.0]), True),
        ("nn", np.array([1, 2, 3], dtype=np.int32), True),
        ("ok", np.array([1, 0, 1]), False),
        ("city", pd.array(["Oslo", "y", "z"], dtype="str"), True),
        ("city", pd.array(["Oslo", None, "z"], dtype="str"), False),
        ("cityn", pd.array(["Oslo", None, "z"], dtype="str"), True),
        ("state", pd.array(["CA", "ZZ", "TX"], dtype="str"), True),
        ("staten", pd.array(["a", None, "q"], dtype="str"), True),
        ("state", pd.Categorical(["CA", "TX", "CA"]), False),
        ("nn", pd.array([1, None, 3], dtype="Int64"), False),
        ("city", np.array([1, 2, 3]), False),
    ],
)
def test_frame_columns_of_each_dtype(column: str, values: Any, fast: bool) -> None:
    frame = _frame_with(column, values)
    typed = TYPED.convert_frame(frame)
    assert (typed is not None) == fast
    _same(typed, _general(frame))


def test_frames_keep_their_index_and_any_column_order() -> None:
    rng = random.Random(11)
    frame = _decoded([_record(rng, 0.0) for _ in range(4)])
    frame = frame[list(frame.columns)[::-1]]
    frame.index = pd.Index([10, 11, 12, 13])
    typed = TYPED.convert_frame(frame)
    assert typed is not None
    _same(typed, _general(frame))


def test_frames_with_odd_columns_are_left_to_the_general_path() -> None:
    rng = random.Random(12)
    frame = _decoded([_record(rng, 0.0) for _ in range(2)])
    assert TYPED.convert_frame(frame.drop(columns=["x"])) is None
    assert TYPED.convert_frame(frame.assign(extra=1)) is None
    assert TYPED.convert_frame(frame.iloc[:0]) is None
    repeated = pd.concat([frame, frame[["x"]]], axis=1)
    assert TYPED.convert_frame(repeated) is None


# -- batches ---------------------------------------------------------------------------------


def test_batches_of_typed_rows_concatenate_in_order() -> None:
    rng = random.Random(13)
    records = [_record(rng, 0.0) for _ in range(5)]
    parts = [TYPED.convert(rows_from_records([record])) for record in records]
    parts.append(TYPED.convert_frame(_decoded(records[:2])))
    assert all(isinstance(part, Typed) for part in parts)
    joined = combine([part for part in parts if part is not None])
    assert isinstance(joined, Typed)
    expected = _general(rows_from_records(records + records[:2]).frame())
    assert isinstance(expected, pd.DataFrame)
    pd.testing.assert_frame_equal(joined.frame(), expected, check_exact=True)


@pytest.mark.parametrize("n_rows", [1, 3, 40])
def test_rows_from_decoded_columns_match_the_decoded_frame(n_rows: int) -> None:
    """``Rows.from_columns`` (the cheap form for decoders) types and refuses as the frame."""
    rng = random.Random(400 + n_rows)
    share = 1 / (len(FAST) * n_rows)
    for k in range(100):
        columns = _decoded_columns([_record(rng, share if k % 2 else 0.0) for _ in range(n_rows)])
        rows = Rows.from_columns(list(columns), list(columns.values()))
        expected = _general(pd.DataFrame(columns, copy=False))
        typed = TYPED.convert(rows)
        assert typed is not None or k % 2
        _same(typed, expected)
        if typed is None and isinstance(expected, SchemaViolation):
            general = _general(rows.frame())
            assert isinstance(general, SchemaViolation)
            assert general.message == expected.message
