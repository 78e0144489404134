"""Schema.check and Schema.coerce: every problem reported, values converted to training dtypes."""

from __future__ import annotations

import datetime as dt
import time
from decimal import Decimal

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from shipyard.dataset import ColumnSchema, FieldError, Schema, infer_schema
from shipyard.errors import InvalidInput, SchemaViolation

PANDAS_3 = int(pd.__version__.split(".")[0]) >= 3
DATETIME = "datetime64[us]" if PANDAS_3 else "datetime64[ns]"
TEXT = pd.Series(["a"]).dtype  # pandas' default text dtype: str on pandas 3, object before


def col(name: str, dtype: str, nullable: bool = False, **extra: object) -> ColumnSchema:
    return ColumnSchema(name=name, dtype=dtype, nullable=nullable, **extra)  # type: ignore[arg-type]


SCHEMA = Schema(
    columns=[
        col("n", "integer"),
        col("m", "integer", nullable=True),
        col("x", "float"),
        col("y", "float", nullable=True),
        col("flag", "boolean"),
        col("maybe", "boolean", nullable=True),
        col("city", "string", categories=["Lima", "Oslo"]),
        col("plan", "categorical", categories=["basic", "pro"]),
        col("when", "datetime", nullable=True),
    ]
)


def request(**overrides: list[object]) -> pd.DataFrame:
    """A valid two-row request, with some columns replaced."""
    columns: dict[str, list[object]] = {
        "n": [1, 2],
        "m": [3, None],
        "x": [0.5, 1.5],
        "y": [None, 2.5],
        "flag": [True, False],
        "maybe": [None, True],
        "city": ["Oslo", "Lima"],
        "plan": ["pro", "basic"],
        "when": ["2024-05-01T12:00:00", None],
    }
    columns.update(overrides)
    return pd.DataFrame(columns)


def test_a_valid_request_is_coerced_to_the_training_dtypes() -> None:
    out = SCHEMA.coerce(request())
    assert out.dtypes.to_dict() == {
        "n": np.dtype(np.int64),
        "m": pd.Int64Dtype(),
        "x": np.dtype(np.float64),
        "y": np.dtype(np.float64),
        "flag": np.dtype(np.bool_),
        "maybe": pd.BooleanDtype(),
        "city": TEXT,
        "plan": pd.CategoricalDtype(["basic", "pro"]),
        "when": np.dtype(DATETIME),
    }
    assert out["m"].tolist() == [3, pd.NA]
    assert out["maybe"].tolist() == [pd.NA, True]
    assert out["plan"].cat.codes.tolist() == [1, 0]
    assert out["when"].tolist() == [pd.Timestamp("2024-05-01 12:00"), pd.NaT]


def test_coerce_converts_values_that_mean_the_same() -> None:
    out = SCHEMA.coerce(
        request(
            n=[3.0, "4"],  # integral floats and integer text
            x=["3.5", 7],  # numeric text and integers
            flag=["true", 0],
            maybe=["FALSE", "1"],
            city=[5, "Oslo"],  # a number where text is expected
            when=["2024-05-01T14:00:00+02:00", pd.Timestamp("2024-05-02")],
        )
    )
    assert out["n"].tolist() == [3, 4]
    assert out["n"].dtype == np.int64
    assert out["x"].tolist() == [3.5, 7.0]
    assert out["flag"].tolist() == [True, False]
    assert out["maybe"].tolist() == [False, True]
    assert out["city"].tolist() == ["5", "Oslo"]
    # Aware datetimes become naive UTC.
    assert out["when"].tolist() == [pd.Timestamp("2024-05-01 12:00"), pd.Timestamp("2024-05-02")]


def test_unseen_categories_are_not_errors_and_keep_training_codes() -> None:
    frame = request(plan=["gold", "basic"], city=["Paris", "Oslo"])
    assert SCHEMA.check(frame) == []
    out = SCHEMA.coerce(frame)
    # Training categories keep their codes; unseen ones follow.
    assert out["plan"].cat.categories.tolist() == ["basic", "pro", "gold"]
    assert out["plan"].cat.codes.tolist() == [2, 0]
    assert out["city"].tolist() == ["Paris", "Oslo"]


