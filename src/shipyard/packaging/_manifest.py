"""The archive manifest: everything needed to trust, load and monitor a model version."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

#: The newest archive format this Shipyard reads. Format 2 archives carry the model's own code
#: (``code/`` members, ``code_modules``), which a format-1 reader would not put in place; an
#: archive without code is still written as format 1, so older Shipyards keep reading it.
FORMAT_VERSION = 2
#: The format of an archive without code members.
FORMAT_WITHOUT_CODE = 1

#: What a model does: a flavor decides it, the manifest records it.
Task = Literal["classification", "regression"]


class Lineage(BaseModel):
    """Where a version came from: its run, the code's commit and the data's fingerprints."""

    run_id: str | None = None
    git: dict[str, Any] = Field(default_factory=dict)
    datasets: list[dict[str, Any]] = Field(default_factory=list)
    #: For an imported version, where it came from (``{"kind": "mlflow", "uri": ...}``).
    source: dict[str, Any] = Field(default_factory=dict)


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
    #: The model's own modules stored as ``code/<module path>.py`` members (dotted names).
    code_modules: list[str] = Field(default_factory=list)
    #: Classes and functions pickled by value (``module.qualname``): ``__main__`` classes,
    #: lambdas. They load only under the Python minor version in ``python``.
    pickled_by_value: list[str] = Field(default_factory=list)
    #: sha256 of every other member, by path.
    members: dict[str, str]
