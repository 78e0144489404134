"""Progressive delivery: a canary stepped through a list of percentages (``rollouts`` rows).

``Rollouts`` writes the rows; what decides a step is the canary judge, run by
``shipyard.checks.advance_rollouts``. Each change is one transaction, under the model's row
lock, with its audit event and the traffic policy it sets:

- ``start``: the canary at the first step, set by the same code as ``Traffic.canary`` (so the
  same four-eyes approval applies), and a ``running`` row (``rollout.started``); a model has
  at most one running rollout;
- ``advance``: the next step's canary (``rollout.stepped``), or, when the next step is 100%,
  the promotion to production by the same code as ``Registry.promote`` (``rollout.promoted``);
- ``wait``: the step is judged again after another bake (``rollout.waited``);
- ``roll_back``: the canary ends, production answers everything (``rollout.rolled_back``);
- ``cancel``: the rollout stops stepping and leaves the canary as it is
  (``rollout.cancelled``).

A traffic policy change the rollout did not make (``traffic clear``, ``rollback``, a
promotion, another canary, split or shadow) cancels it in the same transaction
(``rollout.cancelled``, see ``_rollout_rows``). ``advance``, ``wait`` and ``roll_back`` take
the step the caller judged (``expect_step``) and its time: a rollout that has moved on, or is
not due yet, is refused with ``InvalidTransition``, so two schedulers judging the same step
change it once.

>>> rollouts = Rollouts(store)  # doctest: +SKIP
>>> rollouts.start("churn", 4, check_steps([10, 50]), bake=timedelta(minutes=30),
...                actor="carol")  # doctest: +SKIP
Rollout(id=1, model_name='churn', version=4, step=0, status='running')
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from shipyard.audit import append_event
from shipyard.config import ProjectConfig
from shipyard.errors import InvalidInput, InvalidTransition, NotFound
from shipyard.registry._entities import Rollout
from shipyard.registry._policy import active_policy, end_policy
from shipyard.registry._queries import lock_model, model_row
from shipyard.registry._refs import PRODUCTION
from shipyard.registry._rollout_rows import OWN_CHANGE, RUNNING, end_row, running_row
from shipyard.registry._traffic import Traffic, check_sticky
from shipyard.store import Store, tables, to_entity
from shipyard.store.tables import utcnow

#: Judgements kept in a rollout's ``details["history"]`` (the newest).
HISTORY = 100


def default_steps(first: float) -> tuple[float, ...]:
    """The steps of ``promote --canary N --auto`` without ``--steps``: N, 50 (if N < 50), 100.

    >>> default_steps(10), default_steps(60)
    ((10.0, 50.0, 100.0), (60.0, 100.0))
    """
    return check_steps([first, 50.0] if first < 50 else [first])


def check_steps(steps: Sequence[float]) -> tuple[float, ...]:
    """Percentages in (0, 100], strictly increasing, the first below 100; 100 is appended.

    Raises ``InvalidInput`` with one sentence naming the fix.

    >>> check_steps([10, 50])
    (10.0, 50.0, 100.0)
    """
    shown = ",".join(f"{s:g}" if _number(s) else repr(s) for s in steps)
    if not steps:
        raise InvalidInput("A rollout needs at least one step, e.g. --steps 10,50,100.")
    for s in steps:
        if not (_number(s) and 0 < s <= 100):
            raise InvalidInput(
                f"Each rollout step is a percentage above 0 and at most 100, e.g. 10,50,100. "
                f"Got {shown} instead."
            )
    if any(b <= a for a, b in itertools.pairwise(steps)):
        raise InvalidInput(
            f"Rollout steps must increase strictly, e.g. 10,50,100. Got {shown} instead."
        )
    if steps[0] >= 100:
        raise InvalidInput(
            "The first rollout step is the canary's share and must be below 100%; to send "
            "everything at once, promote without --auto."
        )
    out = tuple(float(s) for s in steps)
    return out if out[-1] == 100 else (*out, 100.0)


def _number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


class Rollouts:
    """The rollouts of one ``Store``; every change audited (see the module docstring).

    ``project`` is the parsed shipyard.toml whose per-model policy the canary and the
    promotion follow, as ``Traffic``'s and ``Registry``'s.
    """

    def __init__(self, store: Store, project: ProjectConfig | None = None) -> None:
        self.store = store
        self.project = project
        self.traffic = Traffic(store, project)

    # -- reading ---------------------------------------------------------------------------
    def get(self, rollout_id: int) -> Rollout:
        """One rollout by id; ``NotFound`` otherwise."""
        with self.store.read() as session:
            row = session.get(tables.Rollout, rollout_id)
            if row is None:
                raise NotFound(f"There is no rollout #{rollout_id}.")
            return to_entity(Rollout, row)

    def running(self, name: str) -> Rollout | None:
        """``name``'s running rollout, or ``None``."""
        with self.store.read() as session:
            model_row(session, name)
            row = running_row(session, name)
            return to_entity(Rollout, row) if row is not None else None

    def history(self, name: str | None = None, *, limit: int | None = None) -> list[Rollout]:
        """Rollouts (of ``name``, or every model's), newest first."""
        with self.store.read() as session:
            query = select(tables.Rollout).order_by(tables.Rollout.id.desc())
            if name is not None:
                model_row(session, name)
                query = query.where(tables.Rollout.model_name == name)
            if limit is not None:
                query = query.limit(limit)
            return [to_entity(Rollout, r) for r in session.scalars(query)]

    def due(self, now: datetime, name: str | None = None) -> list[Rollout]:
        """Running rollouts whose step is to be judged at ``now`` (one indexed query)."""
        with self.store.read() as session:
            query = (
                select(tables.Rollout)
                .where(tables.Rollout.status == RUNNING, tables.Rollout.next_at <= _aware(now))
                .order_by(tables.Rollout.next_at)
            )
            if name is not None:
                model_row(session, name)
                query = query.where(tables.Rollout.model_name == name)
            return [to_entity(Rollout, r) for r in session.scalars(query)]

    # -- writing ---------------------------------------------------------------------------
    def start(
        self,
        name: str,
        version: int,
        steps: Sequence[float],
        *,
        bake: timedelta,
        actor: str,
        sticky: str | None = None,
        reason: str = "",
        now: datetime | None = None,
    ) -> Rollout:
        """Set the canary at ``steps[0]`` % and start stepping it, judged every ``bake``.

        ``steps`` go through ``check_steps`` (100 appended). Refused (``InvalidTransition``)
        while ``name`` has a running rollout; the canary needs what ``Traffic.canary`` needs.
        """
        checked = check_steps(steps)
        if not isinstance(bake, timedelta) or bake <= timedelta(0):
            raise InvalidInput(f"The bake time must be more than zero, e.g. 30m. Got {bake!r}.")
        sticky = check_sticky(sticky)
        now = _aware(now or utcnow())
        with self.store.write() as session:
            lock_model(session, name, actor=actor)
            running = running_row(session, name)
            if running is not None:
                raise InvalidTransition(
                    f"{name} already has a running rollout (#{running.id}, v{running.version} "
                    f"at {running.steps[running.step]:g}%); end it first with 'shipyard traffic "
                    f"clear {name}' or wait for it to finish."
                )
            policy = self.traffic._canary(
                session, name, version, checked[0], actor, sticky, _why(reason, "rollout")
            )
            row = tables.Rollout(
                model_name=name,
                version=version,
                steps=list(checked),
                step=0,
                bake_seconds=bake.total_seconds(),
                status=RUNNING,
                next_at=now + bake,
                started_at=now,
                started_by=actor,
                updated_at=now,
                message=f"started at {checked[0]:g}%",
                details={
                    "policy": policy.id,
                    "since": now.isoformat(),
                    "sticky": sticky,
                    "waits": 0,
                    "history": [],
                },
            )
            session.add(row)
            session.flush()
            append_event(
                session,
                actor=actor,
                action="rollout.started",
                subject=f"model:{name}/{version}",
                details={
                    "rollout": row.id,
                    "steps": list(checked),
                    "bake_seconds": row.bake_seconds,
                    "policy": policy.id,
                },
                reason=reason,
            )
            return to_entity(Rollout, row)

    def advance(
        self,
        rollout_id: int,
        *,
        expect_step: int,
        actor: str,
        now: datetime,
        judgement: dict[str, Any] | None = None,
    ) -> Rollout:
        """Move to the next step; at 100% promote the version to production and end
        ``promoted`` (the promotion needs what ``Registry.promote`` needs)."""
        now = _aware(now)
        with self.store.write() as session:
            row = self._own(session, rollout_id, expect_step, now, actor)
            nxt = row.step + 1
            percent = float(row.steps[nxt])
            reason = _why(_summary(judgement), f"rollout #{row.id}")
            history = _history(row, judgement, now, "promoted" if percent >= 100 else "stepped")
            session.info[OWN_CHANGE] = row.id
            if percent >= 100:
                self.traffic.registry._promote(
                    session, row.model_name, row.version, actor=actor, to=PRODUCTION, reason=reason
                )
                row.step = nxt
                end_row(
                    session,
                    row,
                    "promoted",
                    actor=actor,
                    message=f"promoted v{row.version} to production",
                    reason=reason,
                    details={"history": history},
                )
                return to_entity(Rollout, row)
            policy = self.traffic._canary(
                session,
                row.model_name,
                row.version,
                percent,
                actor,
                row.details.get("sticky"),
                reason,
            )
            row.step, row.next_at, row.updated_at = nxt, now + _bake(row), utcnow()
            row.message = f"stepped to {percent:g}%"
            row.details = {
                **row.details,
                "policy": policy.id,
                "since": now.isoformat(),
                "waits": 0,
                "history": history,
            }
            append_event(
                session,
                actor=actor,
                action="rollout.stepped",
                subject=f"model:{row.model_name}/{row.version}",
                details={"rollout": row.id, "percent": percent, "policy": policy.id},
                reason=reason,
            )
            return to_entity(Rollout, row)

    def wait(
        self,
        rollout_id: int,
        *,
        expect_step: int,
        actor: str,
        now: datetime,
        judgement: dict[str, Any] | None = None,
        message: str = "",
    ) -> Rollout:
        """Judge the step again after another bake (``details["waits"]`` counts the waits)."""
        now = _aware(now)
        with self.store.write() as session:
            row = self._own(session, rollout_id, expect_step, now, actor)
            waits = int(row.details.get("waits", 0)) + 1
            row.next_at, row.updated_at = now + _bake(row), utcnow()
            row.message = message or f"waiting at {row.steps[row.step]:g}% (wait {waits})"
            row.details = {
                **row.details,
                "waits": waits,
                "history": _history(row, judgement, now, "waited"),
            }
            append_event(
                session,
                actor=actor,
                action="rollout.waited",
                subject=f"model:{row.model_name}/{row.version}",
                details={"rollout": row.id, "percent": row.steps[row.step], "waits": waits},
                reason=_summary(judgement),
            )
            return to_entity(Rollout, row)

    def roll_back(
        self,
        rollout_id: int,
        *,
        expect_step: int,
        actor: str,
        now: datetime,
        judgement: dict[str, Any] | None = None,
    ) -> Rollout:
        """End the canary (production answers everything) and the rollout, ``rolled_back``."""
        now = _aware(now)
        with self.store.write() as session:
            row = self._own(session, rollout_id, expect_step, now, actor)
            reason = _why(_summary(judgement), f"rollout #{row.id}")
            session.info[OWN_CHANGE] = row.id
            end_policy(
                session,
                row.model_name,
                actor=actor,
                cause=f"rollback by rollout #{row.id}",
                reason=reason,
                keep_shadow=True,
            )
            end_row(
                session,
                row,
                "rolled_back",
                actor=actor,
                message=f"rolled back at {row.steps[row.step]:g}%: {_summary(judgement)}",
                reason=reason,
                details={"history": _history(row, judgement, now, "rolled_back")},
            )
            return to_entity(Rollout, row)

    def cancel(self, name: str, *, actor: str, reason: str = "") -> Rollout:
        """Stop ``name``'s running rollout; the canary stays as it is (``traffic clear`` ends
        it)."""
        with self.store.write() as session:
            lock_model(session, name, actor=actor)
            row = running_row(session, name)
            if row is None:
                raise InvalidTransition(f"{name} has no running rollout to cancel.")
            end_row(
                session,
                row,
                "cancelled",
                actor=actor,
                message=f"cancelled by {actor} at {row.steps[row.step]:g}%; the canary stays "
                f"(shipyard traffic clear {name} ends it)",
                reason=reason,
            )
            return to_entity(Rollout, row)

    def _own(
        self, session: Session, rollout_id: int, expect_step: int, now: datetime, actor: str
    ) -> tables.Rollout:
        """The running row, locked through its model, still at ``expect_step`` and due."""
        name = session.scalar(
            select(tables.Rollout.model_name).where(tables.Rollout.id == rollout_id)
        )
        if name is None:
            raise NotFound(f"There is no rollout #{rollout_id}.")
        lock_model(session, name, actor=actor)
        row = session.get(tables.Rollout, rollout_id, populate_existing=True)
        assert row is not None  # rollouts are never deleted
        if row.status != RUNNING:
            raise InvalidTransition(
                f"Rollout #{row.id} of {name} is {row.status.replace('_', ' ')}: {row.message}."
            )
        if row.step != expect_step or row.next_at > now:
            raise InvalidTransition(
                f"Rollout #{row.id} of {name} has moved on (now at "
                f"{row.steps[row.step]:g}%, next judged {row.next_at:%Y-%m-%d %H:%M:%S} UTC); "
                "nothing was changed."
            )
        policy = active_policy(session, name)
        if policy is None or policy.id != row.details.get("policy"):
            raise InvalidTransition(
                f"{name}'s traffic policy is no longer the one rollout #{row.id} set; nothing "
                "was changed."
            )
        return row


def _aware(now: datetime) -> datetime:
    """Naive datetimes are UTC, as everywhere in Shipyard."""
    return now.replace(tzinfo=UTC) if now.tzinfo is None else now


def _bake(row: tables.Rollout) -> timedelta:
    return timedelta(seconds=row.bake_seconds)


def _summary(judgement: dict[str, Any] | None) -> str:
    return str((judgement or {}).get("summary", ""))[:1000]


def _why(text: str, prefix: str) -> str:
    return f"{prefix}: {text}" if text else prefix


def _history(
    row: tables.Rollout, judgement: dict[str, Any] | None, now: datetime, outcome: str
) -> list[dict[str, Any]]:
    entry = {
        "at": now.isoformat(),
        "step": row.step,
        "percent": row.steps[row.step],
        "outcome": outcome,
        **(judgement or {}),
    }
    return [*row.details.get("history", []), entry][-HISTORY:]