def test_coerce_orders_columns_keeps_the_index_and_leaves_the_input_alone() -> None:
    frame = request().iloc[:, ::-1]
    frame.index = pd.Index([10, 20])
    before = frame.copy()
    out = SCHEMA.coerce(frame)
    assert out.columns.tolist() == SCHEMA.names()
    assert out.index.tolist() == [10, 20]
    out.loc[10, "x"] = -1.0
    out.loc[10, "n"] = -1
    pd.testing.assert_frame_equal(frame, before)


def test_every_problem_is_reported_at_once() -> None:
    frame = request(
        n=[1.5, "seven"],
        x=[np.nan, np.inf],
        flag=[True, None],
        plan=[["not", "a", "category"], "pro"],
    ).drop(columns=["city"])
    frame["extra"] = [0, 0]
    errors = SCHEMA.check(frame)
    assert errors == [
        FieldError(field="n", reason="expected integer, 2 values cannot be converted"),
        FieldError(field="x", reason="NaN not allowed (column had no missing values in training)"),
        FieldError(field="x", reason="infinite values not allowed"),
        FieldError(
            field="flag", reason="NaN not allowed (column had no missing values in training)"
        ),
        FieldError(field="city", reason="missing column"),
        FieldError(field="plan", reason="expected categorical, 1 value cannot be converted"),
        FieldError(field="extra", reason="unexpected column"),
    ]
    with pytest.raises(SchemaViolation) as caught:
        SCHEMA.coerce(frame)
    assert caught.value.status == 422
    assert isinstance(caught.value, InvalidInput)
    assert caught.value.details["errors"] == [error.model_dump() for error in errors]
    assert caught.value.message.startswith(
        "The input does not match the model's schema ('n': expected integer, 2 values cannot "
        "be converted; 'x': NaN not allowed"
    )
    assert caught.value.message.endswith(
        "'extra': unexpected column); send exactly the schema's columns, with values of its types."
    )


def test_reasons_never_echo_submitted_values() -> None:
    secret = "4111-1111-1111-1111"
    frame = request(n=[secret, 1], x=[f"{secret}.5", 1.0], flag=[secret, True])
    with pytest.raises(SchemaViolation) as caught:
        SCHEMA.coerce(frame)
    assert secret not in str(caught.value)
    assert secret not in repr(caught.value.to_dict())
    assert len(caught.value.details["errors"]) == 3


@pytest.mark.parametrize(
    ("column", "values", "reason"),
    [
        ("n", [np.inf, 1], "infinite values not allowed"),
        ("n", [2.0**63, 1], "expected integer, 1 value cannot be converted"),
        ("n", [True, 1], "expected integer, 1 value cannot be converted"),
        ("x", [True, 1.0], "expected float, 1 value cannot be converted"),
        ("x", ["-inf", 1.0], "infinite values not allowed"),
        ("x", ["nan", 1.0], "NaN not allowed (column had no missing values in training)"),
        ("x", [None, 1.0], "NaN not allowed (column had no missing values in training)"),
        ("x", ["1,5", 1.0], "expected float, 1 value cannot be converted"),
        ("y", [np.inf, 1.0], "infinite values not allowed"),
        ("flag", [2, True], "expected boolean, 1 value cannot be converted"),
        ("flag", ["yes", True], "expected boolean, 1 value cannot be converted"),
        ("when", [12345, None], "expected datetime, 1 value cannot be converted"),
        ("when", ["not a date", None], "expected datetime, 1 value cannot be converted"),
        ("city", [b"bytes", "Oslo"], "expected string, 1 value cannot be converted"),
    ],
)
def test_each_value_problem(column: str, values: list[object], reason: str) -> None:
    assert SCHEMA.check(request(**{column: values})) == [FieldError(field=column, reason=reason)]


def test_coercing_leaves_the_schema_equal_to_its_json_copy() -> None:
    copy = Schema.model_validate(SCHEMA.model_dump(mode="json"))
    SCHEMA.coerce(request())  # builds and keeps the target dtypes
    assert copy == SCHEMA


def test_frame_level_problems() -> None:
    empty = request().iloc[:0]
    assert SCHEMA.check(empty) == [FieldError(field="$", reason="no rows")]
    assert SCHEMA.check([1, 2]) == [  # type: ignore[arg-type]
        FieldError(field="$", reason="expected a DataFrame, got list")
    ]
    doubled = pd.concat([request(), request()[["x"]]], axis=1)
    assert SCHEMA.check(doubled) == [FieldError(field="x", reason="duplicate column")]
    numbered = request()
    numbered[7] = [1, 2]
    assert SCHEMA.check(numbered) == [FieldError(field="7", reason="unexpected column")]


