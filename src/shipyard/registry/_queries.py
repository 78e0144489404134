"""Row helpers shared by ``Registry`` and ``Traffic``, run inside the caller's session.

They return the store's rows (for the caller to read or change in its transaction); the
public methods convert what they hand out into entities (``shipyard.registry._entities``).
"""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from shipyard.audit import append_event
from shipyard.auth import can_approve, role_of
from shipyard.errors import ApprovalRequired, InvalidTransition, NotFound, PermissionDenied
from shipyard.registry._refs import ModelRef
from shipyard.store.tables import Alias, Approval, Model, ModelVersion, utcnow


def no_model(session: Session, name: str) -> NotFound:
    """NotFound for an unknown model name, suggesting the registered names close to it."""
    import difflib

    names = list(session.scalars(select(Model.name)))
    close = difflib.get_close_matches(name, names, n=3)
    hint = (
        f"Did you mean {' or '.join(repr(c) for c in close)}?"
        if close
        else "'shipyard models' lists the registered ones."
    )
    return NotFound(f"There is no model '{name}'. {hint}")


def model_row(session: Session, name: str) -> Model:
    """The model's row; ``NotFound`` naming the command that lists models."""
    model = session.get(Model, name)
    if model is None:
        raise no_model(session, name)
    return model


def version_row(session: Session, name: str, version: int) -> ModelVersion:
    """The version's row; ``NotFound`` saying which versions exist."""
    model_row(session, name)
    mv = session.scalar(
        select(ModelVersion).where(ModelVersion.model_name == name, ModelVersion.version == version)
    )
    if mv is None:
        latest = session.scalar(
            select(func.max(ModelVersion.version)).where(ModelVersion.model_name == name)
        )
        hint = f"its versions are 1 to {latest}" if latest else "it has no versions yet"
        raise NotFound(f"Model '{name}' has no version {version}; {hint}.")
    return mv


def resolve_row(session: Session, ref: ModelRef) -> ModelVersion:
    """The row of the version ``ref`` points to (a number, or an alias's target)."""
    if ref.version is not None:
        return version_row(session, ref.name, ref.version)
    model_row(session, ref.name)
    alias = session.get(Alias, (ref.name, ref.alias))
    if alias is None:
        raise NotFound(
            f"Model '{ref.name}' has no '{ref.alias}' version yet. Promote one "
            f"(shipyard promote {ref.name} N --to {ref.alias}) or load a version number."
        )
    return version_row(session, ref.name, alias.version)


def lock_model(
    session: Session, name: str, *, actor: str | None = None, create_by: str | None = None
) -> Model:
    """Lock the model's row for the rest of the transaction (creating it if asked), after
    checking that ``actor`` (or ``create_by``) may change the registry (``require_writer``).

    Every write to a model's versions and aliases takes this lock first, so concurrent
    promotions of one model run one after the other and never interleave.
    """
    writer = actor if actor is not None else create_by
    if writer is not None:
        require_writer(session, writer)
    if create_by is not None:
        insert = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
        result = session.execute(
            insert(Model)
            .values(name=name, description="", tags={}, created_at=utcnow(), created_by=create_by)
            .on_conflict_do_nothing(index_elements=["name"])
            .returning(Model.name)
        )
        if result.first() is not None:  # we created it (not a concurrent writer)
            append_event(session, actor=create_by, action="model.created", subject=f"model:{name}")
    model = session.scalar(select(Model).where(Model.name == name).with_for_update())
    if model is None:
        raise no_model(session, name)
    return model


def require_writer(session: Session, actor: str, what: str = "change the registry") -> None:
    """Refuse (``PermissionDenied``) a change by a user with the ``viewer`` role: viewers
    only look. Every registry write runs it (through ``lock_model``), so the CLI, the web UI
    and scripts are refused alike."""
    role = role_of(session, actor)
    if role == "viewer":
        raise PermissionDenied(
            f"'{actor}' has the viewer role and cannot {what}: viewers only look. An admin "
            f"can grant more: shipyard users add {actor} --role scientist."
        )


def check_expected_alias(
    current: Alias | None, name: str, alias: str, expected: int | None
) -> None:
    """Refuse (``InvalidTransition``) a change made from a stale view: ``expected`` is the
    version ``alias`` pointed to when the caller looked (``0``: none; ``None``: not checked).
    Runs under the model's row lock, so a double submit is refused, never applied twice."""
    if expected is None:
        return
    now = current.version if current is not None else 0
    if now != expected:
        raise InvalidTransition(
            f"{name}@{alias} changed meanwhile: it is {_version_text(now)} now, not "
            f"{_version_text(expected)} as you saw; nothing was changed. Look again and decide."
        )


def _version_text(version: int) -> str:
    return f"v{version}" if version else "no version"


def require_second_approver(session: Session, mv: ModelVersion, actor: str, what: str) -> None:
    """Refuse (``PermissionDenied``) unless ``actor`` is an approver and not ``mv``'s author:
    the four-eyes rule of approvals and waivers (``what``: "approve it", ...)."""
    role = role_of(session, actor)
    if not can_approve(role):
        raise PermissionDenied(
            f"'{actor}' ({role}) cannot {what}: only users with the approver role can. "
            f"An admin can grant it: shipyard users add {actor} --role approver."
        )
    if mv.author == actor:
        raise PermissionDenied(
            f"'{actor}' is the author of {mv.model_name} v{mv.version} and cannot {what} "
            "(four eyes): ask another approver."
        )


def require_approval(session: Session, mv: ModelVersion) -> None:
    """Raise ``ApprovalRequired`` unless an approver other than the author approved ``mv``."""
    approvers = session.scalars(
        select(Approval.approver).where(
            Approval.model_name == mv.model_name,
            Approval.version == mv.version,
            Approval.approver != mv.author,
        )
    ).all()
    if not any(can_approve(role_of(session, a)) for a in approvers):
        raise ApprovalRequired(
            f"{mv.model_name} v{mv.version} needs an approval before it goes to production: an "
            f"approver other than its author ({mv.author}) must run "
            f"'shipyard approve {mv.model_name} {mv.version} --reason \"...\"'."
        )
