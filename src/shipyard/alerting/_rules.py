"""Alert rules and channels declared in ``shipyard.toml``, and their evaluation.

.. code-block:: toml

    [channels.oncall]
    type = "email"            # or "webhook"; the other keys are the channel's options
    host = "smtp.example.com"
    from = "shipyard@example.com"
    to = ["ml-oncall@example.com"]

    [[alerts]]
    name = "input-drift"
    metric = "drift"          # a monitoring metric: drift, psi, ks, quality.missing, drift_share
    feature = "*"             # one feature, or "*" for any ("*" is also the dataset-level row)
    threshold = 0.5           # fires when value > threshold; omit to fire on the metric's flag
    # below = 0.8             # or: fires when value < below (accuracy, roc_auc, label_coverage)
    severity = "critical"
    cooldown = "1h"           # no repeat for the same rule, model, version, metric and feature
    channels = ["oncall"]

    [[alerts]]
    name = "psi-trend"
    metric = "psi"
    threshold = 0.2
    window = "6h"             # judge the MEAN of the stored values of the last 6 hours
    channels = ["oncall"]

Without ``window`` a rule judges the latest value. With ``window = "6h"`` it judges the mean of
the stored monitoring results of the same model, version, metric and feature whose window
ended in the 6 hours up to the run being judged (that run included), so a single noisy run
neither fires nor clears it. ``window`` needs ``threshold`` or ``below``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import timedelta

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select

from shipyard.alerting._alert import Alert
from shipyard.alerting._channel import Channel
from shipyard.alerting._registry import channels_from_project
from shipyard.config import AlertTable, ProjectConfig, parse_duration
from shipyard.store import Store
from shipyard.store.tables import MonitoringResult


class AlertRule(AlertTable):
    """When a monitoring metric raises an alert, how loud, how often, and through what.

    The fields and their checks are the ``[[alerts]]`` table's (``shipyard.config``); this adds
    the judging of monitoring results.
    """

    @property
    def cooldown_delta(self) -> timedelta:
        return parse_duration(self.cooldown, what=f"Alert rule '{self.name}': cooldown")

    @property
    def window_delta(self) -> timedelta | None:
        """The span whose mean is judged, or ``None`` to judge the latest value."""
        if self.window is None:
            return None
        return parse_duration(
            self.window, what=f"Alert rule '{self.name}': window", allow_zero=False
        )

    @property
    def condition(self) -> str:
        """``> 0.5``, ``< 0.8`` or ``flagged`` (the metric's own flag)."""
        if self.threshold is not None:
            return f"> {self.threshold:g}"
        if self.below is not None:
            return f"< {self.below:g}"
        return "flagged"

    def matches(self, row: MonitoringResult) -> bool:
        """Whether ``row`` is about this rule's metric and feature."""
        return row.metric == self.metric and self.feature in ("*", row.feature)

    def breached(self, value: float) -> bool:
        if self.threshold is not None:
            return value > self.threshold
        return self.below is not None and value < self.below

    def fires(self, row: MonitoringResult) -> bool:
        """Whether the latest value ``row`` breaches the rule (``window`` aside)."""
        if not self.matches(row):
            return False
        if self.threshold is None and self.below is None:
            return bool(row.flagged)
        return row.value is not None and self.breached(row.value)


class AlertConfig(BaseModel):
    """The ``[channels.*]`` and ``[[alerts]]`` of ``shipyard.toml``, ready to send and judge."""

    rules: list[AlertRule] = Field(default_factory=list)
    channels: dict[str, Channel] = Field(default_factory=dict)

    model_config = ConfigDict(arbitrary_types_allowed=True)

    @classmethod
    def from_project(cls, project: ProjectConfig) -> AlertConfig:
        """Build the channels (each checked by its type) and the rules of ``project``.

        ``InvalidInput`` names the channel table of a bad option, in the project's style.
        """
        rules = [AlertRule.model_validate(table.model_dump()) for table in project.alerts]
        return cls(rules=rules, channels=channels_from_project(project))


def evaluate(
    rules: Iterable[AlertRule],
    rows: Iterable[MonitoringResult],
    *,
    link: str | None = None,
    store: Store | None = None,
) -> list[tuple[AlertRule, Alert]]:
    """The alerts the rules raise on one monitoring run's (stored) rows.

    A rule with a ``window`` judges the mean of the stored values of its window, read from
    ``store``; without a ``store`` it can only judge the latest value, like a rule without one.
    """
    rows = list(rows)
    out = []
    for rule in rules:
        span = rule.window_delta
        if span is not None and store is not None:
            out.extend(_windowed(rule, [r for r in rows if rule.matches(r)], span, store, link))
            continue
        for row in rows:
            if rule.fires(row):
                out.append((rule, _alert(rule, row, link=link)))
    return out


def _alert(
    rule: AlertRule,
    row: MonitoringResult,
    *,
    link: str | None,
    mean: float | None = None,
    runs: int = 0,
) -> Alert:
    latest = float(row.value) if row.value is not None else 1.0
    value = latest if mean is None else mean
    limit = rule.threshold if rule.threshold is not None else rule.below
    threshold = float(limit if limit is not None else (row.threshold or 0.0))
    feature = None if row.feature == "*" else row.feature
    where = f" on {feature}" if feature else ""
    if mean is None:
        message = (
            f"{row.metric}{where} is {value:.4g} (limit {threshold:.4g}) over {row.rows:,} rows "
            f"from {row.source}."
        )
        facts = {}
    else:
        message = (
            f"The mean of {row.metric}{where} over the last {rule.window} ({runs} run(s)) is "
            f"{value:.4g} (limit {threshold:.4g}); the latest run ({row.rows:,} rows from "
            f"{row.source}) gave {latest:.4g}."
        )
        facts = {"Window": f"{rule.window} ({runs} run(s))", "Latest value": f"{latest:.4g}"}
    return Alert(
        rule=rule.name,
        severity=rule.severity,
        model=row.model_name,
        version=row.version,
        metric=row.metric,
        feature=feature,
        value=value,
        threshold=threshold,
        link=link,
        message=message,
        facts=facts,
    )


def _windowed(
    rule: AlertRule,
    rows: Sequence[MonitoringResult],
    span: timedelta,
    store: Store,
    link: str | None,
) -> list[tuple[AlertRule, Alert]]:
    """Alerts of ``rule`` on ``rows`` judged by the mean of each row's window of history."""
    out = []
    for row in rows:
        query = select(MonitoringResult.id, MonitoringResult.value).where(
            MonitoringResult.model_name == row.model_name,
            MonitoringResult.version == row.version,
            MonitoringResult.metric == row.metric,
            MonitoringResult.feature == row.feature,
            MonitoringResult.window_end > row.window_end - span,
            MonitoringResult.window_end <= row.window_end,
            MonitoringResult.value.is_not(None),
        )
        with store.read() as session:
            values = {id_: float(v) for id_, v in session.execute(query) if v is not None}
        if row.value is not None:
            values[row.id] = float(row.value)  # judged even if not stored (yet)
        if not values:
            continue
        mean = sum(values.values()) / len(values)
        if rule.breached(mean):
            out.append((rule, _alert(rule, row, link=link, mean=mean, runs=len(values))))
    return out
