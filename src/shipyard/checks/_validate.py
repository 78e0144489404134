"""TEMPORARY SHIM of the integrator's ``validate_version`` (branch s11-retrain only).

It follows the contract of the issue-11 design file so that ``retrain`` can be written and
tested against it; the real pipeline (every gate, the HTML report) replaces this file when
main is merged. It judges one gate, the candidate's primary metric on its own eval rows
against the champion's, and stores a real gate record.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from shipyard.config import ProjectConfig
from shipyard.errors import NotFound
from shipyard.registry import PRODUCTION, GateRecord, Gates, Registry
from shipyard.store import Store


@dataclass(frozen=True)
class ValidationRequest:
    """What to validate (see the design file's contract)."""

    name: str
    version: int
    actor: str
    project: ProjectConfig
    against: str = PRODUCTION
    data: Path | None = None
    target: str | None = None
    report: Path | None = None
    log_root: Path | None = None


@dataclass(frozen=True)
class ValidationResult:
    """The stored record and where the report is."""

    passed: bool
    record: GateRecord
    data_source: str
    report_path: Path | None


def validate_version(
    store: Store, request: ValidationRequest, *, progress: Callable[[str], None] | None = None
) -> ValidationResult:
    """Shim: the primary metric of the candidate's eval rows vs the champion's."""
    registry = Registry(store, request.project)
    candidate = registry.get_version(request.name, request.version)
    try:
        champion = registry.resolve(f"{request.name}@{request.against}")
    except NotFound:
        champion = None
    metric = "roc_auc" if "roc_auc" in candidate.metrics else "accuracy"
    if metric not in candidate.metrics:
        metric = "rmse"
    value = candidate.metrics.get(metric)
    limit = None
    if champion is not None and champion.metrics.get(metric) is not None:
        limit = float(champion.metrics[metric]) - 0.01
    policy = registry.policy(request.name)
    floors = [g.min for g in policy.gates.metrics or [] if g.metric == metric and g.min is not None]
    if floors:
        limit = max(floors) if limit is None else max(limit, *floors)
    passed = limit is None or (value is not None and float(value) >= limit)
    gate: dict[str, Any] = {
        "name": f"metric:{metric}",
        "passed": passed,
        "value": value,
        "limit": limit,
        "detail": f"{metric} {value} vs limit {limit}",
    }
    report_path = request.report
    if report_path is not None:
        report_path.parent.mkdir(parents=True, exist_ok=True)
        report_path.write_text(f"<html><body>{gate}</body></html>", encoding="utf-8")
    record = Gates(store).record(
        request.name,
        request.version,
        digest=candidate.digest,
        passed=passed,
        failed=[] if passed else [gate["name"]],
        champion=champion.version if champion else None,
        data_source="the candidate's eval rows",
        report={"passed": passed, "gates": [gate]},
        actor=request.actor,
    )
    return ValidationResult(passed, record, "the candidate's eval rows", report_path)
