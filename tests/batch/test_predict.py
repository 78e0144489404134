"""The one-pass shortcut for HistGradientBoostingClassifier equals its two public methods."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder

from shipyard import Client
from shipyard.batch import _predict
from shipyard.batch._predict import new_id_array, new_ids, predict_with_proba

TrainingData = tuple[pd.DataFrame, pd.Series, pd.DataFrame, pd.Series]


@pytest.mark.parametrize("target", ["churn", "plan"])  # binary, then three classes
def test_one_pass_equals_predict_and_predict_proba(
    client_for: Callable[[str], Client], training_data: TrainingData, target: str
) -> None:
    X, y, X_eval, _ = training_data
    if target == "plan":
        X, y, X_eval = X.drop(columns="plan"), X["plan"], X_eval.drop(columns="plan")
    categorical = [c for c in X.columns if c == "plan"]
    model = Pipeline(
        [
            (
                "prep",
                ColumnTransformer([("cat", OneHotEncoder(), categorical)], remainder="passthrough"),
            ),
            ("clf", HistGradientBoostingClassifier(max_iter=20)),
        ]
    ).fit(X, y)
    alice = client_for("alice")
    alice.register(model, name="hgb", X_train=X, y_train=y, onnx=False)
    loaded = alice.load("hgb:1")
    X_in = loaded.schema.coerce(X_eval)

    prediction, proba = predict_with_proba(loaded, X_in)

    assert prediction.tolist() == loaded.predict(X_eval).tolist()
    expected = loaded.predict_proba(X_eval)
    assert proba is not None and expected is not None
    np.testing.assert_array_equal(proba, expected)


def test_ids_are_unique_uuid4_hex() -> None:
    import uuid

    ids = new_ids(1000)
    assert len(set(ids)) == 1000
    assert all(uuid.UUID(hex=i).version == 4 and uuid.UUID(hex=i).hex == i for i in ids)


@pytest.mark.parametrize("per_array", [None, 7])  # one array, then 32-bit offsets split in pieces
def test_arrow_ids_are_unique_uuid4_hex_strings(
    per_array: int | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    import uuid

    if per_array is not None:
        monkeypatch.setattr(_predict, "_MAX_IDS_PER_ARRAY", per_array)
    ids = new_id_array(1000)
    assert ids.type == pa.string() and len(ids) == 1000
    if isinstance(ids, pa.ChunkedArray):
        assert ids.num_chunks == -(-1000 // 7)
    else:
        ids.validate(full=True)
    values = ids.to_pylist()
    assert len(set(values)) == 1000
    assert all(uuid.UUID(hex=i).version == 4 and uuid.UUID(hex=i).hex == i for i in values)
