"""The archive's ``runtime.lock``: the distributions the model needs, closed over their
requirements with markers evaluated, pinned at their installed versions."""

from __future__ import annotations

import importlib.metadata as md
import time
from pathlib import Path

import pandas as pd
import pytest

from flavor_models import CASES
from shipyard.deploy import parse_lock
from shipyard.packaging import RUNTIME_LOCK, open_archive, prepare_archive, runtime_lock
from shipyard.store import sha256


def _runtime_pins(model, X, y) -> dict[str, str]:  # type: ignore[no-untyped-def]
    prepared = prepare_archive(model, X_train=X, y_train=y, onnx=False)
    data = prepared.build(name="m", version=1, author="a", created_at=pd.Timestamp.now("UTC"))
    archive = open_archive(data, expected_digest=sha256(data), label="m v1")
    assert archive.manifest.members[RUNTIME_LOCK] == sha256(archive.members[RUNTIME_LOCK])
    lock = parse_lock(archive.members[RUNTIME_LOCK].decode(), label="m v1", member=RUNTIME_LOCK)
    full = parse_lock(archive.members["requirements.lock"].decode(), label="m v1")
    assert set(lock.pins) < set(full.pins)  # the training environment stays on record
    return {key: version for key, (_, version) in lock.pins.items()}


def test_a_sklearn_pipeline_needs_its_stack_and_not_the_dev_tools(
    fitted_pipeline,  # type: ignore[no-untyped-def]
    training_data,  # type: ignore[no-untyped-def]
) -> None:
    X, y, _, _ = training_data
    pins = _runtime_pins(fitted_pipeline, X, y)
    needed = ("scikit-learn", "numpy", "scipy", "joblib", "threadpoolctl", "pandas")
    assert {name: md.version(name) for name in needed} == {name: pins[name] for name in needed}
    assert "fastapi" in pins and "sqlalchemy" in pins  # Shipyard's own requirements
    for installed_here in ("pytest", "pyspark", "mlflow", "mypy", "xgboost"):
        md.version(installed_here)  # in this environment, so leaving it out is a choice
        assert installed_here not in pins
    assert "shipyard" not in pins  # env create and the Dockerfile install it on their own


def test_a_flavor_model_pins_its_framework() -> None:
    case = next(c for c in CASES if c.id == "xgboost-classifier")
    model, X, y = case.fitted()
    pins = _runtime_pins(model, X, y)
    assert pins["xgboost"] == md.version("xgboost")
    assert "lightgbm" not in pins and "catboost" not in pins


_DISTS = {
    # name: (top-level module or "", Requires-Dist lines)
    "sy-rt-top": (
        "sy_rt_top",
        [
            "sy-rt-a>=1",
            'sy-rt-windows; sys_platform == "win32"',
            "sy-rt-b[fast]",
            'sy-rt-docs; extra == "docs"',
            "sy-rt-absent",
        ],
    ),
    "sy-rt-a": ("", []),
    "sy-rt-b": ("", ['sy-rt-fastdep; extra == "fast"', 'sy-rt-slowdep; extra == "slow"']),
    "sy-rt-fastdep": ("", []),
    "sy-rt-windows": ("", []),
    "sy-rt-docs": ("", []),
    "sy-rt-slowdep": ("", []),
    "sy-rt-unused": ("sy_rt_unused", []),
}


def _install(site: Path) -> None:
    """Real ``.dist-info`` folders (``importlib.metadata`` reads them off ``sys.path``)."""
    for name, (top, requires) in _DISTS.items():
        info = site / f"{name.replace('-', '_')}-1.0.dist-info"
        info.mkdir()
        lines = ["Metadata-Version: 2.1", f"Name: {name}", "Version: 1.0"]
        lines += [f"Requires-Dist: {r}" for r in requires]
        (info / "METADATA").write_text("\n".join(lines) + "\n")
        if top:
            (info / "top_level.txt").write_text(top + "\n")
            (site / top).mkdir()
            (site / top / "__init__.py").write_text("")


def test_markers_are_evaluated_here_and_extras_asked_for_are_followed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _install(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    lock = parse_lock(runtime_lock(["sy_rt_top.models", "collections"], ()), label="t")
    ours = {key for key in lock.pins if key.startswith("sy-rt-")}
    # the marker false here (win32), an extra nobody asked for (docs, slow), a requirement
    # not installed (absent) and a distribution the model does not use are left out
    assert ours == {"sy-rt-top", "sy-rt-a", "sy-rt-b", "sy-rt-fastdep"}
    assert lock.pins["sy-rt-b"] == ("sy-rt-b", "1.0")


def test_a_distribution_installed_between_two_registrations_is_pinned(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The scan of the environment is kept between registrations (it is most of one), but
    not past an install: a notebook's ``pip install`` between two is seen by the second."""
    from shipyard.packaging import requirements_lock

    monkeypatch.syspath_prepend(str(tmp_path))
    first = requirements_lock()
    assert requirements_lock() == first and "sy-rt-a==" not in first
    time.sleep(0.05)  # pip's install comes later than the folder's last change
    _install(tmp_path)  # as pip does: new .dist-info folders on a folder of sys.path
    after = requirements_lock()
    assert "sy-rt-a==1.0" in after and "sy-rt-unused==1.0" in after
    lock = parse_lock(runtime_lock(["sy_rt_top.models"], ()), label="t")
    assert {"sy-rt-top", "sy-rt-a"} <= set(lock.pins)