def test_typed_columns_convert_without_parsing() -> None:
    schema = Schema(
        columns=[col("i", "integer"), col("f", "float"), col("b", "boolean"), col("s", "string")]
    )
    frame = pd.DataFrame(
        {
            "i": pd.array([1, 2], dtype="Int64"),
            "f": np.array([1, 2], dtype=np.int32),
            "b": np.array([1.0, 0.0]),
            "s": pd.Categorical(["u", "v"]),
        }
    )
    out = schema.coerce(frame)
    assert out.dtypes.tolist() == [np.dtype(np.int64), np.dtype(np.float64), np.dtype(bool), TEXT]
    assert out.to_dict("list") == {
        "i": [1, 2],
        "f": [1.0, 2.0],
        "b": [True, False],
        "s": ["u", "v"],
    }


# ---------------------------------------------------------------------------------------------
# The small-frame route (plain Python per value) and the vectorised route must agree.

TRICKY = {
    "n": [1, 2.0, "3", " 4 ", None, 2.5, "x", True, np.float32(6), 2**70, np.inf, "1e3"],
    "x": [1, 2.5, "3.25", None, np.nan, "nan", "inf", -np.inf, False, "1_000", [1], np.int8(3)],
    "flag": [True, "False", 0, 1.0, "1", " TRUE", None, 2, "no", np.bool_(False), 0.0, "0"],
    "city": ["a", 1, 1.0, True, None, np.float64(2.5), b"b", "ü", "", np.nan, 10**20, "a"],
    "when": [
        "2024-01-01", "2024-01-01T05:00+05:00", pd.Timestamp("2024-03-01", tz="UTC"), None,
        1, "bad", np.datetime64("2024-01-02T03:04:05.123456789"), pd.NaT, "2024-13-01",
        pd.Timestamp("2030-01-01"), "2024-01-01 12:00:00", np.nan,
    ],
}  # fmt: skip


@pytest.mark.parametrize("nullable", [False, True])
def test_small_and_large_frames_agree(nullable: bool) -> None:
    schema = Schema(
        columns=[
            col("n", "integer", nullable),
            col("x", "float", nullable),
            col("flag", "boolean", nullable),
            col("city", "string", nullable),
            col("when", "datetime", nullable),
        ]
    )
    small = pd.DataFrame({name: pd.Series(values, dtype=object) for name, values in TRICKY.items()})
    large = pd.concat([small] * 4, ignore_index=True)  # 48 rows: past the small-frame route
    errors_small, errors_large = schema.check(small), schema.check(large)
    assert [e.field for e in errors_small] == [e.field for e in errors_large]
    for a, b in zip(errors_small, errors_large, strict=True):
        if "cannot be converted" in a.reason:
            count_small = int(a.reason.split(", ")[1].split(" ")[0])
            count_large = int(b.reason.split(", ")[1].split(" ")[0])
            assert count_large == 4 * count_small
        else:
            assert a.reason == b.reason

    # Values that all pass, in mixed representations: both routes must convert them alike.
    valid = pd.DataFrame(
        {
            "n": [1, 2.0, "3", " 4 ", np.float32(6), "1e3"],
            "x": [1, 2.5, "3.25", "1_000", np.int8(3), "4"],
            "flag": [True, "False", 0, 1.0, " TRUE", np.bool_(False)],
            "city": ["a", 1, 1.0, True, np.float64(2.5), "ü"],
            "when": [
                "2024-01-01",
                "2024-01-01T05:00+05:00",
                pd.Timestamp("2024-03-01", tz="UTC"),
                np.datetime64("2024-01-02T03:04:05.123456789"),
                pd.Timestamp("2030-01-01"),
                "2024-01-01 12:00:00",
            ],
        },
        dtype=object,
    )
    if nullable:
        valid.loc[len(valid)] = [None, np.nan, pd.NA, None, pd.NaT]
    one = schema.coerce(valid)
    many = schema.coerce(pd.concat([valid] * 20, ignore_index=True))
    pd.testing.assert_frame_equal(many.iloc[: len(valid)], one)
    assert one["n"].tolist()[:6] == [1, 2, 3, 4, 6, 1000]
    assert one["x"].tolist()[:6] == [1.0, 2.5, 3.25, 1000.0, 3.0, 4.0]
    assert one["flag"].tolist()[:6] == [True, False, False, True, True, False]
    assert one["city"].tolist()[:6] == ["a", "1", "1.0", "True", "2.5", "ü"]
    assert one["when"].tolist()[:3] == [pd.Timestamp("2024-01-01")] * 2 + [
        pd.Timestamp("2024-03-01")
    ]


