"""The scoring path every transport shares: auth, model, body, routing, schema, score, log.

HTTP (``_app.score_request``) and gRPC (``_grpc``) differ only in how a request arrives and
how the answer leaves; between the two, ``score`` does the same thing for both, so a
prediction is authorized, routed by the traffic policy, counted and logged identically
whichever way it came. A transport hands ``score`` its request (``source``) with two
functions: ``read(source, limit)`` gets the body within the server's size limit, and
``decode(source, body, served)`` turns it into rows for the model that will answer.

Passing the functions and their argument separately (rather than a closure over the request)
keeps the HTTP path free of a per-request allocation: it is the benchmarked hot path.

>>> scored = await score(state, "churn", None, "predict", request.headers,
...                      request, read_body, decode)  # doctest: +SKIP
>>> scored.labels, scored.ids  # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from time import perf_counter
from typing import Any, NamedTuple, TypeVar

import numpy as np
import pandas as pd

from shipyard.errors import NotFound, ShipyardError
from shipyard.serving._auth import Caller
from shipyard.serving._inputs import Rows, check_rows
from shipyard.serving._routing import ShadowRecorder
from shipyard.serving._runtime import ServedModel
from shipyard.serving._state import ServingState, new_ids

S = TypeVar("S")  # what the transport received: an HTTP request, a gRPC message
B = TypeVar("B")  # the body ``read`` returns and ``decode`` reads

#: read(source, limit) -> the body; refuses (PayloadTooLarge) one over ``limit`` bytes.
Read = Callable[[S, int], Awaitable[B]]
#: decode(source, body, served) -> (raw rows or frame, extra): extra is for the encoder.
Decode = Callable[[S, B, ServedModel], tuple[Rows | pd.DataFrame, Any]]


class Scored(NamedTuple):
    """One answered request: who answered (and how it was chosen) and what it said."""

    served: ServedModel
    arm: str
    labels: np.ndarray
    proba: np.ndarray | None
    ids: list[str]
    extra: Any


def version_number(name: str, version: str | None) -> int | None:
    """A version given as text (a URL segment, a gRPC field) as a number; ``None``: the alias."""
    if version is None:
        return None
    if not (version.isascii() and version.isdigit()) or int(version) < 1:
        raise NotFound(f"Model '{name[:128]}' has no version '{version[:32]}'.")
    return int(version)


async def score(
    state: ServingState,
    name: str,
    version: str | None,
    endpoint: str,
    headers: Mapping[str, str],
    source: S,
    read: Read[S, B],
    decode: Decode[S, B],
) -> Scored:
    """Authorize, find the model, read and decode the body, route, coerce, score and log.

    ``headers`` carries the bearer token (``authorization``) and the traffic policy's sticky
    header; lower-case keys. A ``ShipyardError`` is counted (and, once the caller is
    authorized and the model known, logged as a rejection) before it propagates.
    """
    start = perf_counter()
    # The "arm" of the log: how the answering version was chosen.
    arm = state.settings.alias if version is None else "explicit"
    served: ServedModel | None = None
    shadow: ServedModel | None = None
    caller: Caller | None = None
    authorized = False
    try:
        caller = await state.gate.check_headers(headers)
        authorized = True
        served = await state.pool.get(name, version_number(name, version))
        body = await read(source, state.settings.max_body_bytes)
        raw, extra = decode(source, body, served)
        check_rows(len(raw), state.settings.max_batch_rows)
        if version is None:  # the traffic policy picks; explicit versions bypass it
            served, arm, shadow = state.pool.route_request(name, headers, raw)
        frame = served.coerce(raw)
        # The model's compute time, charged to the caller (``shipyard usage``); with a
        # micro-batching runtime it includes the wait for the batch.
        computing = perf_counter()
        labels, proba = await served.score(frame)
        compute = perf_counter() - computing
    except ShipyardError as exc:
        seconds = perf_counter() - start
        logged = authorized and served is not None
        state.refused(name, served, endpoint, exc, seconds, arm, log=logged, caller=caller)
        raise
    ids = new_ids(len(raw))
    seconds = perf_counter() - start
    state.scored(served, endpoint, raw, labels, proba, ids, seconds, arm, caller, compute)
    if shadow is not None:  # scored off the request path; never changes this answer
        state.pool.mirror.submit(shadow, raw, _shadow_recorder(state, endpoint, raw, ids))
    return Scored(served, arm, labels, proba, ids, extra)


def _shadow_recorder(
    state: ServingState, endpoint: str, raw: Rows | pd.DataFrame, ids: list[str]
) -> ShadowRecorder:
    """Logs a shadow's answers under the answered request's prediction ids (arm ``shadow``),
    so the labels sent for those ids score the shadow version too."""

    def record(shadow: ServedModel, labels: Any, proba: Any, seconds: float) -> None:
        state.scored(shadow, endpoint, raw, labels, proba, ids, seconds, "shadow")

    return record
