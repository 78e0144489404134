"""Registry: named models, immutable numbered versions, aliases, four-eyes approvals,
traffic policies (canary, split, shadow), rollouts (a canary stepped up to production).

Imports packaging, auth, audit and store (never tracking, serving or monitoring); what it
hands out are plain frozen entities (``ModelVersion``, ``Approval``, ``AliasChange``,
``RegisteredModel``, ``Policy``, ``Rollout``), never the store's rows.
"""

from shipyard.registry._entities import (
    AliasChange,
    Approval,
    ModelVersion,
    RegisteredModel,
    Rollout,
)
from shipyard.registry._policy import Arm, Policy, referenced_versions
from shipyard.registry._refs import PRODUCTION, ModelRef, check_alias, check_name, parse_ref
from shipyard.registry._registry import STAGES, Registry, VersionInfo
from shipyard.registry._rollouts import Rollouts, check_steps, default_steps
from shipyard.registry._traffic import RollbackOutcome, Traffic, check_sticky

__all__ = [
    "PRODUCTION",
    "STAGES",
    "AliasChange",
    "Approval",
    "Arm",
    "ModelRef",
    "ModelVersion",
    "Policy",
    "RegisteredModel",
    "Registry",
    "RollbackOutcome",
    "Rollout",
    "Rollouts",
    "Traffic",
    "VersionInfo",
    "check_alias",
    "check_name",
    "check_steps",
    "check_sticky",
    "default_steps",
    "parse_ref",
    "referenced_versions",
]
