"""The acceptance criterion and the metric gates, judged on bootstrap intervals.

A value threshold (``min``, ``max``, the criterion) is judged on the interval's pessimistic
end: the lower end of a metric where higher is better, the upper end otherwise. A change
threshold (``max_drop``, absolute; ``max_drop_relative``, a share of the champion's value)
is judged on the pessimistic end of the paired difference's interval. Without a champion,
change thresholds follow the policy's ``first_model``: ``"pass"`` records them as not
applicable and says so, ``"block"`` fails them.
"""

from __future__ import annotations

from typing import Any

from shipyard.config import METRICS, Criterion, GateSettings, MetricGate
from shipyard.evaluation._gate import Gate
from shipyard.evaluation._metrics import Interval, MetricTable


def default_gates(primary: str) -> list[MetricGate]:
    """Without ``[gates] metrics``: the primary metric not worse than the champion by 0.01.

    >>> default_gates("rmse")[0].max_drop
    0.01
    """
    return [MetricGate(metric=primary, max_drop=0.01)]


def _pessimistic(interval: Interval, higher_is_better: bool) -> float:
    end = interval.low if higher_is_better else interval.high
    return interval.value if end is None else end


def _fmt(interval: Interval) -> str:
    if interval.low is None or interval.high is None:
        return f"{interval.value:.4g} (no interval)"
    return f"{interval.value:.4g} [{interval.low:.4g}, {interval.high:.4g}]"


def accept_gate(criterion: Criterion, table: MetricTable) -> Gate:
    """The acceptance criterion, judged on the candidate's pessimistic end."""
    interval = table.candidate[criterion.metric]
    judged = _pessimistic(interval, criterion.higher_is_better)
    passed = criterion.holds(judged)
    end = "lower" if criterion.higher_is_better else "upper"
    verdict = "meets" if passed else "does not meet"
    return Gate(
        name="accept",
        passed=passed,
        value=interval.value,
        limit=criterion.value,
        detail=(
            f"{criterion.metric} {_fmt(interval)}: the interval's {end} end {judged:.4g} "
            f"{verdict} the acceptance criterion {criterion}."
        ),
        kind="metric",
        data={
            "criterion": str(criterion),
            "metric": criterion.metric,
            "judged_on": judged,
            **interval.to_json(),
        },
    )


def metric_gate(
    gate: MetricGate,
    table: MetricTable,
    settings: GateSettings,
    *,
    champion_error: str | None = None,
) -> Gate:
    """One ``[[gates.metrics]]`` entry: its value and change thresholds."""
    name = gate.metric
    better = METRICS[name]
    cand = table.candidate[name]
    judged = _pessimistic(cand, better)
    checks: list[dict[str, Any]] = []
    sentences: list[str] = []
    if gate.min is not None:
        ok = judged >= gate.min
        checks.append({"check": "min", "limit": gate.min, "judged_on": judged, "passed": ok})
        sentences.append(f"{'at least' if ok else 'below'} the minimum {gate.min:g}")
    if gate.max is not None:
        ok = judged <= gate.max
        checks.append({"check": "max", "limit": gate.max, "judged_on": judged, "passed": ok})
        sentences.append(f"{'at most' if ok else 'above'} the maximum {gate.max:g}")
    change = [
        (kind, limit)
        for kind, limit in (
            ("max_drop", gate.max_drop),
            ("max_drop_relative", gate.max_drop_relative),
        )
        if limit is not None
    ]
    not_applicable = False
    thresholds = ", ".join(f"{kind} {limit:g}" for kind, limit in change)
    if change:
        if table.difference is None or table.champion is None:
            reason = (
                f"the champion could not score the rows ({champion_error})"
                if champion_error
                else "there is no champion"
            )
            if champion_error or settings.first_model == "block":
                policy = "" if champion_error else " and the policy is first_model = 'block'"
                sentences.append(f"the change threshold ({thresholds}) fails: {reason}{policy}")
                checks.append({"check": "change", "passed": False, "reason": reason})
            else:
                sentences.append(
                    f"the change threshold ({thresholds}) is not applicable: {reason} and the "
                    "policy is first_model = 'pass'"
                )
                checks.append({"check": "change", "applicable": False, "reason": reason})
                not_applicable = not (gate.min is not None or gate.max is not None)
        else:
            diff = table.difference[name]
            # How much worse than the champion, at the pessimistic end of the paired interval.
            end = diff.low if better else diff.high
            if end is None:  # no interval (e.g. too few rows): the point estimate
                end = diff.value
            worse = -end if better else end
            champion_value = table.champion[name].value
            for kind, limit in change:
                allowed = limit if kind == "max_drop" else limit * abs(champion_value)
                ok = worse <= allowed
                checks.append(
                    {
                        "check": kind,
                        "limit": limit,
                        "allowed": allowed,
                        "worse_by": worse,
                        "passed": ok,
                    }
                )
                sentences.append(
                    f"{'within' if ok else 'beyond'} {kind} {limit:g} of the champion's "
                    f"{champion_value:.4g} (difference {_fmt(diff)}, worse by up to {worse:.4g})"
                )
    passed = all(check.get("passed", True) for check in checks)
    bounds = (gate.min, gate.max, gate.max_drop, gate.max_drop_relative)
    shown = next((b for b in bounds if b is not None), None)
    data: dict[str, Any] = {
        "metric": name,
        "higher_is_better": better,
        "candidate": cand.to_json(),
        "checks": checks,
    }
    if table.champion is not None and table.difference is not None:
        data["champion"] = table.champion[name].to_json()
        data["difference"] = table.difference[name].to_json()
    return Gate(
        name=f"metric:{name}",
        passed=passed,
        value=cand.value,
        limit=shown,
        detail=f"{name} {_fmt(cand)}: " + "; ".join(sentences) + ".",
        kind="metric",
        data=data,
        applicable=not not_applicable,
    )
