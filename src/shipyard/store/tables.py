"""The metadata schema: one ORM class per table (public: the packages above the store write
their queries against these classes; the registry and tracking hand out entities, not rows).

Data flows run → version (archive) → alias; every change also appends an ``AuditEvent``.
Stages are not stored: they are derived from aliases and alias history (see
``shipyard.registry``), so history is a query and rollback is re-pointing an alias.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator


class UTCDateTime(TypeDecorator[datetime]):
    """A timezone-aware UTC datetime on every backend (SQLite stores naive values)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetimes are not stored; use datetime.now(UTC)")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def utcnow() -> datetime:
    """The current time in UTC, to the microsecond (what every backend stores)."""
    return datetime.now(UTC)


class Base(DeclarativeBase):
    type_annotation_map: ClassVar[dict[Any, Any]] = {
        dict[str, Any]: JSON,
        list[Any]: JSON,
        datetime: UTCDateTime,
    }


class User(Base):
    __tablename__ = "users"

    name: Mapped[str] = mapped_column(String(128), primary_key=True)
    role: Mapped[str] = mapped_column(String(32))
    created_at: Mapped[datetime]
    created_by: Mapped[str] = mapped_column(String(128))
    # argon2 hash of the web UI password an admin set (``shipyard users set-password``);
    # ``None``: the user cannot log in to the UI with a password.
    password_hash: Mapped[str | None] = mapped_column(String(256))
    email: Mapped[str | None] = mapped_column(String(320))


class Run(Base):
    __tablename__ = "runs"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    model_name: Mapped[str | None] = mapped_column(String(256), index=True)
    status: Mapped[str] = mapped_column(String(16))
    user: Mapped[str] = mapped_column(String(128))
    started_at: Mapped[datetime]
    ended_at: Mapped[datetime | None]
    params: Mapped[dict[str, Any]]
    git: Mapped[dict[str, Any]]
    environment: Mapped[dict[str, Any]]
    error: Mapped[str | None] = mapped_column(Text)


