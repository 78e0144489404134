"""``shipyard import mlflow DIR``: MLflow model directories written by MLflow itself."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml
from mlflow_support import fitted, loan_frame, mlflow, quiet, save

from cli_support import cli, point_cli_at
from shipyard import Client, Settings
from shipyard.importing import import_mlflow
from shipyard.registry import Registry
from shipyard.store import Store
from shipyard.tracking import Tracker


@pytest.fixture
def sy(tmp_path: Path) -> Client:
    store = Store(f"sqlite:///{tmp_path / 'sy.db'}", str(tmp_path / "art"), creator="alice")
    client = Client(Settings(user="alice"), store=store.open()).open()
    yield client
    client.close()


def _import(sy: Client, source: str | Path, **kwargs):  # type: ignore[no-untyped-def]
    return import_mlflow(
        str(source), registry=sy.registry, tracker=sy.tracker, user="alice", **kwargs
    )


@pytest.mark.parametrize("kind", ["sklearn", "xgboost", "lightgbm"])
def test_a_model_dir_of_each_flavor_imports_and_predicts_the_same(
    sy: Client, tmp_path: Path, kind: str
) -> None:
    X, y = loan_frame()
    model = fitted(kind, X, y)
    path = save(kind, model, tmp_path / "m", input_example=X.head(20))

    report = _import(sy, path, name="loan")

    [done] = report.versions
    assert (done.version, done.skipped, done.flavor) == (1, False, kind)
    assert done.profile_from == "the input example (20 rows)"
    loaded = sy.load("loan:1")
    np.testing.assert_array_equal(loaded.predict(X), model.predict(X))
    np.testing.assert_allclose(loaded.predict_proba(X), model.predict_proba(X), rtol=1e-6)
    archive = sy.registry.open_archive("loan:1")
    manifest = archive.manifest
    assert manifest.flavor == kind and manifest.task == "classification"
    # the signature is the schema: MLflow's long -> integer, double -> float (nullable: a gap)
    cols = {c.name: (c.dtype, c.nullable) for c in archive.schema.columns}
    # MLflow's double holds NaN: the float columns take nulls though the example had none
    assert cols == {"income": ("float", True), "debt": ("float", True), "years": ("integer", False)}
    assert manifest.lineage.source["kind"] == "mlflow"
    assert manifest.lineage.source["reference_data"] == "the input example (20 rows)"
    lock = archive.members["requirements.lock"].decode()
    assert lock.startswith("# from MLflow's requirements")
    framework = {"sklearn": "scikit-learn", "xgboost": "xgboost", "lightgbm": "lightgbm"}[kind]
    assert any(line.startswith(f"{framework}==") for line in lock.splitlines())
    assert "mlflow==" in lock  # MLflow's list as it is (mlflow itself is not needed to load)
    # the run: imported, with the source; the version's lineage points at it
    run = sy.tracker.get(manifest.lineage.run_id)
    assert run.environment["imported_from"]["uri"] == str(path.resolve())


def test_importing_the_same_dir_twice_registers_it_once(sy: Client, tmp_path: Path) -> None:
    X, y = loan_frame()
    path = save("sklearn", fitted("sklearn", X, y), tmp_path / "m", input_example=X.head(5))
    _import(sy, path, name="loan")
    again = _import(sy, path, name="loan")
    assert [(v.version, v.skipped) for v in again.versions] == [(1, True)]
    assert [i.version.version for i in sy.registry.versions("loan")] == [1]
    tags = sy.registry.get_version("loan", 1).tags
    assert tags["mlflow.model_uuid"] and tags["mlflow.source"] == str(path.resolve())


@pytest.mark.parametrize("fmt", ["pickle", "cloudpickle"])
def test_sklearn_pickle_formats(sy: Client, tmp_path: Path, fmt: str) -> None:
    X, y = loan_frame()
    model = fitted("sklearn", X, y)
    path = save("sklearn", model, tmp_path / "m", input_example=X.head(5), serialization_format=fmt)
    _import(sy, path, name="loan")
    np.testing.assert_array_equal(sy.load("loan:1").predict(X), model.predict(X))


@pytest.mark.parametrize("kind", ["sklearn", "xgboost"])
def test_a_python_function_that_wraps_a_supported_flavor_imports(
    sy: Client, tmp_path: Path, kind: str
) -> None:
    X, y = loan_frame()
    model = fitted(kind, X, y)
    extra = {"serialization_format": "pickle"} if kind == "sklearn" else {}
    path = save(kind, model, tmp_path / "m", input_example=X.head(5), **extra)
    meta = yaml.safe_load((path / "MLmodel").read_text())
    del meta["flavors"][kind]  # only python_function(loader_module=mlflow.<kind>) left
    (path / "MLmodel").write_text(yaml.safe_dump(meta))
    report = _import(sy, path, name="loan")
    assert report.versions[0].flavor == kind
    loaded = sy.load("loan:1")
    np.testing.assert_array_equal(loaded.predict(X), model.predict(X))
    np.testing.assert_allclose(loaded.predict_proba(X), model.predict_proba(X), rtol=1e-6)


def test_an_optional_signature_column_accepts_nulls(sy: Client, tmp_path: Path) -> None:
    from mlflow.models import ModelSignature
    from mlflow.types import ColSpec, Schema

    X, y = loan_frame()
    signature = ModelSignature(
        inputs=Schema(
            [
                ColSpec("double", "income"),
                ColSpec("double", "debt"),
                ColSpec("long", "years", required=False),
            ]
        )
    )
    sample = X.dropna().head(5)
    path = save(
        "xgboost",
        fitted("xgboost", X, y),
        tmp_path / "m",
        signature=signature,
        input_example=sample,
    )
    _import(sy, path, name="loan")
    cols = {c.name: c.nullable for c in sy.registry.open_archive("loan:1").schema.columns}
    assert cols == {"income": True, "debt": True, "years": True}


def test_without_example_the_sample_gives_the_reference(
    sy: Client, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    X, y = loan_frame()
    model = fitted("lightgbm", X, y)
    path = save("lightgbm", model, tmp_path / "m")  # no signature, no example
    as_user = point_cli_at(monkeypatch, f"sqlite:///{tmp_path / 'cli.db'}", tmp_path, toml="")
    as_user("alice")
    code, _, err = cli(capsys, "import", "mlflow", str(path), "--name", "loan")
    assert code == 2
    assert "neither signature nor example: pass --sample data.csv" in err
    X.assign(label=y).to_csv(tmp_path / "sample.csv", index=False)  # the label is left out
    code, out, err = cli(
        capsys,
        "import",
        "mlflow",
        str(path),
        "--name",
        "loan",
        "--sample",
        str(tmp_path / "sample.csv"),
        "--json",
    )
    assert code == 0, err
    body = json.loads(out)
    assert body["versions"][0]["profile_from"] == f"--sample {tmp_path / 'sample.csv'} (300 rows)"
    schema = sy_schema(tmp_path)
    assert [c.name for c in schema.columns] == ["income", "debt", "years"]


def sy_schema(tmp_path: Path) -> Any:
    """The schema of loan v1 in the CLI's store."""
    store = Store(
        f"sqlite:///{tmp_path / 'cli.db'}", str(tmp_path / "home" / "artifacts"), creator="admin"
    ).open()
    try:
        return Registry(store).open_archive("loan:1").schema
    finally:
        store.close()


