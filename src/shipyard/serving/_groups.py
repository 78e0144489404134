"""Model groups served as one endpoint: ``/models/{group}/predict``, v2 infer (JSON or binary)
and gRPC's ``ModelInfer``, all through ``score_group``.

``ServedGroups`` keeps the groups in force (``shipyard.registry.Groups``), re-read whenever
the registry's change marker moves, as the pool re-reads aliases. Members are resolved on
every request: a member at the server's alias is what the pool serves for it now (so a
promotion or rollback of the member changes the group within one poll); a member at another
alias is that alias's version, re-resolved on each change and loaded on first use.

A request to a group is scored by its members (see ``shipyard.registry._groups`` for chain,
mean, weighted and vote) and logged twice over: one record for the group (model = the group's
name, version = its revision, arm ``group``, and ``members``: each member's version, kept as
``member__<model>`` columns), and each member's own answer under its own name and version
with arm ``group:<name>`` and the same prediction ids (as a shadow's answers are), so labels
sent for those ids score the members too.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from time import perf_counter
from typing import TYPE_CHECKING, Any, NamedTuple, TypeVar

import numpy as np
import orjson
import pandas as pd
from fastapi import Request
from starlette.responses import Response

from shipyard.errors import InvalidInput, ModelUnavailable, NotFound, ShipyardError
from shipyard.registry import (
    Group,
    Groups,
    MemberView,
    check_compatible,
    output_columns,
)
from shipyard.serving import _v2, _v2_http
from shipyard.serving._inputs import (
    check_rows,
    parse_json,
    read_body,
    require_json,
    rows_from_records,
    rows_from_split,
)
from shipyard.serving._runtime import ServedModel, json_floats

if TYPE_CHECKING:
    from shipyard.serving._pool import ModelPool
    from shipyard.serving._scoring import Read
    from shipyard.serving._state import ServingState

S = TypeVar("S")  # what the transport received: an HTTP request, a gRPC message
B = TypeVar("B")  # the body ``read`` returns and ``decode`` reads

log = logging.getLogger("shipyard.serving")

MEMBERS_HEADER = "X-Shipyard-Members"
#: The arm of a group's own log records.
GROUP_ARM = "group"


@dataclass
class ServedGroup:
    """A group in force, with the versions of its members at other aliases than the pool's."""

    group: Group
    #: member model -> version its alias points to (members at the pool's alias: absent).
    pinned: dict[str, int] = field(default_factory=dict)
    #: why a member's alias could not be resolved at the last refresh.
    error: str | None = None
    #: the member versions whose compatibility was last checked, and the verdict.
    checked: tuple[tuple[str, int], ...] = ()
    incompatible: str | None = None


@dataclass
class ServedGroups:
    """The groups a server answers for, by name."""

    pool: ModelPool
    groups: dict[str, ServedGroup] = field(default_factory=dict)

    def __contains__(self, name: object) -> bool:
        return name in self.groups

    async def refresh(self) -> None:
        """Re-read the groups in force and re-resolve members at other aliases."""
        try:
            found = await asyncio.to_thread(self._read)
        except ShipyardError as exc:
            log.error("Reading the model groups failed: %s", exc.message)
            return
        self.groups = found

    def _read(self) -> dict[str, ServedGroup]:
        registry = self.pool.registry
        out: dict[str, ServedGroup] = {}
        for group in Groups(self.pool.store, registry).list():
            served = ServedGroup(group)
            for member in group.members:
                if member.alias == self.pool.settings.alias:
                    continue
                try:
                    served.pinned[member.model] = registry.resolve(str(member)).version
                except ShipyardError as exc:
                    served.error = f"member {member} cannot be resolved: {exc.message}"
            out[group.name] = served
        return out

    async def members(self, name: str) -> tuple[ServedGroup, list[ServedModel]]:
        """The group ``name`` and what answers for each of its members now."""
        served = self.groups.get(name)
        if served is None:
            raise NotFound(f"There is no model group '{name[:128]}' served here.")
        if served.error is not None:
            raise ModelUnavailable(f"Group '{name}' cannot answer: {served.error}.")
        models = []
        for member in served.group.members:
            if member.model not in self.pool.slots:
                raise ModelUnavailable(
                    f"Group '{name}' cannot answer: its member {member} is not served by this "
                    f"server (start it with that model, or promote a version to "
                    f"{self.pool.settings.alias})."
                )
            try:
                version = served.pinned.get(member.model)
                model = await self.pool.get(member.model, version)
            except ShipyardError as exc:
                raise ModelUnavailable(
                    f"Group '{name}' cannot answer: member {member}: {exc.message}"
                ) from exc
            models.append(model)
        _check_served(served, models)
        return served, models


