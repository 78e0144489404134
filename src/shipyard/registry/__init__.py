"""Registry: named models, immutable numbered versions, aliases, four-eyes approvals,
traffic policies (canary, split, shadow)."""

from shipyard.names import check_name
from shipyard.registry._refs import ModelRef, check_alias, parse_ref
from shipyard.registry._registry import PRODUCTION, STAGES, Registry, VersionInfo
from shipyard.registry._traffic import Arm, Policy, RollbackOutcome, Traffic, check_sticky

__all__ = [
    "PRODUCTION",
    "STAGES",
    "Arm",
    "ModelRef",
    "Policy",
    "Registry",
    "RollbackOutcome",
    "Traffic",
    "VersionInfo",
    "check_alias",
    "check_name",
    "check_sticky",
    "parse_ref",
]
