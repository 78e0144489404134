"""``snapshot_from_log``: an online learner taught the logged labels, registered as a version.

What a scheduler job of kind ``snapshot`` runs: the model's version at ``alias`` (a river
model), a copy of it taught every label recorded since that version was registered (joined to
its prediction's logged inputs, oldest label first), registered as a new version by the job's
actor. It needs no running server, and gives the same learner after a server restart; a
server's own ``--snapshot-every`` learner is the other way (``shipyard.serving``).

>>> snapshot_from_log(store, log_root, "fraud", actor="scheduler",
...                   trigger="schedule:nightly")  # doctest: +SKIP
SnapshotOutcome(model='fraud', base=3, labels=812, version=4)
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from shipyard.config import ProjectConfig
from shipyard.errors import InvalidInput, ShipyardError
from shipyard.predlog import query
from shipyard.registry import ONLINE_FLAVORS, PRODUCTION, Registry, register_snapshot
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
    """Teach ``model@alias`` the labels logged since it was registered; register the result."""
    registry = Registry(store, project)
    base = registry.resolve(f"{model}@{alias}")
    loaded = registry.load(model, base.version)
    if loaded.manifest.flavor not in ONLINE_FLAVORS:
        raise InvalidInput(
            f"{model} v{base.version} is a {loaded.manifest.flavor} model: only online "
            "learners (river) snapshot."
        )
    rows, labels = _labelled_rows(log_root, model, base.created_at.timestamp())
    if len(labels) < min_labels:
        return SnapshotOutcome(model, base.version, len(labels), None)
    learner = copy.deepcopy(loaded.model)
    learned_rows, learned_labels = [], []
    schema = loaded.schema
    for row, label in zip(rows, labels, strict=True):
        frame = pd.DataFrame([row]).reindex(columns=schema.names())
        try:
            x = {str(k): v for k, v in schema.coerce(frame).iloc[0].to_dict().items()}
            learner.learn_one(x, label)
        except ShipyardError:  # a row from before a schema change, or a label it cannot take
            continue
        learned_rows.append(x)
        learned_labels.append(label)
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


def _labelled_rows(
    log_root: Path, model: str, since: float
) -> tuple[list[dict[str, Any]], list[Any]]:
    """Inputs and label of each label recorded since ``since`` (epoch s), oldest first;
    one prediction per id (a shadow's answers share its id)."""
    try:
        found = query(
            log_root,
            "SELECT p.*, f.label AS __label FROM feedback f JOIN ("
            "  SELECT * FROM predictions WHERE status = 'ok'"
            "  QUALIFY row_number() OVER (PARTITION BY prediction_id ORDER BY ts) = 1"
            f") p USING (prediction_id) WHERE epoch(f.ts) >= {float(since)} "
            "ORDER BY f.ts, p.prediction_id",
            model=model,
        )
    except InvalidInput:  # no predictions or no labels logged yet
        return [], []
    inputs = [c for c in found.columns if c.startswith("in__")]
    rows = [
        {c[len("in__") :]: v for c, v in zip(inputs, values, strict=True)}
        for values in found[inputs].itertuples(index=False, name=None)
    ]
    return rows, found["__label"].tolist() if "__label" in found.columns else []
