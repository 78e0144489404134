"""The Open Inference Protocol over gRPC: ``inference.GRPCInferenceService`` beside the HTTP app.

``create_app`` starts it in its lifespan when ``ServeSettings.grpc_port`` is set
(``shipyard serve --grpc-port 8001``). It shares the app's state: the same models, token
gate, traffic policies, metrics and prediction log, and the same scoring path
(``_scoring.score``) as the HTTP routes, so a gRPC prediction is authorized (the bearer
token in the ``authorization`` metadata), routed (a sticky header comes as metadata of that
name), rate-limited per token, counted (endpoint ``grpc_infer``) and logged exactly like a
REST one. A model group (``_groups``) answers ``ModelReady``, ``ModelMetadata`` and
``ModelInfer`` under its name as over HTTP, through the same ``score_group``.

Errors are the call's status: the code mapped from Shipyard's error tree (``_CODES``) and the
error's one-sentence message as its details, with the error class in the trailing metadata
``shipyard-error`` (and, over a rate limit, ``retry-after``: the seconds to wait, as HTTP's
``Retry-After``). Answers carry ``x-shipyard-version``, ``x-shipyard-model`` and
``x-shipyard-arm`` in their trailing metadata, as the HTTP answers carry those headers; a
group's also ``x-shipyard-members``.

>>> server = await start_grpc(state, "0.1.0")  # doctest: +SKIP
>>> await server.stop(1)  # doctest: +SKIP
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable
from typing import Any, TypeVar

import grpc

from shipyard.errors import (
    AlreadyExists,
    IntegrityError,
    InvalidInput,
    InvalidTransition,
    MissingDependency,
    ModelUnavailable,
    NotFound,
    PayloadTooLarge,
    PermissionDenied,
    SchemaOutOfDate,
    ShipyardError,
    StoreUnavailable,
    TooManyRequests,
    Unauthorized,
)
from shipyard.serving import _v2
from shipyard.serving._groups import (
    GROUP_ARM,
    group_metadata,
    infer_answer,
    is_group,
    members_text,
    score_group,
)
from shipyard.serving._grpc_raw import raw_rows
from shipyard.serving._grpc_tensors import infer_request, infer_response
from shipyard.serving._inputs import Rows, _too_large
from shipyard.serving._proto import grpc_predict_v2_pb2 as pb
from shipyard.serving._proto import grpc_predict_v2_pb2_grpc as pb_grpc
from shipyard.serving._runtime import ServedModel
from shipyard.serving._scoring import score, version_number
from shipyard.serving._state import ServingState
from shipyard.serving._v2 import InferRequest

log = logging.getLogger("shipyard.serving")

ENDPOINT = "grpc_infer"
#: The protocol extensions of the gRPC endpoint (binary tensor data is HTTP's own: gRPC has
#: raw contents in the protocol itself).
EXTENSIONS = ["parameters"]
#: gRPC's status for each error class (the nearest class in an error's MRO wins).
_CODES: dict[type[ShipyardError], grpc.StatusCode] = {
    PayloadTooLarge: grpc.StatusCode.RESOURCE_EXHAUSTED,
    TooManyRequests: grpc.StatusCode.RESOURCE_EXHAUSTED,
    InvalidInput: grpc.StatusCode.INVALID_ARGUMENT,
    Unauthorized: grpc.StatusCode.UNAUTHENTICATED,
    PermissionDenied: grpc.StatusCode.PERMISSION_DENIED,
    NotFound: grpc.StatusCode.NOT_FOUND,
    AlreadyExists: grpc.StatusCode.ALREADY_EXISTS,
    InvalidTransition: grpc.StatusCode.FAILED_PRECONDITION,
    IntegrityError: grpc.StatusCode.DATA_LOSS,
    ModelUnavailable: grpc.StatusCode.UNAVAILABLE,
    SchemaOutOfDate: grpc.StatusCode.FAILED_PRECONDITION,
    StoreUnavailable: grpc.StatusCode.UNAVAILABLE,
    MissingDependency: grpc.StatusCode.UNIMPLEMENTED,
}
#: The hard limit gRPC itself enforces, as a multiple of ``max_body_bytes``: a message between
#: the two is refused by ``_read`` with Shipyard's sentence, counted and logged like an HTTP
#: body over the limit; beyond it, gRPC refuses before anything is read.
_HARD_LIMIT_FACTOR = 2

R = TypeVar("R")


def status_code(exc: ShipyardError) -> grpc.StatusCode:
    """The gRPC status code of a Shipyard error."""
    for cls in type(exc).__mro__:
        code = _CODES.get(cls)
        if code is not None:
            return code
    return grpc.StatusCode.INTERNAL


async def start_grpc(state: ServingState, server_version: str) -> grpc.aio.Server:
    """A started ``grpc.aio`` server on ``settings.grpc_host:grpc_port`` answering for
    ``state``'s models; the caller stops it (``await server.stop(grace)``)."""
    settings = state.settings
    limit = settings.max_body_bytes * _HARD_LIMIT_FACTOR
    server = grpc.aio.server(
        options=[
            ("grpc.max_receive_message_length", limit),
            ("grpc.max_send_message_length", -1),
        ]
    )
    pb_grpc.add_GRPCInferenceServiceServicer_to_server(
        InferenceService(state, server_version), server
    )
    address = f"{settings.grpc_host}:{settings.grpc_port}"
    try:
        server.add_insecure_port(address)
    except RuntimeError as exc:
        raise ModelUnavailable(
            f"The gRPC endpoint cannot listen on {address} (in use or not an address of this "
            "machine); pick another --grpc-port."
        ) from exc
    await server.start()
    return server


