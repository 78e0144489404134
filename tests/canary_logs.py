"""A registered ``churn`` model and generated prediction-log records of a canary's arms, for
the canary and rollout tests."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

from gates_off import NO_GATES
from shipyard.client import Client
from shipyard.packaging import prepare_archive
from shipyard.predlog import PredictionLog
from shipyard.registry import Policy, Registry, Rollout, Traffic
from shipyard.store import Store


def register_churn(
    store: Store,
    model: Any,
    training_data: Any,
    approver: Client,
    *,
    versions: int,
    approved: Iterable[int],
) -> Registry:
    """``churn`` v1..``versions`` of ``model`` by alice, ``approved`` by the approver, v1 in
    production."""
    X, y, _, _ = training_data
    prepared = prepare_archive(model, X_train=X, y_train=y, onnx=False)
    registry = Registry(store, NO_GATES)
    for _ in range(versions):
        registry.register(prepared, name="churn", actor="alice")
    for version in approved:
        approver.approve("churn", version, reason="ok")
    registry.promote("churn", 1, actor="alice")
    return registry


def arm_records(
    policy: Policy,
    n: int,
    *,
    version: int,
    arm: str,
    seed: int,
    offset: float = 0.0,
    errors: int = 0,
    latency_ms: float = 10.0,
    proba: tuple[float, float] = (2.0, 5.0),
) -> list[dict[str, object]]:
    """``n`` single-row requests of one arm after the policy started: the first ``errors``
    refused, latency ~ N(latency_ms, 10%), P(churn) ~ Beta(*proba)."""
    rng = np.random.default_rng(seed)
    start = policy.created_at.timestamp() + 1.0 + offset
    out: list[dict[str, object]] = []
    for i in range(n):
        ts = start + i * 0.01
        if i < errors:
            out.append(
                {
                    "ts": ts,
                    "model": "churn",
                    "version": version,
                    "arm": arm,
                    "status": "rejected",
                    "reason": "age must be a number",
                    "latency_ms": 0.2,
                }
            )
            continue
        p = float(rng.beta(*proba))
        out.append(
            {
                "prediction_id": f"{arm}-{i}",
                "ts": ts,
                "model": "churn",
                "version": version,
                "arm": arm,
                "latency_ms": float(max(0.1, rng.normal(latency_ms, latency_ms / 10))),
                "inputs": {"age": int(rng.integers(18, 80))},
                "prediction": "churn" if p > 0.5 else "stay",
                "proba": {"churn": p, "stay": 1 - p},
            }
        )
    return out


def log_step(
    store: Store,
    log_root: Path,
    rollout: Rollout,
    *,
    production: int = 800,
    canary: int = 200,
    errors: int = 0,
    seed: int = 0,
) -> None:
    """Requests of both arms of the step in force, logged just after the step began."""
    policy = Traffic(store, NO_GATES).current("churn")
    assert policy is not None and policy.id == rollout.policy_id
    offset = max(0.0, (rollout.step_started_at - policy.created_at).total_seconds())
    records = arm_records(
        policy, production, version=1, arm="production", seed=seed, offset=offset
    ) + arm_records(
        policy, canary, version=2, arm="canary", seed=seed + 1, offset=offset, errors=errors
    )
    for record in records:  # prediction ids are unique across steps
        if "prediction_id" in record:
            record["prediction_id"] = f"r{rollout.id}s{rollout.step}-{record['prediction_id']}"
    with PredictionLog(log_root) as log:
        log.append(records)
