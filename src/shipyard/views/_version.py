"""The version page's read model: metrics, the newest gate report (gates, fairness,
explanations, waivers), the risk register, the archive's members and ONNX parity, lineage
(run, commit, data fingerprints, environment), approvals and approval requests.

The archive is read through its manifest only (``Registry.read_manifest``): nothing is
unpickled and no member but ``manifest.json`` is read, so a page view stays cheap.

>>> view = version_view(store, "churn", 3)  # doctest: +SKIP
>>> [g.status for g in view.gates.gates]  # doctest: +SKIP
['pass', 'pass', 'waived']
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel

from shipyard.config import ProjectConfig
from shipyard.errors import IntegrityError, NotFound
from shipyard.packaging import Manifest
from shipyard.registry import (
    PRODUCTION,
    ApprovalRequest,
    CardNotes,
    GateRecord,
    Gates,
    Registry,
    Risk,
    Risks,
    Traffic,
    section_title,
)
from shipyard.store import Store
from shipyard.tracking import Run, Tracker

GateStatus = Literal["pass", "fail", "waived", "not applicable"]
#: Features shown in the explanation (the gate report keeps up to 20).
TOP_FEATURES = 10


class GateRow(BaseModel):
    """One gate of a gate report: its value against its limit, and how it ended."""

    name: str
    kind: str
    status: GateStatus
    value: float | None
    limit: float | None
    detail: str


class GroupRates(BaseModel):
    """One group's rates in a fairness gate."""

    group: str
    rows: int | None
    selection_rate: float | None
    true_positive_rate: float | None
    false_positive_rate: float | None


class FairnessView(BaseModel):
    """A fairness gate: the sensitive feature, parity and equalized odds, rates per group."""

    gate: str
    feature: str
    status: GateStatus
    parity_ratio: float | None
    equalized_odds: float | None
    groups: list[GroupRates]


class FeatureImportance(BaseModel):
    feature: str
    importance: float


class ExplanationView(BaseModel):
    """The candidate's top features (mean |SHAP| or permutation importance)."""

    method: str
    rows: int | None
    features: list[FeatureImportance]
    moved: list[str]


class WaiverView(BaseModel):
    gate: str
    approver: str
    reason: str
    created_at: datetime


class GateReportView(BaseModel):
    """The newest gate record of the version's archive digest."""

    record: int
    created_at: datetime
    created_by: str
    passed: bool
    champion: int | None
    data_source: str
    rows: int | None
    gates: list[GateRow]
    fairness: list[FairnessView]
    explanation: ExplanationView | None
    waivers: list[WaiverView]


class RiskView(BaseModel):
    """One entry of the risk register (of this version, or of every version)."""

    id: int
    title: str
    severity: str
    owner: str
    mitigation: str
    status: str
    scope: str
    created_by: str
    created_at: datetime
    closed_by: str | None
    resolution: str


class MemberView(BaseModel):
    path: str
    sha256: str


class OnnxView(BaseModel):
    """ONNX export and its parity with the native model on the eval rows."""

    converted: bool
    precision: str | None
    max_abs_diff: float | None
    share_over_1e3: float | None
    eval_rows: int | None
    error: str | None


class ArchiveView(BaseModel):
    """The archive's manifest: members with their sha256, frameworks, ONNX parity."""

    digest: str
    size: int
    members: list[MemberView]
    frameworks: dict[str, str]
    python: str
    onnx: OnnxView | None
    error: str | None


class DatasetView(BaseModel):
    name: str
    content_hash: str
    rows: int | None


class LineageView(BaseModel):
    """Run -> git commit (and whether the tree was dirty) -> data -> environment; ``source``:
    where an imported version came from (``{"kind": "mlflow", "uri": "runs:/.../model",
    ...}``, empty for a version trained here)."""

    run_id: str | None
    run_found: bool
    run_user: str | None
    run_status: str | None
    git_commit: str | None
    git_branch: str | None
    git_dirty: bool | None
    datasets: list[DatasetView]
    python: str | None
    platform: str | None
    packages: dict[str, str]
    source: dict[str, Any]


class ApprovalView(BaseModel):
    approver: str
    reason: str
    created_at: datetime


class RequestView(BaseModel):
    """An approval request (``requested_by`` empty: a rejection nobody asked for)."""

    id: int
    requested_by: str
    comment: str
    created_at: datetime
    status: str
    decided_by: str | None
    decided_at: datetime | None
    reason: str


class CardSection(BaseModel):
    section: str
    title: str
    text: str


