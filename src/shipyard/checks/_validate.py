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

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from shipyard.config import ProjectConfig, parse_window
from shipyard.dataset import read_table
from shipyard.errors import InvalidInput, NotFound
from shipyard.packaging import EVAL_TARGET
from shipyard.registry import PRODUCTION, GateRecord, Gates, Registry
from shipyard.store import Store

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

    from shipyard.evaluation import GateReport
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


def validate_version(
    store: Store,
    request: ValidationRequest,
    *,
    progress: Callable[[str], None] | None = None,
) -> ValidationResult:
    """Run every gate for ``request.version`` against the ``request.against`` version on the
    same rows, store the gate record (audited) and write the report.

    Raises ``InvalidInput`` (nothing stored) for a data file that is missing, lacks the target
    or the model's columns, a sensitive feature the rows lack, an unknown metric in a gate, or
    a report path that cannot be written.
    """
    from shipyard.evaluation import EvalInputs, run_gates  # scikit-learn, fairlearn, shap

    registry = Registry(store, request.project)
    name, version = request.name, request.version
    candidate_version = registry.get_version(name, version)
    policy = registry.policy(name)
    if request.report is not None:
        _check_writable(request.report)
    candidate_archive = registry.open_archive(name, version)
    champion_version = _champion(registry, name, request.against)
    if champion_version == version:
        champion_version = None  # validating the champion itself: nothing to compare with
    champion_archive = (
        registry.open_archive(name, champion_version) if champion_version is not None else None
    )
    rows = _fresh_rows(request, policy.gates, candidate_archive)
    candidate = registry.load(name, version)
    champion = registry.load(name, champion_version) if champion_version is not None else None
    report = run_gates(
        EvalInputs(
            rows=rows.frame,
            target=rows.target,
            candidate=candidate,
            champion=champion,
            policy=policy,
            candidate_archive=candidate_archive,
            champion_archive=champion_archive,
            candidate_size=candidate_version.size,
            champion_size=(
                registry.get_version(name, champion_version).size
                if champion_version is not None
                else None
            ),
        ),
        progress=progress,
        skip=request.skip,
    )
    document = {
        **report.to_json(),
        "objective": policy.objective,
        "accept": str(policy.accept) if policy.accept else None,
        "data_source": rows.source,
        "rows": len(rows.frame),
    }
    record = Gates(store).record(
        name,
        version,
        digest=candidate_version.digest,
        passed=report.passed,
        failed=[g.name for g in report.gates if g.applicable and not g.passed],
        champion=champion_version,
        data_source=rows.source,
        report=document,
        actor=request.actor,
        schema_changes=_schema_changes(report),
    )
    path = None
    if request.report is not None:
        from shipyard.checks._validation_html import render_validation

        path = request.report
        path.write_text(render_validation(record, policy), encoding="utf-8")
    return ValidationResult(
        record=record,
        report=report,
        data_source=rows.source,
        rows=len(rows.frame),
        report_path=path,
    )


def _champion(registry: Registry, name: str, alias: str) -> int | None:
    try:
        return registry.resolve(f"{name}@{alias}").version
    except NotFound:
        return None


def _check_writable(path: Path) -> None:
    """Refuse a report path that cannot be written before any work is done."""
    folder = path.expanduser().absolute().parent
    if path.is_dir():
        raise InvalidInput(f"--report '{path}' is a folder; give a file name such as report.html.")
    if not folder.is_dir():
        raise InvalidInput(
            f"Cannot write the report to '{path}': folder '{folder}' does not exist."
        )
    import os

    if not os.access(folder, os.W_OK):
        raise InvalidInput(f"Cannot write the report to '{path}': folder '{folder}' is read-only.")


