"""The tables of shipyard.toml, one pydantic model each: field types, defaults, help and the
checks a table can make on its own (durations, limits). Checks across tables (names declared
once, channels that exist) are ``ProjectConfig``'s.

A table refuses a key it does not declare (``extra="forbid"``), except where the keys belong
to an extension point: a channel's options (its type's parameters) and a job's parameters
(its kind's), which the channel type and the job kind check.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from datetime import timedelta
from typing import Annotated, Any, Literal, Self

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    field_validator,
    model_validator,
)

from shipyard.config._durations import parse_age, parse_duration, parse_label_delay
from shipyard.errors import InvalidInput

Severity = Literal["info", "warning", "critical"]


def _problem(parse: Callable[[Any], object]) -> Callable[[Any], Any]:
    """A validator running ``parse``: its ``InvalidInput`` becomes the field's problem."""

    def check(value: Any) -> Any:
        try:
            parse(value)
        except InvalidInput as exc:  # a ValueError lets the loader name the table and field
            raise ValueError(exc.message) from None
        return value

    return check


def _age(value: Any) -> Any:
    if value is None or isinstance(value, timedelta):
        return value
    try:
        return parse_age(value, option="age")
    except InvalidInput as exc:
        raise ValueError(exc.message) from None


def _label_delay(value: Any) -> Any:
    if isinstance(value, timedelta):
        return value
    if not isinstance(value, str):
        raise ValueError(f'must be a string such as "1h". Got {value!r} instead.')
    try:
        return parse_label_delay(value, option="label_delay")
    except InvalidInput as exc:
        raise ValueError(exc.message) from None


#: ``"1h"``: a whole number and m, h, d or w; zero allowed (``"0m"``: no cool-down).
Cooldown = Annotated[str, AfterValidator(_problem(parse_duration))]
#: ``"6h"``: like ``Cooldown``, more than zero.
Span = Annotated[str, AfterValidator(_problem(lambda v: parse_duration(v, allow_zero=False)))]
#: ``"90d"`` or ``"keep"`` (``None``: kept forever).
Age = Annotated[timedelta | None, BeforeValidator(_age)]


class ChannelTable(BaseModel):
    """``[channels.<name>]``: where alerts go. Its other keys are the options of its type."""

    model_config = ConfigDict(extra="allow", frozen=True)

    type: str = Field(description="The kind of channel: email or webhook.")

    @model_validator(mode="before")
    @classmethod
    def _needs_type(cls, data: Any) -> Any:
        if isinstance(data, Mapping) and "type" not in data:
            raise ValueError('needs a type (email or webhook): write type = "email".')
        return data

    @property
    def options(self) -> dict[str, Any]:
        """The channel type's options, as written (``from``, ``url_env`` ...)."""
        return dict(self.model_extra or {})


