"""Model groups: several models answering one business objective under one name.

A group names its members by alias (``churn@production``), so each member keeps its own
lifecycle: promoting or rolling back a member changes what the group answers, with no change
to the group. How the members' answers make one answer (``combine``):

- ``chain``: in order, each member's outputs feed the next. The next member's input is the
  request's columns plus every earlier member's outputs as columns named
  ``<member>_prediction`` and (classifiers) ``<member>_proba_<class>``; each member reads the
  columns its own schema names. A member after the first must use at least one output of
  the member before it, or the group is not a chain and is refused.
- ``mean``: the mean of the regressors' predictions, or of the classifiers' probabilities
  (every member with the same classes).
- ``weighted``: the same with ``weights``, one per member, positive (normalised to sum to 1).
- ``vote``: the majority label of classifiers (ties go to the earliest member's label).

Definitions are append-only rows in ``model_groups`` (the newest row of a name rules, a
deleting row ends the group); each change is audited (``group.created``, ``group.deleted``).
Defining a group needs a writer (not a viewer) but no approval: it runs versions that are
already at their aliases, each approved as its alias requires.

>>> groups = Groups(store)  # doctest: +SKIP
>>> groups.create("retention", ["churn@production", "value@production"], "chain",
...               actor="carol")  # doctest: +SKIP
"""

from __future__ import annotations

import builtins
import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from shipyard.audit import append_event
from shipyard.dataset import Schema
from shipyard.errors import AlreadyExists, InvalidInput, NotFound
from shipyard.names import NAME_RE
from shipyard.registry._queries import require_writer
from shipyard.registry._refs import check_alias, check_name
from shipyard.registry._registry import Registry
from shipyard.store import Store, tables
from shipyard.store.tables import utcnow

COMBINES = ("chain", "mean", "weighted", "vote")
_MAX_MEMBERS = 16


@dataclass(frozen=True)
class GroupMember:
    """One member of a group: a model followed through one of its aliases."""

    model: str
    alias: str

    def __str__(self) -> str:
        return f"{self.model}@{self.alias}"


@dataclass(frozen=True)
class Group:
    """A model group's definition (``revision`` counts the definitions of its name)."""

    name: str
    revision: int
    combine: str
    members: tuple[GroupMember, ...]
    weights: tuple[float, ...] | None
    created_at: datetime
    created_by: str
    description: str = ""

    def describe(self) -> str:
        """One line: ``chain of churn@production -> value@production``."""
        if self.combine == "chain":
            return "chain of " + " -> ".join(map(str, self.members))
        parts = [str(m) for m in self.members]
        if self.weights is not None:
            parts = [f"{p} x{w:g}" for p, w in zip(parts, self.weights, strict=True)]
        return f"{self.combine} of " + ", ".join(parts)


def output_columns(model: str, task: str, classes: list[Any] | None) -> list[str]:
    """The columns a chain member's outputs become for the members after it."""
    columns = [f"{model}_prediction"]
    if task == "classification" and classes:
        columns += [f"{model}_proba_{c}" for c in classes]
    return columns


def parse_member(text: str) -> GroupMember:
    """``churn@production`` (an alias is required: a group follows aliases, not versions)."""
    name, sep, alias = text.strip().partition("@")
    if not sep or not name or not alias:
        raise InvalidInput(
            f"Group member '{text[:80]}' must be MODEL@ALIAS (e.g. churn@production): a group "
            "follows its members' aliases, so promoting a member changes the group."
        )
    check_name(name)
    check_alias(alias)
    return GroupMember(name, alias)


def parse_group_weights(text: str) -> list[float]:
    """``"0.7,0.3"`` → ``[0.7, 0.3]``."""
    try:
        return [float(w) for w in text.split(",")]
    except ValueError:
        raise InvalidInput(
            f"Weights '{text[:80]}' must be numbers separated by commas, e.g. 0.7,0.3."
        ) from None


@dataclass(frozen=True)
class _MemberInfo:
    member: GroupMember
    version: int
    task: str
    classes: list[Any] | None
    schema: Schema


