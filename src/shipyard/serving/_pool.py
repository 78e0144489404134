"""The models a server answers with, kept current with the registry.

``ModelPool`` loads each served model's alias at start, then a background task asks the
registry every ``poll_interval_seconds`` for its change marker (``Registry.change_marker``:
the newest alias change's id and the newest traffic policy's id). When it moves, the new
version is loaded, checked and warmed up in a worker thread and then swapped in with one
assignment: a request that already holds the old ``ServedModel`` finishes on it, the next one
gets the new version. If the new version cannot be loaded, the old one
keeps serving and the reason is kept (``GET /v2/models/{name}`` shows it).

A new traffic policy moves the marker too: a canary, split or shadow (see
``shipyard.registry.Traffic``) is compiled into a ``Route`` with every version it names loaded
beforehand, then swapped in the same way; ``route()`` picks the answering version per request.
If a version of a new policy cannot be loaded, the policy is not applied (the previous route
keeps running) and the reason is kept in ``Slot.policy_error``.

A model whose archive fails verification, that cannot be loaded here (a module neither installed
nor in its archive, a library version that cannot read it: ``LoadedModel`` says which in one
sentence), or that has no version under the alias yet is not fatal: its slot keeps the reason,
its routes answer 503 with it, and readiness (``/v2/health/ready``, ``/v2/models/{m}/ready``),
metadata and ``/models`` report it, while the others serve. A tampered or unloadable archive
therefore never answers, and never takes its neighbours down.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Hashable, Mapping
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from shipyard.errors import ModelUnavailable, NotFound, ShipyardError
from shipyard.registry import Policy, Registry, Traffic
from shipyard.serving._groups import ServedGroups
from shipyard.serving._inputs import Rows
from shipyard.serving._routing import Route, ShadowMirror
from shipyard.serving._runtime import ServedModel
from shipyard.settings import ServeSettings
from shipyard.store import Store, database_unreachable

log = logging.getLogger("shipyard.serving")


@dataclass
class Slot:
    """One served model name: what answers now, or why nothing can."""

    name: str
    served: ServedModel | None = None
    error: ShipyardError | None = None
    #: Why the newest alias target could not replace ``served`` (the old one keeps serving).
    switch_error: str | None = None
    switches: int = 0
    #: The traffic policy compiled for this server (``None``: the alias answers everything).
    route: Route | None = None
    #: Why the newest traffic policy could not be applied (the previous route keeps running).
    policy_error: str | None = None


@dataclass
class ModelPool:
    """Served models by name, plus explicitly requested versions, loaded on demand."""

    store: Store
    settings: ServeSettings
    registry: Registry = field(init=False)
    slots: dict[str, Slot] = field(default_factory=dict)
    _pinned: dict[tuple[str, int], ServedModel] = field(default_factory=dict)
    _pin_locks: dict[tuple[str, int], asyncio.Lock] = field(default_factory=dict)
    _marker: Hashable | None = None
    _watcher: asyncio.Task[None] | None = None
    _retired: set[asyncio.Task[None]] = field(default_factory=set)

    def __post_init__(self) -> None:
        self.registry = Registry(self.store)
        self.traffic = Traffic(self.store)
        self.mirror = ShadowMirror()
        self.groups = ServedGroups(self)

    # -- lifecycle -------------------------------------------------------------------------
    async def start(self) -> None:
        """Load every served model, then start watching the registry."""
        self._marker = await asyncio.to_thread(self._read_marker)
        await self.refresh()
        self._watcher = asyncio.get_running_loop().create_task(self._watch())

    async def stop(self) -> None:
        if self._watcher is not None:
            self._watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watcher
        await self.mirror.drain()
        await asyncio.gather(*self._retired, return_exceptions=True)
        served = {s.served for s in self.slots.values() if s.served} | set(self._pinned.values())
        for model in served:
            await model.close()

    @property
    def ready(self) -> bool:
        """True when every served model can answer."""
        return bool(self.slots) and all(s.served is not None for s in self.slots.values())

    # -- lookups on the request path ---------------------------------------------------------
    def current(self, name: str) -> ServedModel:
        """What answers for ``name`` now (404 if not served here, 503 if it cannot answer)."""
        slot = self.slots.get(name)
        if slot is None:
            raise self._not_served(name)
        if slot.served is None:
            assert slot.error is not None
            raise slot.error
        return slot.served

    async def get(self, name: str, version: int | None = None) -> ServedModel:
        """``name`` at its served alias, or at an explicit ``version`` (loaded on first use)."""
        current = self.current(name) if version is None else None
        if current is not None:
            return current
        assert version is not None
        if name not in self.slots:
            raise self._not_served(name)
        slot = self.slots[name]
        if slot.served is not None and slot.served.version == version:
            return slot.served
        key = (name, version)
        pinned = self._pinned.get(key)
        if pinned is not None:
            return pinned
        lock = self._pin_locks.setdefault(key, asyncio.Lock())
        async with lock:
            if key not in self._pinned:
                try:
                    self._pinned[key] = await asyncio.to_thread(self._load, name, version)
                except NotFound:
                    raise
                except ShipyardError as exc:
                    raise _unavailable(exc) from exc
        return self._pinned[key]

    def route(self, name: str, key: bytes | None) -> tuple[ServedModel, str, ServedModel | None]:
        """(answering model, its arm label for the log, shadow model or ``None``) under the
        policy in force for ``name``; ``key`` is the sticky key (``None``: random)."""
        base = self.current(name)
        route = self.slots[name].route
        if route is None:
            return base, self.settings.alias, None
        arm = route.pick(name, key)
        if arm is None:
            return base, self.settings.alias, route.shadow
        return (arm.model or base), arm.label, route.shadow

    def route_request(
        self, name: str, headers: Mapping[str, str], raw: Rows | pd.DataFrame | None
    ) -> tuple[ServedModel, str, ServedModel | None]:
        """``route`` with the sticky key taken from the request's headers or first row."""
        slot = self.slots.get(name)
        route = slot.route if slot is not None else None
        key = route.key(headers, raw) if route is not None and route.sticky_kind else None
        return self.route(name, key)

    def _not_served(self, name: str) -> NotFound:
        served = ", ".join(sorted(self.slots)) or "none"
        return NotFound(f"Model '{name[:128]}' is not served here (served: {served}).")

    # -- keeping current ---------------------------------------------------------------------
    async def refresh(self) -> None:
        """Bring every slot to the version its alias points to now."""
        names = await asyncio.to_thread(self._served_names)
        for name in names:
            slot = self.slots.setdefault(name, Slot(name))
            try:
                target = await asyncio.to_thread(self._alias_target, name)
            except ShipyardError as exc:
                if slot.served is None:
                    slot.error = _unavailable(exc)
                continue
            if slot.served is not None and slot.served.version == target:
                continue
            try:
                # A version already loaded for a policy (a canary being promoted) switches now.
                pinned = self._pinned.get((name, target))
                if pinned is not None:
                    new = pinned
                else:
                    new = await asyncio.to_thread(self._load, name, target)
            except ShipyardError as exc:
                log.error("Cannot serve %s v%s: %s", name, target, exc.message)
                if slot.served is None:
                    slot.error = _unavailable(exc)
                else:
                    slot.switch_error = f"v{target} could not be loaded: {exc.message}"
                continue
            old, slot.served, slot.error, slot.switch_error = slot.served, new, None, None
            slot.switches += 1
            if old is not None:
                log.info("%s: switched from v%s to v%s", name, old.version, new.version)
            else:
                log.info("%s: serving v%s (%s runtime)", name, new.version, new.runtime)
            if old is not None and old not in self._pinned.values():
                # The old batcher answers what it has queued, then stops.
                task = asyncio.get_running_loop().create_task(old.close())
                self._retired.add(task)
                task.add_done_callback(self._retired.discard)
        await self._refresh_routes(names)
        await self.groups.refresh()

    async def _refresh_routes(self, names: list[str]) -> None:
        """Compile each served model's traffic policy, loading its versions first."""
        for name in names:
            slot = self.slots.get(name)
            if slot is None:
                continue
            try:
                policy = await asyncio.to_thread(self._policy, name)
            except ShipyardError as exc:
                slot.policy_error = exc.message
                continue
            if policy is None:
                if slot.route is not None:
                    log.info("%s: traffic policy ended", name)
                slot.route, slot.policy_error = None, None
                continue
            if slot.route is not None and slot.route.policy.id == policy.id:
                continue
            try:
                models = {v: await self._pin(name, v) for v in sorted(policy.versions())}
            except ShipyardError as exc:
                slot.policy_error = f"policy {policy.id} not applied: {exc.message}"
                log.error("%s: %s", name, slot.policy_error)
                continue
            slot.route = Route.build(policy, models, self.settings.alias)
            slot.policy_error = None
            log.info("%s: traffic policy %s", name, policy.describe())

    async def _pin(self, name: str, version: int) -> ServedModel:
        """``name`` v``version`` loaded and kept (never closed before the server stops)."""
        key = (name, version)
        slot = self.slots.get(name)
        async with self._pin_locks.setdefault(key, asyncio.Lock()):
            if key not in self._pinned:
                served = slot.served if slot is not None else None
                if served is not None and served.version == version:
                    self._pinned[key] = served
                else:
                    self._pinned[key] = await asyncio.to_thread(self._load, name, version)
        return self._pinned[key]

    async def _watch(self) -> None:
        unreachable: str | None = None  # why the database cannot be reached, while it cannot
        while True:
            await asyncio.sleep(self.settings.poll_interval_seconds)
            try:
                marker = await asyncio.to_thread(self._read_marker)
                if unreachable is not None:
                    log.warning("The registry's database answers again; following it.")
                    unreachable = None
                if marker != self._marker:
                    await self.refresh()
                    self._marker = marker
            except Exception as exc:  # a database hiccup must not stop the watcher
                reason = database_unreachable(exc)
                if reason is None:
                    log.exception("Checking the registry for changes failed; retrying")
                elif unreachable is None:  # an outage is one line, not a traceback a poll
                    log.warning(
                        "The registry's database cannot be reached (%s); the loaded models "
                        "keep serving, and the registry is asked again every %s s.",
                        reason,
                        self.settings.poll_interval_seconds,
                    )
                unreachable = reason if reason is not None else unreachable

    # -- blocking helpers (run in worker threads) ----------------------------------------------
    def _read_marker(self) -> Hashable:
        return self.registry.change_marker()

    def _policy(self, name: str) -> Policy | None:
        return self.traffic.current(name)

    def _served_names(self) -> list[str]:
        if self.settings.models is not None:
            return list(self.settings.models)
        names = self.registry.models_with_alias(self.settings.alias)
        return sorted(set(names) | set(self.slots))

    def _alias_target(self, name: str) -> int:
        return self.registry.resolve(f"{name}@{self.settings.alias}").version

    def _load(self, name: str, version: int) -> ServedModel:
        try:
            loaded = self.registry.load(name, version)
        except ShipyardError:
            raise
        except Exception as exc:  # whatever a model's own code raises: this version only
            raise ModelUnavailable(
                f"{name} v{version} cannot be loaded ({type(exc).__name__}: {str(exc)[:200]})."
            ) from exc
        try:
            served = ServedModel.build(loaded, self.settings)
        except ShipyardError:
            raise
        except Exception as exc:  # e.g. onnxruntime refusing the graph: this version only
            raise ModelUnavailable(
                f"{name} v{version} could not be prepared for serving "
                f"({type(exc).__name__}: {str(exc)[:200]})."
            ) from exc
        _warm_up(served)
        return served


def _unavailable(exc: ShipyardError) -> ShipyardError:
    if isinstance(exc, NotFound | ModelUnavailable):
        # "No production version yet": known model, nothing to serve; 503 until promoted.
        return exc if isinstance(exc, ModelUnavailable) else ModelUnavailable(exc.message)
    return ModelUnavailable(f"This model cannot be served: {exc.message}")


def _warm_up(served: ServedModel) -> None:
    """One prediction on a synthetic row, so the first real request pays no lazy set-up.

    Failures are ignored: some models reject made-up values; the first request will tell.
    """
    row: dict[str, Any] = {}
    for column in served.schema.columns:
        if column.categories:
            row[column.name] = column.categories[0]
        elif column.dtype in ("float", "integer"):
            row[column.name] = column.minimum if column.minimum is not None else 0
        elif column.dtype == "boolean":
            row[column.name] = False
        else:
            row[column.name] = ""
    try:
        served.score_now(served.coerce(pd.DataFrame([row])))
    except Exception:
        log.debug("warm-up prediction of %s v%s failed", served.name, served.version)
