"""A version's model card (Mitchell et al., "Model Cards for Model Reporting", 2019), built
from what Shipyard knows: the registry (details, approvals), the archive's manifest and
lineage (frameworks, git, training data fingerprints), the model's policy (the business
objective, its acceptance criterion, the sensitive features), the latest gate record (metrics
with their intervals, slices, fairness by group), the waivers, the risk register, and the
sections a person wrote (``shipyard card edit``).

The gate record's report is read leniently: a key it lacks leaves its line empty, and each
gate's ``data`` is shown as facts and tables whatever it holds.

>>> card = build_card(store, "churn", 3, project=project)  # doctest: +SKIP
>>> card.intended_use.criterion  # doctest: +SKIP
'roc_auc >= 0.8'
>>> card.to_json()["ethical_considerations"]["waivers"][0]["approver"]  # doctest: +SKIP
'bob'
"""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime
from typing import Any

from shipyard.checks._card_model import (
    Caveats,
    DatasetLine,
    EthicalConsiderations,
    EvaluationData,
    Factors,
    GateLine,
    IntendedUse,
    MetricLine,
    Metrics,
    ModelCard,
    ModelDetails,
    QuantitativeAnalyses,
    RiskLine,
    Table,
    TrainingData,
    Validation,
    WaiverLine,
)
from shipyard.config import ProjectConfig
from shipyard.errors import NotFound
from shipyard.packaging import Archive
from shipyard.registry import (
    CardNotes,
    GateRecord,
    Gates,
    ModelVersion,
    Registry,
    Risks,
    Waiver,
)
from shipyard.store import Store
from shipyard.tracking import Tracker

#: Rows of one table the card keeps (a slice table can be long).
MAX_TABLE_ROWS = 50


def build_card(store: Store, name: str, version: int, *, project: ProjectConfig) -> ModelCard:
    """The model card of ``name`` v``version`` (``NotFound`` for an unknown model or
    version, with the registry's hint)."""
    registry = Registry(store, project)
    mv = registry.get_version(name, version)
    info = next(i for i in registry.versions(name) if i.version.version == version)
    policy = registry.policy(name)
    archive = registry.open_archive(name, version)
    gates = Gates(store)
    record = gates.latest(name, version)
    waivers = gates.waivers(name, version)
    risks = Risks(store).list(name, version=version)
    notes = {s: n.text for s, n in CardNotes(store).get(name, version).items()}
    waived = {w.gate for w in waivers}
    lines = _gate_lines(record, waived)
    fairness = [g for g in lines if g.kind == "fairness"]
    slices = [g for g in lines if g.kind == "slices"]
    accept = next((g for g in lines if g.name == "accept"), None)
    report = record.report if record is not None else {}
    return ModelCard(
        details=_details(store, mv, archive, info.stage, info.aliases, info.approvals),
        intended_use=IntendedUse(
            objective=policy.objective,
            criterion=str(policy.accept) if policy.accept is not None else None,
            criterion_met=accept.passed if accept is not None else None,
            notes=notes.get("intended_use", ""),
            out_of_scope=notes.get("out_of_scope_uses", ""),
        ),
        factors=Factors(
            sensitive=list(policy.sensitive),
            sliced=_sliced_features(slices),
            notes=notes.get("factors", ""),
        ),
        metrics=Metrics(
            registered=dict(mv.metrics),
            validated=[_metric_line(g) for g in lines if g.kind in ("metric", "accept")],
            validation=_validation(record),
        ),
        evaluation_data=EvaluationData(
            data_source=record.data_source if record is not None else None,
            rows=_int(report.get("rows", report.get("n_rows"))),
            archive_rows=_eval_rows(archive),
            notes=notes.get("evaluation_data", ""),
        ),
        training_data=TrainingData(
            datasets=_datasets(store, mv, archive), notes=notes.get("training_data", "")
        ),
        quantitative_analyses=QuantitativeAnalyses(slices=slices, fairness=fairness),
        ethical_considerations=EthicalConsiderations(
            notes=notes.get("ethical_considerations", ""),
            fairness=fairness,
            waivers=[_waiver_line(w) for w in waivers],
        ),
        caveats=Caveats(
            caveats=notes.get("caveats", ""),
            limitations=notes.get("limitations", ""),
            recommendations=notes.get("recommendations", ""),
            failed_gates=[g for g in lines if not g.passed],
            open_risks=[
                RiskLine(
                    id=r.id,
                    title=r.title,
                    severity=r.severity,
                    owner=r.owner,
                    mitigation=r.mitigation,
                    scope=r.scope,
                )
                for r in risks
            ],
        ),
        notes=notes,
        generated_at=datetime.now(UTC),
    )


