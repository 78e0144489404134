"""What the tracker hands out: plain frozen records of runs, converted from the store's rows
(``shipyard.store.to_entity``).

>>> from datetime import UTC, datetime
>>> Run(
...     id="4f1c9a0b8e7d", model_name="churn", status="finished", user="alice",
...     started_at=datetime(2024, 5, 1, tzinfo=UTC), ended_at=None, params={}, git={},
...     environment={}, error=None,
... )
Run(id='4f1c9a0b8e7d', model_name='churn', status='finished', user='alice')
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any


@dataclass(frozen=True)
class Run:
    """One training attempt: its status, params, git state and environment."""

    id: str
    model_name: str | None
    status: str
    user: str
    started_at: datetime = field(repr=False)
    ended_at: datetime | None = field(repr=False)
    params: dict[str, Any] = field(repr=False)
    git: dict[str, Any] = field(repr=False)
    environment: dict[str, Any] = field(repr=False)
    error: str | None = field(repr=False)


@dataclass(frozen=True)
class RunDataset:
    """A dataset logged on a run: its content hash, size and fingerprint (schema, profile)."""

    run_id: str
    name: str
    content_hash: str = field(repr=False)
    n_rows: int
    fingerprint: dict[str, Any] = field(repr=False)
    logged_at: datetime = field(repr=False)


@dataclass(frozen=True)
class RunArtifact:
    """A file logged on a run: where it is in the artifact store and its checksum."""

    run_id: str
    path: str
    key: str = field(repr=False)
    sha256: str = field(repr=False)
    size: int
