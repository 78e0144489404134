"""Snapshots of online learners: a learner's state registered as a new version.

A snapshot is a version like any other: numbered, audited (``version.registered``), served
only once promoted, and promoted only through the approvals its model's policy asks for, so
it rolls back like any other. It keeps its base version's input schema (it answers exactly
the requests its base answered); its reference profile is the rows it learned from.

The server snapshots its learner every N labels (``shipyard serve --snapshot-every N``); a
scheduler job of kind ``snapshot`` replays the labels logged since the production version
was registered and snapshots the result (``shipyard.scheduler``). Both teach through
``teach``: the logged inputs coerced to the version's schema (``learnable_rows``), each row
with its label in order, skipping rows that no longer fit the schema and labels the model
cannot take, so a label teaches a learner the same way whoever replays it.

A snapshot's tags: ``snapshot_of`` (the version its learner started from), ``labels_learned``
(how many labels it learned since), ``trigger`` and, for a server's learner,
``learning_since`` (when that learner started: the alias change that served
``snapshot_of``), which names the learner a snapshot belongs to when a server resumes it.
"""

from __future__ import annotations

import copy
import dataclasses
from datetime import datetime
from typing import Any

import pandas as pd

from shipyard.dataset import Schema
from shipyard.errors import InvalidInput, ShipyardError
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
    learning_since: datetime | None = None,
) -> ModelVersion:
    """Register ``model`` (an online learner grown from ``name`` v``base``) as a new version.

    ``X`` and ``y`` are rows it learned from (its reference profile); ``labels`` counts the
    labels it learned since ``base``; ``trigger`` says why (``every 500 labels``,
    ``schedule:nightly``); ``learning_since``, when the learner started (a server's). Raises
    ``InvalidInput`` when ``base`` is not an online learner.
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
    tags: dict[str, Any] = {"snapshot_of": base, "labels_learned": labels, "trigger": trigger}
    if learning_since is not None:
        tags["learning_since"] = learning_since.isoformat()
    return registry.register(
        prepared,
        name=name,
        actor=actor,
        description=f"Online-learning snapshot of v{base}: {labels} labels learned ({trigger}).",
        tags=tags,
    )


def learnable_rows(schema: Schema, inputs: pd.DataFrame) -> list[dict[str, Any] | None]:
    """Each row of ``inputs`` (logged inputs, as sent) as the model sees it: coerced to
    ``schema``, or ``None`` for a row that does not fit it (logged before a schema change).

    One coercion for the whole frame (a row at a time costs some 400 times more); a frame
    with a row that does not fit is halved until that row is found.
    """
    frame = inputs.reindex(columns=schema.names())
    try:
        coerced = schema.coerce(frame)
    except ShipyardError:
        if len(frame) <= 1:
            return [None] * len(frame)
        half = len(frame) // 2
        return learnable_rows(schema, frame.iloc[:half]) + learnable_rows(schema, frame.iloc[half:])
    return [{str(k): v for k, v in row.items()} for row in coerced.to_dict("records")]


def learnable(
    model: Any, schema: Schema, inputs: pd.DataFrame, labels: list[Any]
) -> tuple[list[dict[str, Any]], list[Any]]:
    """The rows of ``inputs`` (coerced) and their labels that online learner ``model`` can
    learn, in order: not a row that does not fit ``schema``, nor a label the model cannot
    take (a classifier's label that is not one of its classes)."""
    check = getattr(model, "label", None)
    rows, taken = [], []
    for x, y in zip(learnable_rows(schema, inputs), labels, strict=True):
        if x is None:
            continue
        try:
            if check is not None:
                check(y)
        except ShipyardError:
            continue
        rows.append(x)
        taken.append(y)
    return rows, taken


def teach(
    model: Any, schema: Schema, inputs: pd.DataFrame, labels: list[Any]
) -> tuple[list[dict[str, Any]], list[Any]]:
    """Teach online learner ``model`` each row of ``inputs`` with its label, in order, as
    ``learnable`` keeps them; returns the rows (coerced) and labels it learned."""
    rows, taken = learnable(model, schema, inputs, labels)
    for x, y in zip(rows, taken, strict=True):
        model.learn_one(x, y)
    return rows, taken
