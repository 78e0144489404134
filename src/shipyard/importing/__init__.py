"""Importing: models made elsewhere become Shipyard versions (today: MLflow's).

``import_mlflow`` reads an MLflow model directory, ``runs:/``, ``models:/NAME/VERSION``,
``models:/NAME@ALIAS`` or ``models:/NAME`` (every version) from a tracking server (its REST
API, no MLflow install needed) or a local MLflow store (through the ``mlflow`` package), and
registers each model through the normal path: ``prepare_archive`` (schema from the signature,
reference profile, ONNX export and parity), a Shipyard run with the MLflow run's params and
metric series, ``Registry.register`` (audited), aliases as four-eyes allows.

Layer: beside ``evaluation``; imports tracking, registry, packaging, dataset (never serving,
the CLI or the client).
"""

from shipyard.importing._import import ImportedVersion, ImportReport, import_mlflow
from shipyard.importing._mlmodel import (
    SUPPORTED_FLAVORS,
    InputSpec,
    MlflowModel,
    frame_for,
    read_model_dir,
)
from shipyard.importing._tracking import (
    LibraryTracking,
    MlflowRun,
    MlflowTracking,
    MlflowVersion,
    RestTracking,
    connect,
)

__all__ = [
    "SUPPORTED_FLAVORS",
    "ImportReport",
    "ImportedVersion",
    "InputSpec",
    "LibraryTracking",
    "MlflowModel",
    "MlflowRun",
    "MlflowTracking",
    "MlflowVersion",
    "RestTracking",
    "connect",
    "frame_for",
    "import_mlflow",
    "read_model_dir",
]
