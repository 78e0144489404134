"""A realistic validation of churn v1 for model card tests: the JSON report ``shipyard
validate`` stores (a metric gate with its interval, the acceptance criterion, slices, a failed
fairness gate with per-group rates, a gate not applicable), as a gate record."""

from __future__ import annotations

from typing import Any

from shipyard.registry import GateRecord, Gates, Registry
from shipyard.store import Store

WAIVER_REASON = "Plan is a product tier, not a protected attribute; reviewed with legal."


def gate_report() -> dict[str, Any]:
    """The report of a validation in which only ``fairness:plan`` failed."""
    return {
        "passed": False,
        "rows": 150,
        "gates": [
            {
                "name": "metric:roc_auc",
                "passed": True,
                "value": 0.842,
                "limit": 0.8,
                "detail": "roc_auc 0.842 [0.811, 0.869] is at least 0.8.",
                "kind": "metric",
                "data": {"ci_low": 0.811, "ci_high": 0.869, "champion": 0.83},
                "applicable": True,
            },
            {
                "name": "accept",
                "passed": True,
                "value": 0.842,
                "limit": 0.8,
                "detail": "roc_auc >= 0.8 holds on the interval's lower bound 0.811.",
                "kind": "metric",
                "data": {"ci": [0.811, 0.869]},
            },
            {
                "name": "slices",
                "passed": True,
                "value": 0.79,
                "limit": 0.7,
                "detail": "Worst slice plan=basic (48 rows): roc_auc 0.79.",
                "kind": "slices",
                "data": {
                    "metric": "roc_auc",
                    "slices": [
                        {"feature": "plan", "slice": "basic", "rows": 48, "roc_auc": 0.79},
                        {"feature": "plan", "slice": "plus", "rows": 50, "roc_auc": 0.85},
                        {"feature": "plan", "slice": "pro", "rows": 52, "roc_auc": 0.88},
                    ],
                },
            },
            {
                "name": "fairness:plan",
                "passed": False,
                "value": 0.62,
                "limit": 0.8,
                "detail": "Demographic parity ratio 0.62 is below 0.8 (four-fifths rule).",
                "kind": "fairness",
                "data": {
                    "ci_low": 0.55,
                    "ci_high": 0.7,
                    "equalized_odds_difference": 0.12,
                    "groups": {
                        "basic": {"rows": 48, "selection_rate": 0.21},
                        "pro": {"rows": 52, "selection_rate": 0.34},
                    },
                },
            },
            {
                "name": "serving_cost",
                "passed": True,
                "value": None,
                "limit": 1.5,
                "detail": "No champion to compare with.",
                "kind": "cost",
                "data": {},
                "applicable": False,
            },
        ],
        "seconds": {"metrics": 0.4, "fairness": 0.2},
    }


def record_validation(store: Store, name: str = "churn", version: int = 1) -> GateRecord:
    """Store ``gate_report()`` as ``carol``'s validation of the version's current archive."""
    mv = Registry(store).get_version(name, version)
    return Gates(store).record(
        name,
        version,
        digest=mv.digest,
        passed=False,
        failed=["fairness:plan"],
        champion=None,
        data_source="the candidate's own eval rows (150 rows)",
        report=gate_report(),
        actor="carol",
    )