def _check_served(served: ServedGroup, models: list[ServedModel]) -> None:
    """Refuse when the members now served cannot be combined (a promoted member may bring a
    schema the group was not checked against); checked once per set of versions."""
    key = tuple((m.name, m.version) for m in models)
    if key != served.checked:
        views = [
            MemberView(m.name, m.loaded.manifest.task, m.loaded.manifest.classes, m.schema.names())
            for m in models
        ]
        try:
            check_compatible(served.group.combine, views)
            served.incompatible = None
        except InvalidInput as exc:
            served.incompatible = exc.message
        served.checked = key
    if served.incompatible is not None:
        versions = ", ".join(f"{n} v{v}" for n, v in key)
        raise ModelUnavailable(
            f"Group '{served.group.name}' cannot answer with {versions}: {served.incompatible}"
        )


def group_inputs(group: Group, models: list[ServedModel]) -> list[str]:
    """The columns a request to the group sends: every member's inputs, less what a chain's
    members produce for each other."""
    produced: set[str] = set()
    if group.combine == "chain":
        for m in models:
            produced.update(output_columns(m.name, m.loaded.manifest.task, m.classes))
    names: list[str] = []
    for m in models:
        names += [c for c in m.schema.names() if c not in produced and c not in names]
    return names


# -- metadata ------------------------------------------------------------------------------


def is_group(pool: ModelPool, name: str, version: str | None) -> bool:
    """Whether a request for ``name`` (at ``version``) is for a model group here: a model of
    the same name wins, and a group has no explicit versions."""
    return version is None and name in pool.groups and name not in pool.slots


def _answering(group: Group, models: list[ServedModel]) -> ServedModel:
    """The member whose labels the group answers: the last of a chain, else the first (the
    members of an ensemble share their classes)."""
    return models[-1] if group.combine == "chain" else models[0]


def group_label_type(group: Group, models: list[ServedModel]) -> str:
    """The v2 datatype of the group's ``predict`` output (FP64 for the mean of regressors)."""
    return _v2.label_datatype(_answering(group, models))


async def group_metadata(state: ServingState, name: str) -> dict[str, Any]:
    """``GET /v2/models/{group}``: the group's inputs (what a request sends), its outputs and
    each member's version now (``parameters.members``)."""
    served, models = await state.pool.groups.members(name)
    group = served.group
    columns = {c.name: c for m in reversed(models) for c in m.schema.columns}
    classes = _answering(group, models).classes
    datatype = group_label_type(group, models)
    outputs: list[dict[str, Any]] = [{"name": "predict", "datatype": datatype, "shape": [-1]}]
    if classes is not None:
        outputs.append({"name": "predict_proba", "datatype": "FP64", "shape": [-1, len(classes)]})
    outputs.append({"name": "prediction_id", "datatype": "BYTES", "shape": [-1]})
    return {
        "name": name,
        "versions": [str(group.revision)],
        "platform": f"shipyard-group-{group.combine}",
        "inputs": [
            {"name": c, "datatype": _v2.v2_datatype(columns[c]), "shape": [-1, 1]}
            for c in group_inputs(group, models)
        ],
        "outputs": outputs,
        "parameters": {"members": {m.name: m.version for m in models}},
    }


# -- scoring -------------------------------------------------------------------------------


@dataclass
class _Answer:
    model: ServedModel
    inputs: pd.DataFrame
    labels: np.ndarray
    proba: np.ndarray | None


async def _score_member(model: ServedModel, frame: pd.DataFrame) -> _Answer:
    sub = frame[[c for c in model.schema.names() if c in frame.columns]]
    labels, proba = await model.score(model.coerce(sub))
    return _Answer(model, sub, np.asarray(labels), None if proba is None else np.asarray(proba))


