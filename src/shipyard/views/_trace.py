"""Tracing: from a prediction id to everything that produced it; which version served at T.

``trace_prediction`` finds the prediction in the log (``shipyard.predlog.find_prediction``:
only the partitions of the id's day for a server's time-ordered ids, every partition for ids
without a time) and joins it to the registry: the version that answered, its archive digest,
the run that trained it (user, params, git commit and dirty flag), the run's datasets (their
fingerprints), the environment it was trained in, and every label recorded for it.

``served_at`` answers "which version did ``alias`` point to at time T, and which traffic
policy was in force" from the append-only ``alias_changes`` and ``traffic_policies`` rows.

>>> trace = trace_prediction(store, Path("predictions"), "19b0c6b4d00...")  # doctest: +SKIP
>>> trace.model, trace.version, trace.run.git.commit                        # doctest: +SKIP
('churn', 3, '6da889cc...')
>>> served_at(store, "churn", parse_at("2026-12-01T10:00")).version           # doctest: +SKIP
2
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field
from sqlalchemy import select

from shipyard.errors import InvalidInput, NotFound
from shipyard.predlog import check_prediction_id, find_prediction
from shipyard.registry import PRODUCTION, Policy, check_alias, check_name
from shipyard.store import Store
from shipyard.store.tables import AliasChange, Dataset, Model, ModelVersion, Run, TrafficPolicy

#: The example of a time every "bad time" message shows.
TIME_EXAMPLE = "2026-12-01T10:00 (UTC) or 2026-12-01T10:00:00+01:00"


class TraceLabel(BaseModel):
    """One ground truth recorded for the prediction."""

    label: Any
    at: datetime | None


class TraceGit(BaseModel):
    """The code the run trained with."""

    available: bool = False
    commit: str | None = None
    branch: str | None = None
    dirty: bool | None = None
    diff_sha256: str | None = None


class TraceRun(BaseModel):
    """The run that trained the version."""

    id: str
    user: str
    status: str
    started_at: datetime
    params: dict[str, Any]
    git: TraceGit


class TraceDataset(BaseModel):
    """A dataset the run logged, by its fingerprint."""

    name: str
    content_hash: str
    n_rows: int


class TraceEnvironment(BaseModel):
    """Python and the key packages the run trained with; ``summary`` in one line."""

    python: str | None
    platform: str | None
    packages: dict[str, str]
    summary: str


class Trace(BaseModel):
    """One prediction and its lineage. ``version`` fields are ``None`` for a request refused
    before any version answered; ``run`` is ``None`` for a version registered without one."""

    prediction_id: str
    at: datetime | None
    model: str
    version: int | None
    arm: str | None
    status: str
    reason: str | None
    latency_ms: float | None
    inputs: dict[str, Any]
    prediction: Any
    proba: dict[str, float]
    labels: list[TraceLabel]
    source: str = Field(description="Where the record was found: 'wal' or a Parquet file.")
    digest: str | None = None
    flavor: str | None = None
    author: str | None = None
    registered_at: datetime | None = None
    run: TraceRun | None = None
    datasets: list[TraceDataset] = Field(default_factory=list)
    environment: TraceEnvironment | None = None


def trace_prediction(store: Store, log_root: Path | None, prediction_id: str) -> Trace:
    """Everything known about ``prediction_id``. ``InvalidInput`` for a malformed id,
    ``NotFound`` for an id the log does not hold (or when there is no log)."""
    check_prediction_id(prediction_id)
    if log_root is None:
        raise NotFound(
            "There is no prediction log to trace in: start the UI with the log folder "
            "the server writes (shipyard ui --log-dir PATH)."
        )
    found = find_prediction(log_root, prediction_id)
    if found is None:
        raise NotFound(
            f"No logged prediction has the id '{prediction_id}' in {log_root} (ids are the "
            "'prediction_id' the server returned; retention may have deleted old days)."
        )
    trace = Trace(
        prediction_id=found["prediction_id"],
        at=found["ts"],
        model=found["model"],
        version=found["version"],
        arm=found["arm"],
        status=found["status"],
        reason=found["reason"],
        latency_ms=found["latency_ms"],
        inputs=found["inputs"],
        prediction=found["prediction"],
        proba=found["proba"],
        labels=[TraceLabel(label=r["label"], at=r["ts"]) for r in found["labels"]],
        source=found["source"],
    )
    if trace.version is not None:
        _add_lineage(store, trace)
    return trace


def _add_lineage(store: Store, trace: Trace) -> None:
    with store.read() as session:
        version = session.scalar(
            select(ModelVersion).where(
                ModelVersion.model_name == trace.model, ModelVersion.version == trace.version
            )
        )
        if version is None:
            return  # logged by another registry, or deleted: the log still says what it was
        trace.digest, trace.flavor = version.digest, version.flavor
        trace.author, trace.registered_at = version.author, version.created_at
        run = session.get(Run, version.run_id) if version.run_id else None
        if run is None:
            return
        git = run.git or {}
        trace.run = TraceRun(
            id=run.id,
            user=run.user,
            status=run.status,
            started_at=run.started_at,
            params=run.params or {},
            git=TraceGit.model_validate(
                {k: git.get(k) for k in TraceGit.model_fields}
                | {"available": bool(git.get("available", "commit" in git))}
            ),
        )
        datasets = session.scalars(
            select(Dataset).where(Dataset.run_id == run.id).order_by(Dataset.id)
        ).all()
        trace.datasets = [
            TraceDataset(name=d.name, content_hash=d.content_hash, n_rows=d.n_rows)
            for d in datasets
        ]
        trace.environment = _environment(run.environment or {})


def _environment(env: dict[str, Any]) -> TraceEnvironment:
    packages = {str(k): str(v) for k, v in (env.get("packages") or {}).items()}
    python = env.get("python")
    parts = [f"{env.get('implementation') or 'Python'} {python}"] if python else []
    parts += [f"{name} {packages[name]}" for name in sorted(packages)]
    return TraceEnvironment(
        python=python,
        platform=env.get("platform"),
        packages=packages,
        summary=", ".join(parts) or "not recorded",
    )


# --- which version served at T ----------------------------------------------------------


class ServedAt(BaseModel):
    """What ``alias`` of ``model`` pointed to at ``at``: ``version`` (``None``: nothing was
    served), since when, by whom and why; and the traffic policy in force then."""

    model: str
    alias: str
    at: datetime
    version: int | None
    since: datetime | None = None
    by: str | None = None
    action: str | None = None
    reason: str = ""
    first_at: datetime | None = Field(
        default=None, description="When the alias was first set (when nothing was served yet)."
    )
    policy: dict[str, Any] | None = Field(
        default=None, description="The traffic policy in force at 'at' (None: no policy)."
    )
    message: str


def parse_at(text: str) -> datetime:
    """An ISO 8601 time (naive means UTC) as an aware datetime; ``InvalidInput`` with an
    example otherwise.

    >>> parse_at("2026-12-01T10:00")
    datetime.datetime(2026, 12, 1, 10, 0, tzinfo=datetime.timezone.utc)
    """
    try:
        value = datetime.fromisoformat(text.strip())
    except (ValueError, AttributeError):
        raise InvalidInput(
            f"The time {str(text)[:60]!r} is not understood: write an ISO 8601 time such as "
            f"{TIME_EXAMPLE}."
        ) from None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def served_at(store: Store, name: str, at: datetime, *, alias: str = PRODUCTION) -> ServedAt:
    """Which version ``alias`` of model ``name`` served at ``at`` (naive means UTC), with the
    traffic policy in force then; ``NotFound`` for an unknown model."""
    check_name(name)
    check_alias(alias)
    at = at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)
    with store.read() as session:
        if session.get(Model, name) is None:
            raise NotFound(f"There is no model '{name}'.")
        changes = select(AliasChange).where(
            AliasChange.model_name == name, AliasChange.alias == alias
        )
        change = session.scalar(
            changes.where(AliasChange.at <= at)
            .order_by(AliasChange.at.desc(), AliasChange.id.desc())
            .limit(1)
        )
        first = session.scalar(changes.order_by(AliasChange.at, AliasChange.id).limit(1))
        policy_row = session.scalar(
            select(TrafficPolicy)
            .where(TrafficPolicy.model_name == name, TrafficPolicy.created_at <= at)
            .order_by(TrafficPolicy.created_at.desc(), TrafficPolicy.id.desc())
            .limit(1)
        )
    policy = Policy.from_row(policy_row) if policy_row is not None else None
    policy_json = policy.to_json() if policy is not None and policy.active else None
    when = f"{at:%Y-%m-%d %H:%M:%S} UTC"
    if change is None or change.version is None:
        if change is not None:
            text = f"Nothing was served as {alias} of {name} at {when}: the alias was removed."
        elif first is not None:
            text = (
                f"Nothing was served as {alias} of {name} at {when}: the first {alias} "
                f"version was set at {first.at:%Y-%m-%d %H:%M:%S} UTC."
            )
        else:
            text = f"Nothing was served as {alias} of {name} at {when}: it was never set."
        return ServedAt(
            model=name,
            alias=alias,
            at=at,
            version=None,
            since=change.at if change else None,
            by=change.by if change else None,
            action=change.action if change else None,
            reason=change.reason if change else "",
            first_at=first.at if first else None,
            policy=policy_json,
            message=text,
        )
    verb = "rolled back to" if change.action == "rollback" else "set to"
    text = (
        f"At {when}, {alias} of {name} was v{change.version} ({verb} it at "
        f"{change.at:%Y-%m-%d %H:%M:%S} UTC by {change.by})."
    )
    if policy is not None and policy.active:
        text += f" Traffic policy in force: {policy.describe()}."
    return ServedAt(
        model=name,
        alias=alias,
        at=at,
        version=change.version,
        since=change.at,
        by=change.by,
        action=change.action,
        reason=change.reason or "",
        first_at=first.at if first else None,
        policy=policy_json,
        message=text,
    )
