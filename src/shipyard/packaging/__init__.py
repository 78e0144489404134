"""Packaging: one immutable, checksummed zip archive per model version.

``prepare_archive`` validates a fitted model and computes the archive's members (model file,
schema, reference profile, environment lock, ONNX export); the registry numbers and stores it;
``open_archive`` verifies an archive before anything is unpickled; ``LoadedModel`` predicts.
The model's own modules travel as ``code/`` members (``_code`` finds them, ``_code_import``
puts them in place at load, ``_load_check`` proves a fresh process loads the archive).
``git_state``, ``environment``, ``package_versions`` and ``requirements_lock`` capture what
produced a model (runs record them too); ``runtime_lock`` pins only what the model needs
(the ``runtime.lock`` member).

Imports only ``shipyard.dataset`` and ``shipyard.store`` (and errors); tracking and the registry
import it.
"""

from shipyard.packaging._archive import (
    EVAL_ROWS,
    EVAL_TARGET,
    Archive,
    PreparedArchive,
    open_archive,
    read_manifest,
)
from shipyard.packaging._environment import (
    environment,
    git_state,
    package_versions,
    requirements_lock,
)
from shipyard.packaging._flavors import FLAVORS, Flavor, flavor_for, get_flavor
from shipyard.packaging._loaded import LoadedModel
from shipyard.packaging._manifest import Lineage, Manifest
from shipyard.packaging._onnx import (
    OnnxExport,
    OnnxInput,
    OnnxPredictor,
    export_onnx,
    flat_predictions,
)
from shipyard.packaging._prepare import as_frame, prepare_archive
from shipyard.packaging._runtime import RUNTIME_LOCK, runtime_lock

__all__ = [
    "EVAL_ROWS",
    "EVAL_TARGET",
    "FLAVORS",
    "RUNTIME_LOCK",
    "Archive",
    "Flavor",
    "Lineage",
    "LoadedModel",
    "Manifest",
    "OnnxExport",
    "OnnxInput",
    "OnnxPredictor",
    "PreparedArchive",
    "as_frame",
    "environment",
    "export_onnx",
    "flat_predictions",
    "flavor_for",
    "get_flavor",
    "git_state",
    "open_archive",
    "package_versions",
    "prepare_archive",
    "read_manifest",
    "requirements_lock",
    "runtime_lock",
]
