"""A model's health in plain words, from its ``model_health`` row, its open alerts, its
acceptance criterion and the monitoring schedule: ``healthy``, ``needs attention`` (and why,
one short sentence per reason) or ``not monitored yet``.

>>> from datetime import UTC, datetime, timedelta
>>> now = datetime(2026, 12, 6, tzinfo=UTC)
>>> row = HealthRow(version=3, run_id="r1", window_start=None, window_end=now, rows=10,
...     features=4, drifted=["age", "plan"], quality=["income: missing"], performance={},
...     label_coverage=None)
>>> judge(row, open_alerts=1, criterion=None, stale_after=timedelta(days=2), now=now).reasons
['2 features drifted: age, plan', '1 open alert', 'quality: missing values in income']
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Literal

from croniter import croniter
from pydantic import BaseModel, ConfigDict

from shipyard.config import Criterion, ProjectConfig
from shipyard.registry import parse_ref

HealthStatus = Literal["healthy", "attention", "unknown"]
CriterionStatus = Literal["met", "not met", "no labels yet", "not monitored yet", "no criterion"]
#: Without a monitoring job for the model, a last window older than this is stale.
DEFAULT_STALE_AFTER = timedelta(days=2)
#: Drifted features named in a reason (the rest are counted).
NAMED_FEATURES = 5
LABELS: dict[str, str] = {
    "healthy": "healthy",
    "attention": "needs attention",
    "unknown": "not monitored yet",
}
_QUALITY_WORDS = {
    "absent": "column missing",
    "type_violations": "values of the wrong type",
    "missing": "missing values",
    "nan": "NaN values",
    "posinf": "infinite values",
    "neginf": "infinite values",
    "out_of_range": "values out of the training range",
    "unseen": "unseen categories",
}


class Metric(BaseModel):
    """One stored performance metric of the newest window, with its interval."""

    model_config = ConfigDict(frozen=True)

    value: float | None
    lower: float | None = None
    upper: float | None = None
    flagged: bool = False


class HealthRow(BaseModel):
    """The ``model_health`` columns (what the newest monitored window found)."""

    model_config = ConfigDict(frozen=True)

    version: int
    run_id: str
    window_start: datetime | None
    window_end: datetime
    rows: int
    features: int
    drifted: list[str]
    quality: list[str]
    performance: dict[str, Metric]
    label_coverage: float | None


class LiveCriterion(BaseModel):
    """The acceptance criterion against the live metric of the newest window."""

    model_config = ConfigDict(frozen=True)

    criterion: str | None
    metric: str | None
    status: CriterionStatus
    value: float | None = None
    lower: float | None = None
    upper: float | None = None
    estimated: float | None = None
    """The label-free (CBPE) estimate of the metric, when stored."""


class Health(BaseModel):
    """A model's health: ``status``, its ``label`` in plain words and the ``reasons``."""

    model_config = ConfigDict(frozen=True)

    status: HealthStatus
    label: str
    reasons: list[str]
    open_alerts: int
    last_monitored: datetime | None
    stale: bool
    live: LiveCriterion


def quality_words(check: str) -> str:
    """``"income: missing"`` -> ``"missing values in income"``."""
    feature, _, name = check.rpartition(": ")
    return f"{_QUALITY_WORDS.get(name, name.replace('_', ' '))} in {feature}"


def duration_words(delta: timedelta) -> str:
    """``3 days``, ``5 hours``, ``40 minutes``."""
    seconds = delta.total_seconds()
    if seconds >= 2 * 86400:
        return f"{int(seconds // 86400)} days"
    if seconds >= 2 * 3600:
        return f"{int(seconds // 3600)} hours"
    return f"{max(1, int(seconds // 60))} minutes"


