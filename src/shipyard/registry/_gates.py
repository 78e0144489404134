"""Gate records and waivers: what ``shipyard validate`` found, bound to an archive digest, and
the rule that promotions, canaries and splits honour it.

A version may take production traffic when its newest gate record (for its digest) passed, or
when every gate that failed there carries an approver's signed waiver. A model whose policy
says ``require_gates = false`` skips the rule; an admin may override it once with ``force`` and
a reason (audited as ``gates.overridden``).

>>> gates = Gates(store)  # doctest: +SKIP
>>> gates.latest("churn", 4).failed  # doctest: +SKIP
['fairness:sex']
>>> gates.waive("churn", 4, "fairness:sex", actor="bob", reason="...")  # doctest: +SKIP
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from shipyard.audit import append_event
from shipyard.auth import role_of
from shipyard.config import ModelPolicy, ProjectConfig
from shipyard.errors import AlreadyExists, InvalidInput, InvalidTransition, PermissionDenied
from shipyard.registry._entities import GateRecord, Waiver
from shipyard.registry._queries import (
    lock_model,
    model_row,
    require_second_approver,
    version_row,
)
from shipyard.store import Store, tables, to_entity
from shipyard.store.tables import utcnow


class Gates:
    """Gate records and waivers of one ``Store``; every write is audited."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def record(
        self,
        name: str,
        version: int,
        *,
        digest: str,
        passed: bool,
        failed: list[str],
        champion: int | None,
        data_source: str,
        report: dict[str, Any],
        actor: str,
        schema_changes: list[dict[str, Any]] | None = None,
    ) -> GateRecord:
        """Store one validation of ``name`` v``version`` (audited as ``version.validated``;
        ``schema_changes`` against the champion also as ``schema.changed``).

        Refused when the version's archive is no longer ``digest`` (it was judged on another).
        """
        with self.store.write() as session:
            lock_model(session, name, actor=actor)
            mv = version_row(session, name, version)
            if mv.digest != digest:
                raise InvalidTransition(
                    f"{name} v{version}'s archive changed while it was validated; validate again."
                )
            row = tables.GateRecord(
                model_name=name,
                version=version,
                digest=digest,
                champion=champion,
                passed=passed,
                failed=list(failed),
                data_source=data_source,
                report=report,
                created_at=utcnow(),
                created_by=actor,
            )
            session.add(row)
            session.flush()
            append_event(
                session,
                actor=actor,
                action="version.validated",
                subject=f"model:{name}/{version}",
                details={
                    "record": row.id,
                    "digest": digest,
                    "passed": passed,
                    "failed": list(failed),
                    "champion": champion,
                    "data": data_source,
                },
            )
            if schema_changes:
                append_event(
                    session,
                    actor=actor,
                    action="schema.changed",
                    subject=f"model:{name}/{version}",
                    details={"against": champion, "changes": schema_changes},
                )
            return to_entity(GateRecord, row)

    def latest(self, name: str, version: int) -> GateRecord | None:
        """The newest gate record of the version's current archive digest, or ``None``."""
        with self.store.read() as session:
            mv = version_row(session, name, version)
            row = _latest(session, mv)
            return to_entity(GateRecord, row) if row is not None else None

    def history(self, name: str, version: int | None = None) -> list[GateRecord]:
        """Every gate record of ``name`` (or of one version), newest first."""
        with self.store.read() as session:
            model_row(session, name)
            query = select(tables.GateRecord).where(tables.GateRecord.model_name == name)
            if version is not None:
                query = query.where(tables.GateRecord.version == version)
            rows = session.scalars(query.order_by(tables.GateRecord.id.desc()))
            return [to_entity(GateRecord, r) for r in rows]

    def waivers(self, name: str, version: int) -> list[Waiver]:
        """The waivers signed for the version's current digest, oldest first."""
        with self.store.read() as session:
            mv = version_row(session, name, version)
            return [to_entity(Waiver, w) for w in _waivers(session, mv)]

    def waive(self, name: str, version: int, gate: str, *, actor: str, reason: str) -> Waiver:
        """An approver (not the version's author) waives one failed gate, with a reason."""
        if not reason or not reason.strip():
            raise InvalidInput('A waiver needs a reason: pass --reason "...".')
        with self.store.write() as session:
            lock_model(session, name, actor=actor)
            mv = version_row(session, name, version)
            require_second_approver(session, mv, actor, "waive its gates")
            record = _latest(session, mv)
            if record is None:
                raise InvalidTransition(
                    f"{name} v{version} has no gate record to waive: run shipyard validate "
                    f"{name} {version} first."
                )
            if gate not in record.failed:
                failed = ", ".join(record.failed) or "none"
                raise InvalidInput(
                    f"Gate '{gate}' did not fail in {name} v{version}'s latest validation "
                    f"(failed: {failed}); only a failed gate can be waived."
                )
            if any(w.gate == gate for w in _waivers(session, mv)):
                raise AlreadyExists(f"Gate '{gate}' of {name} v{version} is already waived.")
            waiver = tables.Waiver(
                model_name=name,
                version=version,
                digest=mv.digest,
                gate=gate,
                approver=actor,
                reason=reason.strip(),
                created_at=utcnow(),
            )
            session.add(waiver)
            append_event(
                session,
                actor=actor,
                action="gate.waived",
                subject=f"model:{name}/{version}",
                details={"gate": gate, "digest": mv.digest, "record": record.id},
                reason=reason.strip(),
            )
            return to_entity(Waiver, waiver)


