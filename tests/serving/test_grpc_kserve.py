"""KServe's own gRPC client (``InferenceGRPCClient``), in its default modes, against a real
server with ``--grpc-port`` and tokens on.

``kserve_grpc_driver.py`` runs in KServe's venv (``kserve_venv.py``): kserve cannot be
installed beside Shipyard.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from kserve_venv import run_driver
from shipyard.auth import Tokens
from shipyard.registry import Registry
from shipyard.serving import create_app, free_port, serve_in_thread
from shipyard.settings import ServeSettings
from shipyard.store import Store

DRIVER = Path(__file__).with_name("kserve_grpc_driver.py")
TYPES = {"age": "INT64", "income": "FP64", "tenure": "FP64", "plan": "BYTES"}


def test_kserve_grpc_client(
    kserve_python: Path,
    store: Store,
    churn: Registry,
    training_data: tuple[pd.DataFrame, pd.Series, pd.DataFrame, pd.Series],
    fitted_pipeline,  # type: ignore[no-untyped-def]
) -> None:
    rows = training_data[2].head(5).reset_index(drop=True)
    token, _ = Tokens(store).create(role="scorer", name="kserve", actor="admin")
    port = free_port()
    app = create_app(store, settings=ServeSettings(grpc_port=port))
    spec = {
        "address": f"127.0.0.1:{port}",
        "rows": {c: rows[c].tolist() for c in rows.columns},
        "types": TYPES,
        "token": token,
    }
    with serve_in_thread(app):
        report = run_driver(kserve_python, DRIVER, spec)
    assert report["live"] and report["ready"] and report["model_ready"]
    labels = fitted_pipeline.predict(rows).tolist()
    proba = fitted_pipeline.predict_proba(rows).reshape(-1).tolist()
    for answer in (report["default"], report["typed"]):
        assert answer["outputs"]["predict"] == labels
        assert answer["outputs"]["predict_proba"] == pytest.approx(proba)
        assert len(set(answer["outputs"]["prediction_id"])) == 5
    assert report["default"]["id"] == "g-1"
    assert report["default"]["parameters"] == {"team": "risk"}
    assert report["no_token"]["code"] == "UNAUTHENTICATED"
    assert "needs an API token" in report["no_token"]["message"]
    unknown = report["unknown_model"]
    assert unknown["code"] == "NOT_FOUND" and "Model 'nope' is not served" in unknown["message"]
    bad = report["bad_shape"]
    assert bad["code"] == "INVALID_ARGUMENT"
    assert "matrix but the model has 4 columns" in bad["message"]
