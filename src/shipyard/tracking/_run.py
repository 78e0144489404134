"""Runs: one training attempt with its params, metrics, artifacts, datasets and environment."""

from __future__ import annotations

import math
import numbers
import uuid
from collections.abc import Mapping, Sequence
from contextvars import ContextVar, Token
from datetime import datetime
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

import pandas as pd
from sqlalchemy import select

from shipyard.audit import append_event
from shipyard.dataset import Fingerprint, fingerprint
from shipyard.errors import InvalidInput, InvalidTransition, NotFound
from shipyard.packaging import environment, git_state
from shipyard.store import Store, tables, to_entity
from shipyard.store.tables import utcnow
from shipyard.tracking._entities import Run, RunArtifact, RunDataset

if TYPE_CHECKING:
    from shipyard.registry import ModelVersion

#: The run of the innermost ``with start_run(...)`` block (the one piece of implicit state).
_active: ContextVar[ActiveRun | None] = ContextVar("shipyard_active_run", default=None)


def active_run() -> ActiveRun | None:
    """The run of the innermost ``with`` block in this context, if any."""
    return _active.get()


class ActiveRun:
    """A run being recorded. Use as a context manager: it ends ``finished``, or ``failed``
    with the exception's message if the block raises.

    >>> with Tracker(store).start_run(model="churn", params={"C": 1.0}) as run:  # doctest: +SKIP
    ...     run.log_metric("auc", 0.91)
    """

    def __init__(self, store: Store, row: tables.Run) -> None:
        self.store = store
        self.id = row.id
        self.model = row.model_name
        self.user = row.user
        self.git = row.git
        self._token: Token[ActiveRun | None] | None = None
        self._ended = False

    # -- context manager -------------------------------------------------------------------
    def __enter__(self) -> ActiveRun:
        self._token = _active.set(self)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._token is not None:
            _active.reset(self._token)
        if not self._ended:
            if exc is None:
                self.end("finished")
            else:
                self.end("failed", error=f"{type(exc).__name__}: {exc}")

    # -- logging ---------------------------------------------------------------------------
    def log_params(self, params: Mapping[str, Any]) -> None:
        """Merge ``params`` (JSON-serialisable values) into the run's parameters."""
        clean = _json_params(params)
        with self.store.write() as session:
            row = self._row(session)
            row.params = {**row.params, **clean}

    def log_param(self, key: str, value: Any) -> None:
        self.log_params({key: value})

    def log_metric(self, key: str, value: float, *, step: int = 0) -> None:
        self.log_metrics({key: value}, step=step)

    def log_metrics(self, metrics: Mapping[str, float], *, step: int = 0) -> None:
        """Record metric values at ``step`` (a metric logged at several steps is a series)."""
        rows: list[tuple[str, float]] = []
        for key, value in metrics.items():
            if not isinstance(value, numbers.Real) or isinstance(value, bool):
                raise InvalidInput(f"Metric '{key}' must be a number; got {type(value).__name__}.")
            if not isinstance(step, int) or step < 0:
                raise InvalidInput(f"A metric step must be an int >= 0; got {step!r}.")
            rows.append((key, float(value)))
        with self.store.write() as session:
            self._row(session)
            now = utcnow()
            for key, value in rows:
                session.add(
                    tables.RunMetric(run_id=self.id, key=key, value=value, step=step, logged_at=now)
                )

    def log_artifact(self, path: str | Path, *, name: str | None = None) -> str:
        """Copy a local file into the artifact store under this run; returns its digest."""
        source = Path(path)
        if not source.is_file():
            raise InvalidInput(f"Cannot log artifact '{source}': no such file.")
        data = source.read_bytes()
        rel = name or source.name
        key = f"runs/{self.id}/{rel}"
        digest = self.store.artifacts.put(key, data)
        try:
            with self.store.write() as session:
                self._row(session)
                session.add(
                    tables.RunArtifact(
                        run_id=self.id, path=rel, key=key, sha256=digest, size=len(data)
                    )
                )
        except BaseException:
            self.store.artifacts.delete(key)
            raise
        return digest

    def log_dataset(self, name: str, df: pd.DataFrame, *, target: str | None = None) -> Fingerprint:
        """Record a dataset's fingerprint: content hash, schema, row count and profile."""
        fp = fingerprint(df, name=name, target=target)
        self._save_fingerprint(fp)
        return fp

    def _save_fingerprint(self, fp: Fingerprint) -> None:
        with self.store.write() as session:
            self._row(session)
            existing = session.scalar(
                select(tables.Dataset).where(
                    tables.Dataset.run_id == self.id, tables.Dataset.name == fp.name
                )
            )
            if existing is not None:
                raise InvalidInput(
                    f"Run {self.id} already has a dataset named '{fp.name}'; use another name."
                )
            session.add(_dataset_row(self.id, fp, utcnow()))

    def datasets(self) -> list[dict[str, Any]]:
        """Name, hash and size of every dataset logged on this run (for lineage)."""
        with self.store.read() as session:
            rows = session.scalars(
                select(tables.Dataset).where(tables.Dataset.run_id == self.id)
            ).all()
            return [
                {"name": d.name, "content_hash": d.content_hash, "n_rows": d.n_rows} for d in rows
            ]

    def register(
        self,
        model: Any,
        *,
        X_train: Any,
        y_train: Any = None,
        X_eval: Any = None,
        y_eval: Any = None,
        name: str | None = None,
        description: str = "",
        tags: dict[str, Any] | None = None,
        onnx: bool = True,
        code_paths: Sequence[str | Path] = (),
        load_check: bool = True,
    ) -> ModelVersion:
        """Package ``model`` as the next version of ``name`` (default: the run's model),
        with this run's lineage. ``X_train`` is fingerprinted as dataset ``train`` unless a
        dataset of that name was logged already. The model's own modules travel in the
        archive (``code_paths`` adds files or package folders); ``load_check=False`` skips
        loading it in a fresh process first (see ``prepare_archive``)."""
        from shipyard.packaging import Lineage, as_frame, prepare_archive
        from shipyard.registry import Registry

        model_name = name or self.model
        if model_name is None:
            raise InvalidInput(
                "Name the model: start_run(model='churn') or run.register(..., name='churn')."
            )
        names = {d["name"] for d in self.datasets()}
        if "train" not in names:
            frame, _ = as_frame(X_train, what="X_train")
            if y_train is not None and len(y_train) == len(frame):
                frame = frame.assign(__target__=pd.Series(list(y_train), index=frame.index))
                self.log_dataset("train", frame, target="__target__")
            else:
                self.log_dataset("train", frame)
        prepared = prepare_archive(
            model,
            X_train=X_train,
            y_train=y_train,
            X_eval=X_eval,
            y_eval=y_eval,
            lineage=Lineage(run_id=self.id, git=self.git, datasets=self.datasets()),
            onnx=onnx,
            code_paths=code_paths,
            load_check=load_check,
        )
        return Registry(self.store).register(
            prepared, name=model_name, actor=self.user, description=description, tags=tags
        )

    # -- ending ----------------------------------------------------------------------------
    def end(self, status: str = "finished", *, error: str | None = None) -> None:
        if status not in ("finished", "failed", "killed"):
            raise InvalidInput(f"Unknown run status '{status}': use finished, failed or killed.")
        with self.store.write() as session:
            row = self._row(session)
            if row.status != "running":
                raise InvalidTransition(f"Run {self.id} has already ended ({row.status}).")
            row.status, row.ended_at, row.error = status, utcnow(), error
            append_event(
                session,
                actor=self.user,
                action=f"run.{status}",
                subject=f"run:{self.id}",
                details={"model": self.model, "error": error},
            )
        self._ended = True

    def _row(self, session: Any) -> tables.Run:
        row: tables.Run | None = session.get(tables.Run, self.id)
        if row is None:
            raise NotFound(f"Run {self.id} no longer exists.")
        return row


