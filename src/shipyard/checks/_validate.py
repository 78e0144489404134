"""``validate_version``: one validation of a candidate version against the champion, from the
registry to the stored gate record.

Both models are judged on the SAME fresh rows, chosen in this order: the ``--data`` file; the
labelled production traffic of the policy's window, when at least ``min_labels`` labels arrived;
else the candidate's own eval rows (registered with it). Which one was used is recorded and
printed. The gates themselves are ``shipyard.evaluation.run_gates``; here the rows are found,
the models loaded, the outcome stored as one gate record bound to the candidate's archive
digest (audited, with a ``schema.changed`` event when the input schema changed), and the HTML
report written.
"""

from __future__ import annotations

import numbers
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from shipyard.config import GateSettings, ProjectConfig, parse_window
from shipyard.dataset import read_table
from shipyard.errors import InvalidInput, NotFound
from shipyard.packaging import EVAL_TARGET
from shipyard.registry import PRODUCTION, GateRecord, Gates, ModelVersion, Registry
from shipyard.store import Store

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

    from shipyard.evaluation import EvalInputs, GateReport
    from shipyard.packaging import Archive


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


@dataclass(frozen=True)
class _Rows:
    frame: pd.DataFrame
    target: np.ndarray
    source: str


@dataclass(frozen=True)
class _Columns:
    """The columns the rows must have (the candidate's inputs) and may have (the champion's
    inputs and the sensitive features, which the candidate need not read)."""

    required: list[str]
    optional: list[str]

    def keep(self, available: Any) -> list[str]:
        present = set(available)
        extra = [c for c in self.optional if c in present and c not in self.required]
        return [*self.required, *dict.fromkeys(extra)]


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
    columns = _Columns(
        required=candidate_archive.schema.names(),
        optional=[
            *(champion_archive.schema.names() if champion_archive else []),
            *policy.sensitive,
        ],
    )
    rows = _fresh_rows(request, policy.gates, columns, candidate_archive)
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


def _fresh_rows(
    request: ValidationRequest, gates: GateSettings, columns: _Columns, archive: Archive
) -> _Rows:
    """The rows both models are judged on (see the module docstring for the order)."""
    if request.data is not None:
        return _given_rows(request, columns, archive)
    if request.target is not None:
        raise InvalidInput("--target names a column of --data; pass --data FILE as well.")
    production = _production_rows(request, gates, columns, archive)
    if isinstance(production, _Rows):
        return production
    eval_rows = archive.eval_rows()
    if eval_rows is None:
        raise InvalidInput(
            f"No rows to validate {request.name} v{request.version} on: {production} and no "
            "eval rows in its archive (registered without X_eval). Pass --data FILE "
            "--target COLUMN."
        )
    return _rows(
        eval_rows,
        EVAL_TARGET,
        columns,
        f"the candidate's own eval rows ({len(eval_rows):,} rows registered with "
        f"v{request.version}; {production})",
        archive,
    )


def _given_rows(request: ValidationRequest, columns: _Columns, archive: Archive) -> _Rows:
    """``--data`` (a file) or ``data`` (a DataFrame), labelled by its ``target`` column."""
    if not request.target:
        raise InvalidInput("--data needs --target: the column of the file holding the label.")
    if isinstance(request.data, Path):
        frame, what = read_table(request.data), f"the file {request.data}"
    else:
        assert request.data is not None
        frame, what = request.data, request.data_label or "the rows passed in"
    if request.target not in frame.columns:
        raise InvalidInput(
            f"There is no column '{request.target}' (the target) in {what}; its columns are: "
            f"{', '.join(map(str, frame.columns))}."
        )
    return _rows(frame, request.target, columns, f"{what} ({len(frame):,} rows)", archive)


