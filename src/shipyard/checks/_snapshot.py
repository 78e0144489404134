"""``snapshot_from_log``: an online learner taught the logged labels, registered as a version.

What a scheduler job of kind ``snapshot`` runs: the model's version at ``alias`` (a river
model), a copy of it taught every label recorded since that version was registered (joined to
its prediction's logged inputs, oldest label first: ``shipyard.predlog.labelled_rows``),
registered as a new version by the job's actor. A rollback to that version is a person's
verdict on what was served and learned in between, as it is for a server's learner: the
labels recorded before it are not replayed (``unlearned_since``). It needs no running
server; a server's own ``--snapshot-every`` learner is the other way, and resumes after a
restart by replaying the same way (``shipyard.registry.teach``, see ``shipyard.serving``).

>>> snapshot_from_log(store, log_root, "fraud", actor="scheduler",
...                   trigger="schedule:nightly")  # doctest: +SKIP
SnapshotOutcome(model='fraud', base=3, labels=812, version=4)
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import pandas as pd

from shipyard.config import ProjectConfig
from shipyard.errors import InvalidInput
from shipyard.predlog import labelled_rows
from shipyard.registry import (
    ONLINE_FLAVORS,
    PRODUCTION,
    AliasChange,
    ModelVersion,
    Registry,
    register_snapshot,
    teach,
)
from shipyard.store import Store


@dataclass(frozen=True)
class SnapshotOutcome:
    """What ``snapshot_from_log`` did: the base version, the labels learned, the version
    registered (``None``: fewer labels than asked for, nothing registered)."""

    model: str
    base: int
    labels: int
    version: int | None

    def to_json(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "base": self.base,
            "labels": self.labels,
            "version": self.version,
        }


def snapshot_from_log(
    store: Store,
    log_root: Path,
    model: str,
    *,
    actor: str,
    trigger: str,
    alias: str = PRODUCTION,
    min_labels: int = 1,
    project: ProjectConfig | None = None,
) -> SnapshotOutcome:
    """Teach ``model@alias`` the labels logged since it was registered (or rolled back to);
    register the result."""
    registry = Registry(store, project)
    base = registry.resolve(f"{model}@{alias}")
    loaded = registry.load(model, base.version)
    if loaded.manifest.flavor not in ONLINE_FLAVORS:
        raise InvalidInput(
            f"{model} v{base.version} is a {loaded.manifest.flavor} model: only online "
            "learners (river) snapshot."
        )
    since = unlearned_since(registry.alias_history(model, alias), base)
    found = labelled_rows(log_root, model, since=since.timestamp())
    if len(found) < min_labels:
        return SnapshotOutcome(model, base.version, len(found), None)
    learner = copy.deepcopy(loaded.model)
    learned_rows, learned_labels = teach(learner, loaded.schema, found.inputs, found.labels)
    if len(learned_labels) < min_labels:
        return SnapshotOutcome(model, base.version, len(learned_labels), None)
    version = register_snapshot(
        registry,
        model,
        base.version,
        learner,
        pd.DataFrame(learned_rows),
        learned_labels,
        actor=actor,
        labels=len(learned_labels),
        trigger=trigger,
    )
    return SnapshotOutcome(model, base.version, len(learned_labels), version.version)


def unlearned_since(history: list[AliasChange], version: ModelVersion) -> datetime:
    """When the labels ``version`` is to learn begin: its registration, or the alias's last
    return to it after it had served there and the alias moved on (a rollback).

    ``history`` is the alias's moves, oldest first: v3 registered at 1:00, set at 2:00,
    replaced by v4 at 5:00 and rolled back to at 7:00 learns the labels from 7:00 on.

    >>> unlearned_since(registry.alias_history("fraud", "production"), v3)  # doctest: +SKIP
    datetime.datetime(2026, 1, 1, 7, 0, tzinfo=datetime.timezone.utc)
    """
    since, served, away = version.created_at, False, False
    for change in history:
        if change.at <= version.created_at:
            continue
        if change.version == version.version:
            since = change.at if away else since
            served, away = True, False
        elif served:
            away = True
    return since
