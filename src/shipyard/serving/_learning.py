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
person's verdict on what it learned.

Order. One feedback request of a model at a time records its labels and teaches them
(``OnlineLearning.turn``), and a request's labels are learned in prediction-id order (a
server's ids start with their clock: oldest prediction first). So the learner learns labels
in the order the log keeps them, by when they were recorded, and a replay of the log teaches
the same model the same way (``shipyard.registry.teach`` serves both).

A restart resumes the learner. A learner exists from when its version was served (the
alias change that served it: ``served_since``) until the next switch that is not the
promotion of its newest snapshot; its snapshots are tagged ``snapshot_of`` (the version it
started from) and ``learning_since`` (when). When a server starts, or creates a learner for
its served version without a switch to start it again, it finds that learner from the
registry (``_learner_line.learner_line``):

- the served version ``X`` is a snapshot of a server's learner that went on through ``X``'s
  promotion (the alias did not move between the snapshot and its promotion, and that learner
  registered no newer snapshot in between): the learner is that one, started from its
  ``snapshot_of`` at its ``learning_since``;
- otherwise (a version that is not a server's snapshot, a rollback, an older snapshot, a
  scheduled snapshot): the learner started from ``X`` when the alias last moved to ``X``.

It resumes from that learner's newest snapshot (its state when it was taken), or from ``X``
when it has none, and learns again, in their original order, the labels recorded after that
(a snapshot's cut-off is its registration: it is taken at the end of the request whose labels
made it, before the next request records any) and before this server started; later ones it
learns as they come. So ``learned`` is the snapshot's ``labels_learned`` plus those and
``since_snapshot`` is those, and the next snapshot's profile is built from the last 10,000
rows the learner learned, as if it had never stopped. A rollback is still a person's verdict:
what a learner learned before it was rolled back from is never replayed.

Bounds. The replay runs in a worker thread, models one after another, after every model is
loaded: it never delays the others; a feedback request of the model waits for it. It learns
at most ``_REPLAY_MAX`` (100,000) labels (a server that snapshots every N labels has fewer
than N to learn); with more, or when it fails (the log or the snapshot unreadable), one line is
logged and the learner starts from the served version. With ``snapshot_every`` 0 nothing
of the learner ever leaves the server, so nothing is replayed.

What differs from a server that never stopped: labels recorded without it (``shipyard
feedback`` from a file) are learned at its next start; and an alias change counts from when
it was made, where a running server switches on its next poll of the registry (labels
recorded in between taught the previous learner).

