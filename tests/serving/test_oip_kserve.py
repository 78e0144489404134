"""KServe's own Python client (``InferenceRESTClient``), in its default modes, against a real
server.

``kserve`` pins pandas below 3 and cannot be installed beside Shipyard: ``kserve_driver.py``
runs in a venv of its own (``kserve_venv.py``: made once, reused; skipped where it cannot be
made, except under CI).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from kserve_venv import run_driver

DRIVER = Path(__file__).with_name("kserve_driver.py")


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
    report = run_driver(kserve_python, DRIVER, spec)
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
