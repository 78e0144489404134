"""Driving rollouts (``promote --canary N --auto``): judge each step after its bake, act on it.

``advance_rollouts`` is one pass over the running rollouts whose bake has ended (the scheduler
runs it on every loop tick; ``shipyard traffic advance`` runs one for cron users). For each,
``check_canary`` judges the canary of the step in force on the requests logged since that step
began (``Rollout.step_started_at``, never before its traffic policy started) until ``now``:

- **promote** → the next step (``Rollouts.advance``); when the next step is 100% the version is
  promoted to production (four-eyes approval needed, as for any promotion) and the rollout
  ends ``promoted``.
- **wait** with enough requests on both arms (a gate is not conclusive yet, e.g. an error
  excess above the margin that is not significant) → the next step too, where more traffic
  makes the test stronger; but never the promotion: the last canary step must pass cleanly,
  so there it counts as a wait.
- **wait** otherwise (too few requests) → judged again after another bake. After
  ``max_waits`` waits at one step (default ``MAX_WAITS``) one warning alert says the rollout
  is stalled; it keeps waiting (a quiet model is not a bad one, and rolling it back would
  punish low traffic), and every later pass reports the count.
- **rollback** → the canary ends (production answers everything), the rollout ends
  ``rolled_back``, and a critical alert is raised.

Alerts go through the ``[scheduler] channels`` of shipyard.toml, the channels where the
on-call people hear of failed jobs (a rollback is an operational event, not a question for the
approvers), and are stored and audited like every alert (``shipyard alerts list``), also when no
channel is declared. Rule name ``rollout:<model>``, metric ``rollout.rolled_back`` or
``rollout.stalled``.

A rollout whose step cannot be judged or changed (the log is unreadable, the promotion is
refused) waits another bake and is reported ``failed``, so a pass never spins on it; the first
failure at a step raises a warning alert (``rollout.failed``). Two passes
at once (two schedulers) act once: the loser of the model's row lock finds the rollout moved on
and reports ``skipped``.

>>> steps = advance_rollouts(store, now=datetime.now(UTC), project=project, actor="scheduler",
...                          log_root=Path("predictions"))  # doctest: +SKIP
>>> [(s.rollout.model_name, s.action) for s in steps]  # doctest: +SKIP
[('churn', 'stepped')]
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from shipyard.alerting import Alert, AlertRule, Alerts, Channel, channels_from_project
from shipyard.checks._canary import CanaryRules, CanaryVerdict, check_canary
from shipyard.config import ProjectConfig, Severity
from shipyard.errors import InvalidTransition, ShipyardError
from shipyard.registry import Rollout, Rollouts
from shipyard.store import Store

_log = logging.getLogger(__name__)

#: Waits at one step before the rollout is alerted as stalled (it keeps waiting).
MAX_WAITS = 6

Action = Literal["stepped", "promoted", "waited", "rolled_back", "skipped", "failed"]


@dataclass(frozen=True)
class RolloutStep:
    """What one pass did to one rollout: ``action``, one sentence, the verdict, the alert.

    >>> RolloutStep(rollout, "stepped", "churn v4: 10% → 50%").action  # doctest: +SKIP
    'stepped'
    """

    rollout: Rollout
    action: Action
    message: str
    verdict: CanaryVerdict | None = None
    alert: dict[str, Any] | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "rollout": self.rollout.to_json(),
            "action": self.action,
            "message": self.message,
            "verdict": self.verdict.to_dict() if self.verdict is not None else None,
            "alert": self.alert,
        }


def advance_rollouts(
    store: Store,
    *,
    now: datetime,
    project: ProjectConfig,
    actor: str,
    log_root: Path,
    channels: Mapping[str, Channel] | None = None,
    model: str | None = None,
    rules: CanaryRules | None = None,
    max_waits: int = MAX_WAITS,
) -> list[RolloutStep]:
    """Judge and move every due rollout (of ``model``, or all) once; see the module docstring.

    ``channels`` are the built ``[channels.*]`` (default: built from ``project``).
    """
    now = now.replace(tzinfo=UTC) if now.tzinfo is None else now
    rollouts = Rollouts(store, project)
    pass_ = _Pass(store, rollouts, project, actor, log_root, channels, rules, max_waits, now)
    return [pass_.one(rollout) for rollout in rollouts.due(now, model)]


@dataclass
class _Pass:
    store: Store
    rollouts: Rollouts
    project: ProjectConfig
    actor: str
    log_root: Path
    channels: Mapping[str, Channel] | None
    rules: CanaryRules | None
    max_waits: int
    now: datetime

    def one(self, rollout: Rollout) -> RolloutStep:
        try:
            verdict = check_canary(
                self.store,
                rollout.model_name,
                self.log_root,
                since=rollout.step_started_at,
                until=self.now,
                rules=self.rules,
            )
        except ShipyardError as exc:
            return self._failed(rollout, None, f"could not judge the canary: {exc.message}")
        if verdict.policy_id != rollout.policy_id:
            message = (
                f"the traffic policy in force ({verdict.policy_id}) is not the one the "
                f"rollout set ({rollout.policy_id})"
            )
            if self._moved_on(rollout):  # another pass stepped it since it was read
                return RolloutStep(rollout, "skipped", f"{_name(rollout)}: {message}", verdict)
            return self._stop(rollout, verdict, message)
        judgement = {
            "decision": verdict.decision,
            "summary": verdict.summary(),
            "reasons": verdict.reasons,
            "policy": verdict.policy_id,
            "since": verdict.since.isoformat(),
            "until": verdict.until.isoformat(),
        }
        enough = any(g.name == "requests" and g.status == "pass" for g in verdict.gates)
        promoting = rollout.steps[rollout.step + 1] >= 100
        kwargs: dict[str, Any] = {
            "expect_step": rollout.step,
            "actor": self.actor,
            "now": self.now,
            "judgement": judgement,
        }
        try:
            if verdict.decision == "rollback":
                done = self.rollouts.roll_back(rollout.id, **kwargs)
                alert = self._alert(
                    done,
                    verdict,
                    "critical",
                    "rollout.rolled_back",
                    f"Rollout of {_name(done)} rolled back at {rollout.percent:g}%",
                    f"The canary of {_name(done)} failed at {rollout.percent:g}% of the traffic "
                    f"and was ended; production v{verdict.production.version} answers "
                    f"everything. {verdict.summary()}",
                )
                return RolloutStep(
                    done,
                    "rolled_back",
                    f"{_name(done)}: rolled back at {rollout.percent:g}%: {verdict.summary()}",
                    verdict,
                    alert,
                )
            if verdict.decision == "promote" or (enough and not promoting):
                done = self.rollouts.advance(rollout.id, **kwargs)
                if done.status == "promoted":
                    text = f"{_name(done)}: promoted to production after {rollout.percent:g}%"
                    return RolloutStep(done, "promoted", text, verdict)
                text = f"{_name(done)}: {rollout.percent:g}% → {done.percent:g}%"
                return RolloutStep(done, "stepped", text, verdict)
            done = self.rollouts.wait(rollout.id, **kwargs)
        except InvalidTransition as exc:
            if self._moved_on(rollout):
                return RolloutStep(rollout, "skipped", f"{_name(rollout)}: {exc.message}", verdict)
            return self._failed(rollout, verdict, f"could not act on the verdict: {exc.message}")
        except ShipyardError as exc:
            return self._failed(rollout, verdict, f"could not act on the verdict: {exc.message}")
        return self._waited(done, verdict)

    def _waited(self, done: Rollout, verdict: CanaryVerdict) -> RolloutStep:
        waits = int(done.details.get("waits", 0))
        text = f"{_name(done)}: waiting at {done.percent:g}% (wait {waits}): {verdict.summary()}"
        alert = None
        if waits == self.max_waits:
            alert = self._alert(
                done,
                verdict,
                "warning",
                "rollout.stalled",
                f"Rollout of {_name(done)} stalled at {done.percent:g}%",
                f"The canary of {_name(done)} has waited {waits} bakes at {done.percent:g}% "
                f"without a verdict; it keeps waiting. {verdict.summary()}",
            )
        elif waits > self.max_waits:
            text += f"; stalled (more than {self.max_waits} waits)"
        return RolloutStep(done, "waited", text, verdict, alert)

    def _moved_on(self, rollout: Rollout) -> bool:
        """Whether another pass (or a person) changed the rollout since it was read."""
        now = self.rollouts.get(rollout.id)
        return not now.running or now.step != rollout.step or now.next_at > self.now

    def _failed(self, rollout: Rollout, verdict: CanaryVerdict | None, message: str) -> RolloutStep:
        """Report the failure and push the next judgement a bake later (no spinning)."""
        text = f"{_name(rollout)}: {message}"
        _log.warning("Rollout #%s: %s", rollout.id, text)
        try:
            rollout = self.rollouts.wait(
                rollout.id,
                expect_step=rollout.step,
                actor=self.actor,
                now=self.now,
                judgement={"decision": "error", "summary": message[:1000]},
                message=message,
            )
        except ShipyardError as exc:
            if self._moved_on(rollout):
                return RolloutStep(rollout, "skipped", f"{_name(rollout)}: {exc.message}", verdict)
            return self._stop(rollout, verdict, f"{message}; it could not wait: {exc.message}")
        alert = None
        history = rollout.details.get("history", [])
        if (
            sum(h.get("step") == rollout.step and h.get("decision") == "error" for h in history)
            == 1
        ):
            alert = self._alert(  # the first failure at this step: a person should look
                rollout,
                verdict,
                "warning",
                "rollout.failed",
                f"Rollout of {_name(rollout)} is stuck at {rollout.percent:g}%",
                f"{text}. It is tried again after each bake.",
            )
        return RolloutStep(rollout, "failed", text, verdict, alert)

    def _stop(self, rollout: Rollout, verdict: CanaryVerdict | None, message: str) -> RolloutStep:
        """Cancel a rollout that can neither be judged nor postponed (the canary stays)."""
        text = f"{_name(rollout)}: {message}"
        try:
            rollout = self.rollouts.cancel(
                rollout.model_name, actor=self.actor, reason=message[:1000]
            )
        except ShipyardError as exc:
            text += f" (and it could not be cancelled: {exc.message})"
        return RolloutStep(rollout, "failed", f"{text}; the rollout was cancelled", verdict)

    def _alert(
        self,
        rollout: Rollout,
        verdict: CanaryVerdict | None,
        severity: Severity,
        metric: str,
        title: str,
        message: str,
    ) -> dict[str, Any] | None:
        """Raise one alert through the ``[scheduler]`` channels; store it (best effort)."""
        names = list(self.project.scheduler.channels)
        rule = AlertRule(
            name=f"rollout:{rollout.model_name}",
            metric=metric,
            severity=severity,
            cooldown="0m",  # every rollback is news
            channels=names,
        )
        gates = verdict.gates if verdict is not None else ()
        failed = ", ".join(g.name for g in gates if g.status == "fail")
        alert = Alert(
            rule=rule.name,
            severity=severity,
            model=rollout.model_name,
            version=rollout.version,
            metric=metric,
            feature=failed or None,
            value=rollout.percent,
            threshold=0.0,
            title=title,
            message=message,
            facts={
                "Rollout": f"#{rollout.id} ({', '.join(f'{s:g}' for s in rollout.steps)} %)",
                "Step": f"{rollout.percent:g}%",
                "Decision": verdict.decision if verdict is not None else "none (not judged)",
                **{g.name: f"{g.status}: {g.reason}" for g in gates},
            },
        )
        try:
            channels = self.channels
            if channels is None:
                channels = channels_from_project(self.project) if names else {}
            (record,) = Alerts(self.store).raise_all(
                [(rule, alert)], dict(channels), actor=self.actor, now=self.now
            )
        except Exception:  # the rollback is committed; the alert is best effort
            _log.exception("Could not alert rollout #%s of %s", rollout.id, rollout.model_name)
            return {"status": "error"}
        if record.status == "failed":
            _log.warning("The alert of rollout #%s was not delivered", rollout.id)
        return {"id": record.id, "status": record.status, "deliveries": record.deliveries}


def _name(rollout: Rollout) -> str:
    return f"{rollout.model_name} v{rollout.version} (rollout #{rollout.id})"