class Tracker:
    """Creates and reads runs in one ``Store``."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def start_run(
        self,
        *,
        model: str | None = None,
        params: Mapping[str, Any] | None = None,
        user: str,
        git_path: str | Path | None = None,
    ) -> ActiveRun:
        """Start recording a run (status ``running``) and capture git state and environment."""
        if model is not None:
            from shipyard.registry import check_name

            check_name(model)
        clean = _json_params(params or {})
        row = tables.Run(
            id=uuid.uuid4().hex,
            model_name=model,
            status="running",
            user=user,
            started_at=utcnow(),
            ended_at=None,
            params=clean,
            git=git_state(Path(git_path) if git_path else None),
            environment=environment(),
            error=None,
        )
        with self.store.write() as session:
            session.add(row)
            append_event(
                session,
                actor=user,
                action="run.started",
                subject=f"run:{row.id}",
                details={"model": model, "commit": row.git.get("commit")},
            )
        return ActiveRun(self.store, row)

    def import_run(
        self,
        *,
        model: str | None,
        user: str,
        params: Mapping[str, Any],
        metrics: Mapping[str, Sequence[tuple[int, float]]],
        started_at: datetime,
        ended_at: datetime | None,
        status: str = "finished",
        git: Mapping[str, Any] | None = None,
        source: Mapping[str, Any],
        datasets: Sequence[Fingerprint] = (),
    ) -> Run:
        """Record a run made elsewhere (e.g. an MLflow run), as it was: its params, metric
        series, times and git state, with ``source`` (where it came from) kept in its
        environment. One transaction, audited as ``run.imported``.

        >>> tracker.import_run(model="churn", user="alice", params={"C": 1}, ...)  # doctest: +SKIP
        """
        if model is not None:
            from shipyard.registry import check_name

            check_name(model)
        if status not in ("finished", "failed", "killed"):
            raise InvalidInput(f"Unknown run status '{status}': use finished, failed or killed.")
        row = tables.Run(
            id=uuid.uuid4().hex,
            model_name=model,
            status=status,
            user=user,
            started_at=started_at,
            ended_at=ended_at,
            params=_json_params(params),
            git=dict(git or {}),
            environment={"imported_from": dict(source)},
            error=None,
        )
        with self.store.write() as session:
            session.add(row)
            session.flush()
            now = utcnow()
            for key, series in metrics.items():
                for step, value in series:
                    session.add(
                        tables.RunMetric(
                            run_id=row.id, key=key, value=float(value), step=step, logged_at=now
                        )
                    )
            session.add_all(_dataset_row(row.id, fp, now) for fp in datasets)
            append_event(
                session,
                actor=user,
                action="run.imported",
                subject=f"run:{row.id}",
                details={"model": model, "source": dict(source)},
            )
            return to_entity(Run, row)

    def get(self, run_id: str) -> Run:
        with self.store.read() as session:
            row = session.get(tables.Run, run_id)
            if row is None:
                raise NotFound(f"There is no run '{run_id}'. 'shipyard runs' lists them.")
            return to_entity(Run, row)

    def list_runs(self, *, model: str | None = None, limit: int = 50) -> list[Run]:
        """The newest runs first (of ``model`` only, if given)."""
        with self.store.read() as session:
            query = select(tables.Run).order_by(tables.Run.started_at.desc()).limit(limit)
            if model:
                query = query.where(tables.Run.model_name == model)
            return [to_entity(Run, r) for r in session.scalars(query)]

    def metrics(self, run_id: str) -> dict[str, list[tuple[int, float]]]:
        """Each metric's ``(step, value)`` series, in logging order."""
        with self.store.read() as session:
            rows = session.scalars(
                select(tables.RunMetric)
                .where(tables.RunMetric.run_id == run_id)
                .order_by(tables.RunMetric.id)
            ).all()
        out: dict[str, list[tuple[int, float]]] = {}
        for r in rows:
            out.setdefault(r.key, []).append((r.step, r.value))
        return out

    def datasets(self, run_id: str) -> list[RunDataset]:
        """The datasets logged on run ``run_id``."""
        with self.store.read() as session:
            rows = session.scalars(select(tables.Dataset).where(tables.Dataset.run_id == run_id))
            return [to_entity(RunDataset, r) for r in rows]

    def artifacts(self, run_id: str) -> list[RunArtifact]:
        """The files logged on run ``run_id``."""
        with self.store.read() as session:
            rows = session.scalars(
                select(tables.RunArtifact).where(tables.RunArtifact.run_id == run_id)
            )
            return [to_entity(RunArtifact, r) for r in rows]


def _dataset_row(run_id: str, fp: Fingerprint, at: datetime) -> tables.Dataset:
    return tables.Dataset(
        run_id=run_id,
        name=fp.name,
        content_hash=fp.content_hash,
        n_rows=fp.n_rows,
        fingerprint=fp.model_dump(mode="json", by_alias=True),
        logged_at=at,
    )


def _json_params(params: Mapping[str, Any]) -> dict[str, Any]:
    if not isinstance(params, Mapping):
        raise InvalidInput(
            f"params must be a mapping of names to values; got {type(params).__name__}."
        )
    out: dict[str, Any] = {}
    for key, value in params.items():
        if not isinstance(key, str):
            raise InvalidInput(f"Parameter names must be strings; got {key!r}.")
        if hasattr(value, "item") and not isinstance(value, Sequence):  # numpy scalar
            value = value.item()
        if isinstance(value, float) and not math.isfinite(value):
            value = str(value)
        elif value is not None and not isinstance(value, str | int | float | bool | list | dict):
            value = repr(value)
        out[key] = value
    return out