def _details(
    store: Store,
    mv: ModelVersion,
    archive: Archive,
    stage: str,
    aliases: tuple[str, ...],
    approvals: tuple[str, ...],
) -> ModelDetails:
    manifest = archive.manifest
    git = dict(manifest.lineage.git)
    if not git.get("commit") and mv.run_id is not None:
        run = _run(store, mv.run_id)
        git = dict(run.git) if run is not None else git
    dirty = git.get("dirty")
    return ModelDetails(
        name=mv.model_name,
        version=mv.version,
        description=mv.description,
        author=mv.author,
        created_at=mv.created_at,
        stage=stage,
        aliases=list(aliases),
        approved_by=list(approvals),
        flavor=mv.flavor,
        frameworks=dict(manifest.frameworks),
        python=manifest.python,
        task=mv.task,
        classes=manifest.classes,
        digest=mv.digest,
        size=mv.size,
        run_id=mv.run_id,
        git_commit=git.get("commit"),
        git_branch=git.get("branch"),
        git_dirty=bool(dirty) if dirty is not None else None,
    )


def _run(store: Store, run_id: str) -> Any:
    try:
        return Tracker(store).get(run_id)
    except NotFound:  # the run was deleted; the archive's lineage still says what it can
        return None


def _datasets(store: Store, mv: ModelVersion, archive: Archive) -> list[DatasetLine]:
    fingerprints: dict[str, dict[str, Any]] = {}
    if mv.run_id is not None and _run(store, mv.run_id) is not None:
        fingerprints = {d.name: d.fingerprint for d in Tracker(store).datasets(mv.run_id)}
    out = []
    for d in archive.manifest.lineage.datasets:
        name = str(d.get("name", "?"))
        schema = fingerprints.get(name, {}).get("schema") or {}
        columns = [
            {"name": str(c.get("name")), "dtype": str(c.get("dtype"))}
            for c in schema.get("columns", [])
            if isinstance(c, dict)
        ]
        if not columns and name == "train":  # the features, at least: the archive's schema
            columns = [{"name": c.name, "dtype": str(c.dtype)} for c in archive.schema.columns]
        out.append(
            DatasetLine(
                name=name,
                content_hash=str(d.get("content_hash", "")),
                rows=_int(d.get("n_rows")),
                columns=columns,
            )
        )
    return out


def _eval_rows(archive: Archive) -> int | None:
    data = archive.members.get("eval/rows.parquet")
    if data is None:
        return None
    import pyarrow.parquet as pq

    return int(pq.ParquetFile(io.BytesIO(data)).metadata.num_rows)


def _validation(record: GateRecord | None) -> Validation | None:
    if record is None:
        return None
    return Validation(
        id=record.id,
        at=record.created_at,
        by=record.created_by,
        passed=record.passed,
        champion=record.champion,
        failed=[str(f) for f in record.failed],
    )


def _waiver_line(w: Waiver) -> WaiverLine:
    return WaiverLine(gate=w.gate, approver=w.approver, reason=w.reason, at=w.created_at)


