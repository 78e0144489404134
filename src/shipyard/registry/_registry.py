"""The model registry: named models, immutable numbered versions, aliases, approvals."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from shipyard.audit import append_event
from shipyard.config import ModelPolicy, ProjectConfig, parse_criterion
from shipyard.errors import (
    AlreadyExists,
    InvalidInput,
    InvalidTransition,
    NotFound,
)
from shipyard.packaging import (
    Archive,
    LoadedModel,
    Manifest,
    PreparedArchive,
    open_archive,
    read_manifest,
)
from shipyard.registry._entities import AliasChange, Approval, ModelVersion, RegisteredModel
from shipyard.registry._gates import model_policy, require_gates
from shipyard.registry._policy import active_policy, end_policy, referenced_versions
from shipyard.registry._queries import (
    check_expected_alias,
    lock_model,
    model_row,
    require_approval,
    require_second_approver,
    require_writer,
    resolve_row,
    version_row,
)
from shipyard.registry._refs import (
    PRODUCTION,
    STAGING,
    ModelRef,
    check_alias,
    check_name,
    parse_ref,
)
from shipyard.registry._requests import (
    ApprovalRequest,
    add_rejection,
    add_request,
    check_text,
    close_request,
)
from shipyard.registry._risks import acknowledge_risks
from shipyard.store import Store, tables, to_entity
from shipyard.store.tables import utcnow

STAGES = ("candidate", "staging", "production", "archived")


@dataclass(frozen=True)
class VersionInfo:
    """A version with its derived stage, aliases and approvals (for listings)."""

    version: ModelVersion
    stage: str
    aliases: tuple[str, ...]
    approvals: tuple[str, ...]


class Registry:
    """Models, versions, aliases and approvals in one ``Store``; every change is audited.

    >>> registry = Registry(store)  # doctest: +SKIP
    >>> registry.promote("churn", 3, actor="carol")  # doctest: +SKIP
    """

    def __init__(self, store: Store, project: ProjectConfig | None = None) -> None:
        self.store = store
        self.project = project
        self._loaded: dict[str, LoadedModel] = {}

    # -- reading ---------------------------------------------------------------------------
    def get_model(self, name: str) -> RegisteredModel:
        with self.store.read() as session:
            return to_entity(RegisteredModel, model_row(session, name))

    def list_models(
        self, *, search: str | None = None, tag: str | None = None
    ) -> list[RegisteredModel]:
        """Models whose name or description contains ``search``; ``tag`` is ``key`` or
        ``key=value``."""
        with self.store.read() as session:
            query = select(tables.Model).order_by(tables.Model.name)
            if search:
                pattern = f"%{search.lower()}%"
                query = query.where(
                    func.lower(tables.Model.name).like(pattern)
                    | func.lower(tables.Model.description).like(pattern)
                )
            models = [to_entity(RegisteredModel, m) for m in session.scalars(query)]
        if tag:
            key, _, value = tag.partition("=")
            models = [
                m for m in models if key in m.tags and (not value or str(m.tags[key]) == value)
            ]
        return models

    def policy(self, name: str) -> ModelPolicy:
        """``name``'s policy: shipyard.toml's ``[gates]`` and ``[models.NAME]`` (this
        registry's project) over the objective and criterion ``create_model`` recorded."""
        with self.store.read() as session:
            model_row(session, name)
            return model_policy(session, name, self.project)

    def create_model(
        self,
        name: str,
        *,
        actor: str,
        objective: str = "",
        accept: str | None = None,
        owner: str | None = None,
        team: str = "",
    ) -> RegisteredModel:
        """Record a model before its first version, with its business objective, acceptance
        criterion (``"roc_auc >= 0.80"``), owner and team; audited as ``model.created``."""
        check_name(name)
        if accept is not None:
            accept = str(parse_criterion(accept))
        owner, team = _check_detail("owner", owner), _check_detail("team", team) or ""
        with self.store.write() as session:
            if session.get(tables.Model, name) is not None:
                raise AlreadyExists(
                    f"Model '{name}' already exists; its objective and criterion are set with "
                    f"shipyard models set {name} --objective ... --accept ..."
                )
            model = lock_model(session, name, create_by=actor)
            model.objective, model.accept = objective.strip(), accept
            model.owner, model.team = owner, team
            append_event(
                session,
                actor=actor,
                action="model.created",
                subject=f"model:{name}",
                details={
                    "objective": model.objective,
                    "accept": accept,
                    "owner": owner,
                    "team": team,
                },
            )
            return to_entity(RegisteredModel, model)

    def set_details(
        self,
        name: str,
        *,
        actor: str,
        owner: str | None = None,
        team: str | None = None,
    ) -> RegisteredModel:
        """Change who answers for a model (``owner``) and its ``team`` (audited as
        ``model.details_set``); ``None`` leaves one as it is, ``""`` clears it.

        >>> registry.set_details("churn", actor="admin", team="retention")  # doctest: +SKIP
        """
        if owner is None and team is None:
            raise InvalidInput("Nothing to set: pass an owner and/or a team.")
        owner, team = _check_detail("owner", owner), _check_detail("team", team)
        with self.store.write() as session:
            model = lock_model(session, name, actor=actor)
            before = {"owner": model.owner, "team": model.team}
            if owner is not None:
                model.owner = owner or None
            if team is not None:
                model.team = team
            append_event(
                session,
                actor=actor,
                action="model.details_set",
                subject=f"model:{name}",
                details={"before": before, "after": {"owner": model.owner, "team": model.team}},
            )
            return to_entity(RegisteredModel, model)

    def set_objective(
        self,
        name: str,
        *,
        actor: str,
        objective: str | None = None,
        accept: str | None = None,
    ) -> RegisteredModel:
        """Change a model's recorded objective and/or acceptance criterion (audited)."""
        if accept is not None:
            accept = str(parse_criterion(accept))
        with self.store.write() as session:
            model = lock_model(session, name, actor=actor)
            before = {"objective": model.objective, "accept": model.accept}
            if objective is not None:
                model.objective = objective.strip()
            if accept is not None:
                model.accept = accept
            append_event(
                session,
                actor=actor,
                action="model.objective_set",
                subject=f"model:{name}",
                details={
                    "before": before,
                    "after": {"objective": model.objective, "accept": model.accept},
                },
            )
            return to_entity(RegisteredModel, model)

    def get_version(self, name: str, version: int) -> ModelVersion:
        with self.store.read() as session:
            return to_entity(ModelVersion, version_row(session, name, version))

    def resolve(self, ref: str | ModelRef, version: int | None = None) -> ModelVersion:
        """The version a reference points to (``churn@production``, ``churn:3``...)."""
        parsed = ref if isinstance(ref, ModelRef) else parse_ref(ref, version)
        with self.store.read() as session:
            return to_entity(ModelVersion, resolve_row(session, parsed))

    def versions(self, name: str) -> list[VersionInfo]:
        """Every version of ``name``, newest first, with stage, aliases and approvers."""
        with self.store.read() as session:
            model_row(session, name)
            versions = [
                to_entity(ModelVersion, row)
                for row in session.scalars(
                    select(tables.ModelVersion)
                    .where(tables.ModelVersion.model_name == name)
                    .order_by(tables.ModelVersion.version.desc())
                )
            ]
            aliases = session.scalars(
                select(tables.Alias).where(tables.Alias.model_name == name)
            ).all()
            approvals = session.scalars(
                select(tables.Approval).where(tables.Approval.model_name == name)
            ).all()
            ever_prod = set(
                session.scalars(
                    select(tables.AliasChange.version).where(
                        tables.AliasChange.model_name == name,
                        tables.AliasChange.alias == PRODUCTION,
                    )
                )
            )
        by_version: dict[int, list[str]] = {}
        for a in aliases:
            by_version.setdefault(a.version, []).append(a.alias)
        approved: dict[int, list[str]] = {}
        for ap in approvals:
            approved.setdefault(ap.version, []).append(ap.approver)
        out = []
        for v in versions:
            names = tuple(sorted(by_version.get(v.version, [])))
            out.append(
                VersionInfo(
                    v,
                    _stage(v, names, v.version in ever_prod),
                    names,
                    tuple(approved.get(v.version, [])),
                )
            )
        return out

    def approvals(self, name: str, version: int | None = None) -> list[Approval]:
        """The approvals of ``name`` (or of one version), oldest first, with their reasons."""
        with self.store.read() as session:
            model_row(session, name)
            query = select(tables.Approval).where(tables.Approval.model_name == name)
            if version is not None:
                query = query.where(tables.Approval.version == version)
            rows = session.scalars(query.order_by(tables.Approval.created_at))
            return [to_entity(Approval, r) for r in rows]

    def stage(self, name: str, version: int) -> str:
        for info in self.versions(name):
            if info.version.version == version:
                return info.stage
        raise NotFound(f"Model '{name}' has no version {version}.")

    def aliases(self, name: str) -> dict[str, int]:
        with self.store.read() as session:
            model_row(session, name)
            rows = session.scalars(select(tables.Alias).where(tables.Alias.model_name == name))
            return {a.alias: a.version for a in rows}

    def models_with_alias(self, alias: str) -> list[str]:
        """The names of the models that have ``alias`` (e.g. what a server serves), sorted."""
        with self.store.read() as session:
            names = session.scalars(
                select(tables.Alias.model_name).where(tables.Alias.alias == alias)
            ).all()
        return sorted(set(names))

    def change_marker(self) -> tuple[int, int, int]:
        """A value that changes whenever any model's alias moves, a traffic policy changes
        or a model group is defined or deleted.

        The ids of the newest alias change, policy row and group row: three index lookups,
        cheap enough for a server to poll every half second (``shipyard.serving``'s pool).
        """
        with self.store.read() as session:
            return (
                int(session.scalar(select(func.max(tables.AliasChange.id))) or 0),
                int(session.scalar(select(func.max(tables.TrafficPolicy.id))) or 0),
                int(session.scalar(select(func.max(tables.ModelGroup.id))) or 0),
            )

    def alias_history(self, name: str, alias: str = PRODUCTION) -> list[AliasChange]:
        """Every move of ``alias`` of ``name``, oldest first."""
        with self.store.read() as session:
            rows = session.scalars(
                select(tables.AliasChange)
                .where(tables.AliasChange.model_name == name, tables.AliasChange.alias == alias)
                .order_by(tables.AliasChange.id)
            )
            return [to_entity(AliasChange, r) for r in rows]

    def rollback_target(self, name: str, alias: str = PRODUCTION) -> int | None:
        """The version ``rollback`` would point ``alias`` to now (``None``: nothing earlier)."""
        with self.store.read() as session:
            model_row(session, name)
            stack = _alias_stack(session, name, alias)
        return stack[-2] if len(stack) >= 2 else None

    # -- loading ---------------------------------------------------------------------------
    def open_archive(self, ref: str | ModelRef, version: int | None = None) -> Archive:
        """A version's archive, verified against the registry's digest, with nothing unpickled:
        its manifest, input schema and reference profile, for work that never calls the model
        (input and output monitoring). ``load`` unpickles the model too.

        >>> registry.open_archive("churn@production").schema  # doctest: +SKIP
        """
        mv = self.resolve(ref, version)
        cached = self._loaded.get(mv.digest)
        return cached.archive if cached is not None else self._open(mv)

    def read_manifest(self, name: str, version: int) -> Manifest:
        """A version's archive manifest (members and their sha256, metrics, lineage, ONNX
        parity), reading only the zip's directory and ``manifest.json``: cheap enough for
        every page view. Not verified against the digest (``open_archive`` is)."""
        mv = self.get_version(name, version)
        cached = self._loaded.get(mv.digest)
        if cached is not None:
            return cached.archive.manifest
        with self.store.artifacts.open_read(mv.archive_key) as fh:
            return read_manifest(fh, label=f"{name} v{version}")

    def load(self, ref: str | ModelRef, version: int | None = None) -> LoadedModel:
        """Load a version after verifying its archive against the registry's digest.

        Loaded models are cached by digest, so re-loading ``churn@production`` costs one query.
        """
        mv = self.resolve(ref, version)
        cached = self._loaded.get(mv.digest)
        if cached is not None:
            return cached
        loaded = LoadedModel(self._open(mv))
        loaded.model  # noqa: B018 - unpickle now, after verification, not on first predict
        self._loaded[mv.digest] = loaded
        return loaded

    def _open(self, mv: ModelVersion) -> Archive:
        """The verified archive of ``mv``; a deleted archive of an archived version says so."""
        try:
            data = self.store.artifacts.get(mv.archive_key)
        except NotFound as exc:
            if mv.archived_at is None:
                raise
            raise NotFound(
                f"{mv.model_name} v{mv.version} is archived and its archive file was deleted "
                f"(by 'shipyard gc --archived-artifacts'; see audit events "
                f"'version.artifacts_deleted'). Register the model again to use it."
            ) from exc
        return open_archive(data, expected_digest=mv.digest, label=f"{mv.model_name} v{mv.version}")

    # -- writing ---------------------------------------------------------------------------
    def register(
        self,
        prepared: PreparedArchive,
        *,
        name: str,
        actor: str,
        description: str = "",
        tags: dict[str, Any] | None = None,
    ) -> ModelVersion:
        """Number, store and record a prepared archive as the next version of ``name``.

        The archive is written before the transaction commits and deleted if it fails, so a
        failed registration leaves neither rows nor orphan files.
        """
        check_name(name)
        tags = _json_tags(tags)
        key: str | None = None
        try:
            with self.store.write() as session:
                model = lock_model(session, name, create_by=actor)
                number = (
                    session.scalar(
                        select(func.max(tables.ModelVersion.version)).where(
                            tables.ModelVersion.model_name == model.name
                        )
                    )
                    or 0
                ) + 1
                created = utcnow()
                data = prepared.build(name=name, version=number, author=actor, created_at=created)
                key = f"models/{name}/{number}-{uuid.uuid4().hex[:12]}.zip"
                # a fresh key: never overwrite, even if another writer picked the same one
                digest = self.store.artifacts.put(key, data, if_absent=True)
                mv = tables.ModelVersion(
                    model_name=name,
                    version=number,
                    author=actor,
                    created_at=created,
                    run_id=prepared.lineage.run_id,
                    flavor=prepared.flavor,
                    task=prepared.task,
                    archive_key=key,
                    digest=digest,
                    size=len(data),
                    metrics=prepared.metrics,
                    tags=dict(tags or {}),
                    description=description,
                )
                session.add(mv)
                append_event(
                    session,
                    actor=actor,
                    action="version.registered",
                    subject=f"model:{name}/{number}",
                    details={
                        "digest": digest,
                        "run_id": prepared.lineage.run_id,
                        "flavor": prepared.flavor,
                        "metrics": prepared.metrics,
                    },
                )
        except BaseException:
            if key is not None:
                self.store.artifacts.delete(key)
            raise
        return to_entity(ModelVersion, mv)

    def approve(
        self,
        name: str,
        version: int,
        *,
        actor: str,
        reason: str,
        acknowledge: Iterable[int] = (),
    ) -> Approval:
        """Record ``actor``'s approval of a version (four eyes: never its author).

        Refused while an open high risk of the version (``Risks``) is not among the risk ids
        the approver ``acknowledge``s; each acknowledgement is stored and audited.
        """
        if not reason or not reason.strip():
            raise InvalidInput('An approval needs a reason: pass --reason "...".')
        with self.store.write() as session:
            lock_model(session, name, actor=actor)
            mv = version_row(session, name, version)
            require_second_approver(session, mv, actor, "approve it")
            exists = session.scalar(
                select(tables.Approval).where(
                    tables.Approval.model_name == name,
                    tables.Approval.version == version,
                    tables.Approval.approver == actor,
                )
            )
            if exists is not None:
                raise AlreadyExists(f"'{actor}' has already approved {name} v{version}.")
            acknowledged = acknowledge_risks(session, mv, actor, acknowledge)
            approval = tables.Approval(
                model_name=name,
                version=version,
                approver=actor,
                reason=reason.strip(),
                created_at=utcnow(),
            )
            session.add(approval)
            request = close_request(session, mv, "approved", actor, reason.strip())
            append_event(
                session,
                actor=actor,
                action="version.approved",
                subject=f"model:{name}/{version}",
                details={
                    "author": mv.author,
                    "acknowledged_risks": acknowledged,
                    **({"request": request.id} if request is not None else {}),
                },
                reason=reason.strip(),
            )
        return to_entity(Approval, approval)

    def request_approval(
        self, name: str, version: int, *, actor: str, comment: str = ""
    ) -> ApprovalRequest:
        """Ask the approvers to review a version, with a comment for them (audited as
        ``version.approval_requested``). Refused for an archived or already approved
        version, and while a request of it is open."""
        comment = check_text(comment, "an approval request", required=False)
        with self.store.write() as session:
            lock_model(session, name, actor=actor)
            mv = version_row(session, name, version)
            return to_entity(ApprovalRequest, add_request(session, mv, actor, comment))

    def reject(self, name: str, version: int, *, actor: str, reason: str) -> ApprovalRequest:
        """Reject a version, with a reason (an approver who is not its author: four eyes);
        closes its open request as ``rejected`` (audited as ``version.rejected``). Its
        approvals, if any, stay: a rejection records a review, it revokes nothing."""
        reason = check_text(reason, "A rejection", required=True)
        with self.store.write() as session:
            lock_model(session, name, actor=actor)
            mv = version_row(session, name, version)
            require_second_approver(session, mv, actor, "reject it")
            if mv.archived_at is not None:
                raise InvalidTransition(f"{name} v{version} is archived already.")
            return to_entity(ApprovalRequest, add_rejection(session, mv, actor, reason))

    def approval_requests(
        self, name: str | None = None, *, version: int | None = None, status: str | None = None
    ) -> list[ApprovalRequest]:
        """Approval requests, newest first: of one model (and version) or all, of one
        ``status`` (``open``, ``approved``, ``rejected``, ``withdrawn``) or any."""
        query = select(tables.ApprovalRequest).order_by(tables.ApprovalRequest.id.desc())
        if name is not None:
            query = query.where(tables.ApprovalRequest.model_name == name)
        if version is not None:
            query = query.where(tables.ApprovalRequest.version == version)
        if status is not None:
            query = query.where(tables.ApprovalRequest.status == status)
        with self.store.read() as session:
            if name is not None:
                model_row(session, name)
            return [to_entity(ApprovalRequest, r) for r in session.scalars(query)]

    def promote(
        self,
        name: str,
        version: int,
        *,
        actor: str,
        to: str = PRODUCTION,
        reason: str = "",
        force: bool = False,
        expected_version: int | None = None,
    ) -> AliasChange:
        """Point alias ``to`` at a version; production needs a four-eyes approval and a
        passing gate record first (``force``: an admin overrides the gates, with ``reason``).

        ``expected_version`` is the version ``to`` pointed to when the caller looked (``0``:
        none): a different one now refuses the promotion (``InvalidTransition``)."""
        check_alias(to)
        with self.store.write() as session:
            change = self._promote(
                session,
                name,
                version,
                actor=actor,
                to=to,
                reason=reason,
                force=force,
                expected_version=expected_version,
            )
        return to_entity(AliasChange, change)

    def _promote(
        self,
        session: Session,
        name: str,
        version: int,
        *,
        actor: str,
        to: str,
        reason: str,
        force: bool = False,
        expected_version: int | None = None,
    ) -> tables.AliasChange:
        """``promote`` in the caller's write transaction (``Rollouts`` ends its rollout in the
        one that promotes); ``to`` is checked already."""
        lock_model(session, name, actor=actor)
        current = session.get(tables.Alias, (name, to))
        check_expected_alias(current, name, to, expected_version)
        mv = version_row(session, name, version)
        if mv.archived_at is not None:
            raise InvalidTransition(
                f"{name} v{version} is archived and cannot be promoted; register it again."
            )
        if to == PRODUCTION:
            require_approval(session, mv)
            require_gates(
                session,
                mv,
                self.project,
                actor=actor,
                what="be promoted to production",
                force=reason if force else None,
            )
        if current is not None and current.version == version:
            raise InvalidTransition(f"{name} v{version} is already {to}.")
        change = _move_alias(session, name, to, version, current, actor, "set", reason)
        append_event(
            session,
            actor=actor,
            action="version.promoted",
            subject=f"model:{name}/{version}",
            details={"alias": to, "previous": change.previous_version},
            reason=reason,
        )
        if to == PRODUCTION:  # a full promotion ends a canary or split (audited)
            end_policy(
                session,
                name,
                actor=actor,
                cause=f"promotion of v{version}",
                reason=reason,
                keep_shadow=True,
                promoted=version,
            )
        return change

    def rollback(
        self,
        name: str,
        *,
        actor: str,
        alias: str = PRODUCTION,
        reason: str = "",
        expected_version: int | None = None,
    ) -> AliasChange:
        """Re-point ``alias`` to the version it pointed to before the current one.

        Alias history is replayed as a stack (a promotion pushes, a rollback pops), so
        successive rollbacks walk back through earlier production versions.
        ``expected_version``: as for ``promote`` (a stale view is refused).
        """
        check_alias(alias)
        with self.store.write() as session:
            lock_model(session, name, actor=actor)
            current = session.get(tables.Alias, (name, alias))
            check_expected_alias(current, name, alias, expected_version)
            if current is None:
                raise InvalidTransition(f"{name} has no {alias} version to roll back from.")
            if alias == PRODUCTION:
                policy = active_policy(session, name)
                if policy is not None and policy.answering:
                    raise InvalidTransition(
                        f"{name} has a {policy.kind} in force ({policy.describe()}); end it "
                        f"first (shipyard rollback {name} ends it, production stays "
                        f"v{current.version})."
                    )
            stack = _alias_stack(session, name, alias)
            if len(stack) < 2:
                raise InvalidTransition(
                    f"{name}@{alias} has no earlier version to roll back to "
                    f"(v{current.version} is the first one)."
                )
            target, from_version = stack[-2], current.version
            change = _move_alias(session, name, alias, target, current, actor, "rollback", reason)
            append_event(
                session,
                actor=actor,
                action="version.rolled_back",
                subject=f"model:{name}/{target}",
                details={"alias": alias, "from": from_version, "to": target},
                reason=reason,
            )
        return to_entity(AliasChange, change)

    def archive(self, name: str, version: int, *, actor: str, reason: str = "") -> ModelVersion:
        """Retire a version: it can no longer be promoted. Refused while an alias points to it."""
        with self.store.write() as session:
            lock_model(session, name, actor=actor)
            mv = version_row(session, name, version)
            if mv.archived_at is not None:
                raise InvalidTransition(f"{name} v{version} is already archived.")
            pointing = session.scalars(
                select(tables.Alias.alias).where(
                    tables.Alias.model_name == name, tables.Alias.version == version
                )
            ).all()
            if pointing:
                raise InvalidTransition(
                    f"{name} v{version} is still {', '.join(pointing)}; promote another version "
                    "first."
                )
            if version in referenced_versions(session, name):
                raise InvalidTransition(
                    f"{name} v{version} takes part in the traffic policy in force; end it "
                    f"first (shipyard traffic clear {name})."
                )
            mv.archived_at = utcnow()
            append_event(
                session,
                actor=actor,
                action="version.archived",
                subject=f"model:{name}/{version}",
                reason=reason,
            )
        return to_entity(ModelVersion, mv)

    def set_tags(
        self, name: str, tags: dict[str, Any], *, actor: str, version: int | None = None
    ) -> None:
        """Merge ``tags`` into a model's (or a version's) tags; a ``None`` value removes one."""
        with self.store.write() as session:
            target: tables.Model | tables.ModelVersion
            if version is None:
                target = lock_model(session, name, actor=actor)
            else:
                require_writer(session, actor)
                target = version_row(session, name, version)
            merged = {**target.tags, **_json_tags(tags)}
            target.tags = {k: v for k, v in merged.items() if v is not None}
            subject = f"model:{name}" + (f"/{version}" if version is not None else "")
            append_event(session, actor=actor, action="tags.set", subject=subject, details=tags)


def _check_detail(what: str, value: str | None) -> str | None:
    """An owner or team name, stripped: at most 128 printable characters."""
    if value is None:
        return None
    value = value.strip()
    if len(value) > 128 or any(ord(c) < 32 for c in value):
        raise InvalidInput(
            f"The {what} must be a name of at most 128 printable characters. Got {value[:40]!r}."
        )
    return value


def _json_tags(tags: dict[str, Any] | None) -> dict[str, Any]:
    import json

    try:
        return dict(json.loads(json.dumps(dict(tags or {}))))
    except (TypeError, ValueError) as exc:
        raise InvalidInput(
            f"tags must map names to JSON values (str, number, bool): {exc}."
        ) from exc


def _stage(v: ModelVersion, aliases: tuple[str, ...], was_production: bool) -> str:
    if PRODUCTION in aliases:
        return "production"
    if STAGING in aliases:
        return "staging"
    if v.archived_at is not None or was_production:
        return "archived"
    return "candidate"


def _move_alias(
    session: Session,
    name: str,
    alias: str,
    version: int,
    current: tables.Alias | None,
    actor: str,
    action: str,
    reason: str,
) -> tables.AliasChange:
    now = utcnow()
    previous = current.version if current is not None else None
    if current is None:
        session.add(
            tables.Alias(
                model_name=name, alias=alias, version=version, updated_at=now, updated_by=actor
            )
        )
    else:
        current.version, current.updated_at, current.updated_by = version, now, actor
    change = tables.AliasChange(
        model_name=name,
        alias=alias,
        version=version,
        previous_version=previous,
        action=action,
        at=now,
        by=actor,
        reason=reason,
    )
    session.add(change)
    return change


def _alias_stack(session: Session, name: str, alias: str) -> list[int]:
    stack: list[int] = []
    changes = session.scalars(
        select(tables.AliasChange)
        .where(tables.AliasChange.model_name == name, tables.AliasChange.alias == alias)
        .order_by(tables.AliasChange.id)
    )
    for change in changes:
        if change.action == "set" and change.version is not None:
            stack.append(change.version)
        elif change.action == "rollback" and stack:
            stack.pop()
        elif change.action == "remove":
            stack.clear()
    return stack
