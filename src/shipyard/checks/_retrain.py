"""``shipyard retrain NAME``: train a candidate with the declared entry point, register it,
validate it against production, and tell the approvers. Nothing swaps: the candidate waits
for a human's approval.

``retrain`` follows ``[models.NAME.retrain]`` of shipyard.toml:

1. one retraining of a model at a time (``RetrainRuns.start``: a second one is refused naming
   who started the running one, and when);
2. the training rows from the data source (``read_source``: files, SQL or the prediction log
   joined with its labels), split into train and eval rows (``eval_fraction``, seeded,
   stratified for a classification target);
3. the entry point ``module:function`` imported with the project's folder first on
   ``sys.path``, and called as ``function(train_frame)``: the TRAINING rows as one DataFrame,
   the target column included; it returns a fitted model;
4. all of it as a tracked run (params ``trigger``, ``source``, ``entry``...; datasets
   ``train`` and ``eval`` fingerprinted; the git state of the entry module's folder) that
   registers the candidate, its eval rows in the archive;
5. ``validate_version`` against production (HTML report under ``reports/``);
6. a notification through ``channels`` (or ``[scheduler] channels``) with the candidate, each
   gate's outcome against the champion and the report; a channel that fails is a warning.

Bad input (no retrain table, an entry that does not import, an unfitted model, a source that
is empty or has no target) is ``InvalidInput`` in one sentence; the retraining's row ends
``failed`` with that message and no version is registered.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd

from shipyard.checks._retrain_notify import notify_approvers
from shipyard.checks._retrain_runs import FAILED, SUCCEEDED, RetrainRecord, RetrainRuns
from shipyard.checks._sources import read_source
from shipyard.checks._validate import ValidationRequest, validate_version
from shipyard.config import ModelPolicy, ProjectConfig, RetrainTable
from shipyard.errors import InvalidInput
from shipyard.registry import Registry
from shipyard.store import Store

#: Status lines of a retraining (``progress("Training ...")``); the CLI shows them.
Status = Callable[[str], None]


@dataclass(frozen=True)
class RetrainRequest:
    """Retrain model ``name`` as ``actor``, following ``project``'s ``[models.NAME.retrain]``.

    ``trigger`` says what started it (``manual``, ``schedule:<job>``, ``alert:<id>``);
    ``log_root`` is the prediction log (``source = "feedback"``, validation on production
    traffic); ``folder`` the project's folder (default: the project file's), where relative
    data paths and the entry module are looked up; ``report_dir`` where the validation
    report goes (default: ``reports`` beside the prediction log, i.e. in Shipyard's home);
    ``now`` the end of the ``feedback`` window (default: the current time).

    >>> from shipyard.config import ProjectConfig
    >>> RetrainRequest("churn", actor="alice", project=ProjectConfig(),
    ...                log_root=Path("predictions")).trigger
    'manual'
    """

    name: str
    actor: str
    project: ProjectConfig
    log_root: Path
    trigger: str = "manual"
    folder: Path | None = None
    report_dir: Path | None = None
    now: datetime | None = None

    @property
    def project_folder(self) -> Path:
        """Where relative paths and the entry module are looked up."""
        return (self.folder or self.project.path.parent).expanduser().absolute()


@dataclass
class RetrainResult:
    """What a retraining made: its row, the tracked run, the candidate and its gates.

    ``gates`` are the validation's gate lines (``name``, ``passed``, ``value``, ``limit``,
    ``detail``); ``champion`` the version compared with; ``notified`` the channels that
    delivered the notification; ``warnings`` what went wrong without failing it.
    """

    record: RetrainRecord
    run_id: str
    version: int
    passed: bool
    source: str
    train_rows: int
    eval_rows: int
    champion: int | None
    gates: list[dict[str, Any]]
    report_path: Path | None
    notified: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def approve_command(self) -> str:
        """What an approver runs next."""
        return f'shipyard approve {self.record.model_name} {self.version} --reason "..."'

    def to_json(self) -> dict[str, Any]:
        """The result for ``--json``."""
        return {
            "retrain": self.record.id,
            "model": self.record.model_name,
            "trigger": self.record.trigger,
            "run_id": self.run_id,
            "version": self.version,
            "passed": self.passed,
            "source": self.source,
            "train_rows": self.train_rows,
            "eval_rows": self.eval_rows,
            "champion": self.champion,
            "gates": self.gates,
            "report": str(self.report_path) if self.report_path else None,
            "notified": self.notified,
            "warnings": self.warnings,
            "waiting_for_approval": self.approve_command,
        }


def retrain_policy(store: Store, name: str, project: ProjectConfig) -> RetrainTable:
    """``[models.NAME.retrain]`` of ``project``, or ``InvalidInput`` saying what to write.

    Raises ``NotFound`` for a model the registry does not know.
    """
    policy: ModelPolicy = Registry(store, project).policy(name)
    if policy.retrain is None:
        raise InvalidInput(
            f"Model '{name}' has no [models.{name}.retrain] table in {project.path}: declare "
            f'entry = "module:function", target = "<label column>" and one data source '
            f'(data = "path/*.parquet", sql with url, or source = "feedback").'
        )
    return policy.retrain


def retrain(
    store: Store, request: RetrainRequest, *, progress: Status | None = None
) -> RetrainResult:
    """Run the retraining of the module docstring; see ``RetrainRequest``.

    Raises ``InvalidTransition`` when a retraining of the model is running already,
    ``InvalidInput`` for bad input (the row is then closed as failed).

    >>> result = retrain(store, RetrainRequest("churn", actor="alice", project=project,
    ...                                        log_root=Path("predictions")))  # doctest: +SKIP
    >>> result.version, result.passed  # doctest: +SKIP
    (4, True)
    """
    say = progress or (lambda line: None)
    name, actor = request.name, request.actor
    table = retrain_policy(store, name, request.project)
    runs = RetrainRuns(store)
    record, stale = runs.start(name, trigger=request.trigger, actor=actor)
    warnings = [
        f"retraining #{old.id} was left running by {old.owner}, which is gone: closed as failed"
        for old in stale
    ]
    try:
        result = _run(store, request, table, record, runs, say)
    except BaseException as exc:
        message = getattr(exc, "message", None) or f"{type(exc).__name__}: {exc}"
        runs.finish(record.id, status=FAILED, message=message, actor=actor)
        raise
    result.warnings[:0] = warnings
    details = {"notified": result.notified, "warnings": result.warnings, "gates": result.gates}
    verdict = "passed its gates" if result.passed else "failed its gates"
    result.record = runs.finish(
        record.id,
        status=SUCCEEDED,
        message=f"v{result.version} registered, {verdict}; waiting for approval",
        actor=actor,
        details=details,
    )
    return result


def _run(
    store: Store,
    request: RetrainRequest,
    table: RetrainTable,
    record: RetrainRecord,
    runs: RetrainRuns,
    say: Status,
) -> RetrainResult:
    from shipyard.tracking import Tracker

    name, folder = request.name, request.project_folder
    now = request.now or datetime.now(UTC)
    say(f"Reading the training rows of {name}")
    source = read_source(table, name=name, folder=folder, log_root=request.log_root, now=now)
    runs.update(record.id, details={"source": source.description, "rows": len(source.frame)})
    fn, module_folder = load_entry(table.entry, name=name, folder=folder)
    with _entry_on_path(folder):
        train, evaluation = split_rows(source.frame, table.target, table.eval_fraction, name=name)
        params = {
            "trigger": request.trigger,
            "source": source.description,
            "entry": table.entry,
            "target": table.target,
            "eval_fraction": table.eval_fraction,
            "retrain": record.id,
        }
        tracked = Tracker(store).start_run(
            model=name, params=params, user=request.actor, git_path=module_folder
        )
        runs.update(record.id, run_id=tracked.id)
        with tracked as run:
            run.log_dataset("train", train, target=table.target)
            run.log_dataset("eval", evaluation, target=table.target)
            say(f"Training with {table.entry} on {len(train):,} rows")
            model = _call_entry(fn, train, entry=table.entry, name=name)
            say(f"Registering the candidate ({len(evaluation):,} eval rows)")
            version = _register(run, model, train, evaluation, table, name=name)
    runs.update(record.id, version=version)
    report = (request.report_dir or request.log_root.parent / "reports") / (
        f"{name}-v{version}-validation.html"
    )
    try:
        report.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InvalidInput(f"Cannot create the report folder '{report.parent}': {exc}") from exc
    say(f"Validating {name} v{version} against production")
    # On the rows held out of its training: production traffic (source = "feedback") would
    # include the rows it learnt from, and favour it.
    validation = validate_version(
        store,
        ValidationRequest(
            name=name,
            version=version,
            actor=request.actor,
            project=request.project,
            data=evaluation,
            target=table.target,
            data_label=f"the candidate's held-out rows of {source.description}",
            report=report,
            log_root=request.log_root,
        ),
        progress=say,
    )
    runs.update(record.id, passed=validation.passed)
    gates = list(validation.record.report.get("gates", []))
    result = RetrainResult(
        record=record,
        run_id=tracked.id,
        version=version,
        passed=validation.passed,
        source=source.description,
        train_rows=len(train),
        eval_rows=len(evaluation),
        champion=validation.record.champion,
        gates=gates,
        report_path=validation.report_path,
    )
    say("Notifying the approvers")
    channels = table.channels or request.project.scheduler.channels
    result.notified, problems = notify_approvers(store, request.project, channels, result)
    result.warnings.extend(problems)
    return result


@contextmanager
def _entry_on_path(folder: Path) -> Iterator[None]:
    """The project's folder first on ``sys.path`` while the entry point imports and trains."""
    entry = str(folder)
    sys.path.insert(0, entry)
    importlib.invalidate_caches()
    try:
        yield
    finally:
        with suppress(ValueError):  # the training code took it off itself
            sys.path.remove(entry)


