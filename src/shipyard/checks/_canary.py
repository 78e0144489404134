"""Canary judgement: the candidate arm of a canary (or split) against production, from the log.

``check_canary`` reads the prediction log since the traffic policy in force started and judges
the candidate arm (the canary, or a split's non-production arm) against the production arm,
gate by gate:

- **requests**: each arm needs ``min_requests`` requests (answered or refused); fewer is "wait".
- **errors**: refused / all requests per arm (``compute_service``). It fails when the canary's
  rate is above production's by more than ``max_error_rate_increase`` (absolute) *and* the
  difference is significant: the lower bound of Newcombe's hybrid score interval of
  ``canary - production`` (built from two Wilson intervals, at ``confidence``) is above 0. An
  excess above the margin that is not significant yet is "wait"; so 1 error in 100 requests
  against none passes (within the margin), and 3 in 100 against 0 in 900 fails.
- **latency**: fails when the canary's p99 is above ``max_p99_ratio`` x production's p99 plus
  ``p99_slack_ms`` (the slack keeps sub-millisecond models from failing on scheduler noise).
- **output drift**: production's logged outputs (``prediction``, ``proba_<class>``) are
  profiled as the reference and the canary's compared with it by the drift tests and rule of
  ``DriftConfig``, as ``shipyard monitor run --outputs`` does; it fails when an output column
  drifts. The default tests are significance tests on small windows (KS and chi-square at
  p < 1e-4) and effect sizes on large ones, so sampling noise does not fail it.

- **performance** (when labels were sent, see ``shipyard feedback``): accuracy (classifiers)
  or MAE (regressors) of each arm on its labelled predictions, with its interval at
  ``confidence`` (Wilson, or the bootstrap). It fails when the canary is worse and the two
  intervals do not overlap (a conservative test); with fewer than ``min_labels`` labels on an
  arm it is skipped, as labels may never come, and does not hold a promotion back.

Decision: "rollback" when a gate fails, else "wait" when an arm has too few requests or a gate
is not conclusive yet, else "promote". The checks are repeated (cron, the scheduler), which is
why the default confidence is 99%: a false rollback every few hundred healthy checks, not
every twenty. The same log and window always give the same verdict.

Refused requests that fail before routing (an unreadable body) are logged on the production
arm, so they count against production, never against the canary.

>>> verdict = check_canary(store, "churn", Path("~/.shipyard/predictions"))  # doctest: +SKIP
>>> verdict.decision, verdict.reasons[1]  # doctest: +SKIP
('rollback', 'errors: canary v2 10.0% (10/100) vs production v1 0.0% (0/900): ...')
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from shipyard.dataset import profile_frame
from shipyard.errors import InvalidInput, InvalidTransition, NotFound
from shipyard.monitoring import (
    DriftConfig,
    ServiceGroup,
    compute_drift,
    compute_performance,
    compute_service,
    labelled_window,
    logged_window,
    newcombe_interval,
    service_window,
    window_chunks,
)
from shipyard.registry import PRODUCTION, Policy, Registry, Traffic
from shipyard.store import Store

Decision = Literal["promote", "rollback", "wait"]
GateStatus = Literal["pass", "fail", "wait", "skip"]


@dataclass(frozen=True)
class CanaryRules:
    """When a canary passes; see the module docstring for each gate.

    >>> CanaryRules(min_requests=500).max_p99_ratio
    1.5
    """

    min_requests: int = 100
    max_error_rate_increase: float = 0.02
    confidence: float = 0.99
    max_p99_ratio: float = 1.5
    p99_slack_ms: float = 5.0
    #: Labelled predictions per arm before the performance gate judges.
    min_labels: int = 100
    #: The drift rule for the output-drift gate; ``None`` skips the gate.
    drift: DriftConfig | None = field(default_factory=DriftConfig)

    def check(self) -> None:
        """Raise ``InvalidInput`` for a value out of range, naming the fix."""
        if isinstance(self.min_requests, bool) or not (
            isinstance(self.min_requests, int) and self.min_requests >= 1
        ):
            raise InvalidInput(
                f"min_requests must be an int >= 1. Got {self.min_requests!r} instead."
            )
        if isinstance(self.min_labels, bool) or not (
            isinstance(self.min_labels, int) and self.min_labels >= 1
        ):
            raise InvalidInput(f"min_labels must be an int >= 1. Got {self.min_labels!r} instead.")
        if not (_finite(self.max_error_rate_increase) and 0 <= self.max_error_rate_increase < 1):
            raise InvalidInput(
                "max_error_rate_increase is an absolute share in [0, 1), e.g. 0.02 for 2 "
                f"points. Got {self.max_error_rate_increase!r} instead."
            )
        if not (_finite(self.confidence) and 0.5 <= self.confidence < 1):
            raise InvalidInput(
                f"confidence must be in [0.5, 1), e.g. 0.99. Got {self.confidence!r} instead."
            )
        if not (_finite(self.max_p99_ratio) and self.max_p99_ratio >= 1):
            raise InvalidInput(
                f"max_p99_ratio must be a number >= 1, e.g. 1.5. Got {self.max_p99_ratio!r}."
            )
        if not (_finite(self.p99_slack_ms) and self.p99_slack_ms >= 0):
            raise InvalidInput(f"p99_slack_ms must be >= 0. Got {self.p99_slack_ms!r} instead.")


@dataclass(frozen=True)
class CanaryArm:
    """Service figures of one arm in the window (refusals included in ``requests``)."""

    arm: str
    version: int
    requests: int
    predictions: int
    refused: int
    error_rate: float | None
    latency_p50_ms: float | None
    latency_p99_ms: float | None

    @classmethod
    def of(cls, arm: str, version: int, group: ServiceGroup | None) -> CanaryArm:
        if group is None:
            return cls(arm, version, 0, 0, 0, None, None, None)
        return cls(
            arm,
            version,
            group.requests,
            group.predictions,
            group.refused,
            group.error_rate,
            group.latency_p50_ms,
            group.latency_p99_ms,
        )

    @property
    def name(self) -> str:
        """``canary v2``, ``production v1``, ``split:4 v4``."""
        return f"{self.arm} v{self.version}"


@dataclass(frozen=True)
class CanaryGate:
    """One gate's outcome and its one-line reason, with the figures."""

    name: str
    status: GateStatus
    reason: str


