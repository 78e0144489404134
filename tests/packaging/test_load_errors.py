"""A model that cannot be loaded here gets one sentence naming what is missing and the fix."""

from __future__ import annotations

import platform

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression

from shipyard.errors import ModelUnavailable
from shipyard.packaging import Archive, LoadedModel, open_archive, prepare_archive
from shipyard.store import sha256


@pytest.fixture(scope="module")
def archive() -> Archive:
    rng = np.random.default_rng(0)
    X = pd.DataFrame({"a": rng.normal(size=60), "b": rng.normal(size=60)})
    y = (X["a"] > 0).astype(int)
    prepared = prepare_archive(LogisticRegression().fit(X, y), X_train=X, y_train=y, onnx=False)
    data = prepared.build(name="m", version=1, author="a", created_at=pd.Timestamp.now("UTC"))
    return open_archive(data, expected_digest=sha256(data), label="m v1")


def _with(archive: Archive, pickle_bytes: bytes, lock: str = "", **manifest: object) -> Archive:
    members = {**archive.members, "model/model.joblib": pickle_bytes}
    if lock:
        members["requirements.lock"] = lock.encode()
    return Archive(archive.digest, archive.manifest.model_copy(update=manifest), members)


def _message(archive: Archive) -> str:
    with pytest.raises(ModelUnavailable) as caught:
        LoadedModel(archive).model  # noqa: B018 - loading is the test
    message = caught.value.message
    assert "\n" not in message and "Traceback" not in message
    return message


def test_a_module_neither_installed_nor_archived(archive: Archive) -> None:
    message = _message(_with(archive, b"cnot_installed_pkg.models\nThing\n."))
    assert message == (
        "m v1 cannot be loaded: it needs the module 'not_installed_pkg', which is neither "
        "installed here nor in its archive; install the package that provides it or, if it is "
        "your own code, register the model again with code_paths=['path/to/not_installed_pkg.py']."
    )


def test_a_package_of_the_lock_that_is_not_installed(archive: Archive) -> None:
    lock = "# python 3.11\nfancy-lib==1.2.3\nnumpy==2.0.0\n"
    message = _message(_with(archive, b"cfancy_lib\nModel\n.", lock=lock))
    assert message == (
        "m v1 cannot be loaded: it needs the package fancy-lib==1.2.3 (module 'fancy_lib'), "
        "which is not installed here; pip install 'fancy-lib==1.2.3' (or 'shipyard env create')."
    )


def test_a_library_version_that_reads_the_pickle_differently(archive: Archive) -> None:
    message = _message(
        _with(
            archive,
            b"csklearn.linear_model\nNoSuchEstimator\n.",
            frameworks={"scikit-learn": "0.20.0"},
        )
    )
    assert message.startswith("m v1 cannot be loaded here (AttributeError: ")
    assert "NoSuchEstimator" in message
    assert "it was saved with scikit-learn 0.20.0 (here " in message
    assert message.endswith(
        "recreate its environment from the archive's requirements.lock ('shipyard env create') "
        "and load it there."
    )


def test_by_value_code_from_another_python(archive: Archive) -> None:
    message = _message(
        _with(
            archive,
            b"\x80\x05garbage",
            python="3.9.18",
            pickled_by_value=["__main__.Shift"],
        )
    )
    assert message == (
        f"m v1 cannot be loaded under Python {platform.python_version()}: __main__.Shift were "
        "pickled by value under Python 3.9.18, which is needed to load them (or move them into "
        "a module and register the model again)."
    )
