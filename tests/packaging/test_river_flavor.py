"""The river flavor: a river estimator packaged behind the batch interface, loaded back."""

from __future__ import annotations

import io
import zipfile

import numpy as np
import pandas as pd
import pytest
from river import linear_model, preprocessing, tree

from shipyard.errors import InvalidInput
from shipyard.packaging import LoadedModel, open_archive, prepare_archive
from shipyard.packaging._flavors import flavor_for
from shipyard.store import sha256


def _data(n: int = 300) -> tuple[pd.DataFrame, pd.Series]:
    rng = np.random.default_rng(0)
    X = pd.DataFrame({"a": rng.normal(size=n), "plan": rng.choice(["basic", "pro"], n)})
    y = pd.Series(np.where(X["a"] > 0, "yes", "no"))
    return X, y


def _learned(model, X: pd.DataFrame, y) -> object:  # type: ignore[no-untyped-def]
    for x, target in zip(X.to_dict("records"), y, strict=True):
        model.learn_one({k: v for k, v in x.items() if v == v}, target)  # river: NaN left out
    return model


def _roundtrip(prepared) -> object:  # type: ignore[no-untyped-def]
    data = prepared.build(name="m", version=1, author="a", created_at=pd.Timestamp.now("UTC"))
    return LoadedModel(open_archive(data, expected_digest=sha256(data), label="m v1"))


def test_a_river_classifier_registers_and_loads_with_its_classes() -> None:
    X, y = _data()
    model = _learned(tree.HoeffdingTreeClassifier(), X, y)
    assert flavor_for(model).name == "river"
    prepared = prepare_archive(model, X_train=X, y_train=y, X_eval=X, y_eval=y)
    assert (prepared.flavor, prepared.task, prepared.classes) == (
        "river",
        "classification",
        ["no", "yes"],
    )
    assert prepared.onnx is not None and not prepared.onnx["converted"]
    assert "native runtime" in prepared.onnx["error"] and "river" in prepared.frameworks
    assert prepared.metrics["accuracy"] > 0.9
    loaded = _roundtrip(prepared)
    proba = loaded.predict_proba(X.head(5))
    assert proba.shape == (5, 2) and np.allclose(proba.sum(axis=1), 1)
    assert list(loaded.predict(X.head(5))) == [
        model.predict_one(x) for x in X.head(5).to_dict("records")
    ]


def test_a_river_regressor_ignores_missing_values_and_checks_its_labels() -> None:
    X, _ = _data()
    X = X[["a"]].assign(b=np.where(np.arange(len(X)) % 10 == 0, np.nan, 1.0))
    y = 3 * X["a"]
    model = _learned(preprocessing.StandardScaler() | linear_model.LinearRegression(), X, y)
    prepared = prepare_archive(model, X_train=X, y_train=y)
    assert prepared.task == "regression" and prepared.classes is None
    wrapper = _roundtrip(prepared).model
    assert np.isfinite(wrapper.predict(X.head(20))).all()
    wrapper.learn_one({"a": 1.0, "b": None}, "3.0")  # a number sent as text is a number
    with pytest.raises(InvalidInput, match="must be a finite number"):
        wrapper.learn_one({"a": 1.0}, "lots")


def test_a_river_classifier_needs_its_labels_and_keeps_its_classes() -> None:
    X, y = _data()
    model = _learned(tree.HoeffdingTreeClassifier(), X, y)
    with pytest.raises(InvalidInput, match="Pass y_train with a river classifier"):
        prepare_archive(model, X_train=X)
    wrapper = _roundtrip(prepare_archive(model, X_train=X, y_train=y)).model
    with pytest.raises(InvalidInput, match="not one of this model's classes"):
        wrapper.learn_one({"a": 1.0, "plan": "pro"}, "maybe")


def test_the_archive_holds_the_river_model_as_one_member() -> None:
    X, y = _data()
    prepared = prepare_archive(_learned(tree.HoeffdingTreeClassifier(), X, y), X_train=X, y_train=y)
    data = prepared.build(name="m", version=1, author="a", created_at=pd.Timestamp.now("UTC"))
    assert "model/river.joblib" in zipfile.ZipFile(io.BytesIO(data)).namelist()
