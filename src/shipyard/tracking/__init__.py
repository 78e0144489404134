"""Tracking: runs with params, metrics, artifacts, dataset fingerprints, git and environment."""

from shipyard.tracking._environment import environment, git_state, package_versions
from shipyard.tracking._run import ActiveRun, Tracker, active_run

__all__ = ["ActiveRun", "Tracker", "active_run", "environment", "git_state", "package_versions"]
