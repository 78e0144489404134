"""The flavor contract: every flavor in FLAVORS passes the same checks (as scikit-learn's
``parametrize_with_checks`` runs every estimator through one suite).

Per model: ``flavor_for`` picks its flavor; the flavor says it is fitted (and refuses it unfitted
in one sentence), gives its task and classes; the archive's members load back into a model that
predicts exactly the same; the manifest records the framework's version; and the ONNX export
either passes its parity check or says in one line why there is none.
"""

from __future__ import annotations

import re
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from flavor_models import CASES, Case
from shipyard.errors import InvalidInput
from shipyard.packaging import (
    FLAVORS,
    Flavor,
    flat_predictions,
    flavor_for,
    get_flavor,
    prepare_archive,
)

_IDS = [case.id for case in CASES]


def test_every_flavor_has_a_case_and_follows_the_protocol() -> None:
    names = [flavor.name for flavor in FLAVORS]
    assert len(names) == len(set(names))
    missing = set(names) - {case.flavor for case in CASES}
    assert not missing, f"add a Case for the flavors {sorted(missing)} to flavor_models.CASES"
    for flavor in FLAVORS:
        assert isinstance(flavor, Flavor)
        assert get_flavor(flavor.name) is flavor
        assert flavor.supports and flavor.framework


@pytest.fixture(scope="module", params=CASES, ids=_IDS)
def prepared(request: pytest.FixtureRequest):  # type: ignore[no-untyped-def]
    case: Case = request.param
    model, X, y = case.fitted()
    archive = prepare_archive(model, X_train=X, y_train=y, X_eval=X.head(300), y_eval=y[:300])
    return case, model, X, archive


def test_the_flavor_handles_its_model(prepared) -> None:  # type: ignore[no-untyped-def]
    case, model, _, archive = prepared
    assert flavor_for(model).name == case.flavor == archive.flavor


def test_task_and_classes(prepared) -> None:  # type: ignore[no-untyped-def]
    case, model, _, archive = prepared
    flavor = get_flavor(case.flavor)
    assert flavor.task(model) == archive.task == case.task
    assert flavor.classes(model) == archive.classes == case.classes


def test_save_and_load_give_identical_predictions(prepared) -> None:  # type: ignore[no-untyped-def]
    case, model, X, archive = prepared
    members = {path: data for path, data in archive.members.items() if path.startswith("model/")}
    assert members, "the flavor saved nothing under model/"
    loaded = get_flavor(case.flavor).load(members)
    labels = flat_predictions(loaded.predict(X))
    np.testing.assert_array_equal(labels, flat_predictions(model.predict(X)))
    if case.task == "classification" and hasattr(model, "predict_proba"):
        np.testing.assert_array_equal(loaded.predict_proba(X), model.predict_proba(X))
        # labels are the classes the manifest lists
        assert set(labels.tolist()) <= set(archive.classes)


def test_the_manifest_records_the_framework(prepared) -> None:  # type: ignore[no-untyped-def]
    case, model, _, archive = prepared
    flavor = get_flavor(case.flavor)
    for framework in (flavor.framework, *flavor.frameworks(model)):
        assert archive.frameworks.get(framework), f"{framework} version missing"
    assert "python" not in archive.frameworks and archive.python
    if case.id == "sklearn-xgboost-pipeline":
        assert flavor.frameworks(model) == ("scikit-learn", "xgboost")


def test_onnx_parity_or_a_stated_reason(prepared) -> None:  # type: ignore[no-untyped-def]
    case, _, _, archive = prepared
    onnx = archive.onnx
    assert onnx is not None, "the manifest must say what became of the ONNX export"
    if case.onnx:
        assert onnx["error"] is None, onnx["error"]
        assert onnx["converted"] and "model.onnx" in archive.members
        assert onnx["max_abs_diff"] is not None and onnx["max_abs_diff"] < 1e-4
        assert onnx["n_eval_rows"] == 300
    else:
        assert not onnx["converted"] and "model.onnx" not in archive.members
        reason = onnx["error"]
        assert reason and "\n" not in reason and "native runtime" in reason


