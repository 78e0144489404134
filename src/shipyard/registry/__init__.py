"""Registry: named models, immutable numbered versions, aliases, four-eyes approvals,
approval requests (with the requester's comment; approved or rejected with a reason),
traffic policies (canary, split, shadow), rollouts (a canary stepped up to production), gate
records and waivers (a version takes production traffic only through its gates, unless its
policy says otherwise), the risk register (open high risks block an approval unless
acknowledged), the written sections of model cards, and snapshots of online learners (with
``teach``, how a logged label teaches one).

Imports packaging, auth, audit and store (never tracking, serving or monitoring); what it
hands out are plain frozen entities (``ModelVersion``, ``Approval``, ``AliasChange``,
``RegisteredModel``, ``Policy``, ``Rollout``), never the store's rows.
"""

from shipyard.registry._cards import (
    CARD_SECTIONS,
    CardNote,
    CardNotes,
    parse_card_markdown,
    section_title,
)
from shipyard.registry._entities import (
    AliasChange,
    Approval,
    GateRecord,
    ModelVersion,
    RegisteredModel,
    Rollout,
    Waiver,
)
from shipyard.registry._gates import Gates
from shipyard.registry._groups import (
    COMBINES,
    Group,
    GroupMember,
    Groups,
    MemberView,
    check_compatible,
    output_columns,
    parse_group_weights,
    parse_member,
)
from shipyard.registry._policy import Arm, Policy, referenced_versions
from shipyard.registry._queries import require_writer
from shipyard.registry._refs import PRODUCTION, ModelRef, check_alias, check_name, parse_ref
from shipyard.registry._registry import STAGES, Registry, VersionInfo
from shipyard.registry._requests import REQUEST_STATUSES, ApprovalRequest
from shipyard.registry._risks import SEVERITIES, Risk, Risks
from shipyard.registry._rollouts import Rollouts, check_steps, default_steps
from shipyard.registry._snapshots import (
    ONLINE_FLAVORS,
    learnable,
    learnable_rows,
    register_snapshot,
    teach,
)
from shipyard.registry._traffic import RollbackOutcome, Traffic, check_sticky, parse_weights

__all__ = [
    "CARD_SECTIONS",
    "COMBINES",
    "ONLINE_FLAVORS",
    "PRODUCTION",
    "REQUEST_STATUSES",
    "SEVERITIES",
    "STAGES",
    "AliasChange",
    "Approval",
    "ApprovalRequest",
    "Arm",
    "CardNote",
    "CardNotes",
    "GateRecord",
    "Gates",
    "Group",
    "GroupMember",
    "Groups",
    "MemberView",
    "ModelRef",
    "ModelVersion",
    "Policy",
    "RegisteredModel",
    "Registry",
    "Risk",
    "Risks",
    "RollbackOutcome",
    "Rollout",
    "Rollouts",
    "Traffic",
    "VersionInfo",
    "Waiver",
    "check_alias",
    "check_compatible",
    "check_name",
    "check_steps",
    "check_sticky",
    "default_steps",
    "learnable",
    "learnable_rows",
    "output_columns",
    "parse_card_markdown",
    "parse_group_weights",
    "parse_member",
    "parse_ref",
    "parse_weights",
    "referenced_versions",
    "register_snapshot",
    "require_writer",
    "section_title",
    "teach",
]