def _production_rows(
    request: ValidationRequest, gates: GateSettings, columns: _Columns, archive: Archive
) -> _Rows | str:
    """The answered production requests of the window that have a label; or, when they
    cannot be used, why not (fewer than ``min_labels``, or logged without an input column)."""
    start = datetime.now(UTC) - parse_window(gates.window, option="window")
    too_few = (
        f"fewer than {gates.min_labels} labelled production predictions in the last {gates.window}"
    )
    if request.log_root is None or not request.log_root.exists():
        return too_few
    from shipyard.predlog import query

    # Each prediction once (a shadow's record shares the answered one's id), its latest label.
    sql = f"""
        SELECT p.*, f.label AS "{EVAL_TARGET}"
        FROM predictions p
        JOIN (SELECT prediction_id, arg_max(label, ts) AS label
              FROM feedback GROUP BY prediction_id) f USING (prediction_id)
        WHERE p.status = 'ok' AND coalesce(p.arm, '') <> 'shadow'
          AND epoch(p.ts) >= {start.timestamp()}
    """
    try:
        frame = query(request.log_root, sql, model=request.name)
    except InvalidInput:
        return too_few  # no feedback (or no prediction) recorded yet for this model
    if len(frame) < gates.min_labels:
        return too_few
    unlogged = [c for c in columns.required if f"in__{c}" not in frame.columns]
    if unlogged:  # logged under another schema: not comparable
        return (
            f"the {len(frame):,} labelled production predictions of the last {gates.window} "
            f"lack its input column(s) {', '.join(unlogged)}"
        )
    logged = {f"in__{c}": c for c in [*columns.required, *columns.optional]}
    frame = frame.rename(columns={k: v for k, v in logged.items() if k in frame.columns})
    return _rows(
        frame,
        EVAL_TARGET,
        columns,
        f"labelled production traffic ({len(frame):,} answered requests of {request.name} "
        f"logged since {start:%Y-%m-%d %H:%M} UTC with a label)",
        archive,
    )


def _rows(
    frame: pd.DataFrame, target: str, columns: _Columns, source: str, archive: Archive
) -> _Rows:
    """The labelled rows of ``frame``, cut to the columns the models and the gates read."""
    missing = [c for c in columns.required if c not in frame.columns]
    if missing:
        raise InvalidInput(
            f"The validation rows lack the model's column(s) {', '.join(missing)}; they need "
            f"every input column: {', '.join(columns.required)}."
        )
    labels = frame[target]
    keep = labels.notna().to_numpy()
    if not keep.all():
        frame, labels = frame[keep], labels[keep]
    if len(frame) == 0:
        raise InvalidInput(f"The validation rows ({source}) have no labelled row.")
    return _Rows(
        frame=frame[columns.keep(frame.columns)].reset_index(drop=True),
        target=_labels(labels, archive),
        source=source,
    )


def _labels(values: pd.Series, archive: Archive) -> np.ndarray:
    """Labels in the model's own class values: a label read back from a file or the log may
    be text ("1") or a float (1.0, a CSV column with a gap) where the class is the integer 1."""
    import numpy as np

    classes = archive.manifest.classes
    if archive.manifest.task == "regression":
        try:
            return values.astype(float).to_numpy()
        except (TypeError, ValueError) as exc:
            raise InvalidInput(f"The labels are not numbers: {exc}.") from exc
    if not classes:
        return values.to_numpy()
    by_key = {_label_key(c): c for c in classes}
    keys = [_label_key(v) for v in values]
    unknown = sorted({str(v) for v, k in zip(values, keys, strict=True) if k not in by_key})
    if unknown:
        raise InvalidInput(
            f"The labels hold value(s) {unknown[:5]} the model does not know; its classes "
            f"are {classes}."
        )
    return np.asarray(
        [by_key[k] for k in keys],
        dtype=object if any(isinstance(c, str) for c in classes) else None,
    )


def _label_key(value: Any) -> str:
    """One spelling per label: 1, 1.0, "1" and numpy's 1 are the same label."""
    if isinstance(value, bool | str) or not isinstance(value, numbers.Real):
        return str(value)
    number = float(value)
    return str(int(number)) if number.is_integer() else repr(number)


def _schema_changes(report: GateReport) -> list[dict[str, Any]]:
    for gate in report.gates:
        if gate.kind == "schema":
            changes = gate.data.get("changes", [])
            return list(changes) if isinstance(changes, list) else []
    return []