def load_entry(entry: str, *, name: str, folder: Path) -> tuple[Callable[..., Any], Path]:
    """The function ``module:function`` names, imported with ``folder`` (the project's) first
    on ``sys.path``, and the folder of its module; ``InvalidInput`` in one line if it cannot
    be. A module the folder provides is imported afresh, so an edited file is read again.

    >>> fn, _ = load_entry("json:dumps", name="churn", folder=Path("."))
    >>> fn({"a": 1})
    '{"a": 1}'
    >>> load_entry("json:nothing", name="churn", folder=Path("."))
    Traceback (most recent call last):
    shipyard.errors.InvalidInput: The entry point 'json:nothing' ... has no function 'nothing' ...
    """
    module_name, _, function = entry.partition(":")
    top = module_name.split(".")[0]
    if (folder / f"{top}.py").is_file() or (folder / top).is_dir():
        for loaded in [m for m in sys.modules if m == top or m.startswith(top + ".")]:
            del sys.modules[loaded]  # the project's current code, not a cached copy
    try:
        with _entry_on_path(folder):
            module = importlib.import_module(module_name)
    except Exception as exc:  # ImportError, SyntaxError, anything its top level raises
        detail = " ".join(f"{type(exc).__name__}: {exc}".split())
        raise InvalidInput(
            f"The entry point '{entry}' of [models.{name}.retrain] does not import ({detail}); "
            f"modules are looked up in {folder} first."
        ) from exc
    fn = getattr(module, function, None)
    if fn is None or not callable(fn):
        raise InvalidInput(
            f"The entry point '{entry}' of [models.{name}.retrain] has no function "
            f"'{function}' in module {module_name}."
        )
    where = getattr(module, "__file__", None)
    return fn, Path(where).parent if where else folder