SOURCES = {
    "float64": np.array([1.0, 2.5, np.nan, np.inf, -np.inf, 2.0**63, -0.0, 0.0, 1.0]),
    "float32": np.array([1.0, 0.5, np.nan, 3.0], dtype=np.float32),
    "int64": np.array([0, 1, -3, 2**62], dtype=np.int64),
    "uint64": np.array([0, 1, 2**64 - 1], dtype=np.uint64),
    "Int64": pd.array([0, None, 7], dtype="Int64"),
    "UInt64": pd.array([1, None, 2**64 - 1], dtype="UInt64"),
    "Float64": pd.array([1.0, None, 0.25], dtype="Float64"),
    "bool": np.array([True, False, True]),
    "boolean": pd.array([True, None, False], dtype="boolean"),
    "string": pd.array(["1", None, "x", "2.0", "true"], dtype="string"),
    "category": pd.Categorical(["b", None, "a", "b"]),
    "int category": pd.Categorical([1, 0, None, 1]),
    "datetime": pd.to_datetime(pd.Series(["2024-01-01 10:00", None])).dt.as_unit("ns"),
    "datetime[s]": pd.Series(["2024-01-01", None], dtype="datetime64[s]"),
    "aware": pd.to_datetime(pd.Series(["2024-01-01T10:00:00+02:00", None])),
    "arrow int": pd.array([1, None, 3], dtype="int64[pyarrow]"),
    "arrow text": pd.Series(["a", None, "1"], dtype=pd.ArrowDtype(pa.large_string())),
    "arrow aware": pd.Series(
        [pd.Timestamp("2024-01-01", tz="UTC"), None],
        dtype=pd.ArrowDtype(pa.timestamp("us", tz="UTC")),
    ),
    "period": pd.period_range("2024-01", periods=3, freq="M"),
    "interval": pd.interval_range(0, 3),
    "timedelta": pd.to_timedelta(pd.Series([1, None, 3]), unit="s"),
    "sparse": pd.arrays.SparseArray([0, 0, 1.5]),
    "complex": np.array([1 + 1j, 2, 3]),
    "decimal": pd.Series([Decimal("1.5"), None, Decimal("2")], dtype=object),
    "dates": pd.Series([dt.date(2024, 1, 1), None, dt.date(2024, 1, 3)], dtype=object),
    "naive and aware": pd.Series(
        [pd.Timestamp("2024-01-01", tz="UTC"), pd.Timestamp("2024-01-01"), None], dtype=object
    ),
    "containers": pd.Series([[1], {"a": 1}, None], dtype=object),
    "object floats": pd.Series([1.5, None, 2.0, np.nan, np.inf, 0.0], dtype=object),
    "object integers": pd.Series([1, None, 2**62, np.int64(-4), 0], dtype=object),
    "object huge integers": pd.Series([1, 2**70, None], dtype=object),
    "object integers and floats": pd.Series([1, 2.5, 2**60 + 1, None, 1.0], dtype=object),
    "date categories": pd.Categorical([pd.Timestamp("2024-01-01"), None]),
}
KINDS = ["integer", "float", "boolean", "string", "categorical", "datetime"]


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("source", list(SOURCES))
def test_vectorised_routes_agree_with_the_per_value_rules(kind: str, source: str) -> None:
    # Also: whatever a column holds, check() answers with FieldErrors instead of raising.
    schema = Schema(columns=[col("v", kind, nullable=True)])
    small = pd.DataFrame({"v": SOURCES[source]})
    large = pd.concat([small] * 10, ignore_index=True)
    errors_small, errors_large = schema.check(small), schema.check(large)
    assert _scaled(errors_large, by=10) == _scaled(errors_small)
    if not errors_small:
        one = schema.coerce(small)
        many = schema.coerce(large)
        pd.testing.assert_frame_equal(many.iloc[: len(small)], one)