def _store_is_empty(tmp_path: Path) -> None:
    store = Store(
        f"sqlite:///{tmp_path / 'cli.db'}", str(tmp_path / "home" / "artifacts"), creator="admin"
    ).open()
    try:
        assert Registry(store).list_models() == []
        assert Tracker(store).list_runs() == []
    finally:
        store.close()
    assert not list((tmp_path / "home").rglob("*.zip"))


@pytest.mark.filterwarnings("ignore:Add type hints:UserWarning")  # MLflow's, on PythonModel
@pytest.mark.parametrize(
    "case", ["custom_pyfunc", "unknown_flavor", "no_mlmodel", "no_dir", "raw_booster"]
)
def test_bad_model_dirs_are_refused_in_one_sentence_and_nothing_is_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], case: str
) -> None:
    X, y = loan_frame()
    path = tmp_path / "m"
    expected = ""
    if case == "custom_pyfunc":
        with quiet():  # MLflow asks for type hints on predict

            class Doubler(mlflow.pyfunc.PythonModel):  # type: ignore[misc,name-defined]
                def predict(self, context, model_input, params=None):  # type: ignore[no-untyped-def]
                    return model_input * 2

            mlflow.pyfunc.save_model(str(path), python_model=Doubler(), input_example=X.head(3))
        expected = "python_function (python_function loader_module mlflow.pyfunc.model)"
    elif case == "unknown_flavor":
        save("sklearn", fitted("sklearn", X, y), path, input_example=X.head(3))
        meta = yaml.safe_load((path / "MLmodel").read_text())
        meta["flavors"] = {"pytorch": {"model_data": "data"}}
        (path / "MLmodel").write_text(yaml.safe_dump(meta))
        expected = "has the flavors pytorch: Shipyard imports sklearn, xgboost and lightgbm"
    elif case == "no_mlmodel":
        path.mkdir()
        expected = "has no MLmodel file"
    elif case == "no_dir":
        expected = "No such MLflow model directory"
    else:
        import xgboost

        booster = xgboost.train({"max_depth": 2}, xgboost.DMatrix(X, label=y), 3)
        save("xgboost", booster, path, input_example=X.head(3))
        expected = "is a raw xgboost.core.Booster"
    as_user = point_cli_at(monkeypatch, f"sqlite:///{tmp_path / 'cli.db'}", tmp_path, toml="")
    as_user("alice")
    code, out, err = cli(capsys, "import", "mlflow", str(path), "--name", "loan")
    assert code == 2, out + err
    assert expected in err
    assert err.count("\n") <= 3  # one sentence, wrapped at most
    _store_is_empty(tmp_path)


def test_skops_loads_what_the_mlmodel_trusts_and_names_what_it_does_not(
    sy: Client, tmp_path: Path
) -> None:
    from sklearn.ensemble import HistGradientBoostingClassifier

    from shipyard.errors import InvalidInput

    X, y = loan_frame()
    model = HistGradientBoostingClassifier(max_iter=10, random_state=0).fit(X, y)
    trusted = ["sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor"]
    path = save(
        "sklearn", model, tmp_path / "m", input_example=X.head(5), skops_trusted_types=trusted
    )
    _import(sy, path, name="loan")
    np.testing.assert_array_equal(sy.load("loan:1").predict(X), model.predict(X))
    meta = yaml.safe_load((path / "MLmodel").read_text())
    meta["flavors"]["sklearn"]["skops_trusted_types"] = None
    meta["model_uuid"] = "another"
    (path / "MLmodel").write_text(yaml.safe_dump(meta))
    with pytest.raises(InvalidInput, match=r"types skops does not trust \(sklearn\.ensemble"):
        _import(sy, path, name="loan")
    assert [i.version.version for i in sy.registry.versions("loan")] == [1]
