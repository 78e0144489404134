"""``import_mlflow``: MLflow models, with their runs and aliases, as Shipyard versions.

Two phases, so that a failure leaves nothing half-written: first every MLflow version asked
for is downloaded, read and packaged (``prepare_archive``: ONNX, profile, checks as for any
model) without touching the store; only when all of them succeeded are their runs recorded
(``Tracker.import_run``) and their archives registered (``Registry.register``), audited as
any registration.

Idempotence: each imported version carries the tags ``mlflow.model_uuid`` (the ``MLmodel``'s
own id), ``mlflow.source`` and ``mlflow.version``; a model already imported under the target
name is skipped and reported, never registered twice.

Aliases never bypass four eyes: ``production`` is Shipyard's approved alias, so an MLflow
alias of that name is only recorded (tag ``mlflow.aliases``, listed as pending in the report:
approve, then promote); every other MLflow alias (``champion``, ``challenger``...) is set as
the Shipyard alias of the same name, as ``shipyard promote --to ALIAS`` would, audited.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import numpy as np
import pandas as pd

from shipyard.dataset import Fingerprint, fingerprint
from shipyard.errors import InvalidInput, NotFound
from shipyard.importing._mlmodel import MlflowModel, frame_for, read_model_dir
from shipyard.importing._tracking import MlflowRun, MlflowTracking, MlflowVersion, connect
from shipyard.packaging import Lineage, PreparedArchive, prepare_archive
from shipyard.registry import PRODUCTION, Registry, check_alias, check_name
from shipyard.tracking import Tracker

#: The version tags an import writes (and reads back for idempotence).
TAG_UUID, TAG_SOURCE, TAG_VERSION, TAG_RUN, TAG_ALIASES = (
    "mlflow.model_uuid",
    "mlflow.source",
    "mlflow.version",
    "mlflow.run_id",
    "mlflow.aliases",
)


@dataclass(frozen=True)
class ImportedVersion:
    """One MLflow model and what became of it: the Shipyard ``version`` it is (new or, when
    ``skipped``, imported before), its run and where the archive's reference data came from."""

    source: str
    version: int
    skipped: bool
    mlflow_version: int | None = None
    flavor: str | None = None
    run_id: str | None = None
    profile_from: str | None = None


@dataclass
class ImportReport:
    """What ``import_mlflow`` did: the versions, the aliases set, those left for approval."""

    name: str
    versions: list[ImportedVersion] = field(default_factory=list)
    aliases_set: dict[str, int] = field(default_factory=dict)
    aliases_pending: dict[str, int] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


@dataclass
class _Candidate:
    """An MLflow model to import: where it is, and its registry version and aliases if any."""

    source: str
    run_id: str | None = None
    version: MlflowVersion | None = None


@dataclass
class _Prepared:
    candidate: _Candidate
    model: MlflowModel
    flavor: str
    prepared: PreparedArchive
    train: pd.DataFrame
    run: MlflowRun | None
    profile_from: str
    key: str