class Metadata(dict[str, str]):
    """gRPC metadata as request headers: keys are lower case, lookups ignore case."""

    def get(self, key: str, default: Any = None) -> Any:
        return super().get(key.lower(), default)


def _metadata(context: grpc.aio.ServicerContext) -> Metadata:
    pairs = context.invocation_metadata() or ()
    return Metadata((k, v) for k, v in pairs if isinstance(v, str))


class InferenceService(pb_grpc.GRPCInferenceServiceServicer):
    """The six RPCs of the protocol, over the app's ``ServingState``."""

    def __init__(self, state: ServingState, server_version: str) -> None:
        self.state = state
        self.server_version = server_version

    async def ServerLive(self, request: Any, context: grpc.aio.ServicerContext) -> Any:
        return pb.ServerLiveResponse(live=True)

    async def ServerReady(self, request: Any, context: grpc.aio.ServicerContext) -> Any:
        return pb.ServerReadyResponse(ready=self.state.pool.ready)

    async def ServerMetadata(self, request: Any, context: grpc.aio.ServicerContext) -> Any:
        return pb.ServerMetadataResponse(
            name="shipyard", version=self.server_version, extensions=EXTENSIONS
        )

    async def ModelReady(self, request: Any, context: grpc.aio.ServicerContext) -> Any:
        return await _answer(context, self._model_ready(request, context))

    async def ModelMetadata(self, request: Any, context: grpc.aio.ServicerContext) -> Any:
        return await _answer(context, self._model_metadata(request, context))

    async def ModelInfer(self, request: Any, context: grpc.aio.ServicerContext) -> Any:
        return await _answer(context, self._model_infer(request, context))

    async def _model_ready(self, request: Any, context: grpc.aio.ServicerContext) -> Any:
        state = self.state
        await state.gate.check_headers(_metadata(context))
        version = request.version or None
        try:
            if is_group(state.pool, request.name, version):
                await state.pool.groups.members(request.name)  # each member can answer
            else:
                await state.pool.get(request.name, version_number(request.name, version))
        except NotFound:
            raise
        except ShipyardError:
            return pb.ModelReadyResponse(ready=False)
        return pb.ModelReadyResponse(ready=True)

    async def _model_metadata(self, request: Any, context: grpc.aio.ServicerContext) -> Any:
        state = self.state
        await state.gate.check_headers(_metadata(context))
        version = request.version or None
        if is_group(state.pool, request.name, version):
            meta = await group_metadata(state, request.name)
            members = members_text(meta["parameters"]["members"])
            context.set_trailing_metadata((("x-shipyard-members", members),))
        else:
            served = await state.pool.get(request.name, version_number(request.name, version))
            meta = _v2.model_metadata(served)
        tensor = pb.ModelMetadataResponse.TensorMetadata
        return pb.ModelMetadataResponse(
            name=meta["name"],
            versions=meta["versions"],
            platform=meta["platform"],
            inputs=[tensor(**t) for t in meta["inputs"]],
            outputs=[tensor(**t) for t in meta["outputs"]],
        )

    async def _model_infer(self, request: Any, context: grpc.aio.ServicerContext) -> Any:
        if is_group(self.state.pool, request.model_name, request.model_version or None):
            return await self._group_infer(request, context)
        served, arm, labels, proba, ids, decoded = await score(
            self.state,
            request.model_name,
            request.model_version or None,
            ENDPOINT,
            _metadata(context),
            request,
            _read,
            _decode,
        )
        context.set_trailing_metadata(
            (
                ("x-shipyard-version", str(served.version)),
                ("x-shipyard-model", served.name),
                ("x-shipyard-arm", arm),
            )
        )
        return infer_response(_v2.infer_response(served, labels, proba, ids, decoded))

    async def _group_infer(self, request: Any, context: grpc.aio.ServicerContext) -> Any:
        """``ModelInfer`` for a model group: scored and logged as over HTTP (``score_group``);
        the members' versions in the trailing metadata ``x-shipyard-members`` and, as
        ``churn=1,value=2`` (a parameter holds no map), in ``parameters.members``."""
        scored = await score_group(
            self.state,
            request.model_name,
            ENDPOINT,
            _metadata(context),
            request,
            _read,
            _decode_for_group,
        )
        members = members_text(scored.versions)
        context.set_trailing_metadata(
            (
                ("x-shipyard-version", str(scored.group.revision)),
                ("x-shipyard-model", scored.group.name),
                ("x-shipyard-arm", GROUP_ARM),
                ("x-shipyard-members", members),
            )
        )
        response = infer_answer(scored)
        response.parameters["members"] = members
        return infer_response(response)


