"""What one app holds: store, settings, models, token gate, metrics and prediction sink."""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import socket
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from shipyard.errors import ShipyardError, StoreUnavailable
from shipyard.predlog import Answers, NullSink, PredictionSink
from shipyard.serving._auth import Caller, TokenGate
from shipyard.serving._inputs import Rows
from shipyard.serving._learning import OnlineLearning, is_learner
from shipyard.serving._metrics import ServingMetrics, UsageCounter
from shipyard.serving._metrics_shared import SharedCounts
from shipyard.serving._pool import ModelPool
from shipyard.serving._runtime import ServedModel
from shipyard.serving._system_metrics import register_system_metrics
from shipyard.settings import ServeSettings
from shipyard.store import Store


def new_ids(n: int) -> list[str]:
    """``n`` unique, time-ordered prediction ids: ms clock, 40 random bits, row number.

    One random draw per request, not per row: ids of a 10,000-row batch cost microseconds.
    The bits come from ``random`` (seeded from the OS, and again in a forked child): ids must
    not collide, not be unguessable, and ``secrets`` would cost a system call per request.
    """
    prefix = f"{time.time_ns() // 1_000_000:011x}{random.getrandbits(40):010x}"
    return [f"{prefix}{i:05x}" for i in range(n)]


@dataclass
class ServingState:
    """Kept on ``app.state.serving``; everything a route needs, nothing global."""

    store: Store
    settings: ServeSettings
    sink: PredictionSink
    own_resources: bool = False
    pool: ModelPool = field(init=False)
    gate: TokenGate = field(init=False)
    metrics: ServingMetrics = field(init=False)
    learning: OnlineLearning = field(init=False)
    usage: UsageCounter = field(init=False)

    def __post_init__(self) -> None:
        self.pool = ModelPool(self.store, self.settings)
        self.gate = TokenGate(self.store, self.settings)
        shared = self.settings.shared_metrics_dir
        self.metrics = ServingMetrics(
            lambda: self.sink,
            shared=SharedCounts(Path(shared)) if shared else None,
            replica=self.settings.replica or f"{socket.gethostname()}-{os.getpid()}",
        )
        self.usage = self.metrics.usage
        register_system_metrics(self.metrics.registry, self.store, self.sink)
        self.learning = OnlineLearning(self.store, self.settings)
        # Building log records costs a little per row: skip it when nothing keeps them.
        self.logging = not isinstance(self.sink, NullSink)

    def resume_learners(self) -> asyncio.Task[None] | None:
        """Start resuming the served online learners in the background (``_learning``), or
        ``None`` when there is nothing to resume (no log, or no snapshots ever taken)."""
        root = getattr(self.sink, "root", None)
        if root is None or not self.settings.snapshot_every:
            return None
        return asyncio.get_running_loop().create_task(self._resume_learners(Path(root)))

    async def _resume_learners(self, root: Path) -> None:
        """One model after another, each in a worker thread: never the event loop's time."""
        for slot in list(self.pool.slots.values()):
            if slot.served is not None and is_learner(slot.served):
                await asyncio.to_thread(self.learning.learner, slot.served, slot.switches, root)

    def scored(
        self,
        served: ServedModel,
        endpoint: str,
        raw: Rows | pd.DataFrame,
        labels: np.ndarray,
        proba: np.ndarray | None,
        ids: list[str],
        seconds: float,
        arm: str,
        caller: Caller | None = None,
        compute: float | None = None,
    ) -> None:
        """Log and count one answered request; ``arm`` says how its version was chosen.

        The log keeps the inputs as the request sent them (``raw``, before coercion), and the
        request's usage: who called (``caller``) and the model's ``compute`` seconds. Usage
        is counted for the caller's own requests only (``compute`` given), not for a
        shadow's or a group member's answers to them. When the log refuses the records (its
        disk is full, ``--on-log-full refuse``) the request is counted as failed and
        ``StoreUnavailable`` propagates: nothing is answered that is not logged.
        """
        if self.logging:
            if isinstance(raw, Rows):  # column names from JSON: strings already
                columns, rows = raw.columns, raw.rows
            else:
                columns, rows = [str(c) for c in raw.columns], raw.to_numpy(object).tolist()
            try:
                self.sink.append_answers(
                    Answers(
                        served.name,
                        served.version,
                        arm,
                        time.time(),
                        seconds * 1000,
                        ids,
                        columns,
                        rows,
                        labels.tolist(),
                        None if proba is None else np.asarray(proba).tolist(),
                        served.class_names,
                        None if caller is None else caller.name,
                        None if caller is None else caller.team,
                        None if compute is None else compute * 1000,
                    )
                )
            except StoreUnavailable as exc:
                self.metrics.failed(served.name, served.version, endpoint, type(exc).__name__, 503)
                raise
        self.metrics.observe(served.name, served.version, endpoint, seconds, len(ids))
        team = caller.team if caller is not None else None
        if compute is not None:
            self.usage.count(team, served.name, served.version, len(ids), compute)

    def refused(
        self,
        name: str,
        served: ServedModel | None,
        endpoint: str,
        exc: ShipyardError,
        seconds: float,
        arm: str,
        log: bool,
        caller: Caller | None = None,
    ) -> None:
        """Count (and, for authenticated requests, log) one refused request.

        The log keeps the reason only: the refused inputs may be malformed personal data.
        """
        version = served.version if served is not None else None
        self.metrics.failed(name, version, endpoint, type(exc).__name__, exc.status)
        if not (log and self.logging):
            return
        # A refusal the log cannot keep stays the refusal it is (a 422 is not turned into a
        # 503): the log counted and reported the failed write already.
        with contextlib.suppress(StoreUnavailable):
            self._log_refusal(name, version, arm, exc, seconds, caller)

    def _log_refusal(
        self,
        name: str,
        version: int | None,
        arm: str,
        exc: ShipyardError,
        seconds: float,
        caller: Caller | None,
    ) -> None:
        self.sink.append(
            [
                {
                    "prediction_id": new_ids(1)[0],
                    "ts": time.time(),
                    "model": name,
                    "version": version,
                    "arm": arm,
                    "status": "rejected",
                    "reason": exc.message,
                    "latency_ms": seconds * 1000,
                    "caller": None if caller is None else caller.name,
                    "team": None if caller is None else caller.team,
                }
            ]
        )
