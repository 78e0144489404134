"""``validate_version``: one validation of a candidate version against the champion, from the
registry to the stored gate record.

Both models are judged on the SAME fresh rows, chosen in this order (``_validation_rows``):
the ``--data`` file; the labelled production traffic of the policy's window, when at least
``min_labels`` labels arrived; else the candidate's own eval rows (registered with it). Which
one was used is recorded and printed. The gates themselves are
``shipyard.evaluation.run_gates``; here the models are loaded, the outcome stored as one gate
record bound to the candidate's archive digest (audited, with a ``schema.changed`` event when
the input schema changed), and the HTML report written.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from shipyard.checks._validation_rows import RowColumns, fresh_rows
from shipyard.config import ProjectConfig
from shipyard.errors import InvalidInput, NotFound
from shipyard.registry import PRODUCTION, GateRecord, Gates, ModelVersion, Registry
from shipyard.store import Store

if TYPE_CHECKING:
    import pandas as pd

    from shipyard.evaluation import EvalInputs, GateReport


@dataclass(frozen=True)
class ValidationRequest:
    """What to validate, against what, on which rows, and where the report goes.

    >>> ValidationRequest("churn", 4, actor="alice", project=ProjectConfig()).against
    'production'
    """

    name: str
    version: int
    actor: str
    project: ProjectConfig
    against: str = PRODUCTION
    data: Path | pd.DataFrame | None = None
    target: str | None = None
    data_label: str | None = None  # what rows ``data`` (a DataFrame) holds, in words
    report: Path | None = None
    log_root: Path | None = None
    skip: frozenset[str] = field(default_factory=frozenset)


@dataclass(frozen=True)
class ValidationResult:
    """A stored validation: the gate record, the gates, which rows were used, the report."""

    record: GateRecord
    report: GateReport
    data_source: str
    rows: int
    report_path: Path | None

    @property
    def passed(self) -> bool:
        """Every applicable gate passed."""
        return self.record.passed

    def to_json(self) -> dict[str, Any]:
        """The JSON ``shipyard validate --json`` prints (``passed`` and ``gates`` lead)."""
        return {
            "passed": self.record.passed,
            "gates": self.record.report.get("gates", []),
            "failed": list(self.record.failed),
            "model": self.record.model_name,
            "version": self.record.version,
            "digest": self.record.digest,
            "champion": self.record.champion,
            "data_source": self.data_source,
            "rows": self.rows,
            "record": self.record.id,
            "report": str(self.report_path) if self.report_path else None,
        }


def validate_version(
    store: Store,
    request: ValidationRequest,
    *,
    progress: Callable[[str], None] | None = None,
) -> ValidationResult:
    """Run every gate for ``request.version`` against the ``request.against`` version on the
    same rows, store the gate record (audited) and write the report.

    Raises ``InvalidInput`` (nothing stored) for a data file that is missing, lacks the target
    or the model's columns, labels the model does not know, a sensitive feature the rows lack,
    a metric that does not apply, or a report path that cannot be written; ``NotFound`` for
    an unknown model, version or ``against`` alias.
    """
    from shipyard.evaluation import run_gates  # scikit-learn, fairlearn, shap

    registry = Registry(store, request.project)
    candidate = registry.get_version(request.name, request.version)
    if request.report is not None:
        _check_writable(request.report)
    inputs, source = _eval_inputs(registry, request, candidate)
    report = run_gates(inputs, progress=progress, skip=request.skip)
    record = _store(store, request, inputs, report, source)
    if request.report is not None:
        from shipyard.checks._validation_html import render_validation

        request.report.write_text(render_validation(record, inputs.policy), encoding="utf-8")
    return ValidationResult(
        record=record,
        report=report,
        data_source=source,
        rows=len(inputs.rows),
        report_path=request.report,
    )


def _eval_inputs(
    registry: Registry, request: ValidationRequest, candidate: ModelVersion
) -> tuple[EvalInputs, str]:
    """Both models (verified archives, unpickled when first scored) and the rows they are
    judged on, with the sentence saying which rows those are."""
    from shipyard.evaluation import EvalInputs
    from shipyard.packaging import LoadedModel

    name = request.name
    policy = registry.policy(name)
    candidate_archive = registry.open_archive(name, candidate.version)
    champion = _champion(registry, request)
    champion_archive = registry.open_archive(name, champion.version) if champion else None
    columns = RowColumns(
        required=candidate_archive.schema.names(),
        optional=[
            *(champion_archive.schema.names() if champion_archive else []),
            *policy.sensitive,
        ],
    )
    rows = fresh_rows(request, policy.gates, columns, candidate_archive)
    inputs = EvalInputs(
        rows=rows.frame,
        target=rows.target,
        candidate=LoadedModel(candidate_archive),
        champion=LoadedModel(champion_archive) if champion_archive else None,
        policy=policy,
        candidate_archive=candidate_archive,
        champion_archive=champion_archive,
        candidate_size=candidate.size,
        champion_size=champion.size if champion else None,
    )
    return inputs, rows.source


def _champion(registry: Registry, request: ValidationRequest) -> ModelVersion | None:
    """The version ``against`` points to; ``None`` when it is the candidate itself or when
    nothing is in production yet (a first model). Another alias must exist."""
    try:
        champion = registry.resolve(f"{request.name}@{request.against}")
    except NotFound:
        if request.against == PRODUCTION:
            return None
        aliases = ", ".join(sorted(registry.aliases(request.name))) or "none"
        raise NotFound(
            f"Model '{request.name}' has no '{request.against}' version to validate against "
            f"(--against names an alias; its aliases: {aliases})."
        ) from None
    return None if champion.version == request.version else champion


def _store(
    store: Store,
    request: ValidationRequest,
    inputs: EvalInputs,
    report: GateReport,
    source: str,
) -> GateRecord:
    """The one gate record of this run, bound to the digest the gates judged (audited)."""
    policy = inputs.policy
    document = {
        **report.to_json(),
        "objective": policy.objective,
        "accept": str(policy.accept) if policy.accept else None,
        "data_source": source,
        "rows": len(inputs.rows),
    }
    return Gates(store).record(
        request.name,
        request.version,
        digest=inputs.candidate_archive.digest,
        passed=report.passed,
        failed=report.failed,
        champion=inputs.champion.version if inputs.champion else None,
        data_source=source,
        report=document,
        actor=request.actor,
        schema_changes=_schema_changes(report),
    )


def _check_writable(path: Path) -> None:
    """Refuse a report path that cannot be written before any work is done."""
    folder = path.expanduser().absolute().parent
    if path.is_dir():
        raise InvalidInput(f"--report '{path}' is a folder; give a file name such as report.html.")
    if not folder.is_dir():
        raise InvalidInput(
            f"Cannot write the report to '{path}': folder '{folder}' does not exist."
        )
    if not os.access(folder, os.W_OK):
        raise InvalidInput(f"Cannot write the report to '{path}': folder '{folder}' is read-only.")


def _schema_changes(report: GateReport) -> list[dict[str, Any]]:
    for gate in report.gates:
        if gate.kind == "schema":
            changes = gate.data.get("changes", [])
            return list(changes) if isinstance(changes, list) else []
    return []