class Groups:
    """Model groups in one ``Store``: define, read, delete; every change audited."""

    def __init__(self, store: Store, registry: Registry | None = None) -> None:
        self.store = store
        self.registry = registry or Registry(store)

    # -- reading ---------------------------------------------------------------------------
    def get(self, name: str) -> Group:
        """The group ``name`` (``NotFound`` if there is none)."""
        row = None
        if NAME_RE.match(name):  # else no group can have it: no query (PostgreSQL refuses NUL)
            with self.store.read() as session:
                row = _newest(session, name)
        if row is None or row.deleted:
            raise NotFound(
                f"There is no model group '{name[:128]}'; see shipyard group list, or define "
                "it with shipyard group create."
            )
        return _entity(row)

    def list(self) -> builtins.list[Group]:
        """Every group in force, by name."""
        with self.store.read() as session:
            newest = (
                select(func.max(tables.ModelGroup.id)).group_by(tables.ModelGroup.name).subquery()
            )
            rows = session.scalars(
                select(tables.ModelGroup)
                .where(tables.ModelGroup.id.in_(select(newest)))
                .order_by(tables.ModelGroup.name)
            ).all()
        return [_entity(r) for r in rows if not r.deleted]

    def marker(self) -> int:
        """A value that moves whenever a group is defined or deleted (the newest row's id)."""
        with self.store.read() as session:
            return int(session.scalar(select(func.max(tables.ModelGroup.id))) or 0)

    # -- changing --------------------------------------------------------------------------
    def create(
        self,
        name: str,
        members: Sequence[str | GroupMember],
        combine: str,
        *,
        actor: str,
        weights: builtins.list[float] | None = None,
        description: str = "",
        replace: bool = False,
    ) -> Group:
        """Define the group ``name`` (``replace``: define it again, as a new revision).

        Checks now what would fail on a request: every member's model has a version at its
        alias, a chain's members use the outputs before them, an ensemble's members agree
        on their task and classes. Raises ``InvalidInput`` with one sentence otherwise.
        """
        check_name(name)
        parsed = [m if isinstance(m, GroupMember) else parse_member(m) for m in members]
        combine = _check_combine(combine)
        checked_weights = _check_weights(combine, weights, len(parsed))
        if not 1 <= len(parsed) <= _MAX_MEMBERS:
            raise InvalidInput(f"A group has 1 to {_MAX_MEMBERS} members; got {len(parsed)}.")
        if combine == "chain" and len(parsed) < 2:
            raise InvalidInput("A chain needs at least two members, each feeding the next.")
        if len({m.model for m in parsed}) != len(parsed):
            raise InvalidInput("Each model can be a member of a group once.")
        if any(m.model == name for m in parsed):
            raise InvalidInput(f"The group '{name}' cannot have a member of the same name.")
        infos = [self._member_info(m) for m in parsed]
        check_compatible(combine, infos_view(infos))
        with self.store.write() as session:
            require_writer(session, actor, "define a model group")
            if session.get(tables.Model, name) is not None:
                raise AlreadyExists(
                    f"'{name}' is a registered model; give the group another name, so one "
                    "endpoint never means two things."
                )
            current = _newest(session, name, lock=True)
            if current is not None and not current.deleted and not replace:
                raise AlreadyExists(
                    f"Model group '{name}' already exists; pass --replace to define it again."
                )
            revision = (current.revision if current is not None else 0) + 1
            row = tables.ModelGroup(
                name=name,
                revision=revision,
                combine=combine,
                members=[{"model": m.model, "alias": m.alias} for m in parsed],
                weights=checked_weights,
                deleted=False,
                created_at=utcnow(),
                created_by=actor,
                description=description.strip(),
            )
            session.add(row)
            append_event(
                session,
                actor=actor,
                action="group.created",
                subject=f"group:{name}",
                details={
                    "revision": revision,
                    "combine": combine,
                    "members": [str(m) for m in parsed],
                    "weights": checked_weights,
                    "versions": {i.member.model: i.version for i in infos},
                },
            )
            session.flush()
            return _entity(row)

    def delete(self, name: str, *, actor: str) -> Group:
        """End the group ``name`` (its members go on serving under their own names)."""
        with self.store.write() as session:
            require_writer(session, actor, "delete a model group")
            current = _newest(session, name, lock=True)
            if current is None or current.deleted:
                raise NotFound(f"There is no model group '{name[:128]}' to delete.")
            ended = _entity(current)
            session.add(
                tables.ModelGroup(
                    name=name,
                    revision=current.revision,
                    combine=current.combine,
                    members=current.members,
                    weights=current.weights,
                    deleted=True,
                    created_at=utcnow(),
                    created_by=actor,
                    description="",
                )
            )
            append_event(
                session,
                actor=actor,
                action="group.deleted",
                subject=f"group:{name}",
                details={"revision": current.revision},
            )
        return ended

    def _member_info(self, member: GroupMember) -> _MemberInfo:
        try:
            mv = self.registry.resolve(f"{member.model}@{member.alias}")
        except NotFound as exc:
            raise InvalidInput(f"Group member {member} cannot be resolved: {exc.message}") from exc
        manifest = self.registry.read_manifest(member.model, mv.version)
        return _MemberInfo(
            member,
            mv.version,
            manifest.task,
            manifest.classes,
            Schema.model_validate(manifest.input_schema),
        )