@pytest.mark.parametrize("case", [c for c in CASES if c.fit and c.needs_fit], ids=lambda c: c.id)
def test_an_unfitted_model_is_refused_in_one_sentence(case: Case) -> None:
    X, y = case.data(50)
    with pytest.raises(InvalidInput) as caught:
        prepare_archive(case.make(), X_train=X, y_train=y)
    message = str(caught.value)
    assert "is not fitted: call fit(X, y) before registering it." in message
    assert "\n" not in message


def test_a_model_nobody_packages_gets_one_sentence_naming_what_is() -> None:
    X, y = CASES[0].data(20)
    with pytest.raises(InvalidInput) as caught:
        prepare_archive(object(), X_train=X, y_train=y)
    message = str(caught.value)
    assert message.startswith("Shipyard cannot package a builtins.object: it packages ")
    for flavor in FLAVORS:
        assert flavor.supports in message
    assert "\n" not in message and message.count(".") == 2  # builtins.object, the full stop


@pytest.mark.parametrize(
    ("source", "message"),
    [
        (
            "class M:\n    def predict(self, X): return X['age'] * 0\n"
            "    def predict_proba(self, X): return None\n",
            "has predict_proba but no classes_: set classes_ to the class labels",
        ),
        (
            "class M:\n    def predict(self, X): raise KeyError('segment')\n",
            "The M's predict failed on the first rows of X_train (KeyError: 'segment')",
        ),
        (
            "class M:\n    def predict(self, X): return X['age'].astype(str)\n",
            "give it a classes_ attribute (the class labels) to register it as a classifier",
        ),
        (
            "class M:\n    classes_ = ['only']\n    def predict(self, X): return X['age']\n",
            "must list two or more distinct labels",
        ),
        (
            "class M:\n    classes_ = ['no', 'yes']\n"
            "    def predict(self, X): return X['age'].map(lambda a: 'maybe')\n",
            "returns labels ['maybe'] that are not among its classes ['no', 'yes']",
        ),
    ],
    ids=["no-classes", "predict-fails", "text-regression", "one-class", "unknown-label"],
)
def test_a_plain_python_model_that_breaks_the_conventions_is_refused(
    source: str, message: str
) -> None:
    namespace: dict[str, object] = {}
    exec(source, namespace)
    X, y = CASES[0].data(20)
    with pytest.raises(InvalidInput, match=re.escape(message)):
        prepare_archive(namespace["M"](), X_train=X, y_train=y)  # type: ignore[operator]


def test_a_notebook_class_is_pickled_by_value_and_loads_in_a_fresh_process(
    tmp_path: Path,
) -> None:
    case = next(c for c in CASES if c.id == "python-notebook")
    model, X, y = case.fitted()
    archive = prepare_archive(model, X_train=X, y_train=y, onnx=False)
    assert "model/model.pkl" in archive.members and "model/model.joblib" not in archive.members
    (tmp_path / "model.pkl").write_bytes(archive.members["model/model.pkl"])
    X.head(20).to_parquet(tmp_path / "rows.parquet")
    script = textwrap.dedent(
        """
        import pickle, sys
        import pandas as pd
        model = pickle.loads(open("model.pkl", "rb").read())
        print(",".join(model.predict(pd.read_parquet("rows.parquet"))))
        """
    )
    # A fresh interpreter in another folder, where no NotebookModel was ever defined.
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=tmp_path, capture_output=True, text=True, check=True
    )
    assert done.stdout.strip().split(",") == list(model.predict(X.head(20)))


def test_importable_classes_stay_joblib_pickles_by_reference() -> None:
    case = next(c for c in CASES if c.id == "python-rules")
    model, X, y = case.fitted()
    archive = prepare_archive(model, X_train=X, y_train=y, onnx=False)
    assert "model/model.joblib" in archive.members and "model/model.pkl" not in archive.members
