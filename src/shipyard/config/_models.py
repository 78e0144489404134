"""The per-model tables of shipyard.toml: ``[models.NAME]`` (business objective, acceptance
criterion, fairness factors, gate overrides, retraining) and the project's ``[gates]`` defaults.

A metric is named as ``shipyard.packaging.evaluate`` names it (``accuracy``, ``roc_auc``,
``rmse`` ...); ``METRICS`` says which way each is better. The acceptance criterion is one
comparison, ``"roc_auc >= 0.80"``, parsed by ``parse_criterion``.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Annotated, Any, Literal, Self

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

from shipyard.config._tables import Span
from shipyard.errors import InvalidInput

#: Every metric a gate or criterion may name, and whether higher is better.
METRICS: dict[str, bool] = {
    "accuracy": True,
    "balanced_accuracy": True,
    "precision": True,
    "recall": True,
    "f1": True,
    "roc_auc": True,
    "log_loss": False,
    "brier": False,
    "mae": False,
    "rmse": False,
    "r2": True,
}

_CRITERION = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_]*)\s*(>=|<=|>|<)\s*([-+0-9.eE]+)\s*$")


@dataclass(frozen=True)
class Criterion:
    """An acceptance criterion: ``metric op value`` (``roc_auc >= 0.8``)."""

    metric: str
    op: str
    value: float

    def holds(self, x: float) -> bool:
        """Whether ``x`` meets the criterion.

        >>> parse_criterion("roc_auc >= 0.8").holds(0.81)
        True
        """
        return {
            ">=": x >= self.value,
            ">": x > self.value,
            "<=": x <= self.value,
            "<": x < self.value,
        }[self.op]

    @property
    def higher_is_better(self) -> bool:
        """``>=``/``>`` ask for a high value."""
        return self.op in (">=", ">")

    def __str__(self) -> str:
        return f"{self.metric} {self.op} {self.value:g}"


def check_metric(name: str) -> str:
    """``name`` if it is a metric gates know; else ``InvalidInput`` listing them.

    >>> check_metric("roc_auc")
    'roc_auc'
    """
    if name not in METRICS:
        raise InvalidInput(
            f"Unknown metric '{name}'. Use one of: {', '.join(METRICS)}.",
        )
    return name


def parse_criterion(text: str) -> Criterion:
    """Parse ``"roc_auc >= 0.80"``; raises ``InvalidInput`` saying how to write one.

    >>> parse_criterion("rmse < 12.5")
    Criterion(metric='rmse', op='<', value=12.5)
    """
    match = _CRITERION.match(text) if isinstance(text, str) else None
    if match is None:
        raise InvalidInput(
            f"The acceptance criterion {text!r} does not parse: write one comparison of a "
            'metric with a number, such as "roc_auc >= 0.80" or "rmse <= 12.5".'
        )
    metric, op, raw = match.groups()
    check_metric(metric)
    try:
        value = float(raw)
    except ValueError:
        value = math.nan
    if not math.isfinite(value):
        raise InvalidInput(
            f"The acceptance criterion {text!r} compares with {raw!r}, not a number."
        )
    return Criterion(metric, op, value)


def _as_problem(check: Any) -> Any:
    def run(value: Any) -> Any:
        if value is None:
            return value
        try:
            check(value)
        except InvalidInput as exc:
            raise ValueError(exc.message) from None
        return value

    return run


CriterionText = Annotated[str, AfterValidator(_as_problem(parse_criterion))]
MetricName = Annotated[str, AfterValidator(_as_problem(check_metric))]


class MetricGate(BaseModel):
    """``[[gates.metrics]]`` / ``[[models.NAME.gates.metrics]]``: a value threshold (``min``,
    ``max``) and/or a change threshold against the champion (``max_drop``: how much worse
    than the champion it may be, absolute; ``max_drop_relative``: as a share of the
    champion's value). Judged on the bootstrap interval's pessimistic end."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    metric: MetricName = Field(description="A metric: accuracy, roc_auc, f1, rmse, mae ...")
    min: float | None = Field(default=None, description="The value may not be below this.")
    max: float | None = Field(default=None, description="The value may not be above this.")
    max_drop: float | None = Field(
        default=None,
        ge=0,
        description="Not worse than the champion by more than this (absolute).",
    )
    max_drop_relative: float | None = Field(
        default=None,
        ge=0,
        description="Not worse than the champion by more than this share of its value.",
    )

    @model_validator(mode="after")
    def _some_limit(self) -> Self:
        limits = (self.min, self.max, self.max_drop, self.max_drop_relative)
        if all(v is None for v in limits):
            raise ValueError(
                f"the gate on '{self.metric}' sets no limit: add min, max, max_drop or "
                "max_drop_relative."
            )
        return self

    @property
    def higher_is_better(self) -> bool:
        """From ``METRICS``."""
        return METRICS[self.metric]


class GateSettings(BaseModel):
    """The gates' limits. ``[gates]`` sets the project's defaults; ``[models.NAME.gates]``
    overrides any of them for one model (``ProjectConfig.policy``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    metrics: list[MetricGate] | None = Field(
        default=None,
        description="Metric gates; default: the primary metric (roc_auc for binary, "
        "accuracy for multiclass, rmse for regression) not worse than the champion by more "
        "than 0.01.",
    )
    first_model: Literal["pass", "block"] = Field(
        default="pass",
        description="Change thresholds without a champion: 'pass' records them as not "
        "applicable (never silently), 'block' fails them.",
    )
    confidence: float = Field(default=0.95, gt=0.5, lt=1, description="Bootstrap interval level.")
    resamples: int = Field(default=200, ge=20, le=10_000, description="Bootstrap resamples.")
    min_labels: int = Field(
        default=200,
        ge=10,
        description="Labelled production rows needed to validate on production traffic.",
    )
    window: Span = Field(default="7d", description="The production window validated on.")
    min_slice_rows: int = Field(default=30, ge=1, description="Smallest slice judged.")
    max_slice_gap: float | None = Field(
        default=None,
        ge=0,
        description="The worst slice's primary metric may trail the whole by at most this; "
        "default: reported, not a gate.",
    )
    min_parity_ratio: float = Field(
        default=0.8,
        gt=0,
        le=1,
        description="Demographic parity ratio floor (the four-fifths rule).",
    )
    max_equalized_odds: float = Field(
        default=0.2, ge=0, le=1, description="Equalized odds difference ceiling."
    )
    explain_seconds: float = Field(
        default=20.0, gt=0, description="Time budget of the explanations."
    )
    max_rank_shift: int = Field(
        default=3,
        ge=0,
        description="A top-5 feature moving more than this many places against the champion "
        "is reported.",
    )
    max_p99_ratio: float = Field(
        default=1.5, gt=0, description="Candidate p99 latency at most this times the champion's."
    )
    max_size_ratio: float | None = Field(
        default=None, gt=0, description="Archive size at most this times the champion's."
    )
    onnx_tolerance: float = Field(
        default=1e-3, gt=0, description="Largest ONNX-vs-native difference that passes."
    )
    leakage_auc: float = Field(
        default=0.99,
        gt=0.5,
        le=1,
        description="A feature that alone separates the target this well is label leakage.",
    )
    max_duplicate_share: float = Field(
        default=0.5, ge=0, le=1, description="Share of duplicate training rows allowed."
    )


class GatesTable(GateSettings):
    """``[gates]``: the project's defaults, and whether promotion needs a passing record."""

    require: bool = Field(
        default=True,
        description="Promotion, canaries and splits need a passing gate record (a model's "
        "require_gates overrides it).",
    )


class RetrainTable(BaseModel):
    """``[models.NAME.retrain]``: how ``shipyard retrain NAME`` trains a candidate."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    entry: str = Field(
        description="'module:function' given a DataFrame, returning a fitted model.",
        pattern=r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$",
    )
    target: str = Field(min_length=1, description="The label column.")
    data: str | None = Field(default=None, description="Parquet/CSV path or glob.")
    sql: str | None = Field(default=None, description="A query, run through SQLAlchemy at url.")
    url: str | None = Field(default=None, description="The database URL of sql.")
    source: Literal["feedback"] | None = Field(
        default=None,
        description="'feedback': production inputs joined with the labels that arrived.",
    )
    window: Span = Field(default="30d", description="The logged window source='feedback' reads.")
    eval_fraction: float = Field(
        default=0.25, gt=0, lt=1, description="Share of the rows held out as eval rows."
    )
    schedule: str | None = Field(default=None, description="Cron: retrain on this schedule.")
    on_drift: bool = Field(default=False, description="Retrain when a drift alert fires.")
    channels: list[str] = Field(
        default_factory=list, description="Where the approvers hear of the candidate."
    )

    @model_validator(mode="after")
    def _one_source(self) -> Self:
        given = [k for k in ("data", "sql", "source") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError(
                'needs exactly one data source: data = "path/*.parquet", sql = "..." with '
                f'url = "...", or source = "feedback" (got {given or "none"}).'
            )
        if self.sql is not None and not self.url:
            raise ValueError("sql needs url, the SQLAlchemy URL of the database to query.")
        return self


class ModelTable(BaseModel):
    """``[models.NAME]``: one model's business objective and policy."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    objective: str = Field(default="", description="The business objective, in words.")
    accept: CriterionText | None = Field(
        default=None, description='The acceptance criterion, e.g. "roc_auc >= 0.80"; a gate.'
    )
    sensitive: list[str] = Field(
        default_factory=list, description="Fairness factors: columns of the input."
    )
    require_gates: bool | None = Field(
        default=None, description="Promotion needs a passing gate record; default [gates]."
    )
    gates: GateSettings = Field(
        default_factory=GateSettings,
        description="Overrides of [gates] for this model (only the keys written here).",
    )
    retrain: RetrainTable | None = Field(default=None, description="How to retrain it.")


@dataclass(frozen=True)
class ModelPolicy:
    """One model's policy as the gates see it: ``[gates]`` merged with ``[models.NAME]``."""

    name: str
    objective: str
    accept: Criterion | None
    sensitive: tuple[str, ...]
    require_gates: bool
    gates: GateSettings
    retrain: RetrainTable | None
