"""A real model through both schema paths: the typed fast path scores as the general one.

The model is the kind real data gives: a numeric column with missing values in training, an
integer column, a 50-level text column (``state``), a pandas categorical (``grade``), scaled,
one-hot encoded (unseen levels ignored) and fed to a HistGradientBoosting classifier, which
handles the missing values itself. Its ONNX export takes double inputs, NaN included.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest

from gates_off import NO_GATES
from serving.conftest import http
from shipyard.errors import SchemaViolation
from shipyard.packaging import PreparedArchive, prepare_archive
from shipyard.registry import Registry
from shipyard.serving import create_app
from shipyard.serving._inputs import rows_from_records
from shipyard.serving._runtime import ServedModel, combine
from shipyard.serving._typed import Typed
from shipyard.settings import ServeSettings
from shipyard.store import Store

STATES = [f"S{k:02d}" for k in range(50)]


def _loan_data(n: int, seed: int) -> tuple[pd.DataFrame, pd.Series]:
    rng = np.random.default_rng(seed)
    X = pd.DataFrame(
        {
            "amount": rng.normal(10_000, 3_000, n),
            "income": rng.normal(50_000, 12_000, n),
            "age": rng.integers(18, 80, n),
            "state": pd.Series(rng.choice(STATES, n), dtype=object),
            "grade": pd.Categorical(rng.choice(list("ABCD"), n)),
            "channel": pd.Series(rng.choice(["web", "branch"], n), dtype=object),
        }
    )
    X.loc[rng.random(n) < 0.05, "income"] = np.nan
    signal = X["amount"] / 10_000 - np.nan_to_num(X["income"].to_numpy()) / 60_000
    signal += (X["grade"] == "A").to_numpy() + X["state"].isin(STATES[:5]).to_numpy()
    y = pd.Series((signal + rng.normal(0, 0.5, n) > 0.5).astype(int), name="defaulted")
    return X, y


@pytest.fixture(scope="module")
def loan_archive() -> PreparedArchive:
    from sklearn.compose import ColumnTransformer
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    X, y = _loan_data(1_200, seed=3)
    pre = ColumnTransformer(
        [
            ("num", StandardScaler(), ["amount", "income", "age"]),
            (
                "cat",
                OneHotEncoder(handle_unknown="ignore", sparse_output=False),
                ["state", "grade", "channel"],
            ),
        ]
    )
    model = Pipeline([("pre", pre), ("clf", HistGradientBoostingClassifier(max_iter=15))])
    model.fit(X.iloc[:900], y.iloc[:900])
    return prepare_archive(
        model, X_train=X.iloc[:900], y_train=y.iloc[:900], X_eval=X.iloc[900:], y_eval=y.iloc[900:]
    )


@pytest.fixture
def loan(store: Store, loan_archive: PreparedArchive) -> Registry:
    registry = Registry(store, NO_GATES)
    registry.register(loan_archive, name="loan", actor="alice")
    registry.promote("loan", 1, actor="alice", to="fast")
    return registry


def _requests() -> list[list[dict[str, Any]]]:
    X, _ = _loan_data(60, seed=11)
    records: list[dict[str, Any]] = []
    for i, row in enumerate(X.astype(object).to_dict("records")):
        record = {
            "amount": float(row["amount"]),
            "income": None if pd.isna(row["income"]) else float(row["income"]),
            "age": int(row["age"]),
            "state": str(row["state"]),
            "grade": str(row["grade"]),
            "channel": str(row["channel"]),
        }
        if i % 4 == 0:
            record["income"] = None  # missing, as training had
        if i % 5 == 0:
            record["state"] = "ZZ"  # a level training never saw
        if i % 7 == 0:
            record["grade"] = "Z"
        if i % 3 == 0:
            record["amount"] = int(record["amount"])  # a whole number for a float column
        if i % 6 == 0:
            record = dict(reversed(list(record.items())))  # another column order
        records.append(record)
    return [records[:1], records[4:5], records[5:6], records[1:3], records]


def _decoded(records: list[dict[str, Any]]) -> pd.DataFrame:
    """The frame the binary and gRPC decoders build for these rows."""
    income = [np.nan if r["income"] is None else r["income"] for r in records]
    texts = {c: np.array([r[c] for r in records], dtype=object) for c in ("state", "grade")}
    return pd.DataFrame(
        {
            "channel": np.array([r["channel"] for r in records], dtype=object),
            "amount": np.array([r["amount"] for r in records], dtype=np.float64),
            "income": np.array(income, dtype=np.float64),
            "age": np.array([r["age"] for r in records], dtype=np.int64),
            **texts,
        }
    )


@pytest.mark.parametrize("runtime", ["onnx", "native"])
def test_typed_and_general_paths_score_identically(loan: Registry, runtime: str) -> None:
    loaded = loan.load("loan", 1)
    assert loaded.manifest.onnx is not None and loaded.manifest.onnx["precision"] == "double"
    schema = {column.name: column for column in loaded.schema.columns}
    assert schema["income"].nullable and schema["grade"].dtype == "categorical"
    served = ServedModel.build(loaded, ServeSettings(runtime=runtime))  # type: ignore[arg-type]
    assert served.runtime == runtime
    for records in _requests():
        rows = rows_from_records(records)
        for raw in (rows, _decoded(records)):
            fast = served.coerce(raw)
            assert isinstance(fast, Typed)
            general = served.schema.coerce(rows.frame())
            pd.testing.assert_frame_equal(fast.frame(), general, check_exact=True)
            if served.onnx is not None:
                expected_feed = served.onnx.make_feed(general)
                feed = served.feed(fast)
                assert feed.keys() == expected_feed.keys()
                for name, array in feed.items():
                    assert array.dtype == expected_feed[name].dtype
                    assert array.shape == expected_feed[name].shape
                    np.testing.assert_array_equal(array, expected_feed[name])
            labels, proba = served.score_now(fast)
            want_labels, want_proba = served.score_now(general)
            np.testing.assert_array_equal(labels, want_labels)
            np.testing.assert_array_equal(proba, want_proba)


def test_the_onnx_feed_carries_missing_values_and_unseen_levels(loan: Registry) -> None:
    served = ServedModel.build(loan.load("loan", 1), ServeSettings(runtime="onnx"))
    record = {"amount": 9000.0, "income": None, "age": 40, "state": "ZZ", "grade": "Z"}
    typed = served.coerce(rows_from_records([{**record, "channel": "web"}]))
    assert isinstance(typed, Typed)
    feed = served.feed(typed)
    assert np.isnan(feed["income"][0, 0]) and feed["age"].dtype == np.float64
    assert feed["state"][0, 0] == "ZZ" and feed["grade"][0, 0] == "Z"
    native = ServedModel.build(loan.load("loan", 1), ServeSettings(runtime="native"))
    onnx_proba = served.score_now(typed)[1]
    native_proba = native.score_now(typed)[1]
    assert onnx_proba is not None and native_proba is not None
    np.testing.assert_allclose(onnx_proba, native_proba, atol=1e-6)


@pytest.mark.anyio
async def test_batched_typed_requests_score_as_one_frame(loan: Registry, store: Store) -> None:
    served = ServedModel.build(loan.load("loan", 1), ServeSettings(runtime="native"))
    records = _requests()[-1]
    parts = [served.coerce(rows_from_records([record])) for record in records]
    parts += [served.coerce(_decoded(records[:3]))]
    batch = combine(parts)
    assert isinstance(batch, Typed)
    general = served.schema.coerce(rows_from_records(records + records[:3]).frame())
    np.testing.assert_array_equal(served.score_now(batch)[1], served.score_now(general)[1])


BAD_RECORDS = [
    [{"amount": "lots", "income": 1.0, "age": 30, "state": "S01", "grade": "A", "channel": "web"}],
    [{"amount": None, "income": 1.0, "age": 30, "state": "S01", "grade": "A", "channel": "web"}],
    [{"amount": 1.0, "income": 1.0, "age": 30.5, "state": "S01", "grade": "A", "channel": "web"}],
    [{"amount": 1.0, "income": 1.0, "age": 30, "state": None, "grade": "A", "channel": "web"}],
    [{"amount": 1.0, "income": 1.0, "age": 30, "state": "S01", "grade": [3], "channel": "web"}],
    [{"amount": 1.0, "age": 30, "state": "S01", "grade": "A", "channel": "web", "x": 1}],
]


@pytest.mark.anyio
@pytest.mark.parametrize("runtime", ["onnx", "native"])
async def test_refusals_are_those_of_the_general_path(
    store: Store, loan: Registry, runtime: str
) -> None:
    schema = loan.load("loan", 1).schema
    settings = ServeSettings(auth=False, runtime=runtime, alias="fast")  # type: ignore[arg-type]
    async with http(create_app(store, settings=settings)) as client:
        for records in BAD_RECORDS:
            with pytest.raises(SchemaViolation) as expected:
                schema.coerce(rows_from_records(records).frame())
            response = await client.post("/models/loan/predict", json={"records": records})
            assert response.status_code == 422
            assert response.json()["error"] == expected.value.message
            assert "lots" not in response.text  # never quotes a submitted value
        good = _requests()[-1]
        response = await client.post("/models/loan/predict", json={"records": good})
        assert response.status_code == 200
        assert len(response.json()["predictions"]) == len(good)


@pytest.mark.anyio
async def test_rows_without_columns_are_an_empty_batch(store: Store, loan: Registry) -> None:
    settings = ServeSettings(auth=False, alias="fast")
    async with http(create_app(store, settings=settings)) as client:
        for body in ({"records": [{}]}, {"columns": [], "data": [[]]}):
            response = await client.post("/models/loan/predict", json=body)
            assert response.status_code == 422
            assert "The request has no rows; send at least one." in response.text


@pytest.mark.anyio
async def test_v2_json_takes_the_typed_path_and_answers_as_records_do(
    store: Store, loan: Registry
) -> None:
    from shipyard.serving._v2 import InferRequest, InferTensor, request_rows

    served = ServedModel.build(loan.load("loan", 1), ServeSettings(runtime="onnx"))
    records = _requests()[-1][:6]
    kinds = {"amount": "FP64", "income": "FP64", "age": "INT64"}
    names = served.schema.names()
    inputs = [
        {
            "name": name,
            "datatype": kinds.get(name, "BYTES"),
            "shape": [len(records), 1],
            "data": [record[name] for record in records],
        }
        for name in names
    ]
    tensors = [InferTensor(i["name"], i["datatype"], i["shape"], i["data"]) for i in inputs]
    rows = request_rows(InferRequest(tensors), names)
    assert isinstance(served.coerce(rows), Typed)
    settings = ServeSettings(auth=False, runtime="onnx", alias="fast")
    async with http(create_app(store, settings=settings)) as client:
        v2 = await client.post("/v2/models/loan/infer", json={"inputs": inputs})
        by_records = await client.post("/models/loan/predict", json={"records": records})
    assert v2.status_code == 200 and by_records.status_code == 200
    outputs = {output["name"]: output for output in v2.json()["outputs"]}
    probabilities = np.asarray(by_records.json()["probabilities"]).reshape(-1).tolist()
    assert outputs["predict_proba"]["data"] == probabilities