def _scaled(errors: list[FieldError], by: int = 1) -> list[tuple[str, int]]:
    """(reason without its count, count / by) for each error."""
    result = []
    for error in errors:
        words = error.reason.split(" ")
        if len(words) > 2 and words[2].isdigit():
            count = int(words[2]) // by
            result.append((" ".join(words[:2] + words[3:]).replace("values", "value"), count))
        else:
            result.append((error.reason, 0))
    return result


@pytest.mark.parametrize("rows", [1, 3, 40])
def test_typed_frames_of_any_size_agree(rows: int) -> None:
    rng = np.random.default_rng(7)
    train = pd.DataFrame(
        {
            "f": rng.normal(size=200),
            "i": rng.integers(-5, 5, size=200),
            "b": rng.integers(0, 2, size=200).astype(bool),
            "s": rng.choice(["p", "q", "r"], size=200),
            "c": pd.Categorical(rng.choice(["u", "v"], size=200)),
            "t": pd.date_range("2024-01-01", periods=200, freq="h"),
        }
    )
    schema = infer_schema(train)
    sample = train.sample(rows, random_state=1)
    out = schema.coerce(sample)
    pd.testing.assert_frame_equal(out, sample)


def test_json_requests_coerce_alike_row_by_row_and_in_bulk() -> None:
    train = pd.DataFrame(
        {
            "x": [0.5, 1.5, 2.5],
            "n": [1, 2, 3],
            "plan": pd.Categorical(["basic", "pro", "basic"]),
            "city": ["Oslo", "Lima", "Oslo"],
        }
    )
    schema = infer_schema(train)
    records = [
        {"x": 2, "n": 3, "plan": "pro", "city": "Oslo"},  # an int where a float is expected
        {"x": 0.25, "n": 4.0, "plan": "gold", "city": "Rome"},  # unseen category and city
        {"x": -1, "n": -7, "plan": "basic", "city": "Lima"},
    ] * 14
    bulk = schema.coerce(pd.DataFrame(records))
    for i in range(3):
        one = schema.coerce(pd.DataFrame(records[i : i + 1]))
        # Same values and dtypes; only the unseen categories appended may differ.
        assert one.to_dict("records") == bulk.iloc[i : i + 1].to_dict("records")
        assert one[["x", "n", "city"]].dtypes.equals(bulk[["x", "n", "city"]].dtypes)
        assert one["plan"].cat.categories.tolist()[:2] == ["basic", "pro"]
    assert bulk["x"].tolist()[:3] == [2.0, 0.25, -1.0]
    assert bulk["plan"].cat.codes.tolist()[:3] == [1, 2, 0]


# ---------------------------------------------------------------------------------------------


def twenty_column_training_frame(rows: int) -> pd.DataFrame:
    rng = np.random.default_rng(42)
    frame: dict[str, np.ndarray] = {f"num{i}": rng.normal(size=rows) for i in range(12)}
    frame.update({f"count{i}": rng.integers(0, 100, size=rows) for i in range(4)})
    frame.update({f"cat{i}": rng.choice(["a", "b", "c", "d"], size=rows) for i in range(4)})
    return pd.DataFrame(frame)


def test_one_row_coercion_is_fast() -> None:
    # A REST request: JSON records as a frame, categorical text as str/object, numbers typed.
    train = twenty_column_training_frame(1000)
    for i in range(2):
        train[f"cat{i}"] = train[f"cat{i}"].astype("category")
    schema = infer_schema(train)
    request = pd.DataFrame(train.iloc[:1].astype(object).to_dict("records"))
    schema.coerce(request)
    timings = []
    for _ in range(200):
        start = time.perf_counter()
        schema.coerce(request)
        timings.append(time.perf_counter() - start)
    # The target is < 200 us on a quiet 2-core machine; the bound leaves room for a busy CI.
    assert float(np.median(timings)) < 1e-3


def test_large_frames_are_coerced_vectorised() -> None:
    train = twenty_column_training_frame(200_000)
    schema = infer_schema(train)
    frame = train.astype({"num0": object, "count0": float})
    start = time.perf_counter()
    out = schema.coerce(frame)
    elapsed = time.perf_counter() - start
    pd.testing.assert_frame_equal(out, train)
    assert elapsed < 2.0
