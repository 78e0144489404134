"""One typed settings module: every setting declared once, with its type, default and help.

``Settings`` are where Shipyard keeps its data and who is acting, read from ``SHIPYARD_*``
environment variables once, at the edge (the CLI's callback, an app factory), and passed down
explicitly. ``ServeSettings`` are how a server serves: ``shipyard serve`` builds its options
from these fields (defaults and help), tests and embedders pass them to
``create_app(store, settings=ServeSettings(...))``. The project file (shipyard.toml) is
``shipyard.config``'s.

Layering: imports nothing of Shipyard's; any package may import it.

>>> Settings(home="/tmp/sy").database_url
'sqlite:////tmp/sy/shipyard.db'
>>> ServeSettings(runtime="native").batch_max_wait_ms
2.0
"""

from __future__ import annotations

import getpass
import os
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from pydantic_settings import BaseSettings, SettingsConfigDict


def _os_user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no passwd entry (some containers)
        return os.environ.get("USER", "unknown")


class Settings(BaseSettings):
    """Where Shipyard keeps its data, and who is acting."""

    model_config = SettingsConfigDict(env_prefix="SHIPYARD_", extra="ignore")

    home: Path = Field(
        default=Path(".shipyard"),
        description="Folder for the embedded SQLite database and the default artifact store.",
    )
    db_url: str | None = Field(
        default=None,
        description="SQLAlchemy URL of the metadata database, e.g. "
        "postgresql+psycopg://user@host/db. Default: SQLite file in the home folder.",
    )
    artifacts: str | None = Field(
        default=None,
        description="fsspec URL or path of the artifact store. Default: 'artifacts' in home.",
    )
    storage_options: dict[str, Any] = Field(
        default_factory=dict,
        description="fsspec storage options of the artifact store, as JSON, e.g. "
        '{"endpoint_url": "http://minio:9000"} for s3:// URLs (they override [storage] '
        "options in shipyard.toml). Keys and the endpoint may also come from AWS_ACCESS_KEY_ID, "
        "AWS_SECRET_ACCESS_KEY and AWS_ENDPOINT_URL, which botocore reads itself.",
    )
    config: Path = Field(
        default=Path("shipyard.toml"),
        description="The project file: channels, alert and notify rules, jobs, retention, "
        "monitoring defaults (see shipyard.config).",
    )
    user: str = Field(
        default_factory=_os_user,
        description="Who is acting: recorded on runs, versions, approvals and audit events. "
        "Default: the operating-system user.",
    )
    # -- engines (issue 14) --
    dask_scheduler: str | None = Field(
        default=None,
        description="Address of the Dask scheduler that --engine dask uses, e.g. "
        "tcp://10.0.0.5:8786. Default: a local cluster of worker processes per command.",
    )

    @property
    def database_url(self) -> str:
        """The metadata database URL, defaulting to ``sqlite:///<home>/shipyard.db``."""
        if self.db_url:
            return self.db_url
        return f"sqlite:///{self.home.expanduser().absolute() / 'shipyard.db'}"

    @property
    def artifacts_url(self) -> str:
        """The artifact store URL, defaulting to ``<home>/artifacts``."""
        if self.artifacts:
            return self.artifacts
        return str(self.home.expanduser().absolute() / "artifacts")


Runtime = Literal["auto", "onnx", "native"]
Compactor = Literal["process", "thread"]


