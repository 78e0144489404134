"""Snapshots of online learners: a learner's state registered as a new version.

A snapshot is a version like any other: numbered, audited (``version.registered``), served
only once promoted, and promoted only through the approvals its model's policy asks for, so
it rolls back like any other. It keeps its base version's input schema (it answers exactly
the requests its base answered); its reference profile is the rows it learned from.

The server snapshots its learner every N labels (``shipyard serve --snapshot-every N``); a
scheduler job of kind ``snapshot`` replays the labels logged since the production version
was registered and snapshots the result (``shipyard.scheduler``).
"""

from __future__ import annotations

import copy
import dataclasses
from typing import Any

import pandas as pd

from shipyard.errors import InvalidInput
from shipyard.packaging import Lineage, prepare_archive
from shipyard.registry._entities import ModelVersion
from shipyard.registry._registry import Registry

#: The flavor whose models learn online.
ONLINE_FLAVORS = ("river",)


def register_snapshot(
    registry: Registry,
    name: str,
    base: int,
    model: Any,
    X: pd.DataFrame,
    y: list[Any],
    *,
    actor: str,
    labels: int,
    trigger: str,
) -> ModelVersion:
    """Register ``model`` (an online learner grown from ``name`` v``base``) as a new version.

    ``X`` and ``y`` are rows it learned from (its reference profile); ``labels`` counts the
    labels it learned since ``base``; ``trigger`` says why (``every 500 labels``,
    ``schedule:nightly``). Raises ``InvalidInput`` when ``base`` is not an online learner.
    """
    manifest = registry.read_manifest(name, base)
    if manifest.flavor not in ONLINE_FLAVORS:
        raise InvalidInput(
            f"{name} v{base} is a {manifest.flavor} model: only online learners (river) "
            "learn from labels and snapshot."
        )
    if X.empty:
        raise InvalidInput(f"{name}: no learned rows to snapshot yet.")
    prepared = prepare_archive(
        copy.deepcopy(model),
        X_train=X,
        y_train=pd.Series(y, dtype=object) if manifest.task == "classification" else y,
        onnx=False,
        lineage=Lineage(run_id=manifest.lineage.run_id),
    )
    # The same input contract as its base: a snapshot answers what its base answered.
    prepared = dataclasses.replace(prepared, input_schema=manifest.input_schema)
    return registry.register(
        prepared,
        name=name,
        actor=actor,
        description=f"Online-learning snapshot of v{base}: {labels} labels learned ({trigger}).",
        tags={"snapshot_of": base, "labels_learned": labels, "trigger": trigger},
    )
