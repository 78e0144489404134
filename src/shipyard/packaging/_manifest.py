"""The archive manifest: everything needed to trust, load and monitor a model version."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

FORMAT_VERSION = 1

#: What a model does: a flavor decides it, the manifest records it.
Task = Literal["classification", "regression"]


class Lineage(BaseModel):
    """Where a version came from: its run, the code's commit and the data's fingerprints."""

    run_id: str | None = None
    git: dict[str, Any] = Field(default_factory=dict)
    datasets: list[dict[str, Any]] = Field(default_factory=list)


class Manifest(BaseModel):
    """``manifest.json`` at the root of every archive."""

    format_version: int = FORMAT_VERSION
    name: str
    version: int
    author: str
    created_at: datetime
    flavor: str
    frameworks: dict[str, str]
    python: str
    task: Task
    classes: list[Any] | None = None
    input_kind: Literal["frame", "array"] = "frame"
    input_schema: dict[str, Any]
    output_schema: dict[str, Any]
    metrics: dict[str, float] = Field(default_factory=dict)
    lineage: Lineage = Field(default_factory=Lineage)
    onnx: dict[str, Any] | None = None
    #: sha256 of every other member, by path.
    members: dict[str, str]