def import_mlflow(
    source: str,
    *,
    registry: Registry,
    tracker: Tracker,
    user: str,
    name: str | None = None,
    tracking_uri: str | None = None,
    sample: pd.DataFrame | None = None,
    sample_label: str = "the sample",
) -> ImportReport:
    """Import an MLflow model directory, ``runs:/RUN/PATH``, ``models:/NAME/VERSION``,
    ``models:/NAME@ALIAS`` or ``models:/NAME`` (every version, in order) as versions of
    ``name`` (default: the registered model's name).

    The archive's reference profile and ONNX check run on ``sample`` when given, else on the
    model's input example; the schema follows the signature (its column types, and a column
    the signature does not require accepts nulls).

    >>> import_mlflow("models:/churn@champion", registry=registry, tracker=tracker,
    ...               user="alice", tracking_uri="http://127.0.0.1:5000")  # doctest: +SKIP
    """
    candidates, default_name, tracking = _resolve(source, tracking_uri)
    target = name or default_name
    if target is None:
        raise InvalidInput(f"Name the Shipyard model to import {source} as: pass --name NAME.")
    check_name(target)
    report = ImportReport(name=target)
    imported = _imported(registry, target)  # model key -> Shipyard version, imported before
    prepared: list[_Prepared] = []
    repeats: list[tuple[_Candidate, str]] = []  # the same MLflow model twice in this import
    with tempfile.TemporaryDirectory(prefix="shipyard-mlflow-") as tmp:
        for i, candidate in enumerate(candidates):
            model = _fetch(candidate, tracking, Path(tmp) / str(i))
            if candidate.run_id is None and tracking is not None:  # a directory: its run
                candidate.run_id = model.run_id
            key = model.model_uuid or _source_key(candidate, tracking)
            if key in imported or any(p.key == key for p in prepared):
                repeats.append((candidate, key))
                continue
            prepared.append(_prepare(candidate, model, key, sample, sample_label, tracking))
    runs: dict[str, str] = {}
    for item in prepared:
        fp = fingerprint(item.train, name="train")
        run_id = _record_run(item, fp, tracker, target, user, runs)
        item.prepared.lineage = Lineage(
            run_id=run_id,
            git=item.prepared.lineage.git,
            datasets=[{"name": fp.name, "content_hash": fp.content_hash, "n_rows": fp.n_rows}],
            source=item.prepared.lineage.source,
        )
        mv = registry.register(
            item.prepared,
            name=target,
            actor=user,
            description=_description(item),
            tags=_tags(item, tracking),
        )
        imported[item.key] = mv.version
        report.versions.append(
            ImportedVersion(
                source=item.candidate.source,
                version=mv.version,
                skipped=False,
                mlflow_version=item.candidate.version.version if item.candidate.version else None,
                flavor=item.flavor,
                run_id=run_id,
                profile_from=item.profile_from,
            )
        )
    report.versions.extend(_skipped(candidate, imported[key]) for candidate, key in repeats)
    report.versions.sort(key=lambda v: v.mlflow_version or 0)  # MLflow's order
    by_mlflow_version = {
        v.mlflow_version: v.version for v in report.versions if v.mlflow_version is not None
    }
    _aliases(registry, target, user, candidates, by_mlflow_version, report)
    return report


# -- resolving the source ------------------------------------------------------------------
def _resolve(
    source: str, tracking_uri: str | None
) -> tuple[list[_Candidate], str | None, MlflowTracking | None]:
    parsed = urlparse(source)
    if parsed.scheme in ("models", "runs"):
        if not tracking_uri:
            raise InvalidInput(
                f"{source} is read from an MLflow tracking server: pass --tracking-uri URI "
                "(or set MLFLOW_TRACKING_URI)."
            )
        tracking = connect(tracking_uri)
        if parsed.scheme == "runs":
            run_id, _, artifact = parsed.path.strip("/").partition("/")
            if not run_id or not artifact:
                raise InvalidInput(f"{source} is not a runs:/RUN_ID/PATH URI.")
            return [_Candidate(source=source, run_id=run_id)], None, tracking
        ref = parsed.path.strip("/")
        if "@" in ref:
            model, alias = ref.split("@", 1)
            mv = tracking.alias(model, alias)
            return [_Candidate(source=source, run_id=mv.run_id, version=mv)], model, tracking
        model, _, number = ref.partition("/")
        if not model:
            raise InvalidInput(f"{source} names no model: use models:/NAME[/VERSION|@ALIAS].")
        if number:
            if not number.isdigit():
                raise InvalidInput(
                    f"{source}: '{number}' is not a version number (MLflow's stages are not "
                    "read; use models:/NAME/VERSION or models:/NAME@ALIAS)."
                )
            mv = tracking.version(model, int(number))
            return [_Candidate(source=source, run_id=mv.run_id, version=mv)], model, tracking
        versions = tracking.versions(model)
        if not versions:
            raise NotFound(f"The registered model '{model}' has no versions in {tracking.uri}.")
        return (
            [
                _Candidate(source=f"models:/{model}/{v.version}", run_id=v.run_id, version=v)
                for v in versions
            ],
            model,
            tracking,
        )
    local = Path(parsed.path) if parsed.scheme == "file" else Path(source)
    if parsed.scheme not in ("", "file") and len(parsed.scheme) > 1:  # C:\\... is a path
        raise InvalidInput(
            f"{source}: Shipyard imports an MLflow model directory, runs:/RUN_ID/PATH or "
            "models:/NAME[/VERSION|@ALIAS]."
        )
    if not local.exists():
        raise InvalidInput(f"No such MLflow model directory: '{local}'.")
    store = connect(tracking_uri) if tracking_uri else None
    return [_Candidate(source=str(local.resolve()))], None, store


