"""Archives: members, manifest, checksums, flavors, bad input, no orphans on failure."""

from __future__ import annotations

import io
import json
import zipfile
from collections.abc import Callable

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LinearRegression, LogisticRegression

from shipyard import Client
from shipyard.errors import InvalidInput
from shipyard.packaging import EVAL_TARGET, FLAVORS, flavor_for, prepare_archive
from shipyard.store import Store, sha256


@pytest.fixture
def store(store_everywhere: Store) -> Store:
    """These tests run with the artifacts on a local folder, SeaweedFS and moto."""
    return store_everywhere


def _zip_members(store: Store, key: str) -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(store.artifacts.get(key))) as zf:
        return {n: zf.read(n) for n in zf.namelist()}


def test_archive_keeps_eval_rows_and_outputs(
    client_for: Callable[[str], Client], fitted_pipeline, training_data
) -> None:  # type: ignore[no-untyped-def]
    alice = client_for("alice")
    X, y, Xe, ye = training_data
    mv = alice.register(fitted_pipeline, name="churn", X_train=X, y_train=y, X_eval=Xe, y_eval=ye)
    archive = alice.registry.open_archive("churn", mv.version)
    rows, outputs = archive.eval_rows(), archive.eval_outputs()
    assert rows is not None and outputs is not None
    assert list(rows.columns) == [*Xe.columns, EVAL_TARGET]
    assert rows[EVAL_TARGET].tolist() == ye.tolist()
    assert outputs["prediction"].tolist() == fitted_pipeline.predict(Xe).tolist()
    proba = fitted_pipeline.predict_proba(Xe)
    assert outputs["proba_churn"].to_numpy() == pytest.approx(proba[:, 0])
    # without eval rows there are none
    bare = alice.register(fitted_pipeline, name="bare", X_train=X, y_train=y)
    assert alice.registry.open_archive("bare", bare.version).eval_rows() is None
    # the training-data checks are kept when y_train is given, and only then
    checks = archive.data_checks()
    assert checks is not None and checks["n_rows"] == len(X) and set(checks["leakage"]) == set(X)
    unlabelled = alice.register(fitted_pipeline, name="nolabels", X_train=X)
    assert alice.registry.open_archive("nolabels", unlabelled.version).data_checks() is None


def test_archive_holds_everything(
    client_for: Callable[[str], Client], store: Store, fitted_pipeline, training_data
) -> None:  # type: ignore[no-untyped-def]
    alice = client_for("alice")
    X, y, Xe, ye = training_data
    mv = alice.register(fitted_pipeline, name="churn", X_train=X, y_train=y, X_eval=Xe, y_eval=ye)
    members = _zip_members(store, mv.archive_key)
    assert set(members) == {
        "manifest.json",
        "model/model.joblib",
        "model.onnx",
        "reference_profile.json",
        "requirements.lock",
        "runtime.lock",
        "eval/rows.parquet",
        "eval/outputs.parquet",
        "data_checks.json",
    }
    manifest = json.loads(members["manifest.json"])
    assert manifest["name"] == "churn" and manifest["version"] == 1
    assert manifest["author"] == "alice" and manifest["flavor"] == "sklearn"
    assert manifest["task"] == "classification" and manifest["classes"] == ["churn", "stay"]
    assert "scikit-learn" in manifest["frameworks"]
    for path, data in members.items():
        if path != "manifest.json":
            assert manifest["members"][path] == sha256(data)
    assert sha256(store.artifacts.get(mv.archive_key)) == mv.digest
    schema = {c["name"]: c for c in manifest["input_schema"]["columns"]}
    assert list(schema) == ["age", "income", "tenure", "plan"]
    assert schema["age"]["dtype"] == "integer" and schema["plan"]["dtype"] in (
        "string",
        "categorical",
    )
    assert schema["age"]["minimum"] == X["age"].min() and schema["age"]["maximum"] == X["age"].max()
    assert sorted(schema["plan"]["categories"]) == ["basic", "plus", "pro"]
    expected_acc = float((fitted_pipeline.predict(Xe) == ye.to_numpy()).mean())
    assert manifest["metrics"]["accuracy"] == pytest.approx(expected_acc)
    assert 0.5 < manifest["metrics"]["roc_auc"] <= 1
    onnx = manifest["onnx"]
    assert onnx["error"] is None and onnx["max_abs_diff"] < 1e-6 and onnx["n_eval_rows"] == len(Xe)
    profile = json.loads(members["reference_profile.json"])
    assert profile["inputs"]["n_rows"] == len(X)
    assert set(profile["outputs"]["columns"]) == {"prediction", "proba_churn", "proba_stay"}
    lock = members["requirements.lock"].decode()
    assert "scikit-learn==" in lock and "numpy==" in lock