async def combine_group(
    group: Group, models: list[ServedModel], frame: pd.DataFrame
) -> tuple[np.ndarray, np.ndarray | None, list[Any] | None, list[_Answer]]:
    """(labels, probabilities, classes, each member's answer) for one request's rows."""
    if group.combine == "chain":
        answers = []
        for model in models:
            answer = await _score_member(model, frame)
            answers.append(answer)
            extra = {f"{model.name}_prediction": answer.labels}
            if answer.proba is not None and model.classes is not None:
                for i, cls in enumerate(model.classes):
                    extra[f"{model.name}_proba_{cls}"] = answer.proba[:, i]
            frame = frame.assign(**extra)
        last = answers[-1]
        return last.labels, last.proba, last.model.classes, answers
    answers = list(await asyncio.gather(*(_score_member(m, frame) for m in models)))
    classes = models[0].classes
    weights = np.asarray(group.weights) if group.weights is not None else None
    if group.combine == "vote":
        assert classes is not None
        return (*_vote(answers, classes), classes, answers)
    if classes is None:  # regressors: the (weighted) mean of the predictions
        values = np.stack([a.labels.astype(np.float64) for a in answers])
        return np.average(values, axis=0, weights=weights), None, None, answers
    stacked = np.stack([np.asarray(a.proba, dtype=np.float64) for a in answers])
    proba = np.average(stacked, axis=0, weights=weights)
    labels = np.asarray(classes, dtype=object)[proba.argmax(axis=1)]
    return _plain_labels(labels, answers[0].labels), proba, classes, answers


def _vote(answers: list[_Answer], classes: list[Any]) -> tuple[np.ndarray, np.ndarray]:
    """Majority labels (ties: the earliest member's label among the tied) and vote shares."""
    keys = [str(c) for c in classes]
    n = len(answers[0].labels)
    labels = []
    shares = np.zeros((n, len(classes)))
    for row in range(n):
        votes = [str(a.labels[row]) for a in answers]
        counts = Counter(votes)
        top = max(counts.values())
        winner = next(v for v in votes if counts[v] == top)
        labels.append(classes[keys.index(winner)])
        for k, c in counts.items():
            shares[row, keys.index(k)] = c / len(votes)
    return _plain_labels(np.asarray(labels, dtype=object), answers[0].labels), shares


def _plain_labels(labels: np.ndarray, like: np.ndarray) -> np.ndarray:
    """Labels with the members' own dtype (ints stay ints in JSON)."""
    try:
        return labels.astype(like.dtype)
    except (TypeError, ValueError):
        return labels


def members_text(versions: dict[str, int]) -> str:
    """Each member's version as ``churn=1,value=2`` (the ``X-Shipyard-Members`` header, the
    gRPC trailing metadata ``x-shipyard-members``)."""
    return ",".join(f"{k}={v}" for k, v in versions.items())


class GroupScored(NamedTuple):
    """One request answered by a group: the combined labels (of v2 datatype ``label_type``),
    probabilities and classes, the prediction ids, each member's version, and what the
    transport's decoder kept for its encoder (``extra``)."""

    group: Group
    label_type: str
    labels: np.ndarray
    proba: np.ndarray | None
    classes: list[Any] | None
    ids: list[str]
    versions: dict[str, int]
    extra: Any


#: decode(source, body, columns) -> (the rows, extra for the encoder); ``columns`` are what the
#: group reads (``group_inputs``).
GroupDecode = Callable[[S, B, list[str]], tuple[pd.DataFrame, Any]]


async def score_group(
    state: ServingState,
    name: str,
    endpoint: str,
    headers: Mapping[str, str],
    source: S,
    read: Read[S, B],
    decode: GroupDecode[S, B],
) -> GroupScored:
    """Authorize, find the group's members, read and decode the body, score and log: what
    ``_scoring.score`` does for a model, for every transport (HTTP, gRPC) alike."""
    start = perf_counter()
    authorized = False
    caller = None
    try:
        caller = await state.gate.check_headers(headers)
        authorized = True
        served, models = await state.pool.groups.members(name)
        group = served.group
        body = await read(source, state.settings.max_body_bytes)
        frame, extra = decode(source, body, group_inputs(group, models))
        check_rows(len(frame), state.settings.max_batch_rows)
        computing = perf_counter()
        labels, proba, classes, answers = await combine_group(group, models, frame)
        compute = perf_counter() - computing
    except ShipyardError as exc:
        seconds = perf_counter() - start
        state.refused(name, None, endpoint, exc, seconds, GROUP_ARM, authorized, caller)
        raise
    # Imported here: _state imports the pool, which imports this module.
    from shipyard.serving._state import new_ids

    ids = new_ids(len(frame))
    seconds = perf_counter() - start
    versions = {a.model.name: a.model.version for a in answers}
    state.metrics.observe(name, group.revision, endpoint, seconds, len(ids))
    team = caller.team if caller is not None else None
    state.usage.count(team, name, group.revision, len(ids), compute)
    if state.logging:
        use = {
            "caller": None if caller is None else caller.name,
            "team": team,
            "compute_ms": compute * 1000,
            "request_rows": len(ids),
        }
        _log_group(state, group, frame, labels, proba, classes, ids, seconds, versions, use)
        for a in answers:
            state.scored(
                a.model, endpoint, a.inputs, a.labels, a.proba, ids, seconds, f"group:{name}"
            )
    label_type = group_label_type(group, models)
    return GroupScored(group, label_type, labels, proba, classes, ids, versions, extra)


