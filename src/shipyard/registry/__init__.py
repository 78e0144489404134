"""Registry: named models, immutable numbered versions, aliases, four-eyes approvals."""

from shipyard.registry._refs import ModelRef, check_alias, check_name, parse_ref
from shipyard.registry._registry import PRODUCTION, STAGES, Registry, VersionInfo

__all__ = [
    "PRODUCTION",
    "STAGES",
    "ModelRef",
    "Registry",
    "VersionInfo",
    "check_alias",
    "check_name",
    "parse_ref",
]
