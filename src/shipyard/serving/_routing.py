"""Which version answers a request under a traffic policy, and the shadow mirror.

A ``Route`` is a model's policy compiled against loaded models: arms with cumulative
upper bounds in ``[0, 10000)`` buckets, and the shadow. A request falls into a bucket:

- sticky routing (``header:<name>`` or ``field:<column>``) hashes the model name and the key
  with BLAKE2b (not Python's ``hash()``, which changes per process), so one key sees one
  version on every server and after restarts, and keys spread over arms by their weights;
- the key of ``field:<column>`` is that column's value in the request's *first row*: a
  multi-row request is routed as one;
- without a key (no policy stickiness, or the header/field missing) the bucket is random.

An arm whose version is ``None`` answers with whatever the served alias holds now, so the
base of a canary follows a rollback without a new policy.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import math
import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from time import perf_counter
from typing import Any

import numpy as np
import pandas as pd

from shipyard.registry import Policy
from shipyard.serving._inputs import Rows
from shipyard.serving._runtime import ServedModel

log = logging.getLogger("shipyard.serving")

BUCKETS = 10_000
#: Shadow scorings waiting or running at once; beyond it, mirrors are dropped (counted).
MAX_SHADOW_TASKS = 256

#: on_scored(shadow model, labels, proba, ids, seconds): how a shadow answer is logged.
ShadowRecorder = Callable[[ServedModel, np.ndarray, np.ndarray | None, float], None]


def bucket(model: str, key: bytes) -> int:
    """The stable bucket in ``[0, 10000)`` of ``key`` for ``model``."""
    digest = hashlib.blake2b(model.encode() + b"\x00" + key, digest_size=8).digest()
    return int.from_bytes(digest, "big") % BUCKETS


@dataclass(frozen=True)
class RouteArm:
    upper: int  # this arm takes buckets below ``upper`` (and at or above the previous one)
    version: int | None
    label: str
    model: ServedModel | None  # None: the served alias, looked up per request


@dataclass(frozen=True)
class Route:
    """A policy compiled for one server: what to pick, and what to mirror to."""

    policy: Policy
    arms: tuple[RouteArm, ...]
    shadow: ServedModel | None
    sticky_kind: str | None  # "header" | "field" | None
    sticky_name: str

    @classmethod
    def build(cls, policy: Policy, models: Mapping[int, ServedModel], alias_label: str) -> Route:
        """Compile ``policy``; ``models`` holds every numbered version it names."""
        arms: list[RouteArm] = []
        total = sum(a.weight for a in policy.arms) or 1.0
        running = 0.0
        for arm in policy.arms:
            running += arm.weight
            upper = round(running / total * BUCKETS)
            if arm.version is None:
                label = alias_label
            elif policy.kind == "canary":
                label = "canary"
            else:
                label = f"split:{arm.version}"
            model = None if arm.version is None else models[arm.version]
            arms.append(RouteArm(upper, arm.version, label, model))
        if arms:  # rounding never leaves a bucket unassigned
            last = arms[-1]
            arms[-1] = RouteArm(BUCKETS, last.version, last.label, last.model)
        kind, _, name = (policy.sticky or "").partition(":")
        return cls(
            policy=policy,
            arms=tuple(arms),
            shadow=models[policy.shadow] if policy.shadow is not None else None,
            sticky_kind=kind or None,
            sticky_name=name,
        )

    def key(self, headers: Mapping[str, str], raw: Rows | pd.DataFrame | None) -> bytes | None:
        """The request's sticky key, or ``None`` (route at random)."""
        if self.sticky_kind == "header":
            value = headers.get(self.sticky_name)
            return value.encode() if value else None
        if self.sticky_kind == "field" and raw is not None and len(raw):
            if self.sticky_name not in raw.columns:
                return None
            return key_of(raw[self.sticky_name].iloc[0])
        return None

    def pick(self, model: str, key: bytes | None) -> RouteArm | None:
        """The arm answering a request with ``key`` (``None`` when the policy has no arms)."""
        if not self.arms:
            return None
        b = bucket(model, key) if key is not None else random.randrange(BUCKETS)
        for arm in self.arms:
            if b < arm.upper:
                return arm
        return self.arms[-1]


def key_of(value: Any) -> bytes | None:
    """A cell as a key: ``42``, ``42.0`` and ``"42"`` are the same key; missing is none."""
    if value is None:
        return None
    if isinstance(value, float | np.floating):
        if math.isnan(value):
            return None
        if float(value).is_integer():
            return str(int(value)).encode()
    if isinstance(value, bytes):
        return value
    return str(value).encode()


class ShadowMirror:
    """Scores requests on shadow versions off the request path; failures are only logged."""

    def __init__(self, limit: int = MAX_SHADOW_TASKS) -> None:
        self.limit = limit
        self.tasks: set[asyncio.Task[None]] = set()
        self.dropped = 0
        self.failed = 0

    def submit(self, shadow: ServedModel, raw: Rows | pd.DataFrame, record: ShadowRecorder) -> None:
        """Schedule ``shadow`` to score ``raw``; returns at once."""
        if len(self.tasks) >= self.limit:
            self.dropped += 1
            return
        task = asyncio.get_running_loop().create_task(self._run(shadow, raw, record))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def _run(
        self, shadow: ServedModel, raw: Rows | pd.DataFrame, record: ShadowRecorder
    ) -> None:
        start = perf_counter()
        try:
            labels, proba = await shadow.score(shadow.coerce(raw))
            record(shadow, labels, proba, perf_counter() - start)
        except Exception as exc:  # a shadow never affects the answered request
            self.failed += 1
            log.warning(
                "shadow %s v%s failed on a request (%s); the answer was not affected",
                shadow.name,
                shadow.version,
                type(exc).__name__,
            )

    async def drain(self) -> None:
        await asyncio.gather(*list(self.tasks), return_exceptions=True)
