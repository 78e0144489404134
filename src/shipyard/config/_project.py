"""``ProjectConfig``, the whole of shipyard.toml, and ``load_project``, the one function that
reads it.

Every problem is reported in one style, ``<file>: <table> <key>: <problem>``::

    shipyard.toml: [retention] monitoring: Invalid age 'soon': use a number and m, h, d or w...
    shipyard.toml: [[alerts]] 'psi' channels: names unknown channel(s) ['pager']; ...
    shipyard.toml: [channels.team]: Unknown channel type 'pager'. Use one of: email, webhook.

and a file that is not TOML with one message. A new table is one more field of
``ProjectConfig``: a ``dict`` of tables is written ``[section.<name>]``, a ``list``
``[[section]]``, a model ``[section]``, and errors name them so.
"""

from __future__ import annotations

import tomllib
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from types import UnionType
from typing import Any, Literal, Self, Union, get_args, get_origin

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError, model_validator
from pydantic_core import PydanticCustomError

from shipyard.config._models import (
    GateSettings,
    GatesTable,
    ModelPolicy,
    ModelTable,
    parse_criterion,
)
from shipyard.config._tables import (
    AlertTable,
    ChannelTable,
    JobTable,
    MonitoringTable,
    NotifyTable,
    RetentionTable,
    SchedulerTable,
    StorageTable,
)
from shipyard.errors import InvalidInput
from shipyard.names import check_name

#: Where in the file: ``("alerts", 0, "window")``, ``("retention", "predictions")``.
Location = Sequence[str | int]
#: The name of the ``index``-th table of an array section, if it has one.
Names = Callable[[str, int], str | None]
#: How a section is written: ``[section]``, ``[section.<name>]`` or ``[[section]]``.
Kind = Literal["table", "tables", "array"]

_CROSS_CHECK = "shipyard_project"  # the error type of checks across tables (loc in ctx)