def _gate_lines(record: GateRecord | None, waived: set[str]) -> list[GateLine]:
    if record is None:
        return []
    gates = record.report.get("gates")
    out = []
    for g in gates if isinstance(gates, list) else []:
        if not isinstance(g, dict) or "name" not in g:
            continue
        name = str(g["name"])
        data = g.get("data") if isinstance(g.get("data"), dict) else {}
        facts, tables = _facts_and_tables(data or {})
        out.append(
            GateLine(
                name=name,
                kind=_kind(name, g.get("kind")),
                passed=bool(g.get("passed", True)) or g.get("applicable") is False,
                value=_float(g.get("value")),
                limit=_float(g.get("limit")),
                detail=str(g.get("detail") or ""),
                waived=name in waived,
                facts=facts,
                tables=tables,
            )
        )
    return out


def _kind(name: str, kind: Any) -> str:
    if name == "accept":
        return "accept"
    if isinstance(kind, str) and kind:
        return kind
    prefix = name.partition(":")[0]
    return {"metric": "metric", "fairness": "fairness", "slices": "slices"}.get(prefix, prefix)


def _metric_line(g: GateLine) -> MetricLine:
    ci = g.facts.get("ci")
    low, high = g.facts.get("ci_low"), g.facts.get("ci_high")
    if isinstance(ci, list) and len(ci) == 2 and low is None:  # "ci": [low, high]
        low, high = ci
    name = g.name.partition(":")[2] if g.name.startswith("metric:") else g.name
    return MetricLine(
        name=name,
        value=g.value,
        ci_low=_float(low),
        ci_high=_float(high),
        limit=g.limit,
        champion=_float(g.facts.get("champion", g.facts.get("champion_value"))),
        passed=g.passed,
        detail=g.detail,
    )


def _sliced_features(slices: list[GateLine]) -> list[str]:
    found: list[str] = []
    for g in slices:
        for t in g.tables:
            for column in ("feature", "column"):
                if column in t.columns:
                    i = t.columns.index(column)
                    found += [str(r[i]) for r in t.rows]
        features = g.facts.get("features")
        if isinstance(features, list):
            found += [str(f) for f in features]
    return list(dict.fromkeys(f for f in found if f))


def _facts_and_tables(data: dict[str, Any]) -> tuple[dict[str, Any], list[Table]]:
    """A gate's ``data``: scalars as facts; lists of records and mappings as tables."""
    facts: dict[str, Any] = {}
    tables: list[Table] = []
    for key, value in data.items():
        if value is None or isinstance(value, str | int | float | bool):
            facts[key] = value
        elif isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
            columns = list(dict.fromkeys(k for row in value for k in row))
            rows = [[_cell(row.get(c)) for c in columns] for row in value[:MAX_TABLE_ROWS]]
            tables.append(Table(title=key, columns=[str(c) for c in columns], rows=rows))
        elif isinstance(value, dict) and value and all(isinstance(v, dict) for v in value.values()):
            columns = list(dict.fromkeys(k for row in value.values() for k in row))
            rows = [
                [str(k), *(_cell(row.get(c)) for c in columns)]
                for k, row in list(value.items())[:MAX_TABLE_ROWS]
            ]
            tables.append(Table(title=key, columns=["", *map(str, columns)], rows=rows))
        elif isinstance(value, dict) and value:
            rows = [[str(k), _cell(v)] for k, v in list(value.items())[:MAX_TABLE_ROWS]]
            tables.append(Table(title=key, columns=["", key], rows=rows))
        elif isinstance(value, list) and all(isinstance(v, str | int | float) for v in value):
            facts[key] = value
        else:
            facts[key] = json.dumps(value, default=str)
    return facts, tables


def _cell(value: Any) -> Any:
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return json.dumps(value, default=str)


def _float(value: Any) -> float | None:
    if isinstance(value, bool) or value is None:
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def _int(value: Any) -> int | None:
    number = _float(value)
    return int(number) if number is not None else None
