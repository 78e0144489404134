"""The UI benchmark's reviews: approvals and approval requests of promoted versions, gate
records, open requests, risks and alerts; and the ``model_health`` rows of the newest window.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

APPROVERS = ("april", "arno")


def reviews(
    rows: dict[str, list[dict[str, Any]]],
    rng: random.Random,
    name: str,
    created: list[float],
    latest: int,
    production: int,
    at: Callable[[float], datetime],
    i: int,
) -> None:
    """Approvals of promoted versions (and their requests), gate records, a few open
    requests and risks."""
    promoted = {c["version"] for c in rows["alias_changes"][-20:] if c["model_name"] == name}
    for v in sorted(promoted | {latest}):
        when = at(created[v - 1] + 3)
        passed = v in promoted or rng.random() < 0.7
        rows["gate_records"].append(
            {
                "model_name": name,
                "version": v,
                "digest": f"sha256:{rng.getrandbits(256):064x}",
                "champion": max(1, v - 1),
                "passed": passed,
                "failed": [] if passed else ["roc_auc"],
                "data_source": "eval split of the run (100,000 rows)",
                "report": {
                    "passed": passed,
                    "failed": [] if passed else ["roc_auc"],
                    "gates": [
                        {
                            "name": g,
                            "passed": passed or g != "roc_auc",
                            "applicable": True,
                            "value": round(rng.uniform(0.7, 0.9), 4),
                            "limit": 0.75,
                            "detail": "",
                            "kind": "metric",
                            "data": {},
                        }
                        for g in ("roc_auc", "accuracy", "schema", "parity", "fairness")
                    ],
                    "metrics": {},
                    "seconds": {"predictions": 1.8},
                },
                "created_at": when,
                "created_by": "sam",
            }
        )
        if v not in promoted:
            continue
        approver = rng.choice(APPROVERS)
        rows["approvals"].append(
            {
                "model_name": name,
                "version": v,
                "approver": approver,
                "reason": "gates pass, card reviewed",
                "created_at": when + timedelta(hours=2),
            }
        )
        rows["approval_requests"].append(
            {
                "model_name": name,
                "version": v,
                "requested_by": "sam",
                "comment": "ready for review",
                "created_at": when + timedelta(hours=1),
                "status": "approved",
                "decided_by": approver,
                "decided_at": when + timedelta(hours=2),
                "reason": "gates pass, card reviewed",
            }
        )
    if i % 17 == 0 and latest not in promoted:
        rows["approval_requests"].append(
            {
                "model_name": name,
                "version": latest,
                "requested_by": "sara",
                "comment": "retrained on last month's data; AUC +0.01",
                "created_at": at(created[-1] + 4),
                "status": "open",
                "decided_by": None,
                "decided_at": None,
                "reason": "",
            }
        )
    if i % 10 == 0:
        rows["risks"].append(
            {
                "model_name": name,
                "version": None,
                "title": "Feature drift in a new market",
                "severity": rng.choice(["low", "medium", "high"]),
                "owner": "sam",
                "mitigation": "weekly drift review",
                "status": "open",
                "created_at": at(created[0]),
                "created_by": "sam",
                "closed_at": None,
                "closed_by": None,
                "resolution": "",
            }
        )


def alerts(
    rows: dict[str, list[dict[str, Any]]],
    rng: random.Random,
    name: str,
    features: tuple[str, str, str],
    version: int,
    hours: int,
    at: Callable[[float], datetime],
) -> None:
    for _ in range(rng.randint(0, 6)):
        hour = rng.uniform(0, hours)
        feature = rng.choice(features)
        value = rng.uniform(0.2, 0.6)
        open_ = hour > hours - 24 * 7 and rng.random() < 0.5
        rows["alerts"].append(
            {
                "id": f"{rng.getrandbits(128):032x}",
                "rule": "feature-drift",
                "key": f"{name}/{feature}",
                "severity": rng.choice(["warning", "critical"]),
                "model_name": name,
                "version": version,
                "metric": "psi",
                "feature": feature,
                "value": value,
                "threshold": 0.2,
                "message": f"{name}: psi of {feature} is {value:.2f} (> 0.20)",
                "status": "sent",
                "deliveries": {"email": {"ok": True, "attempts": 1, "error": None}},
                "created_at": at(hour),
                "acknowledged_at": None if open_ else at(hour + 3),
                "acknowledged_by": None if open_ else "sam",
            }
        )


def health_rows(health: dict[str, dict[str, object]], end: datetime) -> list[dict[str, Any]]:
    """One ``model_health`` row per model: its newest window, which ends at ``end``."""
    return [
        {
            "model_name": name,
            **values,
            "window_start": end - timedelta(hours=1),
            "window_end": end,
            "quality": [],
            "label_coverage": 0.31,
            "updated_at": end + timedelta(minutes=2),
        }
        for name, values in health.items()
    ]
