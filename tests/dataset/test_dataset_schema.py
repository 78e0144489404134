"""Schema inference from training frames, and the output schema of a model."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from shipyard.dataset import ColumnSchema, Schema, infer_output_schema, infer_schema
from shipyard.errors import InvalidInput


def training_frame() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "age": np.array([31, 45, 27, 60], dtype=np.int64),
            "visits": pd.array([1, None, 3, 4], dtype="Int64"),
            "income": [1200.5, np.nan, 3400.0, -5.25],
            "member": [True, False, True, True],
            "churned": pd.array([True, None, False, False], dtype="boolean"),
            "city": ["Oslo", "Lima", None, "Oslo"],
            "plan": pd.Categorical(
                ["pro", "basic", "pro", "pro"], categories=["basic", "pro", "max"]
            ),
            "joined": pd.to_datetime(
                pd.Series(["2024-01-01 00:00", "2024-02-03 04:05", "2023-12-31 23:59", None])
            ),
            "codes": pd.Series([7, None, 9, 11], dtype=object),
        }
    )


def test_infer_schema_describes_every_column_type() -> None:
    schema = infer_schema(training_frame())

    assert schema.names() == [
        "age", "visits", "income", "member", "churned", "city", "plan", "joined", "codes"
    ]  # fmt: skip
    by_name = {column.name: column for column in schema.columns}
    assert by_name["age"] == ColumnSchema(
        name="age", dtype="integer", nullable=False, minimum=27.0, maximum=60.0
    )
    assert by_name["visits"] == ColumnSchema(
        name="visits", dtype="integer", nullable=True, minimum=1.0, maximum=4.0
    )
    assert by_name["income"] == ColumnSchema(
        name="income", dtype="float", nullable=True, minimum=-5.25, maximum=3400.0
    )
    assert by_name["member"] == ColumnSchema(
        name="member", dtype="boolean", nullable=False, categories=["False", "True"]
    )
    assert by_name["churned"] == ColumnSchema(
        name="churned", dtype="boolean", nullable=True, categories=["False", "True"]
    )
    assert by_name["city"] == ColumnSchema(
        name="city", dtype="string", nullable=True, categories=["Lima", "Oslo"]
    )
    # A categorical keeps its declared categories, unobserved ones too, in dtype order.
    assert by_name["plan"] == ColumnSchema(
        name="plan", dtype="categorical", nullable=False, categories=["basic", "pro", "max"]
    )
    assert by_name["joined"] == ColumnSchema(name="joined", dtype="datetime", nullable=True)
    # An object column of integers is an integer column.
    assert by_name["codes"] == ColumnSchema(
        name="codes", dtype="integer", nullable=True, minimum=7.0, maximum=11.0
    )


def test_infer_schema_ignores_infinities_in_the_range() -> None:
    column = infer_schema(pd.DataFrame({"x": [np.inf, 2.0, -np.inf, -1.0]})).columns[0]
    assert (column.minimum, column.maximum, column.nullable) == (-1.0, 2.0, False)


def test_infer_schema_lists_up_to_200_categories() -> None:
    values = [f"v{i:03d}" for i in range(200)]
    at_limit = infer_schema(pd.DataFrame({"s": values})).columns[0]
    over = infer_schema(pd.DataFrame({"s": [*values, "v999"]})).columns[0]
    assert at_limit.categories == sorted(values)
    assert over.categories is None
    assert over.dtype == "string"


def test_infer_schema_of_object_text_and_str_dtype_agree() -> None:
    values = ["b", "a", None]
    as_object = infer_schema(pd.DataFrame({"s": pd.Series(values, dtype=object)}))
    as_str = infer_schema(pd.DataFrame({"s": pd.Series(values, dtype="string")}))
    assert as_object == as_str
    assert as_object.columns[0].categories == ["a", "b"]


def test_infer_schema_of_tz_aware_and_object_datetimes() -> None:
    frame = pd.DataFrame(
        {
            "aware": pd.to_datetime(["2024-01-01T10:00:00+02:00"]),
            "objects": pd.Series([dt.datetime(2024, 1, 1)], dtype=object),
        }
    )
    assert [c.dtype for c in infer_schema(frame).columns] == ["datetime", "datetime"]


@pytest.mark.parametrize(
    ("frame", "message"),
    [
        (
            pd.DataFrame({"x": pd.Series([], dtype=float)}),
            "infer_schema needs at least one row and one column. Got a frame of shape (0, 1) "
            "instead.",
        ),
        (
            pd.DataFrame(index=range(3)),
            "infer_schema needs at least one row and one column. Got a frame of shape (3, 0) "
            "instead.",
        ),
        (
            pd.DataFrame([[1, 2]], columns=["a", "a"]),
            "infer_schema needs unique column names. Got ['a'] more than once; rename or drop "
            "them.",
        ),
        (
            pd.DataFrame([[1, 2]]),
            "infer_schema needs string column names. Got [0, 1]; rename them, e.g. df.columns = "
            "df.columns.astype(str).",
        ),
        (
            pd.DataFrame({"z": [1 + 2j]}),
            "Column 'z' has dtype complex128, which Shipyard cannot describe; convert it to "
            "numbers, text, booleans or datetimes first.",
        ),
        (
            pd.DataFrame({"b": pd.Series([b"raw"], dtype=object)}),
            "Column 'b' holds bytes values, which Shipyard cannot describe; convert them to "
            "numbers, text, booleans or datetimes first.",
        ),
        (
            pd.DataFrame({"l": pd.Series([[1], "a"], dtype=object)}),
            "Column 'l' looks like string but 1 value cannot be read as string; clean or "
            "convert the column first.",
        ),
    ],
)
def test_infer_schema_refuses_what_it_cannot_describe(frame: pd.DataFrame, message: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        infer_schema(frame)
    assert caught.value.message == message
    assert caught.value.status == 400


def test_infer_schema_refuses_non_frames() -> None:
    with pytest.raises(InvalidInput) as caught:
        infer_schema([[1, 2]])  # type: ignore[arg-type]
    assert caught.value.message == "infer_schema needs a pandas DataFrame. Got list instead."


def test_training_frame_passes_its_own_schema() -> None:
    frame = training_frame()
    schema = infer_schema(frame)
    assert schema.check(frame) == []
    coerced = schema.coerce(frame)
    assert coerced.columns.tolist() == frame.columns.tolist()
    pd.testing.assert_frame_equal(
        coerced.drop(columns=["city", "codes", "joined"]),
        frame.drop(columns=["city", "codes", "joined"]),
    )
    assert coerced["codes"].dtype == pd.Int64Dtype()
    assert coerced["codes"].tolist() == [7, pd.NA, 9, 11]


def test_schema_json_round_trip_is_lossless() -> None:
    schema = infer_schema(training_frame())
    dumped = schema.model_dump(mode="json")
    assert Schema.model_validate(dumped) == schema
    assert Schema.model_validate_json(schema.model_dump_json()) == schema
    assert dumped["columns"][2] == {
        "name": "income",
        "dtype": "float",
        "nullable": True,
        "categories": None,
        "minimum": -5.25,
        "maximum": 3400.0,
    }


# ---------------------------------------------------------------------------------------------


def test_output_schema_of_a_text_classifier() -> None:
    y = pd.Series(["yes", "no", "yes", None], name="churn")
    assert infer_output_schema(y, task="classification", classes=None) == {
        "task": "classification",
        "name": "churn",
        "dtype": "string",
        "classes": ["no", "yes"],
        "probability_columns": ["proba_no", "proba_yes"],
    }


def test_output_schema_keeps_the_order_of_given_classes_as_plain_values() -> None:
    classes = np.array([2, 0, 1], dtype=np.int64)  # e.g. model.classes_
    schema = infer_output_schema(np.array([0, 1, 2, 2]), task="classification", classes=classes)
    assert schema["classes"] == [2, 0, 1]
    assert all(type(value) is int for value in schema["classes"])
    assert schema["dtype"] == "integer"
    assert schema["probability_columns"] == ["proba_2", "proba_0", "proba_1"]
    assert schema["name"] is None


def test_output_schema_of_a_boolean_classifier_and_a_regressor() -> None:
    boolean = infer_output_schema([True, False], task="classification", classes=None)
    assert (boolean["dtype"], boolean["classes"]) == ("boolean", [False, True])
    regression = infer_output_schema(
        pd.Series([1, 2], name="price"), task="regression", classes=None
    )
    assert regression == {
        "task": "regression",
        "name": "price",
        "dtype": "float",
        "classes": None,
        "probability_columns": [],
    }


@pytest.mark.parametrize(
    ("y", "task", "classes", "message"),
    [
        (
            [1, 2],
            "ranking",
            None,
            "The 'task' parameter of infer_output_schema must be a str among "
            "{'classification', 'regression'}. Got 'ranking' instead.",
        ),
        (
            [1.0, 2.0],
            "regression",
            [1, 2],
            "The 'classes' parameter of infer_output_schema must be None for regression. "
            "Got 2 classes instead.",
        ),
        (
            ["a", "a"],
            "classification",
            None,
            "A classifier needs at least two classes. Got 1 instead; check y or pass classes= "
            "(e.g. model.classes_).",
        ),
        (
            [],
            "classification",
            None,
            "infer_output_schema needs at least one label. Got an empty y instead.",
        ),
        (
            [1, "1"],
            "classification",
            [1, "1"],
            "Classes must be distinct once written as text (they name probability columns). "
            "Got [1, '1'] instead.",
        ),
    ],
)
def test_output_schema_refuses_bad_arguments(
    y: list[object], task: str, classes: list[object] | None, message: str
) -> None:
    with pytest.raises(InvalidInput) as caught:
        infer_output_schema(y, task=task, classes=classes)
    assert caught.value.message == message
