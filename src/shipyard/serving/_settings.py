"""The server's settings: each declared once, with its type, default and help.

``shipyard serve`` builds them from its options; tests and embedders pass them to
``create_app(store, settings=ServeSettings(...))``.

>>> ServeSettings(runtime="native").batch_max_wait_ms
2.0
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

Runtime = Literal["auto", "onnx", "native"]
Compactor = Literal["process", "thread"]


class ServeSettings(BaseModel):
    """How a Shipyard server serves its models."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    models: tuple[str, ...] | None = Field(
        default=None,
        description="Names of the models to serve. Default: every model that has the alias "
        "(checked again whenever the registry changes).",
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
