"""What the registry hands out: plain frozen records, converted from the store's rows.

Callers never hold an ORM row or a session (as MLflow keeps ``mlflow.entities`` apart from its
SQLAlchemy models); the field names are the columns' names (``shipyard.store.to_entity``).

>>> from datetime import UTC, datetime
>>> ModelVersion(
...     model_name="churn", version=3, author="alice", created_at=datetime(2024, 5, 1, tzinfo=UTC),
...     run_id=None, flavor="sklearn", task="classification", archive_key="models/churn/3.zip",
...     digest="sha256:4f1c9a0b8e7d6c5b", size=1024, metrics={}, tags={}, description="",
...     archived_at=None,
... )
ModelVersion(model_name='churn', version=3, digest='sha256:4f1c9a0b…', author='alice')
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

#: Hex digits of a digest that ``repr`` shows (enough to tell versions apart at a glance).
_SHORT_DIGEST = 8


@dataclass(frozen=True)
class RegisteredModel:
    """A named model: its description and tags, who created it when, its business objective
    and acceptance criterion, who answers for it (``owner``) and its ``team``."""

    name: str
    description: str = field(repr=False)
    tags: dict[str, Any] = field(repr=False)
    created_at: datetime = field(repr=False)
    created_by: str
    objective: str = field(default="", repr=False)
    accept: str | None = field(default=None, repr=False)
    owner: str | None = field(default=None, repr=False)
    team: str = field(default="", repr=False)


@dataclass(frozen=True)
class ModelVersion:
    """One immutable, numbered version of a model: its archive (``digest``), lineage and metrics.

    ``archived_at`` is set once the version is retired (``Registry.archive``).
    """

    model_name: str
    version: int
    author: str
    created_at: datetime
    run_id: str | None
    flavor: str
    task: str
    archive_key: str
    digest: str
    size: int
    metrics: dict[str, Any]
    tags: dict[str, Any]
    description: str
    archived_at: datetime | None

    def __repr__(self) -> str:
        algorithm, _, hexdigits = self.digest.rpartition(":")
        more = "…" if len(hexdigits) > _SHORT_DIGEST else ""
        digest = (f"{algorithm}:" if algorithm else "") + hexdigits[:_SHORT_DIGEST] + more
        return (
            f"ModelVersion(model_name={self.model_name!r}, version={self.version}, "
            f"digest={digest!r}, author={self.author!r})"
        )


@dataclass(frozen=True)
class Approval:
    """One approver's four-eyes approval of a version, with the reason given."""

    model_name: str
    version: int
    approver: str
    reason: str = field(repr=False)
    created_at: datetime = field(repr=False)


@dataclass(frozen=True)
class AliasChange:
    """One move of an alias: ``action`` is ``set``, ``rollback`` or ``remove``."""

    model_name: str
    alias: str
    version: int | None
    previous_version: int | None
    action: str
    at: datetime = field(repr=False)
    by: str
    reason: str = field(repr=False)


@dataclass(frozen=True)
class GateRecord:
    """One ``shipyard validate`` of a version: the gates' outcome for archive ``digest``.

    ``report`` is the JSON report (``passed``, ``gates``: name, passed, value, limit, detail);
    ``failed`` names the failed gates; ``champion`` is the version it was compared with.
    """

    id: int
    model_name: str
    version: int
    digest: str = field(repr=False)
    champion: int | None
    passed: bool
    failed: list[Any]
    data_source: str = field(repr=False)
    report: dict[str, Any] = field(repr=False)
    created_at: datetime = field(repr=False)
    created_by: str


@dataclass(frozen=True)
class Waiver:
    """An approver's signed waiver of one failed gate of one archive digest."""

    model_name: str
    version: int
    digest: str = field(repr=False)
    gate: str
    approver: str
    reason: str = field(repr=False)
    created_at: datetime = field(repr=False)


@dataclass(frozen=True)
class Rollout:
    """A progressive delivery of ``version``: a canary stepped through ``steps`` (percent of
    the traffic; the last, 100, is the promotion), each step held ``bake_seconds`` and judged.

    ``status`` is ``running``, ``promoted``, ``rolled_back`` or ``cancelled``; ``step`` indexes
    the step in force; ``next_at`` is when it is judged; ``details`` holds the traffic policy
    of the step (``policy``) and its start (``since``), its sticky routing, the waits at this
    step and one entry per judgement (``history``). Once it is no longer running,
    ``updated_at`` is when it ended.
    """

    id: int
    model_name: str
    version: int
    steps: list[float] = field(repr=False)
    step: int
    bake_seconds: float = field(repr=False)
    status: str
    next_at: datetime = field(repr=False)
    started_at: datetime = field(repr=False)
    started_by: str = field(repr=False)
    updated_at: datetime = field(repr=False)
    message: str = field(repr=False)
    details: dict[str, Any] = field(repr=False)

    @property
    def running(self) -> bool:
        return self.status == "running"

    @property
    def percent(self) -> float:
        """The canary's share of the traffic at the step in force."""
        return float(self.steps[self.step])

    @property
    def policy_id(self) -> int | None:
        """The traffic policy the step in force set (``None`` for an old row without one)."""
        value = self.details.get("policy")
        return int(value) if value is not None else None

    @property
    def step_started_at(self) -> datetime:
        """When the step in force began: its judgement counts the requests since then."""
        since = self.details.get("since")
        return datetime.fromisoformat(since) if since else self.updated_at

    def describe(self) -> str:
        """One line, e.g. ``rollout #3 of v4: running at 10% (steps 10, 50, 100; bake 30m)``."""
        steps = ", ".join(f"{s:g}" for s in self.steps)
        seconds = self.bake_seconds
        bake = (
            f"{seconds:g}s"
            if seconds < 60
            else f"{seconds / 60:g}m"
            if seconds < 7200
            else f"{seconds / 3600:g}h"
        )
        return (
            f"rollout #{self.id} of v{self.version}: {self.status.replace('_', ' ')} at "
            f"{self.percent:g}% (steps {steps}; bake {bake})"
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "model": self.model_name,
            "version": self.version,
            "status": self.status,
            "steps": list(self.steps),
            "step": self.step,
            "percent": self.percent,
            "bake_seconds": self.bake_seconds,
            "next_at": self.next_at,
            "started_at": self.started_at,
            "started_by": self.started_by,
            "updated_at": self.updated_at,
            "message": self.message,
            "details": self.details,
            "summary": self.describe(),
        }