class ProjectConfig(BaseModel):
    """Everything ``shipyard.toml`` declares; every table is optional.

    >>> project = ProjectConfig.model_validate({"retention": {"predictions": "30d"}})
    >>> project.retention.predictions, project.alerts
    (datetime.timedelta(days=30), [])
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    channels: dict[str, ChannelTable] = Field(
        default_factory=dict, description="Alert channels by name: [channels.<name>]."
    )
    alerts: list[AlertTable] = Field(
        default_factory=list, description="Alert rules on monitoring results."
    )
    notify: list[NotifyTable] = Field(
        default_factory=list, description="Registry events sent through channels."
    )
    scheduler: SchedulerTable = Field(
        default_factory=SchedulerTable, description="How failed jobs are alerted."
    )
    jobs: list[JobTable] = Field(default_factory=list, description="Scheduled jobs.")
    retention: RetentionTable = Field(
        default_factory=RetentionTable, description="How long records are kept."
    )
    monitoring: MonitoringTable = Field(
        default_factory=MonitoringTable, description="Defaults of monitoring runs."
    )
    gates: GatesTable = Field(default_factory=GatesTable, description="Validation gates' defaults.")
    models: dict[str, ModelTable] = Field(
        default_factory=dict, description="Per-model objective and policy: [models.<name>]."
    )

    storage: StorageTable = Field(
        default_factory=StorageTable, description="How the artifact store is reached."
    )

    _path: Path = PrivateAttr(default=Path("shipyard.toml"))

    @property
    def path(self) -> Path:
        """The file this was read from (named in every error about it)."""
        return self._path

    @model_validator(mode="before")
    @classmethod
    def _name_notify_rules(cls, data: Any) -> Any:
        """A ``[[notify]]`` rule without a name is ``notify-<n>``."""
        if isinstance(data, Mapping) and isinstance(data.get("notify"), list):
            rules = [
                {"name": f"notify-{i + 1}", **rule} if isinstance(rule, Mapping) else rule
                for i, rule in enumerate(data["notify"])
            ]
            data = {**data, "notify": rules}
        return data

    @model_validator(mode="after")
    def _across_tables(self) -> Self:
        for section in ("alerts", "notify", "jobs"):
            seen: dict[str, int] = {}
            for i, table in enumerate(getattr(self, section)):
                if table.name in seen:
                    _refuse(
                        (section, i, "name"),
                        f"declared twice (as [[{section}]] #{seen[table.name] + 1} and #{i + 1}); "
                        "names must be unique, rename one.",
                    )
                seen[table.name] = i
        uses: list[tuple[Location, list[str]]] = [
            (("scheduler", "channels"), self.scheduler.channels)
        ]
        for name, model in self.models.items():
            try:
                check_name(name)
            except InvalidInput as exc:
                _refuse(("models", name), exc.message)
            if model.retrain is not None:
                uses.append((("models", name, "retrain", "channels"), model.retrain.channels))
        for section in ("alerts", "notify", "jobs"):
            for i, table in enumerate(getattr(self, section)):
                uses.append(((section, i, "channels"), table.channels or []))
        for where, names in uses:
            unknown = [name for name in names if name not in self.channels]
            if unknown:
                declared = ", ".join(sorted(self.channels)) or "none yet"
                _refuse(
                    where,
                    f"names unknown channel(s) {unknown}; declare them as [channels.<name>] "
                    f"tables (declared: {declared}).",
                )
        return self

    def policy(self, name: str, *, objective: str = "", accept: str | None = None) -> ModelPolicy:
        """Model ``name``'s policy: ``[gates]`` merged with ``[models.NAME]``; ``objective``
        and ``accept`` (as ``shipyard models create`` recorded them) count where the file
        declares none.

        >>> p = ProjectConfig.model_validate({"models": {"churn": {"accept": "roc_auc >= 0.8",
        ...                                    "gates": {"min_parity_ratio": 0.9}}}})
        >>> policy = p.policy("churn")
        >>> str(policy.accept), policy.gates.min_parity_ratio, policy.require_gates
        ('roc_auc >= 0.8', 0.9, True)
        """
        table = self.models.get(name) or ModelTable()
        merged = {
            **self.gates.model_dump(exclude={"require"}),
            **table.gates.model_dump(exclude_unset=True),
        }
        text = table.accept or accept
        return ModelPolicy(
            name=name,
            objective=table.objective or objective,
            accept=parse_criterion(text) if text else None,
            sensitive=tuple(table.sensitive),
            require_gates=(
                self.gates.require if table.require_gates is None else table.require_gates
            ),
            gates=GateSettings.model_validate(merged),
            retrain=table.retrain,
        )

    def invalid(self, where: Location, problem: str) -> InvalidInput:
        """The error to raise for ``problem`` at ``where``, found by a table's consumer.

        >>> ProjectConfig().invalid(("channels", "team"), "Unknown channel type 'pager'.").message
        "shipyard.toml: [channels.team]: Unknown channel type 'pager'."
        """
        return InvalidInput(f"{self.path}: {_where(where, self._names)}: {_line(problem)}")

    def invalid_table(
        self, exc: ValidationError, where: Location, model: type[BaseModel], also: Iterable[str]
    ) -> InvalidInput:
        """The error for ``exc``, raised by validating part of the table at ``where`` as
        ``model`` (a job's parameters as its kind's); ``also`` are the table's other keys."""
        return _error(self.path, exc, self._names, prefix=where, model=model, also=also)

    def _names(self, section: str, index: int) -> str | None:
        tables = getattr(self, section, None)
        if isinstance(tables, list) and 0 <= index < len(tables):
            name = getattr(tables[index], "name", None)
            return name if isinstance(name, str) else None
        return None


def read_project_text(path: Path) -> str:
    """The text of the project file; ``""`` when there is none."""
    if not path.is_file():
        return ""
    try:
        return path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as exc:
        raise _not_toml(path, exc) from exc
    except OSError as exc:
        raise InvalidInput(f"Cannot read {path}: {exc.strerror or exc}.") from exc


def load_project(path: Path, *, text: str | None = None) -> ProjectConfig:
    """The project file at ``path``, parsed and checked; no file declares nothing.

    ``text`` is checked instead of the file's content (``shipyard alerts add`` checks the file
    it is about to write); errors still name ``path``. Raises ``InvalidInput`` naming the
    table and key of every problem.
    """
    if text is None:
        text = read_project_text(path)
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise _not_toml(path, exc) from exc
    try:
        project = ProjectConfig.model_validate(data)
    except ValidationError as exc:

        def names(section: str, index: int) -> str | None:
            tables = data.get(section)
            if isinstance(tables, list) and 0 <= index < len(tables):
                table = tables[index]
                if not isinstance(table, Mapping):
                    return None
                if section == "notify" and "name" not in table:
                    return f"notify-{index + 1}"  # as _name_notify_rules names it
                name = table.get("name")
                return name if isinstance(name, str) and name.strip() else None
            return None

        raise _error(path, exc, names) from None
    project._path = path
    return project


def load_storage(path: Path) -> StorageTable:
    """Only the ``[storage]`` table of the project file (commands that change nothing in the
    registry read no other table, so a mistake elsewhere does not stop them).

    >>> load_storage(Path("no-such-file.toml")).options
    {}
    """
    text = read_project_text(path)
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise _not_toml(path, exc) from exc
    try:
        return StorageTable.model_validate(data.get("storage", {}))
    except ValidationError as exc:
        raise _error(
            path, exc, lambda section, index: None, prefix=("storage",), model=StorageTable
        ) from None