def _fetch(candidate: _Candidate, tracking: MlflowTracking | None, dest: Path) -> MlflowModel:
    label = candidate.source
    if tracking is None or not urlparse(candidate.source).scheme:
        return read_model_dir(Path(candidate.source), label=f"'{label}'")
    location = candidate.version.source if candidate.version is not None else candidate.source
    return read_model_dir(tracking.download(location, dest), label=label)


# -- packaging -----------------------------------------------------------------------------
def _prepare(
    candidate: _Candidate,
    model: MlflowModel,
    key: str,
    sample: pd.DataFrame | None,
    sample_label: str,
    tracking: MlflowTracking | None,
) -> _Prepared:
    flavor, _ = model.flavor()  # an unsupported flavor is refused before anything is loaded
    specs = model.signature()
    data: pd.DataFrame | np.ndarray | None
    if sample is not None:
        data, origin = sample, sample_label
    else:
        data, origin = model.input_example(), "the input example"
    if data is None:
        what = "a signature but no input example" if specs else "neither signature nor example"
        raise InvalidInput(
            f"The MLflow model {model.label} has {what}: pass --sample data.csv (rows like the "
            "training data) for its schema and reference profile."
        )
    X = frame_for(specs, data, what=origin)
    loaded = model.load()
    names = getattr(loaded, "feature_names_in_", None)
    if specs is None and names is not None and isinstance(X, pd.DataFrame):
        # no signature: the model's own feature names say which columns of a sample it takes
        missing = [str(n) for n in names if n not in X.columns]
        if missing:
            raise InvalidInput(f"{origin} lacks the model's columns {', '.join(missing)}.")
        X = X[[str(n) for n in names]]
    run = _run(candidate, tracking)
    prepared = prepare_archive(
        loaded,
        X_train=X,
        lineage=Lineage(
            git=_git(run),
            source=_source(candidate, model, flavor, tracking, origin, len(X)),
        ),
    )
    if specs:
        # What MLflow's server took, Shipyard's takes: NaN in a float column (MLflow's float and
        # double hold it), and null in a column the signature does not require, whether the
        # few rows of an example had one or not.
        nullable = {s.name for s in specs if not s.required or s.dtype in ("float", "double")}
        for column in prepared.input_schema.get("columns", []):
            if column["name"] in nullable:
                column["nullable"] = True
    if model.requirements:
        prepared.members["requirements.lock"] = _lock(model)
    train = X if isinstance(X, pd.DataFrame) else pd.DataFrame(X).rename(columns=lambda i: f"x{i}")
    return _Prepared(
        candidate=candidate,
        model=model,
        flavor=flavor,
        prepared=prepared,
        train=train,
        run=run,
        profile_from=f"{origin} ({len(X)} rows)",
        key=key,
    )


def _lock(model: MlflowModel) -> bytes:
    python = model.flavors.get("python_function", {}).get("python_version", "")
    header = f"# from MLflow's requirements of {model.label}" + (
        f" (python {python})" if python else ""
    )
    return ("\n".join([header, *model.requirements]) + "\n").encode()


def _git(run: MlflowRun | None) -> dict[str, Any]:
    if run is None:
        return {}
    tags = run.tags
    git = {
        "commit": tags.get("mlflow.source.git.commit"),
        "repo": tags.get("mlflow.source.git.repoURL"),
        "branch": tags.get("mlflow.source.git.branch"),
    }
    return {k: v for k, v in git.items() if v}


def _run(candidate: _Candidate, tracking: MlflowTracking | None) -> MlflowRun | None:
    if tracking is None or candidate.run_id is None:
        return None
    return tracking.run(candidate.run_id)


def _source(
    candidate: _Candidate,
    model: MlflowModel,
    flavor: str,
    tracking: MlflowTracking | None,
    origin: str,
    rows: int,
) -> dict[str, Any]:
    source: dict[str, Any] = {
        "kind": "mlflow",
        "uri": candidate.source,
        "flavor": flavor,
        "model_uuid": model.model_uuid,
        "mlflow_version": model.meta.get("mlflow_version"),
        "run_id": candidate.run_id or model.run_id,
        "reference_data": f"{origin} ({rows} rows)",
    }
    if tracking is not None:
        source["tracking_uri"] = tracking.uri
    if candidate.version is not None:
        source["registered_model"] = candidate.version.name
        source["version"] = candidate.version.version
    return {k: v for k, v in source.items() if v is not None}


