"""Deploying a registered model: recreated environments, container and cluster files, CI.

``create_env`` makes a virtual environment from an archive's lock (``model_lock``: its
``runtime.lock``, or an older archive's ``requirements.lock``) with pip or uv
(``INSTALLERS``); ``parse_lock`` and ``compare`` check an environment against it.
``docker_files``, ``k8s_files`` and ``kserve_files`` render a Docker build context,
Kubernetes manifests and a KServe ``ServingRuntime`` with an ``InferenceService`` on it (Open
Inference Protocol v2) for ``write_files`` (``shared`` makes a target's pods share one
registry, object store and prediction log, on Kubernetes and KServe alike);
``install_archive`` records a baked archive in a container's own store; ``write_ci`` writes a
GitHub Actions or GitLab CI pipeline.

Layer: beside ``tracking`` (it reads archives through the registry; only the CLI imports it).
"""

from shipyard.deploy._bundle import install_archive
from shipyard.deploy._ci import CI_SYSTEMS, ci_pipeline, write_ci
from shipyard.deploy._files import (
    STORAGE_KEYS,
    TARGETS,
    Target,
    docker_files,
    k8s_files,
    k8s_name,
    kserve_files,
    shared,
    target_for,
    write_files,
)
from shipyard.deploy._lock import (
    EnvDiff,
    Lock,
    canonical,
    compare,
    installed,
    model_lock,
    parse_lock,
)
from shipyard.deploy._source import ShipyardSource, shipyard_source
from shipyard.deploy._venv import INSTALLERS, EnvReport, Progress, Unavailable, create_env

__all__ = [
    "CI_SYSTEMS",
    "INSTALLERS",
    "STORAGE_KEYS",
    "TARGETS",
    "EnvDiff",
    "EnvReport",
    "Lock",
    "Progress",
    "ShipyardSource",
    "Target",
    "Unavailable",
    "canonical",
    "ci_pipeline",
    "compare",
    "create_env",
    "docker_files",
    "install_archive",
    "installed",
    "k8s_files",
    "k8s_name",
    "kserve_files",
    "model_lock",
    "parse_lock",
    "shared",
    "shipyard_source",
    "target_for",
    "write_ci",
    "write_files",
]
