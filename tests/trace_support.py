"""Shared by the trace, served-at, audit and digest tests: server-shaped prediction ids, log
records, and a ``churn`` model with two tracked versions (runs with params, datasets, git)."""

from __future__ import annotations

import random
from collections.abc import Callable
from datetime import datetime
from typing import Any

from shipyard import Client

#: Inputs with HTML in them: every page must show them as text.
HTML_INPUT = "<script>alert(1)</script>"


def server_id(ts: datetime, row: int = 0) -> str:
    """A prediction id as ``shipyard.serving`` makes it at ``ts`` (ms clock, random, row)."""
    ms = int(ts.timestamp() * 1000)
    return f"{ms:011x}{random.getrandbits(40):010x}{row:05x}"


def record(
    pid: str, ts: datetime, model: str = "churn", version: int = 1, **extra: Any
) -> dict[str, Any]:
    """One answered prediction as the server logs it."""
    out: dict[str, Any] = {
        "prediction_id": pid,
        "ts": ts,
        "model": model,
        "version": version,
        "arm": "production",
        "inputs": {"age": 41, "plan": HTML_INPUT},
        "prediction": "churn",
        "proba": {"churn": 0.8, "stay": 0.2},
        "latency_ms": 1.5,
    }
    out.update(extra)
    return out


def tracked_churn(
    client_for: Callable[[str], Client],
    approver: Client,
    fitted_pipeline: Any,
    training_data: Any,
) -> Client:
    """``churn`` v1 (C=1.0) and v2 (C=0.5) trained in runs by alice, each with an ``eval``
    dataset (and ``train`` from registering), both approved by bob; nothing promoted yet.
    Returns alice's client."""
    alice = client_for("alice")
    X, y, Xe, ye = training_data
    for c in (1.0, 0.5):
        with alice.start_run(model="churn", params={"C": c}) as run:
            run.log_dataset("eval", Xe.assign(churn=ye.to_numpy()), target="churn")
            run.register(fitted_pipeline, X_train=X, y_train=y, onnx=False)
    for version in (1, 2):
        approver.approve("churn", version, reason="metrics ok")
    return alice