def live_criterion(row: HealthRow | None, criterion: Criterion | None) -> LiveCriterion:
    """Whether the newest window meets ``criterion`` (realised metric; the estimate is shown
    beside, never judged)."""
    if criterion is None:
        return LiveCriterion(criterion=None, metric=None, status="no criterion")
    text, metric = str(criterion), criterion.metric
    if row is None:
        return LiveCriterion(criterion=text, metric=metric, status="not monitored yet")
    realised = row.performance.get(metric)
    estimate = row.performance.get(f"estimated_{metric}")
    estimated = estimate.value if estimate is not None else None
    if realised is None or realised.value is None:
        return LiveCriterion(
            criterion=text, metric=metric, status="no labels yet", estimated=estimated
        )
    return LiveCriterion(
        criterion=text,
        metric=metric,
        status="met" if criterion.holds(realised.value) else "not met",
        value=realised.value,
        lower=realised.lower,
        upper=realised.upper,
        estimated=estimated,
    )


def judge(
    row: HealthRow | None,
    *,
    open_alerts: int,
    criterion: Criterion | None,
    stale_after: timedelta,
    now: datetime,
) -> Health:
    """The health of one model (see the module docstring)."""
    live = live_criterion(row, criterion)
    reasons: list[str] = []
    if row is None:
        if open_alerts:
            reasons.append(_alerts(open_alerts))
        return Health(
            status="attention" if reasons else "unknown",
            label=LABELS["attention" if reasons else "unknown"],
            reasons=reasons or ["not monitored yet"],
            open_alerts=open_alerts,
            last_monitored=None,
            stale=False,
            live=live,
        )
    age = now - row.window_end
    stale = age > stale_after
    if stale:
        reasons.append(f"not monitored for {duration_words(age)}")
    if row.drifted:
        named = ", ".join(row.drifted[:NAMED_FEATURES])
        more = len(row.drifted) - NAMED_FEATURES
        n = len(row.drifted)
        reasons.append(
            f"{n} feature{'s' if n != 1 else ''} drifted: {named}"
            + (f" and {more} more" if more > 0 else "")
        )
    if open_alerts:
        reasons.append(_alerts(open_alerts))
    if row.quality:
        reasons.append("quality: " + "; ".join(quality_words(q) for q in row.quality[:3]))
    if live.status == "not met":
        reasons.append("performance below the acceptance criterion")
    if row.label_coverage is not None and row.label_coverage == 0:
        reasons.append("no labels in the last monitored window")
    status: HealthStatus = "attention" if reasons else "healthy"
    return Health(
        status=status,
        label=LABELS[status],
        reasons=reasons,
        open_alerts=open_alerts,
        last_monitored=row.window_end,
        stale=stale,
        live=live,
    )


def _alerts(n: int) -> str:
    return f"{n} open alert{'s' if n != 1 else ''}"


def stale_after(project: ProjectConfig, now: datetime) -> dict[str, timedelta]:
    """Per model with a ``monitor`` job in ``[[jobs]]``: twice its schedule's interval (the
    tightest job counts). Other models use ``DEFAULT_STALE_AFTER``."""
    out: dict[str, timedelta] = {}
    for job in project.jobs:
        model = job.params.get("model")
        if job.kind != "monitor" or not isinstance(model, str) or not model:
            continue
        try:
            name = parse_ref(model).name
            it = croniter(job.schedule, now)
            first: datetime = it.get_next(datetime)
            second: datetime = it.get_next(datetime)
        except Exception:  # a bad job is the scheduler's to report, not the page's
            continue
        limit = 2 * (second - first)
        out[name] = min(out.get(name, limit), limit)
    return out


def objective_of(project: ProjectConfig, name: str, objective: str) -> str:
    """The business objective of ``name``: shipyard.toml's over the recorded one."""
    table = project.models.get(name)
    return (table.objective if table is not None else "") or objective


def criterion_of(project: ProjectConfig, name: str, accept: str | None) -> Criterion | None:
    """The acceptance criterion of ``name``: shipyard.toml's ``[models.NAME] accept`` over the
    one recorded in the registry (``accept``); ``None`` when neither parses."""
    from shipyard.config import parse_criterion
    from shipyard.errors import InvalidInput

    table = project.models.get(name)
    text = (table.accept if table is not None else None) or accept
    if not text:
        return None
    try:
        return parse_criterion(text)
    except InvalidInput:
        return None