class AlertTable(BaseModel):
    """``[[alerts]]``: when a monitoring metric raises an alert, how loud, how often, where."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=128, description="Unique name of the rule.")
    metric: str = Field(
        min_length=1,
        max_length=64,
        description="A monitoring metric: drift, psi, ks, quality.missing, drift_share, "
        "accuracy, label_coverage, latency_p99 ...",
    )
    feature: str = Field(
        default="*",
        min_length=1,
        max_length=256,
        description="One feature, or '*' for any (also the dataset-level row).",
    )
    threshold: float | None = Field(default=None, description="Fires when the value is above.")
    below: float | None = Field(default=None, description="Fires when the value is below.")
    window: Span | None = Field(
        default=None,
        description="Judge the mean of the stored values of this span (e.g. '6h') instead "
        "of the latest value; needs threshold or below.",
    )
    severity: Severity = Field(default="warning", description="info, warning or critical.")
    cooldown: Cooldown = Field(
        default="1h",
        description="No repeat for the same rule, model, version, metric and feature "
        "within this span.",
    )
    channels: list[str] = Field(
        default_factory=list, description="Names of [channels.*] tables to send it through."
    )
    action: Literal["retrain"] | None = Field(
        default=None,
        description="'retrain': a fired alert also starts shipyard retrain for the model "
        "(its [models.NAME.retrain] table), unless one is running.",
    )

    @field_validator("threshold", "below")
    @classmethod
    def _finite(cls, value: float | None) -> float | None:
        if value is not None and not math.isfinite(value):
            raise ValueError(f"must be a finite number. Got {value}.")
        return value

    @model_validator(mode="after")
    def _limits(self) -> Self:
        if self.threshold is not None and self.below is not None:
            raise ValueError(
                "sets both 'threshold' (fires above) and 'below' (fires below); keep one, or "
                "declare two rules to watch both sides."
            )
        if self.window is not None and self.threshold is None and self.below is None:
            raise ValueError(
                "'window' averages the metric's values, so it needs 'threshold' or 'below' to "
                "compare the mean with."
            )
        return self


class NotifyTable(BaseModel):
    """``[[notify]]``: which registry events of which models go to which channels."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=100, description="Unique name; default notify-<n>.")
    events: list[str] = Field(
        min_length=1,
        description="Audit actions or fnmatch patterns: version.promoted, traffic.* ...",
    )
    channels: list[str] = Field(min_length=1, description="Names of [channels.*] tables.")
    models: list[str] = Field(
        default_factory=list, description="Only these models' events; default every model."
    )
    severity: Severity = Field(default="info", description="info, warning or critical.")


class SchedulerTable(BaseModel):
    """``[scheduler]``: where and how often failed jobs are alerted."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    channels: list[str] = Field(
        default_factory=list,
        description="Where failed jobs are alerted ([channels.*] names), unless a job names "
        "its own.",
    )
    alert_cooldown: Cooldown = Field(
        default="1h", description="No repeat alert for the same job within this span."
    )


class JobTable(BaseModel):
    """``[[jobs]]``: one scheduled job. Its other keys are the parameters of its kind."""

    model_config = ConfigDict(extra="allow", frozen=True)

    name: str = Field(description="Unique name of the job.")
    kind: str = Field(description="monitor, gc, retrain or command.")
    schedule: str = Field(
        description="Cron expression; a sixth field counts seconds ('* * * * * */10')."
    )
    channels: list[str] | None = Field(
        default=None, description="Where this job's failures are alerted; default [scheduler]'s."
    )

    @field_validator("name", mode="before")
    @classmethod
    def _name(cls, name: Any) -> Any:
        if not isinstance(name, str) or not name.strip() or len(name) > 100:
            raise ValueError(
                f"must be a non-empty string of at most 100 characters. Got {name!r} instead."
            )
        return name

    @property
    def params(self) -> dict[str, Any]:
        """The kind's parameters, as written (``model``, ``window``, ``command`` ...)."""
        return dict(self.model_extra or {})


class RetentionTable(BaseModel):
    """``[retention]``: how long each kind of record is kept (``shipyard gc``, gc jobs)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    predictions: Age = Field(
        default=timedelta(days=90),
        description='Prediction-log partitions, e.g. "90d"; "keep" keeps them forever.',
    )
    monitoring: Age = Field(default=timedelta(days=365), description="Monitoring results.")
    job_runs: Age = Field(default=timedelta(days=365), description="Scheduler job runs.")


class MonitoringTable(BaseModel):
    """``[monitoring]``: defaults of monitoring runs."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    label_delay: Annotated[timedelta, BeforeValidator(_label_delay)] = Field(
        default=timedelta(0),
        description="Predictions younger than this are not expected to have labels yet "
        '(label coverage): "0", "30m", "1h", "1d". --label-delay overrides it.',
    )


class StorageTable(BaseModel):
    """``[storage]``: how the artifact store's URL is reached (fsspec storage options)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    options: dict[str, Any] = Field(
        default_factory=dict,
        description="fsspec storage options of the artifact store, e.g. "
        '{ endpoint_url = "http://minio:9000" } for s3:// (s3fs\'s key, secret, endpoint_url, '
        "client_kwargs, default_block_size...). SHIPYARD_STORAGE_OPTIONS overrides them key by "
        "key; keys are better left to AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY.",
    )