@dataclass(frozen=True)
class CanaryVerdict:
    """What ``check_canary`` decided, and why (one reason line per gate)."""

    model: str
    decision: Decision
    policy_id: int
    kind: str
    production: CanaryArm
    candidate: CanaryArm
    since: datetime
    until: datetime
    gates: tuple[CanaryGate, ...]
    rules: CanaryRules

    @property
    def reasons(self) -> list[str]:
        """``"<gate> <status>: <why>"`` per gate, in order."""
        return [f"{g.name} {g.status}: {g.reason}" for g in self.gates]

    @property
    def failed(self) -> list[CanaryGate]:
        return [g for g in self.gates if g.status == "fail"]

    def summary(self) -> str:
        """One line: the decision and the first reason that decided it."""
        deciding = self.failed or [g for g in self.gates if g.status == "wait"]
        why = f" ({deciding[0].name}: {deciding[0].reason})" if deciding else ""
        return f"{self.decision} {self.model} {self.candidate.name} (policy {self.policy_id}){why}"

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready (times in ISO 8601)."""
        rules = asdict(self.rules)
        rules["drift"] = None if self.rules.drift is None else self.rules.drift.model_dump()
        return {
            "model": self.model,
            "decision": self.decision,
            "policy_id": self.policy_id,
            "kind": self.kind,
            "since": self.since.isoformat(),
            "until": self.until.isoformat(),
            "arms": {"production": asdict(self.production), "candidate": asdict(self.candidate)},
            "gates": [asdict(g) for g in self.gates],
            "reasons": self.reasons,
            "rules": rules,
        }


def check_canary(
    store: Store,
    model: str,
    log_root: Path | str,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    rules: CanaryRules | None = None,
) -> CanaryVerdict:
    """Judge ``model``'s canary (or split candidate) against production from the log.

    The window starts when the policy in force started (``since`` may start it later, never
    earlier: traffic before the policy is not the canary's) and ends at ``until`` (now).
    Raises ``NotFound`` for an unknown model and ``InvalidTransition`` when no canary or
    split is in force.
    """
    rules = rules or CanaryRules()
    rules.check()
    policy = Traffic(store).current(model)  # NotFound for an unknown model
    if policy is None or not policy.arms:
        raise InvalidTransition(
            f"{model} has no canary or split in force, so there is nothing to check; start "
            f"one with 'shipyard promote {model} N --canary 10'."
        )
    production = Registry(store).aliases(model).get(PRODUCTION)
    if production is None:
        raise InvalidTransition(f"{model} has no production version to compare a canary with.")
    base_arm, candidate_arm = _arms(policy, production)
    start = _utc(policy.created_at)
    if since is not None:
        start = max(start, _utc(since))
    end = _utc(until) if until is not None else datetime.now(UTC)
    if end <= start:
        raise InvalidInput(
            f"The window is empty: it starts {start:%Y-%m-%d %H:%M:%S} UTC (the policy's start "
            f"or since) and ends {end:%Y-%m-%d %H:%M:%S} UTC; give an earlier since."
        )
    root = Path(log_root).expanduser()
    report = compute_service(service_window(root, model, start, end))
    base = CanaryArm.of(base_arm[0], base_arm[1], report.group(base_arm[1], base_arm[0]))
    cand = CanaryArm.of(
        candidate_arm[0], candidate_arm[1], report.group(candidate_arm[1], candidate_arm[0])
    )
    enough = _requests_gate(base, cand, rules)
    gates = [enough, _errors_gate(base, cand, rules), _latency_gate(base, cand, rules)]
    task = Registry(store).get_version(model, cand.version).task
    performance = _performance_gate(root, model, task, base, cand, start, end, rules)
    if rules.drift is not None:
        drift = _drift_gate(root, model, base, cand, start, end, rules, enough.status)
        gates.append(_drift_excused(drift, performance))
    gates.append(performance)
    statuses = {g.status for g in gates} - {"skip"}
    decision: Decision = (
        "rollback"
        if "fail" in statuses and enough.status == "pass"
        else "wait"
        if statuses - {"pass"}
        else "promote"
    )
    return CanaryVerdict(
        model=model,
        decision=decision,
        policy_id=policy.id,
        kind=policy.kind,
        production=base,
        candidate=cand,
        since=start,
        until=end,
        gates=tuple(gates),
        rules=rules,
    )


def _arms(policy: Policy, production: int) -> tuple[tuple[str, int], tuple[str, int]]:
    """(label, version) of the production arm and of the one candidate arm, as logged."""
    base: tuple[str, int] | None = None
    candidates: list[tuple[str, int]] = []
    for arm in policy.arms:
        if arm.version is None:
            base = (PRODUCTION, production)
        elif policy.kind == "canary":
            candidates.append(("canary", arm.version))
        elif arm.version == production:
            base = (f"split:{arm.version}", arm.version)
        else:
            candidates.append((f"split:{arm.version}", arm.version))
    if base is None:
        raise InvalidTransition(
            f"{policy.model}'s {policy.describe()} has no production arm (v{production}) to "
            "compare with; a canary check needs production as one arm."
        )
    if len(candidates) != 1:
        names = ", ".join(f"v{v}" for _, v in candidates)
        raise InvalidTransition(
            f"{policy.model}'s {policy.describe()} has {len(candidates)} candidate versions "
            f"({names}); a canary check compares one candidate with production."
        )
    return base, candidates[0]


def _requests_gate(base: CanaryArm, cand: CanaryArm, rules: CanaryRules) -> CanaryGate:
    figures = f"{cand.name} {cand.requests}, {base.name} {base.requests} requests"
    short = [a.name for a in (cand, base) if a.requests < rules.min_requests]
    if short:
        return CanaryGate(
            "requests",
            "wait",
            f"{figures}; each arm needs {rules.min_requests} (short: {', '.join(short)})",
        )
    return CanaryGate("requests", "pass", f"{figures} (minimum {rules.min_requests} each)")


def _errors_gate(base: CanaryArm, cand: CanaryArm, rules: CanaryRules) -> CanaryGate:
    if not base.requests or not cand.requests:
        return CanaryGate("errors", "wait", "no requests on an arm yet")
    excess = cand.refused / cand.requests - base.refused / base.requests
    low, high = newcombe_interval(
        cand.refused, cand.requests, base.refused, base.requests, rules.confidence
    )
    figures = (
        f"{cand.name} {_pct(cand.refused / cand.requests)} ({cand.refused}/{cand.requests}) vs "
        f"{base.name} {_pct(base.refused / base.requests)} ({base.refused}/{base.requests}); "
        f"difference {excess * 100:+.1f} points, {rules.confidence:.0%} interval "
        f"[{low * 100:+.1f}, {high * 100:+.1f}]"
    )
    margin = rules.max_error_rate_increase
    if excess <= margin:
        return CanaryGate("errors", "pass", f"{figures}, within +{margin * 100:g} points")
    if low > 0:
        return CanaryGate(
            "errors",
            "fail",
            f"{figures}: error rate significantly higher, by more than +{margin * 100:g} points",
        )
    return CanaryGate(
        "errors", "wait", f"{figures}: above +{margin * 100:g} points but not significant yet"
    )


def _latency_gate(base: CanaryArm, cand: CanaryArm, rules: CanaryRules) -> CanaryGate:
    if base.latency_p99_ms is None or cand.latency_p99_ms is None:
        return CanaryGate("latency", "wait", "no answered requests on an arm yet")
    limit = rules.max_p99_ratio * base.latency_p99_ms + rules.p99_slack_ms
    ratio = cand.latency_p99_ms / base.latency_p99_ms if base.latency_p99_ms > 0 else math.inf
    figures = (
        f"p99 {cand.name} {cand.latency_p99_ms:.1f} ms vs {base.name} "
        f"{base.latency_p99_ms:.1f} ms ({ratio:.2f}x); limit {rules.max_p99_ratio:g}x + "
        f"{rules.p99_slack_ms:g} ms = {limit:.1f} ms"
    )
    if cand.latency_p99_ms > limit:
        return CanaryGate("latency", "fail", f"{figures}: canary too slow")
    return CanaryGate("latency", "pass", figures)


def _drift_gate(
    root: Path,
    model: str,
    base: CanaryArm,
    cand: CanaryArm,
    start: datetime,
    end: datetime,
    rules: CanaryRules,
    requests: GateStatus,
) -> CanaryGate:
    if requests != "pass":
        return CanaryGate("drift", "wait", "judged once both arms have enough requests")
    try:
        reference = logged_window(root, model, base.version, start, end, outputs=True)
        _, chunks = window_chunks(root, model, cand.version, start, end, outputs=True)
    except NotFound:
        return CanaryGate("drift", "wait", "no answered predictions on an arm yet")
    report = compute_drift(profile_frame(reference), chunks, config=rules.drift)
    parts = []
    for feature in report.features:
        if feature.test is None:
            continue
        score = feature.score(feature.test)
        value = "n/a" if score.value is None else f"{score.value:.3g}"
        sign = " p=" if score.kind == "p_value" else " "
        parts.append(f"{feature.name} {feature.test}{sign}{value}")
    figures = f"outputs of {cand.name} vs {base.name}: " + (", ".join(parts) or "none judged")
    drifted = [f.name for f in report.features if f.drifted]
    if drifted:
        return CanaryGate("drift", "fail", f"{figures}; drifted: {', '.join(drifted)}")
    return CanaryGate("drift", "pass", f"{figures}; no output drifted")


#: What the performance gate says when the canary's labels beat production's.
_BETTER = "canary significantly better"


def _performance_gate(
    root: Path,
    model: str,
    task: str,
    base: CanaryArm,
    cand: CanaryArm,
    start: datetime,
    end: datetime,
    rules: CanaryRules,
) -> CanaryGate:
    if task not in ("classification", "regression"):
        return CanaryGate("performance", "skip", f"no performance metric for a {task} model")
    windows = {
        arm.version: labelled_window(root, model, arm.version, start, end) for arm in (base, cand)
    }
    counts = {
        v: int(p["prediction_id"].isin(lab["prediction_id"]).sum())
        for v, (p, lab) in windows.items()
    }
    if min(counts.values()) < rules.min_labels:
        return CanaryGate(
            "performance",
            "skip",
            f"{counts[cand.version]} labelled predictions on {cand.name}, "
            f"{counts[base.version]} on {base.name}; judged from {rules.min_labels} on each",
        )
    name = "accuracy" if task == "classification" else "mae"
    classes = None
    if task == "classification":  # the same classes on both arms, whatever each predicted
        values = {v for p, _ in windows.values() for v in p["prediction"].dropna().unique()}
        classes = sorted(values, key=str)
    estimates = {
        version: compute_performance(
            predictions,
            labels,
            task=task,  # type: ignore[arg-type]
            classes=classes,
            confidence=rules.confidence,
            now=end,
        ).metric(name)
        for version, (predictions, labels) in windows.items()
    }
    b, c = estimates[base.version], estimates[cand.version]
    if b.value is None or c.value is None or None in (b.ci_low, b.ci_high, c.ci_low, c.ci_high):
        return CanaryGate(
            "performance", "skip", f"{name} cannot be computed: {c.reason or b.reason}"
        )
    assert b.ci_low is not None and b.ci_high is not None
    assert c.ci_low is not None and c.ci_high is not None
    figures = (
        f"{name} {cand.name} {c.value:.3f} [{c.ci_low:.3f}, {c.ci_high:.3f}] (n={c.n}) vs "
        f"{base.name} {b.value:.3f} [{b.ci_low:.3f}, {b.ci_high:.3f}] (n={b.n})"
    )
    worse = c.ci_high < b.ci_low if c.higher_is_better else c.ci_low > b.ci_high
    if worse:
        return CanaryGate("performance", "fail", f"{figures}: canary significantly worse")
    better = c.ci_low > b.ci_high if c.higher_is_better else c.ci_high < b.ci_low
    return CanaryGate("performance", "pass", figures + (f": {_BETTER}" if better else ""))


def _drift_excused(drift: CanaryGate, performance: CanaryGate) -> CanaryGate:
    """Outputs that drift from production's are what a retrained model is for when the world
    changed: with labels showing the canary significantly better, the drift is reported, not
    a rollback."""
    if drift.status != "fail" or not performance.reason.endswith(_BETTER):
        return drift
    return CanaryGate(
        "drift",
        "pass",
        f"{drift.reason}; accepted: the labels show the canary significantly better",
    )


def _pct(share: float) -> str:
    return f"{share * 100:.1f}%"


def _finite(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _utc(value: datetime) -> datetime:
    """Naive datetimes are UTC, as everywhere in Shipyard."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