def _source_key(candidate: _Candidate, tracking: MlflowTracking | None) -> str:
    return f"{tracking.uri if tracking else ''} {candidate.source}".strip()


# -- writing -------------------------------------------------------------------------------
def _imported(registry: Registry, name: str) -> dict[str, int]:
    """The versions of ``name`` imported before, by model uuid (or source)."""
    try:
        infos = registry.versions(name)
    except NotFound:
        return {}
    out: dict[str, int] = {}
    for info in infos:
        tags = info.version.tags
        for tag in (TAG_UUID, TAG_SOURCE):
            if tags.get(tag):
                out.setdefault(str(tags[tag]), info.version.version)
    return out


def _skipped(candidate: _Candidate, version: int) -> ImportedVersion:
    return ImportedVersion(
        source=candidate.source,
        version=version,
        skipped=True,
        mlflow_version=candidate.version.version if candidate.version else None,
    )


def _record_run(
    item: _Prepared,
    fp: Fingerprint,
    tracker: Tracker,
    target: str,
    user: str,
    runs: dict[str, str],
) -> str:
    """The Shipyard run of ``item``: its MLflow run's params and metrics (one Shipyard run
    per MLflow run and import), or a run with only the source for a bare directory."""
    mlflow_run = item.run
    key = mlflow_run.run_id if mlflow_run is not None else item.candidate.source
    if key in runs:
        return runs[key]
    source = {k: v for k, v in item.prepared.lineage.source.items() if k != "reference_data"}
    if mlflow_run is not None:
        source["run_name"] = mlflow_run.name
        source["run_user"] = mlflow_run.user
        run = tracker.import_run(
            model=target,
            user=user,
            params=mlflow_run.params,
            metrics=mlflow_run.metrics,
            started_at=_time(mlflow_run.start_ms),
            ended_at=_time(mlflow_run.end_ms) if mlflow_run.end_ms else None,
            status={"FAILED": "failed", "KILLED": "killed"}.get(mlflow_run.status, "finished"),
            git=item.prepared.lineage.git,
            source=source,
            datasets=[fp],
        )
    else:
        now = datetime.now(UTC)
        run = tracker.import_run(
            model=target,
            user=user,
            params={},
            metrics={},
            started_at=now,
            ended_at=now,
            source=source,
            datasets=[fp],
        )
    runs[key] = run.id
    return run.id


def _time(ms: int | None) -> datetime:
    if ms is None:
        return datetime.now(UTC)
    return datetime.fromtimestamp(ms / 1000, tz=UTC)


def _description(item: _Prepared) -> str:
    if item.candidate.version is not None and item.candidate.version.description:
        return item.candidate.version.description
    return f"Imported from MLflow: {item.candidate.source}"


def _tags(item: _Prepared, tracking: MlflowTracking | None) -> dict[str, Any]:
    tags: dict[str, Any] = {
        TAG_UUID: item.key,
        TAG_SOURCE: _source_key(item.candidate, tracking),
    }
    if item.candidate.version is not None:
        tags[TAG_VERSION] = item.candidate.version.version
        if item.candidate.version.aliases:
            tags[TAG_ALIASES] = sorted(item.candidate.version.aliases)
    run_id = item.candidate.run_id or item.model.run_id
    if run_id:
        tags[TAG_RUN] = run_id
    return tags


def _aliases(
    registry: Registry,
    name: str,
    user: str,
    candidates: list[_Candidate],
    by_mlflow_version: dict[int, int],
    report: ImportReport,
) -> None:
    """Set the MLflow aliases of the imported versions that Shipyard lets a writer set, and
    list ``production`` as pending (it needs a four-eyes approval first)."""
    current = registry.aliases(name) if report.versions else {}
    for candidate in candidates:
        mv = candidate.version
        if mv is None or mv.version not in by_mlflow_version:
            continue
        version = by_mlflow_version[mv.version]
        for alias in mv.aliases:
            if alias == PRODUCTION:
                report.aliases_pending[alias] = version
                continue
            try:
                check_alias(alias)
            except InvalidInput:
                report.notes.append(f"MLflow alias '{alias}' is not a valid Shipyard alias.")
                continue
            if current.get(alias) != version:
                registry.promote(
                    name,
                    version,
                    actor=user,
                    to=alias,
                    reason=f"MLflow alias '{alias}' of {mv.name} version {mv.version}",
                )
            report.aliases_set[alias] = version