# --- one style of message -----------------------------------------------------------------


def _not_toml(path: Path, exc: Exception) -> InvalidInput:
    """The one message for a file that is not TOML (bad syntax, or bytes that are not UTF-8)."""
    return InvalidInput(f"{path} is not valid TOML: {exc}.")


def _refuse(where: Location, problem: str) -> None:
    raise PydanticCustomError(_CROSS_CHECK, "{problem}", {"problem": problem, "at": tuple(where)})


def _kind(section: str) -> Kind | None:
    field = ProjectConfig.model_fields.get(section)
    if field is None:
        return None
    origin = get_origin(field.annotation)
    return "array" if origin is list else "tables" if origin is dict else "table"


def _where(loc: Location, names: Names) -> str:
    """``("alerts", 0, "window")`` → ``[[alerts]] 'psi' window``."""
    if not loc:
        return "the file"
    section, rest = str(loc[0]), list(loc[1:])
    kind = _kind(section)
    if kind is None:
        return section
    if kind == "table":
        head = f"[{section}]"
    elif kind == "tables":
        head = f"[{section}.{rest.pop(0)}]" if rest else f"[{section}]"
    elif rest and isinstance(rest[0], int):
        index = rest.pop(0)
        assert isinstance(index, int)
        name = names(section, index)
        head = f"[[{section}]] '{name}'" if name else f"[[{section}]] #{index + 1}"
    else:
        head = f"[[{section}]]"
    return " ".join([head, ".".join(map(str, rest))]) if rest else head


def _model_at(model: type[BaseModel] | None, loc: Location) -> type[BaseModel] | None:
    """The model whose table is at ``loc`` (``("jobs", 0)`` → ``JobTable``)."""
    current: Any = model
    item = False
    for step in loc:
        if item:
            item = False
            continue
        if not (isinstance(current, type) and issubclass(current, BaseModel)):
            return None
        field = current.model_fields.get(str(step))
        if field is None:
            return None
        annotation: Any = field.annotation
        if get_origin(annotation) in (Union, UnionType):
            annotation = next(a for a in get_args(annotation) if a is not type(None))
        if get_origin(annotation) in (list, dict):
            annotation, item = get_args(annotation)[-1], True
        current = annotation
    return current if isinstance(current, type) and issubclass(current, BaseModel) else None


def _problem(error: Any, loc: Location, model: type[BaseModel] | None, also: Iterable[str]) -> str:
    kind, message, value = error["type"], str(error["msg"]), error.get("input")
    whole_file = model is ProjectConfig
    sections = ("list_type", "dict_type", "model_type")
    if whole_file and len(loc) == 1 and _kind(str(loc[0])) and kind in sections:
        section = loc[0]
        return {
            "array": f"must be an array of tables: write [[{section}]].",
            "tables": f"must be tables: write [{section}.<name>].",
            "table": f"must be a table: write [{section}].",
        }[_kind(str(section)) or "table"]
    if whole_file and kind == "model_type" and len(loc) == 2:
        return "must be a table of keys."
    if kind == "extra_forbidden":
        owner = _model_at(model, loc[:-1])
        keys = [*also, *(owner.model_fields if owner else ())]
        what = "table" if whole_file and len(loc) == 1 else "key"
        return f"unknown {what}. Use one of: {', '.join(keys)}."
    if kind == "missing":
        return "required, but missing."
    if kind == "value_error":
        return message.removeprefix("Value error, ")
    text = message.rstrip(".") + "."
    if isinstance(value, str | int | float | bool):
        text += f" Got {value!r}."
    return text


def _line(text: str) -> str:
    return " ".join(text.split())


def _error(
    path: Path,
    exc: ValidationError,
    names: Names,
    *,
    prefix: Location = (),
    model: type[BaseModel] | None = ProjectConfig,
    also: Iterable[str] = (),
) -> InvalidInput:
    """One ``InvalidInput`` naming the table and key of each of ``exc``'s errors."""
    problems: list[str] = []
    for error in exc.errors():
        if error["type"] == _CROSS_CHECK:
            loc: Location = error["ctx"]["at"]
            text = str(error["ctx"]["problem"])
        else:
            loc = error["loc"]
            text = _problem(error, loc, model, also)
        line = f"{_where((*prefix, *loc), names)}: {_line(text)}"
        if line not in problems:
            problems.append(line)
    return InvalidInput(f"{path}: " + " ".join(problems))