async def _read(request: Any, limit: int) -> Any:
    if request.ByteSize() > limit:
        raise _too_large(limit)
    return request


def _decode(message: Any, body: Any, served: ServedModel) -> tuple[Rows, InferRequest]:
    plain = raw_rows(message)  # the usual request, the short way
    if plain is not None:
        return plain
    request = infer_request(message)
    return _v2.request_rows(request, served.schema.names()), request


def _decode_for_group(message: Any, body: Any, columns: list[str]) -> tuple[Any, InferRequest]:
    request = infer_request(message)
    return _v2.request_rows(request, columns).frame(), request


async def _answer(context: grpc.aio.ServicerContext, call: Awaitable[R]) -> R:
    """``call``'s answer, or the call aborted with the status of the error it raised."""
    try:
        return await call
    except ShipyardError as exc:
        trailing: tuple[tuple[str, str], ...] = (("shipyard-error", type(exc).__name__),)
        if "retry_after" in exc.details:  # TooManyRequests: HTTP's Retry-After header
            trailing += (("retry-after", str(exc.details["retry_after"])),)
        await context.abort(status_code(exc), exc.message, trailing)
    except Exception:
        log.exception("Unexpected error in a gRPC call")
        await context.abort(grpc.StatusCode.INTERNAL, "The server failed; see its log.")
    raise AssertionError("context.abort returned")  # pragma: no cover: it always raises
