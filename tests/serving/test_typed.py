"""The schema check's fast path (``_typed``) gives what the general path gives, or steps aside.

Plain JSON rows are typed straight into numpy columns; anything else takes ``Schema.coerce``.
Both must give identical frames, ONNX feeds, predictions, and error answers.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest

from serving.conftest import http
from shipyard.dataset import ColumnSchema, Schema
from shipyard.errors import SchemaViolation
from shipyard.registry import Registry
from shipyard.serving import create_app
from shipyard.serving._inputs import Rows, rows_from_records, rows_from_split
from shipyard.serving._runtime import ServedModel
from shipyard.serving._typed import Typed, TypedSchema
from shipyard.settings import ServeSettings
from shipyard.store import Store

SCHEMA = Schema(
    columns=[
        ColumnSchema(name="x", dtype="float", nullable=False),
        ColumnSchema(name="n", dtype="integer", nullable=False),
        ColumnSchema(name="ok", dtype="boolean", nullable=False, categories=["False", "True"]),
        ColumnSchema(name="city", dtype="string", nullable=False, categories=["Oslo", "Rome"]),
    ]
)


def _general(rows: Rows) -> pd.DataFrame:
    return SCHEMA.coerce(rows.frame())


@pytest.mark.parametrize(
    "records",
    [
        [{"x": 1.5, "n": 3, "ok": True, "city": "Oslo"}],
        [{"x": 2, "n": -(2**63), "ok": False, "city": "unseen city"}],  # int in a float column
        [
            {"x": 1.5, "n": 2**63 - 1, "ok": True, "city": ""},
            {"x": 7, "n": 0, "ok": False, "city": "Rome"},
        ],
        [{"city": "Rome", "ok": True, "n": 1, "x": 0.1}],  # columns in another order
        [{"x": 1e308, "n": 5, "ok": True, "city": "Oslo"}] * 40,
    ],
)
def test_fast_path_frame_equals_schema_coerce(records: list[dict[str, Any]]) -> None:
    rows = rows_from_records(records)
    typed = TypedSchema(SCHEMA).convert(rows)
    assert typed is not None
    pd.testing.assert_frame_equal(typed.frame(), _general(rows), check_exact=True)


def test_split_rows_take_the_fast_path_too() -> None:
    rows = rows_from_split(["n", "x", "ok", "city"], [[1, 2.5, True, "Oslo"], [2, 3, False, "x"]])
    typed = TypedSchema(SCHEMA).convert(rows)
    assert typed is not None
    pd.testing.assert_frame_equal(typed.frame(), _general(rows), check_exact=True)


@pytest.mark.parametrize(
    "change",
    [
        {"x": None},  # missing value
        {"x": "1.5"},  # text for a number (the general path parses it)
        {"x": True},  # a boolean is not a number
        {"n": 3.0},  # a float for an integer (the general path accepts whole ones)
        {"n": 2**63},  # beyond int64
        {"x": 2**70},  # beyond int64, in a float column
        {"ok": 1},
        {"ok": "true"},
        {"city": 5},
        {"city": None},
        {"extra": 1},
    ],
)
def test_anything_unusual_is_left_to_the_general_path(change: dict[str, Any]) -> None:
    record = {"x": 1.5, "n": 3, "ok": True, "city": "Oslo", **change}
    assert TypedSchema(SCHEMA).convert(rows_from_records([record])) is None
    missing = {k: v for k, v in record.items() if k != "x"}
    assert TypedSchema(SCHEMA).convert(rows_from_records([missing])) is None


def test_schemas_with_nullable_or_categorical_columns_do_not_use_it() -> None:
    nullable = Schema(columns=[ColumnSchema(name="x", dtype="float", nullable=True)])
    categorical = Schema(
        columns=[ColumnSchema(name="c", dtype="categorical", nullable=False, categories=["a"])]
    )
    assert not TypedSchema(nullable).usable
    assert not TypedSchema(categorical).usable
    assert TypedSchema(nullable).convert(rows_from_records([{"x": 1.0}])) is None


def test_batches_of_typed_rows_concatenate_in_order() -> None:
    schema = TypedSchema(SCHEMA)
    parts = [
        schema.convert(rows_from_records([{"x": float(i), "n": i, "ok": True, "city": str(i)}]))
        for i in range(3)
    ]
    assert all(isinstance(p, Typed) for p in parts)
    joined = Typed.concat([p for p in parts if p is not None])
    assert joined.frame()["n"].tolist() == [0, 1, 2]
    assert joined.frame()["city"].tolist() == ["0", "1", "2"]


# -- through a served model ------------------------------------------------------------------


@pytest.fixture
def eval_records(training_data) -> list[dict[str, Any]]:  # type: ignore[no-untyped-def]
    rows = training_data[2].reset_index(drop=True).head(60)
    records: list[dict[str, Any]] = rows.to_dict("records")
    for i, record in enumerate(records):
        record["age"] = int(record["age"])
        if i % 3 == 0:
            record["income"] = int(record["income"])  # whole numbers for a float column
    return records


@pytest.mark.parametrize("runtime", ["onnx", "native"])
def test_fast_and_general_paths_score_identically(
    store: Store, churn: Registry, eval_records: list[dict[str, Any]], runtime: str
) -> None:
    served = ServedModel.build(churn.load("churn", 1), ServeSettings(runtime=runtime))  # type: ignore[arg-type]
    assert served.runtime == runtime
    for records in (eval_records[:1], eval_records[1:2], eval_records):
        rows = rows_from_records(records)
        fast = served.coerce(rows)
        assert isinstance(fast, Typed)
        general = served.schema.coerce(rows.frame())
        if served.onnx is not None:
            expected_feed = served.onnx.make_feed(general)
            feed = served.feed(fast)
            assert feed.keys() == expected_feed.keys()
            for name, array in feed.items():
                assert array.dtype == expected_feed[name].dtype
                np.testing.assert_array_equal(array, expected_feed[name])
        labels, proba = served.score_now(fast)
        want_labels, want_proba = served.score_now(general)
        np.testing.assert_array_equal(labels, want_labels)
        assert proba is not None and want_proba is not None
        np.testing.assert_array_equal(proba, want_proba)


BAD_RECORDS = [
    [{"age": "forty", "income": 1.0, "tenure": 2.0, "plan": "pro"}],
    [{"age": 40, "income": None, "tenure": 2.0, "plan": "pro"}],
    [{"age": 40.5, "income": 1.0, "tenure": True, "plan": "pro"}],
    [{"age": 40, "income": 1.0, "plan": "pro", "colour": "red"}],
    [{"age": 40, "income": 1.0, "tenure": 2.0, "plan": "pro"}, {"age": 2**64, "plan": 3}],
]


@pytest.mark.anyio
@pytest.mark.parametrize("runtime", ["onnx", "native"])
async def test_refusals_are_those_of_the_general_path(
    store: Store, churn: Registry, runtime: str
) -> None:
    schema = churn.load("churn", 1).schema
    settings = ServeSettings(auth=False, runtime=runtime)  # type: ignore[arg-type]
    async with http(create_app(store, settings=settings)) as client:
        for records in BAD_RECORDS:
            with pytest.raises(SchemaViolation) as expected:
                schema.coerce(rows_from_records(records).frame())
            response = await client.post("/models/churn/predict", json={"records": records})
            assert response.status_code == 422
            assert response.json() == expected.value.to_dict()
            assert "forty" not in response.text  # never quotes a submitted value


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.mark.anyio
async def test_rows_without_columns_are_an_empty_batch(store: Store, churn: Registry) -> None:
    async with http(create_app(store, settings=ServeSettings(auth=False))) as client:
        for body in ({"records": [{}]}, {"columns": [], "data": [[]]}):
            response = await client.post("/models/churn/predict", json=body)
            assert response.status_code == 422
            assert response.json()["error"] == "The request has no rows; send at least one."