class RunMetric(Base):
    __tablename__ = "run_metrics"
    __table_args__ = (Index("ix_run_metrics_run_key", "run_id", "key"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    run_id: Mapped[str] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"))
    key: Mapped[str] = mapped_column(String(256))
    value: Mapped[float] = mapped_column(Float)
    step: Mapped[int] = mapped_column(Integer, default=0)
    logged_at: Mapped[datetime]


class RunArtifact(Base):
    __tablename__ = "run_artifacts"
    __table_args__ = (UniqueConstraint("run_id", "path"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    run_id: Mapped[str] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"))
    path: Mapped[str] = mapped_column(String(1024))
    key: Mapped[str] = mapped_column(String(1024))
    sha256: Mapped[str] = mapped_column(String(71))
    size: Mapped[int] = mapped_column(Integer)


class Dataset(Base):
    __tablename__ = "datasets"
    __table_args__ = (UniqueConstraint("run_id", "name"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    run_id: Mapped[str] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(256))
    content_hash: Mapped[str] = mapped_column(String(71), index=True)
    n_rows: Mapped[int] = mapped_column(Integer)
    fingerprint: Mapped[dict[str, Any]]
    logged_at: Mapped[datetime]


class Model(Base):
    __tablename__ = "models"

    name: Mapped[str] = mapped_column(String(256), primary_key=True)
    description: Mapped[str] = mapped_column(Text, default="")
    tags: Mapped[dict[str, Any]]
    created_at: Mapped[datetime]
    created_by: Mapped[str] = mapped_column(String(128))
    # The business objective in words and the acceptance criterion ("roc_auc >= 0.80"), as
    # ``shipyard models create`` recorded them (shipyard.toml's [models.NAME] wins over these).
    objective: Mapped[str] = mapped_column(Text, default="", server_default=text("''"))
    accept: Mapped[str | None] = mapped_column(String(256))
    # Who answers for the model and which team it belongs to (catalogue filters, digests).
    owner: Mapped[str | None] = mapped_column(String(128))
    team: Mapped[str] = mapped_column(
        String(128), default="", server_default=text("''"), index=True
    )


class ModelVersion(Base):
    __tablename__ = "model_versions"
    __table_args__ = (UniqueConstraint("model_name", "version"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    model_name: Mapped[str] = mapped_column(ForeignKey("models.name"))
    version: Mapped[int] = mapped_column(Integer)
    author: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[datetime]
    run_id: Mapped[str | None] = mapped_column(ForeignKey("runs.id"))
    flavor: Mapped[str] = mapped_column(String(64))
    task: Mapped[str] = mapped_column(String(32))
    archive_key: Mapped[str] = mapped_column(String(1024))
    digest: Mapped[str] = mapped_column(String(71))
    size: Mapped[int] = mapped_column(Integer)
    metrics: Mapped[dict[str, Any]]
    tags: Mapped[dict[str, Any]]
    description: Mapped[str] = mapped_column(Text, default="")
    archived_at: Mapped[datetime | None]


class Alias(Base):
    """Where an alias (``production``, ``staging``, any name) of a model points now."""

    __tablename__ = "aliases"

    model_name: Mapped[str] = mapped_column(ForeignKey("models.name"), primary_key=True)
    alias: Mapped[str] = mapped_column(String(128), primary_key=True)
    version: Mapped[int] = mapped_column(Integer)
    updated_at: Mapped[datetime]
    updated_by: Mapped[str] = mapped_column(String(128))


class AliasChange(Base):
    """Append-only history of alias moves; rollback replays it as a stack."""

    __tablename__ = "alias_changes"
    __table_args__ = (Index("ix_alias_changes_model_alias", "model_name", "alias"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    model_name: Mapped[str] = mapped_column(ForeignKey("models.name"))
    alias: Mapped[str] = mapped_column(String(128))
    version: Mapped[int | None] = mapped_column(Integer)
    previous_version: Mapped[int | None] = mapped_column(Integer)
    action: Mapped[str] = mapped_column(String(16))  # set | rollback | remove
    at: Mapped[datetime]
    by: Mapped[str] = mapped_column(String(128))
    reason: Mapped[str] = mapped_column(Text, default="")


class Approval(Base):
    __tablename__ = "approvals"
    __table_args__ = (UniqueConstraint("model_name", "version", "approver"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    model_name: Mapped[str] = mapped_column(ForeignKey("models.name"))
    version: Mapped[int] = mapped_column(Integer)
    approver: Mapped[str] = mapped_column(String(128))
    reason: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime]


class ApprovalRequest(Base):
    """A request that a version be reviewed, with the requester's comment, and how it ended:
    ``open`` until an approver approves or rejects it (with a reason) or the requester
    withdraws it. The approvals inbox lists the open ones."""

    __tablename__ = "approval_requests"
    __table_args__ = (Index("ix_approval_requests_status", "status", "model_name"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    model_name: Mapped[str] = mapped_column(ForeignKey("models.name"))
    version: Mapped[int] = mapped_column(Integer)
    requested_by: Mapped[str] = mapped_column(String(128))
    comment: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime]
    status: Mapped[str] = mapped_column(String(16))  # open | approved | rejected | withdrawn
    decided_by: Mapped[str | None] = mapped_column(String(128))
    decided_at: Mapped[datetime | None]
    reason: Mapped[str] = mapped_column(Text, default="")


class AuditEvent(Base):
    """One hash-chained audit event; ``seq`` is contiguous from 1."""

    __tablename__ = "audit_events"

    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    at: Mapped[datetime]
    actor: Mapped[str] = mapped_column(String(128))
    action: Mapped[str] = mapped_column(String(64), index=True)
    subject: Mapped[str] = mapped_column(String(512), index=True)
    details: Mapped[dict[str, Any]]
    reason: Mapped[str] = mapped_column(Text, default="")
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))


class AuditHead(Base):
    """The single row naming the last event: appends lock it, so the chain never forks."""

    __tablename__ = "audit_head"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    seq: Mapped[int] = mapped_column(Integer)
    hash: Mapped[str] = mapped_column(String(64))


class ApiToken(Base):
    """A bearer token for the REST API; only its sha256 is stored (``shipyard tokens``)."""

    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(128))
    role: Mapped[str] = mapped_column(String(32))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime]
    created_by: Mapped[str] = mapped_column(String(128))
    revoked_at: Mapped[datetime | None]
    # The user a token acts for in the UI's JSON API (``/api/``), with that user's role;
    # ``None``: a serving token (``scorer``) or, for ``admin``, the admin ``token:<name>``.
    user: Mapped[str | None] = mapped_column(String(128))
    # The team the token's usage is charged to (``shipyard usage --by team``); ``None``: none.
    team: Mapped[str | None] = mapped_column(String(128))


class MonitoringResult(Base):
    """One metric of one feature (or ``*`` for the dataset) of one monitoring window."""

    __tablename__ = "monitoring_results"
    __table_args__ = (
        # Covering: a series (the UI's plots, a year of hourly windows) is read from the index
        # alone, never from the table's pages (3.5 s -> well under a second for 365 days).
        Index(
            "ix_monitoring_results_series",
            "model_name",
            "metric",
            "feature",
            "window_end",
            "value",
            "flagged",
            "threshold",
            "run_id",
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    run_id: Mapped[str] = mapped_column(String(32), index=True)
    model_name: Mapped[str] = mapped_column(String(256))
    version: Mapped[int] = mapped_column(Integer)
    source: Mapped[str] = mapped_column(String(1024))
    window_start: Mapped[datetime | None]
    window_end: Mapped[datetime]
    metric: Mapped[str] = mapped_column(String(64))
    feature: Mapped[str] = mapped_column(String(256))
    value: Mapped[float | None] = mapped_column(Float)
    threshold: Mapped[float | None] = mapped_column(Float)
    flagged: Mapped[bool]
    rows: Mapped[int] = mapped_column(Integer)
    seconds: Mapped[float] = mapped_column(Float)
    created_at: Mapped[datetime]


class ModelHealth(Base):
    """The newest monitoring outcome of one model, kept beside ``monitoring_results`` by the
    same write (``MonitoringResults.save``), so the catalogue reads one row per model instead
    of a year of series. ``drifted`` and ``quality`` name the flagged features and checks;
    ``performance`` maps metric to ``{"value", "lower", "upper", "flagged"}``."""

    __tablename__ = "model_health"

    model_name: Mapped[str] = mapped_column(String(256), primary_key=True)
    version: Mapped[int] = mapped_column(Integer)
    run_id: Mapped[str] = mapped_column(String(32))
    window_start: Mapped[datetime | None]
    window_end: Mapped[datetime]
    rows: Mapped[int] = mapped_column(Integer)
    features: Mapped[int] = mapped_column(Integer)  # features checked for drift
    drifted: Mapped[list[Any]]
    quality: Mapped[list[Any]]
    performance: Mapped[dict[str, Any]]
    label_coverage: Mapped[float | None] = mapped_column(Float)
    updated_at: Mapped[datetime]


class ServerSecret(Base):
    """Secrets every replica of the UI shares (the key signing session and CSRF cookies),
    created on first use unless ``SHIPYARD_UI_SECRET`` gives one."""

    __tablename__ = "server_secrets"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(String(256))
    created_at: Mapped[datetime]


class AlertRecord(Base):
    """An alert raised by a rule: what, where it was sent, and who acknowledged it."""

    __tablename__ = "alerts"
    __table_args__ = (Index("ix_alerts_rule_key", "rule", "key", "created_at"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    rule: Mapped[str] = mapped_column(String(128))
    key: Mapped[str] = mapped_column(String(1024))
    severity: Mapped[str] = mapped_column(String(16))
    model_name: Mapped[str] = mapped_column(String(256), index=True)
    version: Mapped[int] = mapped_column(Integer)
    metric: Mapped[str] = mapped_column(String(64))
    feature: Mapped[str | None] = mapped_column(String(256))
    value: Mapped[float] = mapped_column(Float)
    threshold: Mapped[float] = mapped_column(Float)
    message: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16))  # sent | failed | suppressed
    deliveries: Mapped[dict[str, Any]]
    created_at: Mapped[datetime]
    acknowledged_at: Mapped[datetime | None]
    acknowledged_by: Mapped[str | None] = mapped_column(String(128))


class TrafficPolicy(Base):
    """How a model's requests are split between versions; append-only, newest row rules.

    ``arms`` is a list of ``{"version": int | None, "weight": float}`` (``None``: the version
    the served alias points to, so a canary's base follows a rollback); weights are percent
    and sum to 100. ``shadow`` is a version that also scores every request, logged but never
    returned. ``sticky`` is ``"header:<name>"`` or ``"field:<column>"``: requests with the
    same key hash to the same arm. A row with no arms and no shadow ends the policy.
    """

    __tablename__ = "traffic_policies"
    __table_args__ = (Index("ix_traffic_policies_model", "model_name", "id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    model_name: Mapped[str] = mapped_column(ForeignKey("models.name"))
    kind: Mapped[str] = mapped_column(String(16))  # canary | split | shadow | none
    arms: Mapped[list[Any]]
    shadow: Mapped[int | None] = mapped_column(Integer)
    sticky: Mapped[str | None] = mapped_column(String(256))
    created_at: Mapped[datetime]
    created_by: Mapped[str] = mapped_column(String(128))
    reason: Mapped[str] = mapped_column(Text, default="")


class JobRun(Base):
    """One run of a scheduled job (``shipyard scheduler``): when, how long, and how it ended."""

    __tablename__ = "job_runs"
    __table_args__ = (Index("ix_job_runs_job", "job", "started_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    job: Mapped[str] = mapped_column(String(128))
    trigger: Mapped[str] = mapped_column(String(16))  # schedule | manual
    owner: Mapped[str] = mapped_column(String(256))  # host:pid of the scheduler
    started_at: Mapped[datetime]
    finished_at: Mapped[datetime | None]
    seconds: Mapped[float | None] = mapped_column(Float)
    status: Mapped[str] = mapped_column(String(16))  # running | succeeded | failed | skipped
    message: Mapped[str] = mapped_column(Text, default="")
    details: Mapped[dict[str, Any]]


class GateRecord(Base):
    """One ``shipyard validate`` of a version: every gate's outcome, bound to the archive
    digest it judged (a record for another digest never unlocks a promotion)."""

    __tablename__ = "gate_records"
    __table_args__ = (Index("ix_gate_records_version", "model_name", "version", "id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    model_name: Mapped[str] = mapped_column(ForeignKey("models.name"))
    version: Mapped[int] = mapped_column(Integer)
    digest: Mapped[str] = mapped_column(String(71))
    champion: Mapped[int | None] = mapped_column(Integer)  # the version it was compared with
    passed: Mapped[bool]
    failed: Mapped[list[Any]]  # names of the failed gates
    data_source: Mapped[str] = mapped_column(Text)  # which rows were used, in words
    report: Mapped[dict[str, Any]]  # the JSON report (gates with value, limit, detail)
    created_at: Mapped[datetime]
    created_by: Mapped[str] = mapped_column(String(128))


class Waiver(Base):
    """An approver's signed waiver of one failed gate of one archive digest, with a reason."""

    __tablename__ = "waivers"
    __table_args__ = (UniqueConstraint("model_name", "version", "digest", "gate"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    model_name: Mapped[str] = mapped_column(ForeignKey("models.name"))
    version: Mapped[int] = mapped_column(Integer)
    digest: Mapped[str] = mapped_column(String(71))
    gate: Mapped[str] = mapped_column(String(128))
    approver: Mapped[str] = mapped_column(String(128))
    reason: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime]


class Risk(Base):
    """One entry of a model's risk register (``shipyard risks``); ``version`` None: every
    version of the model."""

    __tablename__ = "risks"
    __table_args__ = (Index("ix_risks_model", "model_name", "status"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    model_name: Mapped[str] = mapped_column(ForeignKey("models.name"))
    version: Mapped[int | None] = mapped_column(Integer)
    title: Mapped[str] = mapped_column(Text)
    severity: Mapped[str] = mapped_column(String(16))  # low | medium | high
    owner: Mapped[str] = mapped_column(String(128))
    mitigation: Mapped[str] = mapped_column(Text, default="")
    status: Mapped[str] = mapped_column(String(16))  # open | closed
    created_at: Mapped[datetime]
    created_by: Mapped[str] = mapped_column(String(128))
    closed_at: Mapped[datetime | None]
    closed_by: Mapped[str | None] = mapped_column(String(128))
    resolution: Mapped[str] = mapped_column(Text, default="")


class RiskAcknowledgement(Base):
    """An approver saw an open risk and approved a version anyway (``approve --ack-risk``)."""

    __tablename__ = "risk_acknowledgements"
    __table_args__ = (UniqueConstraint("risk_id", "version", "approver"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    risk_id: Mapped[int] = mapped_column(ForeignKey("risks.id"))
    model_name: Mapped[str] = mapped_column(ForeignKey("models.name"))
    version: Mapped[int] = mapped_column(Integer)
    approver: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[datetime]


class CardSection(Base):
    """A model card section written by a person (``shipyard card edit``), per version."""

    __tablename__ = "card_sections"

    model_name: Mapped[str] = mapped_column(ForeignKey("models.name"), primary_key=True)
    version: Mapped[int] = mapped_column(Integer, primary_key=True)
    section: Mapped[str] = mapped_column(String(64), primary_key=True)
    text: Mapped[str] = mapped_column(Text)
    updated_at: Mapped[datetime]
    updated_by: Mapped[str] = mapped_column(String(128))


class Rollout(Base):
    """A progressive delivery (``promote --canary N --auto``): the canary steps through
    ``steps`` (percent), each held ``bake_seconds`` and judged before the next."""

    __tablename__ = "rollouts"
    __table_args__ = (Index("ix_rollouts_model", "model_name", "status"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    model_name: Mapped[str] = mapped_column(ForeignKey("models.name"))
    version: Mapped[int] = mapped_column(Integer)
    steps: Mapped[list[Any]]  # percent of traffic at each step; the last is 100
    step: Mapped[int] = mapped_column(Integer)  # index into steps now in force
    bake_seconds: Mapped[float] = mapped_column(Float)
    status: Mapped[str] = mapped_column(String(16))  # running | promoted | rolled_back | cancelled
    next_at: Mapped[datetime]  # when the current step is judged
    started_at: Mapped[datetime]
    started_by: Mapped[str] = mapped_column(String(128))
    updated_at: Mapped[datetime]
    message: Mapped[str] = mapped_column(Text, default="")
    details: Mapped[dict[str, Any]]  # judgements so far


class RetrainRun(Base):
    """One ``shipyard retrain``: what started it, its tracked run, the candidate it made."""

    __tablename__ = "retrain_runs"
    __table_args__ = (Index("ix_retrain_runs_model", "model_name", "status"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    model_name: Mapped[str] = mapped_column(ForeignKey("models.name"))
    trigger: Mapped[str] = mapped_column(String(256))  # manual | schedule:<job> | alert:<id>
    status: Mapped[str] = mapped_column(String(16))  # running | succeeded | failed
    started_at: Mapped[datetime]
    started_by: Mapped[str] = mapped_column(String(128))
    owner: Mapped[str] = mapped_column(String(256))  # host:pid running it
    finished_at: Mapped[datetime | None]
    run_id: Mapped[str | None] = mapped_column(String(32))
    version: Mapped[int | None] = mapped_column(Integer)  # the candidate registered
    passed: Mapped[bool | None]  # its gates, against production
    message: Mapped[str] = mapped_column(Text, default="")
    details: Mapped[dict[str, Any]]


class ModelGroup(Base):
    """One definition of a model group; append-only, the newest row of a name rules.

    ``members`` is a list of ``{"model": str, "alias": str}`` in order (a chain's order);
    ``combine`` is ``chain``, ``mean``, ``weighted`` or ``vote``; ``weights`` (one per member)
    only for ``weighted``. ``revision`` counts the definitions of the name (the group's
    "version" in the prediction log). A row with ``deleted`` true ends the group.
    """

    __tablename__ = "model_groups"
    __table_args__ = (Index("ix_model_groups_name", "name", "id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(256))
    revision: Mapped[int] = mapped_column(Integer)
    combine: Mapped[str] = mapped_column(String(16))
    members: Mapped[list[Any]]
    weights: Mapped[list[Any] | None] = mapped_column(JSON)
    deleted: Mapped[bool]
    created_at: Mapped[datetime]
    created_by: Mapped[str] = mapped_column(String(128))
    description: Mapped[str] = mapped_column(Text, default="")