def test_regressor_and_numpy_input(client_for) -> None:  # type: ignore[no-untyped-def]
    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 3))
    y = X @ [1.0, -2.0, 0.5] + 3
    model = LinearRegression().fit(X, y)
    alice = client_for("alice")
    mv = alice.register(model, name="price", X_train=X, y_train=y, X_eval=X[:50], y_eval=y[:50])
    assert mv.task == "regression" and mv.metrics["r2"] == pytest.approx(1.0)
    loaded = alice.load("price:1")
    assert loaded.manifest.input_kind == "array"
    frame = pd.DataFrame(X[:5], columns=["x0", "x1", "x2"])
    np.testing.assert_allclose(loaded.predict(frame), model.predict(X[:5]))


@pytest.mark.parametrize("flavor", ["xgboost", "lightgbm"])
def test_boosting_flavors_round_trip(client_for, flavor: str, training_data) -> None:  # type: ignore[no-untyped-def]
    X, y, Xe, _ = training_data
    Xn, Xen = X[["age", "income", "tenure"]], Xe[["age", "income", "tenure"]]
    yb = (y == "churn").astype(int)
    if flavor == "xgboost":
        import xgboost

        model = xgboost.XGBClassifier(n_estimators=20, max_depth=3).fit(Xn, yb)
    else:
        import lightgbm

        model = lightgbm.LGBMClassifier(n_estimators=20, verbose=-1).fit(Xn, yb)
    alice = client_for("alice")
    mv = alice.register(model, name=f"m-{flavor}", X_train=Xn, y_train=yb)
    assert mv.flavor == flavor
    loaded = Client(alice.settings, store=alice.store).open().load(f"m-{flavor}:1")
    np.testing.assert_allclose(loaded.predict_proba(Xen), model.predict_proba(Xen), rtol=1e-6)
    assert flavor in loaded.manifest.frameworks


def test_flavors_follow_the_protocol() -> None:
    from shipyard.packaging import Flavor

    names = [f.name for f in FLAVORS]
    assert len(names) == len(set(names))
    for flavor in FLAVORS:
        assert isinstance(flavor, Flavor)
        assert flavor_for(LogisticRegression()).name == "sklearn"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"model": LogisticRegression()}, "not fitted"),
        ({"X_train": pd.DataFrame()}, "X_train is empty"),
        ({"y_train": [0, 1]}, "X_train has 450 rows but y_train has 2"),
        ({"X_eval": "eval"}, "together"),
        ({"X_train": [[1, 2]]}, "must be a pandas DataFrame"),
        ({"model": object()}, "cannot package"),
    ],
)
def test_bad_input_is_refused_clearly(fitted_pipeline, training_data, kwargs, message) -> None:  # type: ignore[no-untyped-def]
    X, y, _, _ = training_data
    args = {"model": fitted_pipeline, "X_train": X, "y_train": y, **kwargs}
    with pytest.raises(InvalidInput, match=message):
        prepare_archive(args.pop("model"), **args)


def test_failed_registration_leaves_no_rows_and_no_orphan_files(
    client_for,
    store: Store,
    fitted_pipeline,
    training_data,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # type: ignore[no-untyped-def]
    alice = client_for("alice")
    X, y, _, _ = training_data

    def disk_full(*args: object, **kwargs: object) -> None:
        raise OSError("database or disk is full")

    # The archive is already written when the transaction fails: it must be removed again.
    monkeypatch.setattr("shipyard.registry._registry.append_event", disk_full)
    with pytest.raises(OSError, match="disk is full"):
        alice.register(fitted_pipeline, name="churn", X_train=X, y_train=y, onnx=False)
    monkeypatch.undo()
    assert alice.registry.list_models() == []
    assert store.artifacts.keys() == []
    with pytest.raises(InvalidInput):
        alice.register(fitted_pipeline, name="bad name!", X_train=X, y_train=y)
    with pytest.raises(InvalidInput, match="tags"):
        alice.register(
            fitted_pipeline, name="churn", X_train=X, y_train=y, onnx=False, tags={"bad": object()}
        )
    assert alice.registry.list_models() == []