A label whose prediction id is unknown is refused (404) before anything is learned; a label
that is not one of a classifier's classes is refused (400) before it is recorded.
"""

from __future__ import annotations

import asyncio
import bisect
import copy
import logging
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import pandas as pd

from shipyard.dataset import Schema
from shipyard.errors import InvalidInput, ShipyardError
from shipyard.predlog import find_prediction, labelled_rows
from shipyard.registry import ONLINE_FLAVORS, Registry, learnable, register_snapshot, teach
from shipyard.serving._learner_line import learner_line, served_since
from shipyard.serving._runtime import ServedModel
from shipyard.settings import ServeSettings
from shipyard.store import Store

log = logging.getLogger("shipyard.serving")

#: Rows a learner keeps for its next snapshot's reference profile.
_KEPT_ROWS = 10_000
#: Labels a resuming learner learns again at most (see the module docstring).
_REPLAY_MAX = 100_000


@dataclass
class Learner:
    """A served river model's learning copy: started from ``base`` at ``since``."""

    base: int
    model: Any
    since: datetime | None = None
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

    def learn(self, schema: Schema, inputs: pd.DataFrame, labels: list[Any]) -> int:
        """Learn the labelled rows it can (``shipyard.registry.teach``); how many it learned."""
        rows, taught = teach(self.model, schema, inputs, labels)
        self.keep(rows, taught)
        self.learned += len(rows)
        self.since_snapshot += len(rows)
        return len(rows)

    def keep(self, rows: list[dict[str, Any]], labels: list[Any]) -> None:
        """Keep rows it learned (the newest ``_KEPT_ROWS``) for its next snapshot's profile."""
        self.rows.extend(rows)
        self.labels.extend(labels)

    def restart(self, model: Any) -> None:
        """Forget what it learned: ``model`` (a copy of its base) learns from scratch."""
        self.model, self.learned, self.since_snapshot, self.snapshots = model, 0, 0, []
        self.rows.clear()
        self.labels.clear()


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
    #: When the server started: labels recorded before are replayed, later ones learned live.
    started: float = field(default_factory=time.time)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _turns: dict[str, asyncio.Lock] = field(default_factory=dict)

    def check_labels(self, served: ServedModel, labels: list[Any]) -> None:
        """Refuse (``InvalidInput``) a label a river classifier cannot learn."""
        label = getattr(served.loaded.model, "label", None)
        if label is not None:
            for y in labels:
                label(y)

    def turn(self, name: str) -> asyncio.Lock:
        """Held by a feedback request of ``name`` while it records and learns its labels, so
        that the learner learns them in the order the log keeps them (see Order above)."""
        return self._turns.setdefault(name, asyncio.Lock())

    async def learn(
        self, served: ServedModel, switches: int, root: Path, items: list[tuple[str, Any]]
    ) -> Learned:
        """Teach ``served``'s learner the labelled ``(prediction_id, label)`` pairs."""
        return await asyncio.to_thread(self._learn, served, switches, root, items)

    def learner(self, served: ServedModel, switches: int, root: Path | None) -> Learner:
        """``served``'s learner (``switches``: how many times the pool switched the model's
        served version): the one it has if it follows ``served``, else started again from
        it after a switch, else resumed from the log under ``root`` (a server's first)."""
        with self._lock:
            current = self.learners.get(served.name)
            if current is not None and current.follows(served.version, switches):
                current.switches = switches
                return current
            before = current
            current = Learner(served.version, copy.deepcopy(served.loaded.model))
            current.switches = switches
            self.learners[served.name] = current
            current.lock.acquire()  # it learns nothing before it knows where it starts
        try:
            if before is not None:
                log.info(
                    "%s: the learner restarts from v%s (it followed v%s)",
                    served.name,
                    served.version,
                    before.base,
                )
            if not self.settings.snapshot_every:
                pass  # nothing of it ever leaves the server: no start to name, none to resume
            elif before is None and root is not None:
                self._resume(current, served, root)
            else:
                current.since = self._served_since(served)
        finally:
            current.lock.release()
        return current

    def _served_since(self, served: ServedModel) -> datetime | None:
        """When the alias moved to ``served`` (``None``, said once, if the registry cannot
        tell: the learner's snapshots then name no start and a restart replays from it)."""
        registry = Registry(self.store)
        try:
            history = registry.alias_history(served.name, self.settings.alias)
            return served_since(history, registry.get_version(served.name, served.version))
        except ShipyardError as exc:
            log.warning("%s: the learner's start is unknown: %s", served.name, exc.message)
            return None

    def _resume(self, learner: Learner, served: ServedModel, root: Path) -> None:
        """Resume ``learner`` as the module docstring says, or start it from ``served``
        with one line logged: a replay never stops the server."""
        try:
            self._replay(learner, served, root)
        except Exception as exc:  # whatever broke, the server serves on
            reason = (
                exc.message if isinstance(exc, ShipyardError) else f"{type(exc).__name__}: {exc}"
            )
            log.error(
                "%s: the learner starts from v%s without the labels it had learned: %s",
                served.name,
                served.version,
                reason,
            )
            learner.restart(copy.deepcopy(served.loaded.model))
            # A learner of its own: its snapshots name no start, and a restart tries again.
            learner.base, learner.since = served.version, None

    def _replay(self, learner: Learner, served: ServedModel, root: Path) -> None:
        registry = Registry(self.store)
        line = learner_line(registry, served.name, self.settings.alias, served.version)
        learner.base, learner.since = line.base, line.since
        learner.snapshots = [v.version for v in line.snapshots]
        start = line.snapshots[-1] if line.snapshots else None
        found = labelled_rows(
            root,
            served.name,
            since=line.since.timestamp(),
            until=self.started,
            last=_REPLAY_MAX + _KEPT_ROWS,
        )
        cut = bisect.bisect_left(
            found.stamps, (start.created_at if start else line.since).timestamp()
        )
        if len(found) - cut > _REPLAY_MAX:
            raise InvalidInput(
                f"more than {_REPLAY_MAX:,} labels to learn again since "
                f"{'v' + str(start.version) if start else 'it started'}"
            )
        if start is not None:
            learner.model = registry.load(served.name, start.version).model
            learner.learned = int(start.tags.get("labels_learned", 0))
        # The rows it learned before its newest snapshot count in the next one's profile.
        learner.keep(
            *learnable(learner.model, served.schema, found.inputs.iloc[:cut], found.labels[:cut])
        )
        learner.learn(served.schema, found.inputs.iloc[cut:], found.labels[cut:])
        log.info(
            "%s: the learner resumed from v%s with %s labels learned again",
            served.name,
            start.version if start else served.version,
            learner.since_snapshot,
        )

    def _learn(
        self, served: ServedModel, switches: int, root: Path, items: list[tuple[str, Any]]
    ) -> Learned:
        learner = self.learner(served, switches, root)
        ordered = sorted(items, key=lambda item: item[0])  # the log's order (see Order)
        found = [(self._logged_inputs(served, root, pid), label) for pid, label in ordered]
        known = [(inputs, label) for inputs, label in found if inputs is not None]
        out = Learned()
        with learner.lock:
            out.learned = learner.learn(
                served.schema, pd.DataFrame([x for x, _ in known]), [y for _, y in known]
            )
            out.skipped = len(items) - out.learned
            every = self.settings.snapshot_every
            if every and learner.since_snapshot >= every:
                try:
                    out.snapshot = self._snapshot(served.name, learner, f"every {every} labels")
                except ShipyardError as exc:
                    out.snapshot_error = exc.message
                    log.error("%s: snapshot failed: %s", served.name, exc.message)
        return out

    def _logged_inputs(self, served: ServedModel, root: Path, pid: str) -> dict[str, Any] | None:
        """The inputs logged for ``pid``'s answer by ``served``'s model, or ``None``."""
        record = find_prediction(root, pid)
        if record is None or record["model"] != served.name or record["status"] != "ok":
            return None
        inputs: dict[str, Any] = record["inputs"]
        return inputs

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
            learning_since=learner.since,
        )
        learner.snapshots.append(version.version)
        learner.since_snapshot = 0
        log.info("%s: learner snapshot registered as v%s", name, version.version)
        return version.version