def split_rows(
    frame: pd.DataFrame, target: str, fraction: float, *, name: str
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Train and eval rows: ``fraction`` held out, seeded (the same rows give the same
    split), stratified by the target when it looks like classes (text, bool, or at most 20
    distinct integers, each seen at least twice).

    >>> frame = pd.DataFrame({"x": range(8), "y": [0, 1] * 4})
    >>> train, evaluation = split_rows(frame, "y", 0.25, name="m")
    >>> len(train), len(evaluation), sorted(evaluation["y"])
    (6, 2, [0, 1])
    """
    from sklearn.model_selection import train_test_split

    n_eval = round(len(frame) * fraction)
    if n_eval < 1 or len(frame) - n_eval < 1:
        raise InvalidInput(
            f"The data source of [models.{name}.retrain] has {len(frame)} labelled row(s): too "
            f"few to hold out eval_fraction = {fraction:g} of them and train on the rest."
        )
    y = frame[target]
    counts = y.value_counts()
    classes = not pd.api.types.is_float_dtype(y) and (
        not pd.api.types.is_numeric_dtype(y) or pd.api.types.is_bool_dtype(y) or len(counts) <= 20
    )
    stratify = y if classes and counts.min() >= 2 and n_eval >= len(counts) else None
    train, evaluation = train_test_split(frame, test_size=n_eval, random_state=0, stratify=stratify)
    return train.reset_index(drop=True), evaluation.reset_index(drop=True)


def _call_entry(fn: Callable[..., Any], train: pd.DataFrame, *, entry: str, name: str) -> Any:
    try:
        return fn(train.copy())
    except InvalidInput:
        raise
    except Exception as exc:  # the training code's own failure, said in one line
        detail = " ".join(f"{type(exc).__name__}: {exc}".split())
        raise InvalidInput(
            f"The entry point '{entry}' of [models.{name}.retrain] failed: {detail}"
        ) from exc


def _register(
    run: Any,
    model: Any,
    train: pd.DataFrame,
    evaluation: pd.DataFrame,
    table: RetrainTable,
    *,
    name: str,
) -> int:
    from sklearn.exceptions import NotFittedError

    target = table.target
    try:
        version = run.register(
            model,
            X_train=train.drop(columns=[target]),
            y_train=train[target],
            X_eval=evaluation.drop(columns=[target]),
            y_eval=evaluation[target],
            description=f"Retrained by {table.entry}",
        )
    except InvalidInput as exc:
        where = f"The entry point '{table.entry}' of [models.{name}.retrain]"
        if isinstance(exc.__cause__, NotFittedError):
            raise InvalidInput(
                f"{where} returned an unfitted model (a {type(model).__name__}): make it "
                "return the model after calling its fit."
            ) from exc
        if isinstance(exc.__cause__, TypeError):
            raise InvalidInput(
                f"{where} returned a {type(model).__name__}, not a fitted scikit-learn "
                "compatible model."
            ) from exc
        raise
    return int(version.version)
