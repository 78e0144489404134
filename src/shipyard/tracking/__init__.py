"""Tracking: runs with params, metrics, artifacts, dataset fingerprints, git and environment.

Imports registry, packaging, dataset, audit and store (nothing imports tracking but the
facade and the CLI). The tracker hands out entities (``Run``, ``RunDataset``,
``RunArtifact``), never the store's rows; git and environment capture are packaging's.
"""

from shipyard.packaging import environment, git_state, package_versions
from shipyard.tracking._entities import Run, RunArtifact, RunDataset
from shipyard.tracking._run import ActiveRun, Tracker, active_run

__all__ = [
    "ActiveRun",
    "Run",
    "RunArtifact",
    "RunDataset",
    "Tracker",
    "active_run",
    "environment",
    "git_state",
    "package_versions",
]
