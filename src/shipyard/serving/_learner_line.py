"""Which learner a server resumes: the version it started from, when, and its snapshots.

A server's learner starts from the served version when that version is served (the alias
change that served it), and goes on through the promotion of its own newest snapshot; any
other switch starts another (``Learner.follows``). Its snapshots carry ``snapshot_of`` (the
version it started from) and ``learning_since`` (when), so after a restart the learner is
found again from the registry alone: ``learner_line`` (the rule is written out in
``_learning``'s docstring).

>>> line = learner_line(registry, "fraud", "production", served=3)  # doctest: +SKIP
>>> line.base, [v.version for v in line.snapshots]                  # doctest: +SKIP
(1, [2, 3, 4])
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from shipyard.registry import AliasChange, ModelVersion, Registry


@dataclass(frozen=True)
class LearnerLine:
    """A learner: started from ``base`` at ``since``; ``snapshots`` it registered, oldest first."""

    base: int
    since: datetime
    snapshots: list[ModelVersion]


def learner_line(registry: Registry, name: str, alias: str, served: int) -> LearnerLine:
    """The learner a server serving ``name`` v``served`` at ``alias`` has now."""
    history = registry.alias_history(name, alias)
    versions = [info.version for info in registry.versions(name)]
    version = next(v for v in versions if v.version == served)
    at = served_since(history, version)
    base, since = _went_on(version, at, history, versions) or (served, at)
    mine = [v for v in versions if _made_by(v, base, since)]
    return LearnerLine(base, since, sorted(mine, key=lambda v: v.version))


def served_since(history: list[AliasChange], version: ModelVersion) -> datetime:
    """When the alias last moved to ``version`` (``history``: its moves, oldest first);
    when it was registered if the alias never pointed to it."""
    for change in reversed(history):
        if change.version == version.version:
            return change.at
    return version.created_at


def _made_by(version: ModelVersion, base: int, since: datetime) -> bool:
    """Whether ``version`` is a snapshot of the learner started from ``base`` at ``since``."""
    tags = version.tags
    return tags.get("snapshot_of") == base and tags.get("learning_since") == since.isoformat()


def _went_on(
    version: ModelVersion,
    at: datetime,
    history: list[AliasChange],
    versions: Iterable[ModelVersion],
) -> tuple[int, datetime] | None:
    """The learner ``version`` is a snapshot of, if that learner went on through its being
    served at ``at``: the alias did not move between the snapshot and ``at``, and the
    learner registered no newer snapshot in between (it was the learner's newest)."""
    base, tag = version.tags.get("snapshot_of"), version.tags.get("learning_since")
    if not isinstance(base, int) or not isinstance(tag, str):
        return None  # not a server's learner's snapshot (a scheduled one, or an older server's)
    taken, since = version.created_at, datetime.fromisoformat(tag)
    if any(taken < change.at < at for change in history):
        return None
    newer = [v for v in versions if v.version > version.version and v.created_at < at]
    if any(_made_by(v, base, since) for v in newer):
        return None
    return base, since