class ServeSettings(BaseModel):
    """How a Shipyard server serves its models."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    models: tuple[str, ...] | None = Field(
        default=None,
        description="Names of the models to serve (comma-separated on the command line). "
        "Default: every model that has the alias (checked again whenever the registry changes).",
    )
    alias: str = Field(
        default="production", description="The alias served at /models/{name}/... by default."
    )
    runtime: Runtime = Field(
        default="auto",
        description="'native' runs the model's own library; 'onnx' runs the archive's ONNX "
        "export with onnxruntime; 'auto' runs ONNX only when the archive records a verified "
        "export within onnx_tolerance, native otherwise.",
    )
    onnx_tolerance: float = Field(
        default=1e-4,
        ge=0,
        description="Largest |onnx - native| difference (measured at registration, on "
        "probabilities or predictions) for which 'auto' picks ONNX.",
    )
    auth: bool = Field(
        default=True,
        description="Require a bearer API token on the serving routes (shipyard tokens "
        "create). Turn off only for local use (--no-auth).",
    )
    token_cache_seconds: float = Field(
        default=5.0,
        ge=0,
        description="How long a checked token is trusted before the database is asked again; "
        "a revoked token stops working within this time.",
    )
    max_body_bytes: int = Field(
        default=16 * 1024 * 1024, gt=0, description="Largest request body accepted (413 above)."
    )
    max_batch_rows: int = Field(
        default=10_000, gt=0, description="Most rows accepted in one request (413 above)."
    )
    batch_max_rows: int = Field(
        default=256,
        gt=0,
        description="Micro-batching (native runtime): most rows predicted in one model call.",
    )
    batch_max_wait_ms: float = Field(
        default=2.0,
        ge=0,
        description="Micro-batching: how long to wait for more requests once concurrent "
        "requests are seen; a lone request is never delayed.",
    )
    poll_interval_seconds: float = Field(
        default=0.5,
        gt=0,
        description="How often the server asks the registry whether an alias moved.",
    )
    compactor: Compactor = Field(
        default="process",
        description="Where the prediction log is compacted to Parquet: 'process' (a compactor "
        "process per log folder, off the request path's GIL, on idle CPU only) or 'thread' "
        "(a thread of each server process).",
    )
    default_model: str | None = Field(
        default=None,
        description="Model answering MLflow's /invocations when the request names none. "
        "Default: the first served model.",
    )
    grpc_port: int | None = Field(
        default=None,
        ge=1,
        le=65535,
        description="Also serve the Open Inference Protocol over gRPC on this port (KServe's "
        "and Triton's gRPC clients). Default: no gRPC endpoint.",
    )
    grpc_host: str = Field(
        default="127.0.0.1",
        description="Address the gRPC endpoint listens on (shipyard serve uses --host).",
    )
    snapshot_every: int = Field(
        default=0,
        ge=0,
        description="Online learners (river models): register the server's learner as a new "
        "version every this many labels sent to /feedback (0: never; a scheduler 'snapshot' "
        "job can snapshot instead). Promoting a snapshot stays a person's decision.",
    )
    learner_actor: str = Field(
        default="shipyard-server",
        min_length=1,
        max_length=128,
        description="The user online-learning snapshots are registered as (not a viewer).",
    )
    # -- replicas (issue 14): one contiguous block ---------------------------------------------
    replica: str | None = Field(
        default=None,
        max_length=128,
        description="This server's name among several replicas, in /metrics as "
        "shipyard_replica_info{replica=...} (env SHIPYARD_REPLICA). Default: <hostname>-<pid>.",
    )
    shared_metrics_dir: str | None = Field(
        default=None,
        description="Folder where the worker processes of one server share their counts, so "
        "any worker's /metrics gives the server's totals. Set by shipyard serve --workers; "
        "default: none (one process).",
    )
    on_log_full: Literal["answer", "refuse"] = Field(
        default="refuse",
        description="When the prediction log's disk refuses a write (full, read-only): "
        "'refuse' answers 503 (no prediction is sent that is not logged) or 'answer' answers "
        "anyway and counts the unlogged records (shipyard_prediction_log_dropped_total). "
        "Both log it, and logging resumes once space is back.",
    )
    # -- security (issue 14): rate limits, CORS, Host header --------------------------------
    rate_limit: str | None = Field(
        default=None,
        pattern=r"^\d+\s*/\s*\d*\s*(s|sec|second|m|min|minute|h|hour)$",
        description="Most requests per API token, e.g. '100/s', '6000/min' or '500/10s' (429 "
        "with Retry-After above it; without auth, one budget for all callers). Default: none.",
    )
    rate_limit_redis_url: str | None = Field(
        default=None,
        description="Redis URL (redis://host:6379/0) where every replica and worker counts the "
        "rate limit together. Default: each process counts its own, in memory.",
    )
    cors_origins: tuple[str, ...] | None = Field(
        default=None,
        description="Origins whose web pages may call this server from a browser (CORS), e.g. "
        "https://app.example.com (comma-separated on the command line). Default: none.",
    )
    allowed_hosts: tuple[str, ...] | None = Field(
        default=None,
        description="Host names this server answers to (the Host header; '*.example.com' "
        "allowed); other requests get 400. Default: any host.",
    )
    # -- predlog (issue 14): the prediction log's Parquet on an object store --
    log_store: str | None = Field(
        default=None,
        description="Object store URL for the prediction log's Parquet, e.g. "
        "s3://bucket/predlog (the write-ahead log stays in --log-dir, on local disk). "
        "Endpoint and keys: the [storage] options or the AWS_* environment variables. "
        "While the store is down, requests are answered and logged to the WAL; compaction "
        "retries. Default: Parquet beside the WAL.",
    )


class UiSettings(BaseModel):
    """How the web UI (``shipyard ui``, or ``shipyard serve --ui``) lets people in."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    trusted_header: str | None = Field(
        default=None,
        description="Behind a company proxy that authenticates users: the request header "
        "naming the user (e.g. X-Forwarded-User). Off by default: only set it when nothing "
        "but the proxy can reach the UI.",
    )
    session_hours: float = Field(
        default=12.0, gt=0, description="How long a login lasts before the user logs in again."
    )
    secure_cookies: bool = Field(
        default=False,
        description="Mark the session and CSRF cookies Secure (sent over HTTPS only); turn on "
        "when the UI is reached through HTTPS.",
    )
    secret: str | None = Field(
        default=None,
        description="Key signing session and CSRF cookies. Default: one created in the "
        "database on first start and shared by every replica.",
    )
    base_url: str = Field(
        default="http://127.0.0.1:8600",
        description="The address people open the UI at; links in e-mailed digests start here.",
    )
    max_body_bytes: int = Field(
        default=1024 * 1024,
        gt=0,
        description="Largest request body the UI and its API accept (413 above): its forms "
        "and JSON actions are small, and a route would otherwise read any body whole.",
    )


#: Environment variables and their help, for documentation and the settings test.
def documented_settings() -> dict[str, str]:
    """Map each environment variable to its help text."""
    out: dict[str, str] = {}
    for name, field in Settings.model_fields.items():
        env = f"SHIPYARD_{name.upper()}"
        out[env] = field.description or ""
    return out