@dataclass(frozen=True)
class MemberView:
    """What the compatibility check reads of a member (registry or served model alike)."""

    model: str
    task: str
    classes: list[Any] | None
    inputs: list[str]


def infos_view(infos: list[_MemberInfo]) -> list[MemberView]:
    return [MemberView(i.member.model, i.task, i.classes, i.schema.names()) for i in infos]


def check_compatible(combine: str, members: list[MemberView]) -> None:
    """Raise ``InvalidInput`` when these members cannot be combined this way.

    Run at definition time on the versions the aliases point to, and again by a server on
    the versions it serves (a member promoted since may have another schema).
    """
    if combine == "chain":
        for before, member in itertools.pairwise(members):
            produced = output_columns(before.model, before.task, before.classes)
            if not set(produced) & set(member.inputs):
                raise InvalidInput(
                    f"{member.model} cannot follow {before.model} in a chain: its schema has "
                    f"none of {before.model}'s outputs ({', '.join(produced)}); train "
                    f"{member.model} with one of these columns, or combine with mean or vote."
                )
        return
    tasks = {m.task for m in members}
    if len(tasks) > 1:
        raise InvalidInput(
            f"Members of a {combine} group must all be classifiers or all regressors; "
            + ", ".join(f"{m.model} is a {_kind(m.task)}" for m in members)
            + "."
        )
    task = tasks.pop()
    if combine == "vote" and task != "classification":
        raise InvalidInput("A vote combines classifiers' labels; use mean for regressors.")
    if task == "classification":
        first = members[0]
        for m in members[1:]:
            if [str(c) for c in m.classes or []] != [str(c) for c in first.classes or []]:
                raise InvalidInput(
                    f"Members of a {combine} group must predict the same classes: "
                    f"{first.model} has {first.classes}, {m.model} has {m.classes}."
                )


def _kind(task: str) -> str:
    return "classifier" if task == "classification" else "regressor"


def _check_combine(combine: str) -> str:
    value = combine.strip().lower() if isinstance(combine, str) else ""
    if value not in COMBINES:
        raise InvalidInput(
            f"Unknown combine '{str(combine)[:40]}': use one of {', '.join(COMBINES)}."
        )
    return value


def _check_weights(combine: str, weights: list[float] | None, n: int) -> list[float] | None:
    if combine != "weighted":
        if weights is not None:
            raise InvalidInput(f"Weights are for --combine weighted, not {combine}.")
        return None
    if weights is None:
        raise InvalidInput("--combine weighted needs --weights, one per member (e.g. 0.7,0.3).")
    if len(weights) != n:
        raise InvalidInput(f"Got {len(weights)} weights for {n} members: give one per member.")
    if not all(isinstance(w, int | float) and math.isfinite(w) and w > 0 for w in weights):
        raise InvalidInput("Each weight must be a positive, finite number.")
    total = float(sum(weights))
    return [float(w) / total for w in weights]


def _newest(session: Session, name: str, *, lock: bool = False) -> tables.ModelGroup | None:
    query = (
        select(tables.ModelGroup)
        .where(tables.ModelGroup.name == name)
        .order_by(tables.ModelGroup.id.desc())
        .limit(1)
    )
    if lock:
        query = query.with_for_update()
    return session.scalars(query).first()


def _entity(row: tables.ModelGroup) -> Group:
    return Group(
        name=row.name,
        revision=row.revision,
        combine=row.combine,
        members=tuple(GroupMember(m["model"], m["alias"]) for m in row.members),
        weights=None if row.weights is None else tuple(float(w) for w in row.weights),
        created_at=row.created_at,
        created_by=row.created_by,
        description=row.description,
    )
