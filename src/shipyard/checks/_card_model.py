"""The model card's parts: plain frozen pydantic models, JSON-able (``ModelCard.to_json``).

Mitchell et al.'s sections, each with the facts Shipyard knows and the text a person wrote
(``notes``, ``caveats``...; empty when nobody did).

>>> Table(title="groups", columns=["group", "rate"], rows=[["F", 0.31]]).columns
['group', 'rate']
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict


class _Part(BaseModel):
    model_config = ConfigDict(frozen=True)


class Table(_Part):
    """A table of a gate's data (per slice, per group...)."""

    title: str
    columns: list[str]
    rows: list[list[Any]]


class GateLine(_Part):
    """One gate of the latest validation, as the card shows it."""

    name: str
    kind: str
    passed: bool
    value: float | None = None
    limit: float | None = None
    detail: str = ""
    waived: bool = False
    facts: dict[str, Any] = {}
    tables: list[Table] = []


class MetricLine(_Part):
    """A metric: its value and interval (``ci_low``, ``ci_high``), limit, champion's value."""

    name: str
    value: float | None
    ci_low: float | None = None
    ci_high: float | None = None
    limit: float | None = None
    champion: float | None = None
    passed: bool | None = None
    detail: str = ""


class DatasetLine(_Part):
    """A dataset of the version's lineage: its fingerprint and columns."""

    name: str
    content_hash: str
    rows: int | None
    columns: list[dict[str, str]] = []


class RiskLine(_Part):
    """An open risk of the register."""

    id: int
    title: str
    severity: str
    owner: str
    mitigation: str
    scope: str


class WaiverLine(_Part):
    """An approver's signed waiver of a failed gate."""

    gate: str
    approver: str
    reason: str
    at: datetime


class ModelDetails(_Part):
    """Who made the version, when, with what, and from which code."""

    name: str
    version: int
    description: str
    author: str
    created_at: datetime
    stage: str
    aliases: list[str]
    approved_by: list[str]
    flavor: str
    frameworks: dict[str, str]
    python: str
    task: str
    classes: list[Any] | None
    digest: str
    size: int
    run_id: str | None
    git_commit: str | None
    git_branch: str | None
    git_dirty: bool | None


class IntendedUse(_Part):
    """The business objective, the acceptance criterion (met or not), and what was written."""

    objective: str
    criterion: str | None
    criterion_met: bool | None
    notes: str
    out_of_scope: str


class Factors(_Part):
    """The sensitive features of the policy and the features whose slices were evaluated."""

    sensitive: list[str]
    sliced: list[str]
    notes: str


class Validation(_Part):
    """The latest gate record of the version's archive."""

    id: int
    at: datetime
    by: str
    passed: bool
    champion: int | None
    failed: list[str]


class Metrics(_Part):
    """The metrics registered with the archive, and those the latest validation judged."""

    registered: dict[str, float]
    validated: list[MetricLine]
    validation: Validation | None


class EvaluationData(_Part):
    """What the validation ran on, and the eval rows registered in the archive."""

    data_source: str | None
    rows: int | None
    archive_rows: int | None
    notes: str


class TrainingData(_Part):
    """The datasets of the lineage, by fingerprint."""

    datasets: list[DatasetLine]
    notes: str


class QuantitativeAnalyses(_Part):
    """Results by slice and by sensitive group."""

    slices: list[GateLine]
    fairness: list[GateLine]


class EthicalConsiderations(_Part):
    """What was written, the fairness results, and the waivers signed."""

    notes: str
    fairness: list[GateLine]
    waivers: list[WaiverLine]


class Caveats(_Part):
    """What was written, the gates that failed, and the open risks."""

    caveats: str
    limitations: str
    recommendations: str
    failed_gates: list[GateLine]
    open_risks: list[RiskLine]


class ModelCard(_Part):
    """One version's model card; ``to_json`` for scripts, ``card_markdown`` and
    ``card_html`` for people."""

    details: ModelDetails
    intended_use: IntendedUse
    factors: Factors
    metrics: Metrics
    evaluation_data: EvaluationData
    training_data: TrainingData
    quantitative_analyses: QuantitativeAnalyses
    ethical_considerations: EthicalConsiderations
    caveats: Caveats
    notes: dict[str, str]
    generated_at: datetime

    def to_json(self) -> dict[str, Any]:
        """The card as JSON-able data."""
        data: dict[str, Any] = self.model_dump(mode="json")
        return data