class VersionView(BaseModel):
    """Everything the version page shows, and the state its action forms carry
    (``production``: the production version, 0 for none; ``policy``: the id of the traffic
    policy in force, 0 for none)."""

    model: str
    version: int
    author: str
    created_at: datetime
    description: str
    flavor: str
    task: str
    stage: str
    aliases: list[str]
    archived_at: datetime | None
    tags: dict[str, Any]
    metrics: dict[str, float | None]
    production: int
    policy: int
    gates: GateReportView | None
    risks: list[RiskView]
    archive: ArchiveView
    lineage: LineageView
    approvals: list[ApprovalView]
    open_request: RequestView | None
    requests: list[RequestView]
    card: list[CardSection]


def version_view(
    store: Store, name: str, version: int, *, project: ProjectConfig | None = None
) -> VersionView:
    """The version page of ``name`` v``version`` (``NotFound`` for an unknown one)."""
    registry = Registry(store, project)
    mv = registry.get_version(name, version)
    info = next(i for i in registry.versions(name) if i.version.version == version)
    gates = Gates(store)
    record = gates.latest(name, version)
    manifest, archive_error = _manifest(registry, name, version)
    requests = [request_view(r) for r in registry.approval_requests(name, version=version)]
    approvals = registry.approvals(name, version)
    policy = Traffic(store, project).current(name)
    notes = CardNotes(store).get(name, version)
    return VersionView(
        model=name,
        version=version,
        author=mv.author,
        created_at=mv.created_at,
        description=mv.description,
        flavor=mv.flavor,
        task=mv.task,
        stage=info.stage,
        aliases=list(info.aliases),
        archived_at=mv.archived_at,
        tags=dict(mv.tags),
        metrics={k: number_or_none(v) for k, v in sorted(mv.metrics.items())},
        production=registry.aliases(name).get(PRODUCTION, 0),
        policy=policy.id if policy is not None else 0,
        gates=_gate_report(record, gates, name, version) if record is not None else None,
        risks=[risk_view(r) for r in Risks(store).list(name, version=version, include_closed=True)],
        archive=_archive(mv.digest, mv.size, manifest, archive_error),
        lineage=_lineage(store, mv.run_id, manifest),
        approvals=[ApprovalView.model_validate(a, from_attributes=True) for a in approvals],
        open_request=next((r for r in requests if r.status == "open"), None),
        requests=requests,
        card=[
            CardSection(section=s, title=section_title(s), text=n.text)
            for s, n in notes.items()
            if n.text.strip()
        ],
    )


def request_view(request: ApprovalRequest) -> RequestView:
    """The registry's approval request as the page and the API show it."""
    return RequestView.model_validate(request, from_attributes=True)


def risk_view(risk: Risk) -> RiskView:
    """A risk register entry as the page and the API show it (``scope``: ``v3`` or ``all
    versions``)."""
    return RiskView.model_validate(risk, from_attributes=True)


def gate_rows(record: GateRecord, waived: set[str]) -> list[GateRow]:
    """Each gate of ``record``'s report with its status (a failed gate with a waiver:
    ``waived``)."""
    rows = []
    for gate in record.report.get("gates", []):
        if not isinstance(gate, dict):
            continue
        name = str(gate.get("name", "?"))
        rows.append(
            GateRow(
                name=name,
                kind=str(gate.get("kind") or name.split(":")[0]),
                status=_status(gate, waived),
                value=number_or_none(gate.get("value")),
                limit=number_or_none(gate.get("limit")),
                detail=str(gate.get("detail") or ""),
            )
        )
    return rows


def _status(gate: dict[str, Any], waived: set[str]) -> GateStatus:
    if gate.get("applicable") is False:
        return "not applicable"
    if gate.get("passed"):
        return "pass"
    return "waived" if gate.get("name") in waived else "fail"


def _gate_report(record: GateRecord, gates: Gates, name: str, version: int) -> GateReportView:
    waivers = gates.waivers(name, version)
    waived = {w.gate for w in waivers}
    report_gates = [g for g in record.report.get("gates", []) if isinstance(g, dict)]
    rows = _int(record.report.get("rows"))
    return GateReportView(
        record=record.id,
        created_at=record.created_at,
        created_by=record.created_by,
        passed=record.passed,
        champion=record.champion,
        data_source=record.data_source,
        rows=rows,
        gates=gate_rows(record, waived),
        fairness=[
            _fairness(g, waived)
            for g in report_gates
            if g.get("kind") == "fairness" and isinstance(g.get("data"), dict)
        ],
        explanation=next(
            (
                e
                for g in report_gates
                if g.get("kind") == "explain" and (e := _explanation(g)) is not None
            ),
            None,
        ),
        waivers=[WaiverView.model_validate(w, from_attributes=True) for w in waivers],
    )