def _fresh_rows(request: ValidationRequest, gates: Any, archive: Archive) -> _Rows:
    """The rows both models are judged on (see the module docstring for the order)."""
    columns = archive.schema.names()
    if request.data is not None:
        if not request.target:
            raise InvalidInput("--data needs --target: the column of the file holding the label.")
        if isinstance(request.data, Path):
            frame, what = read_table(request.data), f"the file {request.data}"
        else:
            frame, what = request.data, request.data_label or "the rows passed in"
        if request.target not in frame.columns:
            raise InvalidInput(
                f"{what} has no column '{request.target}' (the target); its columns are: "
                f"{', '.join(map(str, frame.columns))}."
            )
        return _rows(frame, request.target, columns, f"{what} ({len(frame):,} rows)", archive)
    if request.target is not None:
        raise InvalidInput("--target names a column of --data; pass --data FILE as well.")
    production = _production_rows(request, gates, columns, archive)
    if production is not None:
        return production
    eval_rows = archive.eval_rows()
    if eval_rows is None:
        raise InvalidInput(
            f"No rows to validate {request.name} v{request.version} on: fewer than "
            f"{gates.min_labels} labelled production predictions in the last {gates.window} and "
            "no eval rows in its archive (registered without X_eval). Pass --data FILE "
            "--target COLUMN."
        )
    return _rows(
        eval_rows,
        EVAL_TARGET,
        columns,
        f"the candidate's own eval rows ({len(eval_rows):,} rows registered with "
        f"v{request.version}; fewer than {gates.min_labels} labelled production predictions in "
        f"the last {gates.window})",
        archive,
    )


def _production_rows(
    request: ValidationRequest, gates: Any, columns: list[str], archive: Archive
) -> _Rows | None:
    """The answered production requests of the window that have a label, or ``None`` when
    fewer than ``min_labels`` labels arrived."""
    if request.log_root is None or not request.log_root.exists():
        return None
    from shipyard.predlog import query

    end = datetime.now(UTC)
    start = end - parse_window(gates.window, option="window")
    # Each prediction once (a shadow's record shares the answered one's id), its latest label.
    sql = f"""
        SELECT p.*, f.label AS "{EVAL_TARGET}"
        FROM predictions p
        JOIN (SELECT prediction_id, arg_max(label, ts) AS label
              FROM feedback GROUP BY prediction_id) f USING (prediction_id)
        WHERE p.status = 'ok' AND coalesce(p.arm, '') <> 'shadow'
          AND epoch(p.ts) >= {start.timestamp()} AND epoch(p.ts) < {end.timestamp()}
    """
    try:
        frame = query(request.log_root, sql, model=request.name)
    except InvalidInput:
        return None  # no feedback (or no prediction) recorded yet for this model
    if len(frame) < gates.min_labels:
        return None
    inputs = {f"in__{c}": c for c in columns}
    if not set(inputs).issubset(frame.columns):
        return None  # logged under another schema: not comparable
    frame = frame.rename(columns=inputs)
    return _rows(
        frame,
        EVAL_TARGET,
        columns,
        f"labelled production traffic ({len(frame):,} answered requests of {request.name} "
        f"logged since {start:%Y-%m-%d %H:%M} UTC with a label)",
        archive,
    )


def _rows(
    frame: pd.DataFrame, target: str, columns: list[str], source: str, archive: Archive
) -> _Rows:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise InvalidInput(
            f"The validation rows lack the model's column(s) {', '.join(missing)}; they need "
            f"every input column: {', '.join(columns)}."
        )
    labels = frame[target]
    keep = labels.notna().to_numpy()
    if not keep.all():
        frame, labels = frame[keep], labels[keep]
    if len(frame) == 0:
        raise InvalidInput(f"The validation rows ({source}) have no labelled row.")
    return _Rows(
        frame=frame[columns].reset_index(drop=True),
        target=_labels(labels, archive),
        source=source,
    )


def _labels(values: pd.Series, archive: Archive) -> np.ndarray:
    """Labels in the model's own class values (logged labels may come back as text)."""
    import numpy as np

    classes = archive.manifest.classes
    if archive.manifest.task == "regression":
        try:
            return values.astype(float).to_numpy()
        except (TypeError, ValueError) as exc:
            raise InvalidInput(f"The labels are not numbers: {exc}.") from exc
    if not classes:
        return values.to_numpy()
    by_text = {str(c): c for c in classes}
    texts = values.map(str)
    unknown = sorted(set(texts) - set(by_text))
    if unknown:
        raise InvalidInput(
            f"The labels hold value(s) {unknown[:5]} the model does not know; its classes "
            f"are {classes}."
        )
    return np.asarray(
        [by_text[t] for t in texts],
        dtype=object if any(isinstance(c, str) for c in classes) else None,
    )


def _schema_changes(report: GateReport) -> list[dict[str, Any]]:
    for gate in report.gates:
        if gate.kind == "schema":
            changes = gate.data.get("changes", [])
            return list(changes) if isinstance(changes, list) else []
    return []
