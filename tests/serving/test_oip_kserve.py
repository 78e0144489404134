"""KServe's own Python client (``InferenceRESTClient``), in its default modes, against a real
server.

``kserve`` pins pandas below 3 and cannot be installed beside Shipyard, so it lives in a venv
of its own, made once (``pip install kserve``, about 90 s here) under
``~/.cache/shipyard-tests`` and reused; ``kserve_driver.py`` runs in it. Where that venv
cannot be made the test is skipped, except under CI (``CI=true``), where it fails.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

KSERVE = "kserve==0.21.0"
DRIVER = Path(__file__).with_name("kserve_driver.py")


def _cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "shipyard-tests" / f"kserve-venv-{KSERVE.split('==')[1]}"


def _unavailable(reason: str) -> None:
    if os.environ.get("CI") == "true":
        pytest.fail(f"KServe's client venv cannot be made: {reason}")
    pytest.skip(f"KServe's client venv cannot be made: {reason}")


@pytest.fixture(scope="session")
def kserve_python() -> Path:
    """The Python of a venv holding ``kserve`` (made on first use, then reused)."""
    venv = _cache_dir()
    python = venv / "bin" / "python"
    if (venv / "READY").is_file():
        return python
    building = venv.with_name(f"{venv.name}.building-{os.getpid()}")
    shutil.rmtree(building, ignore_errors=True)
    steps = [
        [sys.executable, "-m", "venv", str(building)],
        [str(building / "bin" / "python"), "-m", "pip", "install", "-q", KSERVE],
        [str(building / "bin" / "python"), "-c", "import kserve"],
    ]
    for step in steps:
        done = subprocess.run(step, capture_output=True, text=True, timeout=900)
        if done.returncode != 0:
            shutil.rmtree(building, ignore_errors=True)
            last = (done.stderr.strip().splitlines() or ["no output"])[-1]
            _unavailable(f"'{' '.join(step[-2:])}' failed: {last[:300]}")
    (building / "READY").write_text(KSERVE + "\n")
    try:
        building.rename(venv)
    except OSError:  # another session made it meanwhile
        shutil.rmtree(building, ignore_errors=True)
    # Only bin/python is used: a symlink, so the venv works under its new name (its pip
    # script, which names the old path, is not needed).
    return python


def test_kserve_rest_client(
    kserve_python: Path,
    oip_url: str,
    training_data: tuple[pd.DataFrame, pd.Series, pd.DataFrame, pd.Series],
    fitted_pipeline,  # type: ignore[no-untyped-def]
) -> None:
    rows = training_data[2].head(5).reset_index(drop=True)
    nan_income: list[Any] = [None, 51_000.0, None, 38_500.5, 72_000.0]
    spec = {
        "url": oip_url,
        "rows": {c: rows[c].tolist() for c in rows.columns},
        "types": {"age": "INT64", "income": "FP64", "tenure": "FP64", "plan": "BYTES"},
        "nan_income": nan_income,
    }
    done = subprocess.run(
        [str(kserve_python), str(DRIVER), json.dumps(spec)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["live"] and report["ready"] and report["model_ready"]
    labels = fitted_pipeline.predict(rows).tolist()
    assert report["default"]["id"] == "k-1"
    assert report["default"]["outputs"]["predict"] == labels
    proba = fitted_pipeline.predict_proba(rows).reshape(-1)
    assert report["default"]["outputs"]["predict_proba"] == pytest.approx(proba.tolist())
    binary = report["binary_out"]
    assert binary["outputs"]["predict"] == labels
    assert binary["parameters"] == {"team": "risk"}
    assert len(set(binary["outputs"]["prediction_id"])) == 5
    assert report["nan_json"]["outputs"]["predict"] == report["nan_binary"]["outputs"]["predict"]
    assert list(report["nan_json"]["outputs"]) == ["predict"]
    unknown = report["unknown_model"]
    assert unknown["status"] == 404 and "Model 'nope' is not served" in unknown["message"]
    bad = report["bad_shape"]
    assert bad["status"] == 400 and "matrix but the model has 4 columns" in bad["message"]
