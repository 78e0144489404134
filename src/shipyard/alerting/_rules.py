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
    # below = 0.8             # fires when value < below (accuracy, roc_auc, label_coverage)
    severity = "critical"
    cooldown = "1h"           # no repeat for the same rule, model, version, metric and feature
    channels = ["oncall"]
"""

from __future__ import annotations

import tomllib
from collections.abc import Iterable, Mapping
from datetime import timedelta
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from shipyard.alerting._alert import Alert
from shipyard.alerting._channel import Channel
from shipyard.alerting._registry import channel_from_config
from shipyard.errors import InvalidInput
from shipyard.store._models import MonitoringResult

_UNITS = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


class AlertRule(BaseModel):
    """When a monitoring metric raises an alert, how loud, how often, and through what."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=128)
    metric: str = Field(min_length=1)
    feature: str = "*"
    threshold: float | None = None
    below: float | None = None
    severity: Literal["info", "warning", "critical"] = "warning"
    cooldown: str = "1h"
    channels: list[str] = Field(default_factory=list)

    @property
    def cooldown_delta(self) -> timedelta:
        unit = _UNITS.get(self.cooldown[-1:]) if self.cooldown else None
        number = self.cooldown[:-1]
        if unit is None or not number.isdigit():
            raise InvalidInput(
                f"Alert rule '{self.name}': cooldown must be a number and m, h, d or w (e.g. "
                f"'1h'). Got '{self.cooldown}' instead."
            )
        return timedelta(**{unit: int(number)})

    def fires(self, row: MonitoringResult) -> bool:
        if row.metric != self.metric or (self.feature != "*" and row.feature != self.feature):
            return False
        if self.threshold is None and self.below is None:
            return bool(row.flagged)
        if row.value is None:
            return False
        above = self.threshold is not None and row.value > self.threshold
        return above or (self.below is not None and row.value < self.below)


class AlertConfig(BaseModel):
    """The ``[channels.*]`` and ``[[alerts]]`` of ``shipyard.toml``."""

    rules: list[AlertRule] = Field(default_factory=list)
    channels: dict[str, Channel] = Field(default_factory=dict)

    model_config = ConfigDict(arbitrary_types_allowed=True)


def load_alert_config(path: Path) -> AlertConfig:
    """Read rules and channels; a missing file means no rules. Bad config: ``InvalidInput``."""
    if not path.is_file():
        return AlertConfig()
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise InvalidInput(f"'{path}' is not valid TOML: {exc}.") from exc
    channels: dict[str, Channel] = {}
    for name, table in (data.get("channels") or {}).items():
        if not isinstance(table, Mapping) or "type" not in table:
            raise InvalidInput(f"[channels.{name}] in '{path}' needs a type (email or webhook).")
        options = {k: v for k, v in table.items() if k != "type"}
        channels[name] = channel_from_config(str(table["type"]), options)
    rules = []
    for i, table in enumerate(data.get("alerts") or []):
        try:
            rule = AlertRule.model_validate(table)
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors()
            )
            raise InvalidInput(f"Alert rule #{i + 1} in '{path}' is invalid: {problems}.") from exc
        rule.cooldown_delta  # noqa: B018 - validate now, not when it first fires
        unknown = [c for c in rule.channels if c not in channels]
        if unknown:
            raise InvalidInput(
                f"Alert rule '{rule.name}' names unknown channel(s) {unknown}; declare them as "
                f"[channels.<name>] in '{path}'."
            )
        rules.append(rule)
    return AlertConfig(rules=rules, channels=channels)


def evaluate(
    rules: Iterable[AlertRule], rows: Iterable[MonitoringResult], *, link: str | None = None
) -> list[tuple[AlertRule, Alert]]:
    """The alerts the rules raise on one monitoring run's rows."""
    rows = list(rows)
    out = []
    for rule in rules:
        for row in rows:
            if not rule.fires(row):
                continue
            value = float(row.value) if row.value is not None else 1.0
            threshold = rule.threshold if rule.threshold is not None else (row.threshold or 0.0)
            if rule.below is not None and row.value is not None and row.value < rule.below:
                threshold = rule.below
            feature = None if row.feature == "*" else row.feature
            where = f" on {feature}" if feature else ""
            out.append(
                (
                    rule,
                    Alert(
                        rule=rule.name,
                        severity=rule.severity,
                        model=row.model_name,
                        version=row.version,
                        metric=row.metric,
                        feature=feature,
                        value=value,
                        threshold=float(threshold),
                        link=link,
                        message=f"{row.metric}{where} is {value:.4g} (limit {threshold:.4g}) over "
                        f"{row.rows:,} rows from {row.source}.",
                    ),
                )
            )
    return out