def model_policy(session: Session, name: str, project: ProjectConfig | None) -> ModelPolicy:
    """``name``'s policy: the project's ``[gates]``/``[models.NAME]`` over what ``shipyard
    models create`` recorded."""
    model = session.get(tables.Model, name)
    return (project or ProjectConfig()).policy(
        name,
        objective=model.objective if model is not None else "",
        accept=model.accept if model is not None else None,
    )


def require_gates(
    session: Session,
    mv: tables.ModelVersion,
    project: ProjectConfig | None,
    *,
    actor: str,
    what: str,
    force: str | None = None,
) -> None:
    """Refuse (``InvalidTransition``) to let ``mv`` take production traffic (``what``: "be
    promoted", "take a canary" ...) without a passing gate record, unless the policy waives
    the rule or an admin forces it with a reason (``force``, audited)."""
    if not model_policy(session, mv.model_name, project).require_gates:
        return
    name, version = mv.model_name, mv.version
    if force is not None:
        if not force.strip():
            raise InvalidInput('--force needs a reason: pass --reason "...".')
        role = role_of(session, actor)
        if role != "admin":
            raise PermissionDenied(
                f"'{actor}' ({role}) cannot override the gates: only admins can, with a reason."
            )
        append_event(
            session,
            actor=actor,
            action="gates.overridden",
            subject=f"model:{name}/{version}",
            details={"digest": mv.digest, "to": what, "failed": _unwaived(session, mv)},
            reason=force.strip(),
        )
        return
    record = _latest(session, mv)
    if record is None:
        raise InvalidTransition(
            f"{name} v{version} cannot {what}: it has no gate record for its archive. Run "
            f"shipyard validate {name} {version} (or set require_gates = false under "
            f"[models.{name}] in shipyard.toml)."
        )
    open_gates = _unwaived(session, mv)
    if open_gates:
        raise InvalidTransition(
            f"{name} v{version} cannot {what}: gate(s) {', '.join(open_gates)} failed in its "
            f"validation #{record.id}. See shipyard validate {name} {version} --show; an approver "
            f'may waive a gate with shipyard waive {name} {version} GATE --reason "...".'
        )


def _latest(session: Session, mv: tables.ModelVersion) -> tables.GateRecord | None:
    return session.scalar(
        select(tables.GateRecord)
        .where(
            tables.GateRecord.model_name == mv.model_name,
            tables.GateRecord.version == mv.version,
            tables.GateRecord.digest == mv.digest,
        )
        .order_by(tables.GateRecord.id.desc())
        .limit(1)
    )


def _waivers(session: Session, mv: tables.ModelVersion) -> list[tables.Waiver]:
    return list(
        session.scalars(
            select(tables.Waiver)
            .where(
                tables.Waiver.model_name == mv.model_name,
                tables.Waiver.version == mv.version,
                tables.Waiver.digest == mv.digest,
            )
            .order_by(tables.Waiver.id)
        )
    )


def _unwaived(session: Session, mv: tables.ModelVersion) -> list[str]:
    """The failed gates of the newest record without a waiver (all: no record)."""
    record = _latest(session, mv)
    if record is None:
        return ["(not validated)"]
    waived = {w.gate for w in _waivers(session, mv)}
    return [g for g in record.failed if g not in waived]