def infer_answer(scored: GroupScored) -> _v2.InferResponse:
    """A group's Open Inference Protocol answer: the outputs a model's answer has, and each
    member's version in ``parameters.members``."""
    group = scored.group
    response = _v2.make_response(
        group.name,
        str(group.revision),
        scored.label_type,
        scored.labels,
        scored.proba,
        scored.ids,
        scored.extra,
    )
    response.parameters["members"] = scored.versions
    return response


# -- HTTP ----------------------------------------------------------------------------------


def _decode_records(request: Request, body: bytes, columns: list[str]) -> tuple[pd.DataFrame, Any]:
    """The frame of a ``/models/{group}/predict`` body (records, or columns + data)."""
    require_json(request)
    data = parse_json(body)
    if isinstance(data, dict) and "records" in data:
        return rows_from_records(data["records"]).frame(), None
    if isinstance(data, dict) and "columns" in data and "data" in data:
        return rows_from_split(data["columns"], data["data"]).frame(), None
    raise InvalidInput(
        'Send {"records": [{"column": value, ...}, ...]} or '
        '{"columns": [...], "data": [[...], ...]}.'
    )


def _decode_infer(
    request: Request, body: bytes, columns: list[str]
) -> tuple[pd.DataFrame, _v2.InferRequest]:
    """A v2 request to a group: JSON, or with the binary tensor data extension."""
    infer = _v2_http.read_request(request, body)
    return _v2.request_rows(infer, columns).frame(), infer


async def answer_group(state: ServingState, request: Request, name: str, endpoint: str) -> Response:
    """The HTTP answer of group ``name`` to ``request`` (``predict`` or ``v2_infer`` bodies)."""
    decode = _decode_infer if endpoint == "v2_infer" else _decode_records
    scored = await score_group(state, name, endpoint, request.headers, request, read_body, decode)
    group = scored.group
    headers = {
        "X-Shipyard-Model": name,
        "X-Shipyard-Version": str(group.revision),
        MEMBERS_HEADER: members_text(scored.versions),
    }
    if endpoint == "v2_infer":
        body, more, kind = _v2_http.encode_response(infer_answer(scored), scored.extra)
        return Response(body, 200, headers | more, kind)
    labels, proba, classes = scored.labels, scored.proba, scored.classes
    answer: dict[str, Any] = {
        "model": name,
        "version": group.revision,
        "members": scored.versions,
        "prediction_ids": scored.ids,
        "predictions": json_floats(labels) if labels.dtype.kind == "f" else labels.tolist(),
    }
    if proba is not None and classes is not None:
        answer["classes"] = classes
        answer["probabilities"] = json_floats(np.asarray(proba, dtype=np.float64))
    return Response(orjson.dumps(answer), 200, headers, "application/json")


def _log_group(
    state: ServingState,
    group: Group,
    frame: pd.DataFrame,
    labels: np.ndarray,
    proba: np.ndarray | None,
    classes: list[Any] | None,
    ids: list[str],
    seconds: float,
    versions: dict[str, int],
    use: dict[str, Any],
) -> None:
    """One record per row under the group's name, with every member's version and the
    request's usage (``use``: caller, team, compute_ms, request_rows)."""
    now = time.time()
    columns = [str(c) for c in frame.columns]
    rows = frame.to_numpy(object).tolist()
    predicted = labels.tolist()
    records = []
    for i, pid in enumerate(ids):
        record: dict[str, Any] = {
            "prediction_id": pid,
            "ts": now,
            "model": group.name,
            "version": group.revision,
            "arm": GROUP_ARM,
            "latency_ms": seconds * 1000,
            "inputs": dict(zip(columns, rows[i], strict=True)),
            "prediction": predicted[i],
            "members": versions,
            **use,
        }
        if proba is not None and classes is not None:
            record["proba"] = {str(c): float(p) for c, p in zip(classes, proba[i], strict=True)}
        records.append(record)
    state.sink.append(records)
