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

import math
import re
import tomllib
from collections.abc import Iterable, Mapping, Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from sqlalchemy import select

from shipyard.alerting._alert import Alert
from shipyard.alerting._channel import Channel
from shipyard.alerting._registry import channel_from_config, check_channel_names
from shipyard.errors import InvalidInput
from shipyard.store import Store
from shipyard.store.tables import MonitoringResult

_UNITS = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
_DURATION = re.compile(r"(\d+)([mhdw])")


def parse_duration(text: object, *, what: str, allow_zero: bool = True) -> timedelta:
    """``"30m"``, ``"6h"``, ``"1d"``, ``"2w"`` as a timedelta; ``InvalidInput`` names ``what``.

    >>> parse_duration("6h", what="window")
    datetime.timedelta(seconds=21600)
    """
    match = _DURATION.fullmatch(text) if isinstance(text, str) else None
    if match is None or (not allow_zero and int(match.group(1)) == 0):
        least = "0" if allow_zero else "1"
        raise InvalidInput(
            f"{what} must be a whole number >= {least} followed by m, h, d or w (e.g. '1h', "
            f"'6h', '7d'). Got {text!r} instead."
        )
    return timedelta(**{_UNITS[match.group(2)]: int(match.group(1))})


class AlertRule(BaseModel):
    """When a monitoring metric raises an alert, how loud, how often, and through what."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=128)
    metric: str = Field(min_length=1, max_length=64)
    feature: str = Field(default="*", min_length=1, max_length=256)
    threshold: float | None = None
    below: float | None = None
    window: str | None = None
    severity: Literal["info", "warning", "critical"] = "warning"
    cooldown: str = "1h"
    channels: list[str] = Field(default_factory=list)

    @property
    def cooldown_delta(self) -> timedelta:
        return parse_duration(self.cooldown, what=f"Alert rule '{self.name}': field 'cooldown'")

    @property
    def window_delta(self) -> timedelta | None:
        """The span whose mean is judged, or ``None`` to judge the latest value."""
        if self.window is None:
            return None
        return parse_duration(
            self.window, what=f"Alert rule '{self.name}': field 'window'", allow_zero=False
        )

    @property
    def condition(self) -> str:
        """``> 0.5``, ``< 0.8`` or ``flagged`` (the metric's own flag)."""
        if self.threshold is not None:
            return f"> {self.threshold:g}"
        if self.below is not None:
            return f"< {self.below:g}"
        return "flagged"

    def check(self, where: str | None = None) -> None:
        """Raise ``InvalidInput`` for what the field types cannot say: durations, limits.

        ``where`` names the rule in the message (default ``Alert rule '<name>'``).
        """
        where = where or f"Alert rule '{self.name}'"
        parse_duration(self.cooldown, what=f"{where}: field 'cooldown'")
        if self.window is not None:
            parse_duration(self.window, what=f"{where}: field 'window'", allow_zero=False)
        if self.threshold is not None and self.below is not None:
            raise InvalidInput(
                f"{where} sets both 'threshold' (fires above) and 'below' (fires below); keep "
                f"one, or declare two rules to watch both sides."
            )
        for option in ("threshold", "below"):
            value = getattr(self, option)
            if value is not None and not math.isfinite(value):
                raise InvalidInput(f"{where}: '{option}' must be a finite number. Got {value}.")
        if self.window is not None and self.threshold is None and self.below is None:
            raise InvalidInput(
                f"{where}: 'window' averages the metric's values, so it needs 'threshold' or "
                f"'below' to compare the mean with."
            )

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
    """The ``[channels.*]`` and ``[[alerts]]`` of ``shipyard.toml``."""

    rules: list[AlertRule] = Field(default_factory=list)
    channels: dict[str, Channel] = Field(default_factory=dict)

    model_config = ConfigDict(arbitrary_types_allowed=True)


def read_toml(path: Path, text: str | None = None) -> dict[str, Any]:
    """``path`` parsed (or ``text``, its would-be content); ``{}`` when there is no file."""
    if text is None:
        if not path.is_file():
            return {}
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError as exc:
            raise InvalidInput(f"'{path}' is not valid TOML: {exc}.") from exc
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise InvalidInput(f"'{path}' is not valid TOML: {exc}.") from exc


def load_alert_config(path: Path, *, text: str | None = None) -> AlertConfig:
    """Read rules and channels; a missing file means no rules. Bad config: ``InvalidInput``.

    ``text`` is checked instead of the file's content (``shipyard alerts add`` checks the
    file it is about to write); errors still name ``path``.
    """
    data = read_toml(path, text)
    channel_tables = data.get("channels") or {}
    if not isinstance(channel_tables, Mapping):
        raise InvalidInput(f"'channels' in '{path}' must be tables: write [channels.<name>].")
    channels: dict[str, Channel] = {}
    for name, table in channel_tables.items():
        if not isinstance(table, Mapping) or "type" not in table:
            raise InvalidInput(f"[channels.{name}] in '{path}' needs a type (email or webhook).")
        options = {k: v for k, v in table.items() if k != "type"}
        channels[name] = channel_from_config(str(table["type"]), options)
    tables = data.get("alerts") or []
    if not isinstance(tables, list):
        raise InvalidInput(f"'alerts' in '{path}' must be an array of tables: write [[alerts]].")
    rules: list[AlertRule] = []
    for i, table in enumerate(tables):
        named = isinstance(table, Mapping) and isinstance(table.get("name"), str)
        label = f"Alert rule '{table['name']}'" if named else f"Alert rule #{i + 1}"
        try:
            rule = AlertRule.model_validate(table)
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(map(str, e['loc'])) or 'table'}: {e['msg']}" for e in exc.errors()
            )
            raise InvalidInput(f"{label} in '{path}' is invalid: {problems}.") from exc
        rule.check(f"{label} in '{path}'")
        check_channel_names(rule.channels, channels, f"{label} in '{path}'")
        if any(r.name == rule.name for r in rules):
            raise InvalidInput(
                f"{label} is declared twice in '{path}' (field 'name' must be unique); rename one."
            )
        rules.append(rule)
    return AlertConfig(rules=rules, channels=channels)


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