def _fairness(gate: dict[str, Any], waived: set[str]) -> FairnessView:
    data: dict[str, Any] = gate["data"]
    name = str(gate.get("name", "fairness"))
    return FairnessView(
        gate=name,
        feature=name.partition(":")[2] or name,
        status=_status(gate, waived),
        parity_ratio=number_or_none(data.get("parity_ratio")),
        equalized_odds=number_or_none(data.get("equalized_odds")),
        groups=[
            GroupRates(
                group=str(row.get("group", "?")),
                rows=_int(row.get("rows")),
                selection_rate=number_or_none(row.get("selection_rate")),
                true_positive_rate=number_or_none(row.get("true_positive_rate")),
                false_positive_rate=number_or_none(row.get("false_positive_rate")),
            )
            for row in data.get("groups", [])
            if isinstance(row, dict)
        ],
    )


def _explanation(gate: dict[str, Any]) -> ExplanationView | None:
    data = gate.get("data")
    candidate = data.get("candidate") if isinstance(data, dict) else None
    if not isinstance(candidate, dict):
        return None
    features = [
        FeatureImportance(feature=str(t.get("feature")), importance=value)
        for t in candidate.get("top", [])
        if isinstance(t, dict) and (value := number_or_none(t.get("importance"))) is not None
    ]
    moved = data.get("moved", []) if isinstance(data, dict) else []
    return ExplanationView(
        method=str(candidate.get("method", "")),
        rows=_int(candidate.get("rows")),
        features=features[:TOP_FEATURES],
        moved=[str(m) for m in moved] if isinstance(moved, list) else [],
    )


def _manifest(registry: Registry, name: str, version: int) -> tuple[Manifest | None, str | None]:
    """The manifest, or why it cannot be read (a deleted or damaged archive file)."""
    try:
        return registry.read_manifest(name, version), None
    except NotFound:
        return None, (
            "The archive file is missing from the artifact store (deleted by 'shipyard gc "
            "--archived-artifacts', or out of band)."
        )
    except IntegrityError as exc:
        return None, exc.message


def _archive(digest: str, size: int, manifest: Manifest | None, error: str | None) -> ArchiveView:
    onnx = manifest.onnx if manifest is not None else None
    return ArchiveView(
        digest=digest,
        size=size,
        members=[
            MemberView(path=path, sha256=sha)
            for path, sha in sorted((manifest.members if manifest else {}).items())
        ],
        frameworks=dict(manifest.frameworks) if manifest else {},
        python=manifest.python if manifest else "",
        onnx=OnnxView(
            converted=bool(onnx.get("converted")),
            precision=str(onnx["precision"]) if onnx.get("precision") else None,
            max_abs_diff=number_or_none(onnx.get("max_abs_diff")),
            share_over_1e3=number_or_none(onnx.get("share_over_1e3")),
            eval_rows=_int(onnx.get("n_eval_rows")),
            error=str(onnx["error"]) if onnx.get("error") else None,
        )
        if onnx
        else None,
        error=error,
    )


def _lineage(store: Store, run_id: str | None, manifest: Manifest | None) -> LineageView:
    tracker = Tracker(store)
    run: Run | None = None
    if run_id is not None:
        try:
            run = tracker.get(run_id)
        except NotFound:  # the run was deleted; the archive's lineage still says what it can
            run = None
    git = dict(manifest.lineage.git) if manifest is not None else {}
    if not git.get("commit") and run is not None:
        git = dict(run.git)
    dirty = git.get("dirty")
    datasets = list(manifest.lineage.datasets) if manifest is not None else []
    if not datasets and run is not None:
        datasets = [
            {"name": d.name, "content_hash": d.content_hash, "n_rows": d.n_rows}
            for d in tracker.datasets(run.id)
        ]
    env = dict(run.environment) if run is not None else {}
    packages = env.get("packages") if isinstance(env.get("packages"), dict) else {}
    return LineageView(
        run_id=run_id,
        run_found=run is not None,
        run_user=run.user if run is not None else None,
        run_status=run.status if run is not None else None,
        git_commit=str(git["commit"]) if git.get("commit") else None,
        git_branch=str(git["branch"]) if git.get("branch") else None,
        git_dirty=bool(dirty) if dirty is not None else None,
        datasets=[
            DatasetView(
                name=str(d.get("name", "?")),
                content_hash=str(d.get("content_hash", "")),
                rows=_int(d.get("n_rows")),
            )
            for d in datasets
            if isinstance(d, dict)
        ],
        python=str(env.get("python") or (manifest.python if manifest else "")) or None,
        platform=str(env["platform"]) if env.get("platform") else None,
        packages={str(k): str(v) for k, v in (packages or {}).items()},
        source=_source(manifest, env),
    )


def _source(manifest: Manifest | None, env: dict[str, Any]) -> dict[str, Any]:
    """Where an imported version came from: the archive's lineage, else the import's run."""
    if manifest is not None and manifest.lineage.source:
        return dict(manifest.lineage.source)
    imported = env.get("imported_from")
    return dict(imported) if isinstance(imported, dict) else {}


def number_or_none(value: Any) -> float | None:
    """``value`` as a float when it is a number (not a bool), else ``None``."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def _int(value: Any) -> int | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return int(value)
