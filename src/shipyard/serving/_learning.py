"""Online learning: labels sent to ``/models/{name}/feedback`` teach a served river model.

How the learner relates to what answers. The served version never changes under a request:
a version is immutable, so every logged prediction is exactly its version's answer. The
server keeps, per river model, a *learner*: a copy of the served version that learns
(``learn_one``) from each label, with the inputs logged for that prediction id (read back
from the prediction log). Every ``snapshot_every`` labels the learner is registered as a new
version (``shipyard.registry.register_snapshot``, by the server's ``learner_actor``), which
answers once a person promotes it (with the approvals production asks for), and which rolls
back like any version. Promotion stays human.

When the served version changes, the learner follows it: promoting its newest snapshot keeps
its state (it is already past that snapshot); any other version (a rollback, an older
snapshot, a retrained version) restarts the learner from that version: a rollback is a
person's verdict on what it learned. A server restart also starts from the served version; the
scheduler's ``snapshot`` job replays the logged labels instead, needing no server.

A label whose prediction id is unknown is refused (404) before anything is learned; a label
that is not one of a classifier's classes is refused (422) before it is recorded.
"""

from __future__ import annotations

import asyncio
import copy
import logging
import threading
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from shipyard.errors import ShipyardError
from shipyard.predlog import find_prediction
from shipyard.registry import ONLINE_FLAVORS, Registry, register_snapshot
from shipyard.serving._runtime import ServedModel
from shipyard.settings import ServeSettings
from shipyard.store import Store

log = logging.getLogger("shipyard.serving")

#: Rows a learner keeps for its next snapshot's reference profile.
_KEPT_ROWS = 10_000


@dataclass
class Learner:
    """A served river model's learning copy."""

    base: int
    model: Any
    learned: int = 0
    since_snapshot: int = 0
    snapshots: list[int] = field(default_factory=list)
    rows: deque[dict[str, Any]] = field(default_factory=lambda: deque(maxlen=_KEPT_ROWS))
    labels: deque[Any] = field(default_factory=lambda: deque(maxlen=_KEPT_ROWS))
    lock: threading.Lock = field(default_factory=threading.Lock)

    #: The pool's switch count of the model when the learner last learned.
    switches: int = 0

    def follows(self, version: int, switches: int) -> bool:
        """Whether the learner goes on with ``version`` served after ``switches`` switches:
        no switch since it last learned, or its newest snapshot promoted (it is already past
        it). Anything else, a rollback included, is a person's verdict on what it learned:
        it starts again."""
        newest = self.snapshots[-1] if self.snapshots else None
        return switches == self.switches or version == newest


@dataclass
class Learned:
    """What one feedback request taught: labels learned, skipped, and a snapshot made."""

    learned: int = 0
    skipped: int = 0
    snapshot: int | None = None
    snapshot_error: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "learned": self.learned,
            "not_learned": self.skipped,
            "snapshot": self.snapshot,
            "snapshot_error": self.snapshot_error,
        }


def is_learner(served: ServedModel) -> bool:
    return served.loaded.manifest.flavor in ONLINE_FLAVORS


@dataclass
class OnlineLearning:
    """The learners of one server, by model name."""

    store: Store
    settings: ServeSettings
    learners: dict[str, Learner] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def check_labels(self, served: ServedModel, labels: list[Any]) -> None:
        """Refuse (``InvalidInput``) a label a river classifier cannot learn."""
        label = getattr(served.loaded.model, "label", None)
        if label is not None:
            for y in labels:
                label(y)

    async def learn(
        self, served: ServedModel, switches: int, root: Path, items: list[tuple[str, Any]]
    ) -> Learned:
        """Teach ``served``'s learner the labelled ``(prediction_id, label)`` pairs."""
        return await asyncio.to_thread(self._learn, served, switches, root, items)

    def learner(self, served: ServedModel, switches: int) -> Learner:
        """``served``'s learner, started again from it unless it follows it already
        (``switches``: how many times the pool switched the model's served version)."""
        with self._lock:
            current = self.learners.get(served.name)
            if current is None or not current.follows(served.version, switches):
                if current is not None:
                    log.info(
                        "%s: the learner restarts from v%s (it followed v%s)",
                        served.name,
                        served.version,
                        current.base,
                    )
                current = Learner(served.version, copy.deepcopy(served.loaded.model))
                self.learners[served.name] = current
            current.switches = switches
            return current

    def _learn(
        self, served: ServedModel, switches: int, root: Path, items: list[tuple[str, Any]]
    ) -> Learned:
        learner = self.learner(served, switches)
        out = Learned()
        with learner.lock:
            for pid, label in items:
                row = self._logged_row(served, root, pid)
                if row is None:
                    out.skipped += 1
                    continue
                learner.model.learn_one(row, label)
                learner.rows.append(row)
                learner.labels.append(label)
                learner.learned += 1
                learner.since_snapshot += 1
                out.learned += 1
            every = self.settings.snapshot_every
            if every and learner.since_snapshot >= every:
                try:
                    out.snapshot = self._snapshot(served.name, learner, f"every {every} labels")
                except ShipyardError as exc:
                    out.snapshot_error = exc.message
                    log.error("%s: snapshot failed: %s", served.name, exc.message)
        return out

    def _logged_row(self, served: ServedModel, root: Path, pid: str) -> dict[str, Any] | None:
        """The inputs logged for ``pid`` as the model saw them (coerced), or ``None``."""
        record = find_prediction(root, pid)
        if record is None or record["model"] != served.name or record["status"] != "ok":
            return None
        frame = pd.DataFrame([record["inputs"]]).reindex(columns=served.schema.names())
        try:
            coerced = served.schema.coerce(frame)
        except ShipyardError:  # logged before a schema change; nothing to learn from
            return None
        return {str(k): v for k, v in coerced.iloc[0].to_dict().items()}

    def _snapshot(self, name: str, learner: Learner, trigger: str) -> int:
        version = register_snapshot(
            Registry(self.store),
            name,
            learner.base,
            learner.model,
            pd.DataFrame(list(learner.rows)),
            list(learner.labels),
            actor=self.settings.learner_actor,
            labels=learner.learned,
            trigger=trigger,
        )
        learner.snapshots.append(version.version)
        learner.since_snapshot = 0
        log.info("%s: learner snapshot registered as v%s", name, version.version)
        return version.version
