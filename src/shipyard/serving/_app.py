"""``create_app(store)``: the FastAPI application serving registered models.

Routes (``{v}`` is a version number; without it the served alias answers)::

    GET  /v2  /v2/health/live  /v2/health/ready              Open Inference Protocol v2
    GET  /v2/models/{name}[/versions/{v}][/ready]
    POST /v2/models/{name}[/versions/{v}]/infer
    POST /models/{name}[/versions/{v}]/predict               plain JSON records or split
    GET  /models                                             what is served, and how
    POST /invocations  GET /ping  GET /version               MLflow's scoring protocol
    GET  /metrics                                            Prometheus

With ``settings.grpc_port`` the app's lifespan also runs the protocol's gRPC service
(``_grpc``: ``inference.GRPCInferenceService``) on the same models, tokens, log and metrics.

Scoring and metadata routes need a bearer token (role scorer or admin) unless the settings
turn auth off; health, ``/ping``, ``/version`` and ``/metrics`` are open, for probes and
scrapers. Every error has one JSON shape, ``{"error": "<one sentence>", "code": "<ErrorClass>",
...details}`` (``ShipyardError.to_dict()``; the Open Inference Protocol's ``{"error": message}``
plus the class). ``/openapi.json`` documents every status and content type (``_openapi``).

>>> app = create_app(store, settings=ServeSettings(auth=False))  # doctest: +SKIP
>>> uvicorn.run(app)  # doctest: +SKIP
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import inspect
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import pandas as pd
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException
from starlette.responses import PlainTextResponse, Response

from shipyard.errors import (
    InvalidInput,
    ModelUnavailable,
    NotFound,
    ShipyardError,
    UnsupportedMediaType,
)
from shipyard.predlog import NullSink, PredictionSink
from shipyard.serving import _openapi as doc
from shipyard.serving import _v2, _v2_http
from shipyard.serving._fastroute import RawHeaders, RawResponse, ShipyardAPI, encode_headers
from shipyard.serving._groups import answer_group, group_metadata, is_group
from shipyard.serving._inputs import (
    CSV_TYPES,
    Rows,
    frame_from_columns,
    frame_from_csv,
    media_type,
    parse_json,
    read_body,
    require_json,
    rows_from_records,
    rows_from_rows,
    rows_from_split,
)
from shipyard.serving._learning import is_learner
from shipyard.serving._limits import protect
from shipyard.serving._metrics import CONTENT_TYPE as METRICS_TYPE
from shipyard.serving._routing import Route
from shipyard.serving._runtime import ServedModel, json_floats
from shipyard.serving._scoring import score
from shipyard.serving._scoring import version_number as _version_number
from shipyard.serving._state import ServingState
from shipyard.settings import ServeSettings
from shipyard.store import Store

log = logging.getLogger("shipyard.serving")

VERSION_HEADER = "X-Shipyard-Version"
MODEL_HEADER = "X-Shipyard-Model"
#: How the answering version was chosen: production (the alias), canary, split:<v>, explicit.
ARM_HEADER = "X-Shipyard-Arm"
_JSON = "application/json"
#: How long the gRPC endpoint lets calls in flight finish when the app stops.
_GRPC_GRACE_SECONDS = 5.0
#: The Open Inference Protocol extensions this server speaks (``GET /v2``).
EXTENSIONS = ["binary_tensor_data", "parameters"]

#: decode(request, body, served) -> (raw frame, extra): extra is passed on to encode.
Decode = Callable[[Request, bytes, ServedModel], tuple[Rows | pd.DataFrame, Any]]
#: encode(served, labels, proba, ids, extra) -> the JSON body, or an ``Encoded`` answer.
Encode = Callable[[ServedModel, Any, Any, list[str], Any], Any]


@dataclass(frozen=True)
class Encoded:
    """An answer body that is not plain JSON (the v2 binary tensor data extension)."""

    body: bytes
    media_type: str
    headers: dict[str, str]


def create_app(
    store: Store,
    *,
    settings: ServeSettings | None = None,
    prediction_log: PredictionSink | None = None,
    own_resources: bool = False,
) -> ShipyardAPI:
    """A FastAPI app serving ``store``'s models as ``settings`` say.

    Models load when the app starts (its lifespan) and follow the registry's aliases from
    then on. ``prediction_log`` receives a record per prediction and per refused request
    (default: none kept). With ``own_resources`` the app closes the log and the store on
    shutdown; otherwise the caller does.
    """
    state = ServingState(
        store, settings or ServeSettings(), prediction_log or NullSink(), own_resources
    )

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await state.pool.start()
        state.metrics.start()
        resuming = state.resume_learners()
        grpc_server = None
        try:
            if state.settings.grpc_port is not None:
                from shipyard.serving._grpc import start_grpc  # grpc loads only when used

                grpc_server = await start_grpc(state, shipyard_version)
            yield
        finally:
            if resuming is not None:
                resuming.cancel()  # a replay under way finishes in its thread; none starts
            if grpc_server is not None:
                await grpc_server.stop(_GRPC_GRACE_SECONDS)
            await state.pool.stop()
            state.metrics.close()
            await state.gate.close()
            if state.own_resources:
                state.sink.close()
                state.store.close()

    from importlib.metadata import version  # not the facade: serving sits below it

    shipyard_version = version("shipyard")
    app = ShipyardAPI(
        title="Shipyard model server",
        version=shipyard_version,
        lifespan=lifespan,
        description="Open Inference Protocol v2, plain JSON and MLflow scoring routes.",
        # FastAPI's /docs and /redoc pages load their scripts from a CDN; Shipyard runs
        # offline, so only the schema itself is served (/openapi.json).
        docs_url=None,
        redoc_url=None,
        **_no_telemetry(),
    )
    app.state.serving = state
    _document_errors_truthfully(app)
    _add_error_handlers(app)
    _add_health_routes(app, shipyard_version)
    _add_scoring_routes(app)
    return protect(app, state.settings)


def _no_telemetry() -> dict[str, Any]:
    """Turn off FastAPI's built-in OpenTelemetry hooks (FastAPI >= 0.165 has them).

    They cost time on every request and log exception messages, which can quote inputs;
    ``/metrics`` is this server's telemetry.
    """
    if "telemetry" not in inspect.signature(FastAPI.__init__).parameters:
        return {}
    off = ("tracing", "metrics", "logs", "operation_spans", "auto_configure")
    return {"telemetry": dict.fromkeys(off, False)}


def _document_errors_truthfully(app: FastAPI) -> None:
    """The app's OpenAPI document without FastAPI's 422 answers this server never gives."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = doc.drop_unused_validation_errors(build())
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


# -- errors --------------------------------------------------------------------------------


def error_response(exc: ShipyardError) -> Response:
    headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else None
    if exc.status == 429 and "retry_after" in exc.details:
        headers = {"Retry-After": str(exc.details["retry_after"])}
    return Response(orjson.dumps(exc.to_dict()), exc.status, headers, _JSON)


def _add_error_handlers(app: FastAPI) -> None:
    async def shipyard_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, ShipyardError)
        return error_response(exc)

    async def validation_error(request: Request, exc: Exception) -> Response:
        # FastAPI's own message quotes the input; ours names the location only.
        assert isinstance(exc, RequestValidationError)
        where = sorted({".".join(str(p) for p in e.get("loc", ())) for e in exc.errors()})
        return error_response(InvalidInput(f"Invalid request parameters: {', '.join(where)}."))

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        kinds = {404: "NotFound", 405: "MethodNotAllowed"}
        body = {"error": str(exc.detail), "code": kinds.get(exc.status_code, "HTTPError")}
        return Response(orjson.dumps(body), exc.status_code, exc.headers, _JSON)

    async def unexpected(request: Request, exc: Exception) -> Response:
        log.exception("Unexpected error on %s %s", request.method, request.url.path)
        body = {"error": "The server failed; see its log.", "code": "InternalError"}
        return Response(orjson.dumps(body), 500, None, _JSON)

    app.add_exception_handler(ShipyardError, shipyard_error)
    app.add_exception_handler(RequestValidationError, validation_error)
    app.add_exception_handler(HTTPException, http_error)
    app.add_exception_handler(Exception, unexpected)


# -- health and metadata -------------------------------------------------------------------


def _json(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(orjson.dumps(body), status, headers, _JSON)


def _state(request: Request) -> ServingState:
    state: ServingState = request.app.state.serving
    return state


def _traffic_listing(route: Route | None, served: ServedModel | None) -> dict[str, Any] | None:
    """The traffic policy this server applies to a model (``None``: the alias answers all).

    Each arm says the version answering now: an arm on the served alias shows its version.
    """
    if route is None:
        return None
    policy = route.policy
    base = served.version if served is not None else None
    arms = [
        {
            "label": arm.label,
            "version": base if arm.version is None else arm.version,
            "alias": arm.version is None,
            "weight": spec.weight,
        }
        for arm, spec in zip(route.arms, policy.arms, strict=True)
    ]
    return {
        "policy_id": policy.id,
        "kind": policy.kind,
        "arms": arms,
        "sticky": policy.sticky,
        "shadow": policy.shadow,
        "since": policy.created_at.isoformat(),
        "by": policy.created_by,
        "summary": policy.describe(),
    }


def _for_path(
    path: str, handler: Callable[[Request, str, str | None], Awaitable[Response]]
) -> Callable[..., Awaitable[Response]]:
    """``handler`` as FastAPI should see it on ``path``: without ``{version}`` in the path,
    a ``(request, name)`` endpoint, so that no ``?version=`` query parameter is read or
    documented (the alias answers)."""
    if "{version}" in path:
        return handler

    async def at_alias(request: Request, name: str) -> Response:
        return await handler(request, name, None)

    return at_alias


def _add_health_routes(app: FastAPI, server_version: str) -> None:
    @app.get("/v2", tags=["v2"], summary="Server metadata", responses=doc.SERVER_METADATA)
    async def server_metadata() -> Response:
        return _json({"name": "shipyard", "version": server_version, "extensions": EXTENSIONS})

    @app.get("/v2/health/live", tags=["v2"], summary="Server live", responses=doc.LIVE)
    async def live() -> Response:
        return _json({"live": True})

    @app.get(
        "/v2/health/ready",
        tags=["v2"],
        summary="Server ready (all models)",
        responses=doc.SERVER_READY,
    )
    async def ready(request: Request) -> Response:
        pool = _state(request).pool
        models: dict[str, dict[str, Any]] = {}
        for name, slot in sorted(pool.slots.items()):
            if slot.served is not None:
                models[name] = {"ready": True, "version": str(slot.served.version)}
            else:
                reason = slot.error.message if slot.error is not None else "loading"
                models[name] = {"ready": False, "reason": reason}
        # The protocol reads 200 as true and a 4xx as false.
        return _json({"ready": pool.ready, "models": models}, 200 if pool.ready else 400)

    async def model_ready(request: Request, name: str, version: str | None = None) -> Response:
        state = _state(request)
        await state.gate.check(request)
        number = _version_number(name, version)
        try:
            if is_group(state.pool, name, version):
                body = await group_metadata(state, name)
                return _json({"name": name, "ready": True, "version": body["versions"][0]})
            served = await state.pool.get(name, number)
        except NotFound:
            raise
        except ShipyardError as exc:
            return _json({"name": name, "ready": False, "reason": exc.message}, 400)
        return _json({"name": name, "ready": True, "version": str(served.version)})

    async def model_metadata(request: Request, name: str, version: str | None = None) -> Response:
        state = _state(request)
        await state.gate.check(request)
        if is_group(state.pool, name, version):
            return _json(await group_metadata(state, name))
        served = await state.pool.get(name, _version_number(name, version))
        body = _v2.model_metadata(served)
        slot = state.pool.slots.get(name)
        if slot is not None and slot.switch_error and version is None:
            body["parameters"] = {"switch_error": slot.switch_error}
        return _json(body, headers={VERSION_HEADER: str(served.version)})

    for path, endpoint, summary, answers in (
        ("/v2/models/{name}/ready", model_ready, "Model ready", doc.MODEL_READY),
        (
            "/v2/models/{name}/versions/{version}/ready",
            model_ready,
            "Model version ready",
            doc.MODEL_READY,
        ),
        ("/v2/models/{name}", model_metadata, "Model metadata", doc.MODEL_METADATA),
        (
            "/v2/models/{name}/versions/{version}",
            model_metadata,
            "Model version metadata",
            doc.MODEL_METADATA,
        ),
    ):
        app.add_api_route(
            path,
            _for_path(path, endpoint),
            methods=["GET"],
            tags=["v2"],
            summary=summary,
            responses=answers,
        )

    @app.get("/models", tags=["shipyard"], summary="Served models", responses=doc.MODELS)
    async def served_models(request: Request) -> Response:
        state = _state(request)
        await state.gate.check(request)
        out = []
        for name, slot in sorted(state.pool.slots.items()):
            served = slot.served
            out.append(
                {
                    "name": name,
                    "version": served.version if served else None,
                    "runtime": served.runtime if served else None,
                    "runtime_reason": served.runtime_reason if served else None,
                    "error": slot.error.message if slot.error and not served else None,
                    "switch_error": slot.switch_error,
                    "traffic": _traffic_listing(slot.route, served),
                    "policy_error": slot.policy_error,
                }
            )
        groups = [
            {
                "name": name,
                "revision": served_group.group.revision,
                "combine": served_group.group.combine,
                "members": [str(m) for m in served_group.group.members],
                "summary": served_group.group.describe(),
                "error": served_group.error or served_group.incompatible,
            }
            for name, served_group in sorted(state.pool.groups.groups.items())
        ]
        return _json({"alias": state.settings.alias, "models": out, "groups": groups})

    @app.get(
        "/ping",
        tags=["mlflow"],
        summary="MLflow health check",
        response_class=PlainTextResponse,
        responses=doc.PING,
    )
    async def ping(request: Request) -> Response:
        ok = _state(request).pool.ready
        return Response(b"\n", 200 if ok else 503, media_type="text/plain")

    @app.get(
        "/version",
        tags=["mlflow"],
        summary="Server version",
        response_class=PlainTextResponse,
        responses=doc.VERSION,
    )
    async def version() -> Response:
        return Response(server_version.encode(), media_type="text/plain")

    @app.get(
        "/metrics",
        tags=["shipyard"],
        summary="Prometheus metrics",
        response_class=PlainTextResponse,
        responses=doc.METRICS,
    )
    async def metrics(request: Request) -> Response:
        return Response(_state(request).metrics.render(), media_type=METRICS_TYPE)


# -- scoring -------------------------------------------------------------------------------


async def score_request(
    request: Request,
    name: str,
    version: str | None,
    endpoint: str,
    decode: Decode,
    encode: Encode,
) -> Response:
    """The one path every scoring route takes: ``_scoring.score``, then the HTTP answer."""
    state = _state(request)
    served, arm, labels, proba, ids, extra = await score(
        state, name, version, endpoint, request.headers, request, read_body, decode
    )
    headers = _answer_headers(served.name, served.version, arm)
    answer = encode(served, labels, proba, ids, extra)
    if isinstance(answer, Encoded):
        more = encode_headers(answer.headers)
        kind = answer.media_type.encode("latin-1")
        return RawResponse(answer.body, _with_body(headers + more, answer.body, kind))
    body = orjson.dumps(answer)
    return RawResponse(body, _with_body(headers, body, _JSON_BYTES))


_JSON_BYTES = _JSON.encode()


@functools.lru_cache(maxsize=1024)
def _answer_headers(model: str, version: int, arm: str) -> RawHeaders:
    """Who answered, as headers: encoded once per model version and arm, not per answer.

    Callers copy the list (``+``) before adding to it: the cached one is shared.
    """
    return encode_headers({VERSION_HEADER: str(version), MODEL_HEADER: model, ARM_HEADER: arm})


def _with_body(headers: RawHeaders, body: bytes, media_type: bytes) -> RawHeaders:
    """``headers`` then Content-Length and Content-Type, in the order ``Response`` puts them."""
    return [*headers, (b"content-length", b"%d" % len(body)), (b"content-type", media_type)]


def _decode_predict(
    request: Request, body: bytes, served: ServedModel
) -> tuple[Rows | pd.DataFrame, Any]:
    require_json(request)
    data = parse_json(body)
    if isinstance(data, dict) and "records" in data:
        return rows_from_records(data["records"]), None
    if isinstance(data, dict) and "columns" in data and "data" in data:
        return rows_from_split(data["columns"], data["data"]), None
    raise InvalidInput(
        'Send {"records": [{"column": value, ...}, ...]} or '
        '{"columns": [...], "data": [[...], ...]}.'
    )


def _encode_predict(
    served: ServedModel, labels: Any, proba: Any, ids: list[str], extra: Any
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "model": served.name,
        "version": served.version,
        "prediction_ids": ids,
        "predictions": json_floats(labels) if labels.dtype.kind == "f" else labels.tolist(),
    }
    if proba is not None and served.classes is not None:
        body["classes"] = served.classes
        body["probabilities"] = json_floats(proba)
    return body


def _decode_infer(
    request: Request, body: bytes, served: ServedModel
) -> tuple[Rows, _v2.InferRequest]:
    infer = _v2_http.read_request(request, body)
    return _v2.request_rows(infer, served.schema.names()), infer


def _encode_infer(
    served: ServedModel, labels: Any, proba: Any, ids: list[str], extra: Any
) -> Encoded:
    response = _v2.infer_response(served, labels, proba, ids, extra)
    body, headers, kind = _v2_http.encode_response(response, extra)
    return Encoded(body, kind, headers)


_MLFLOW_KEYS = ("dataframe_split", "dataframe_records", "instances", "inputs")


def _decode_mlflow(
    request: Request, body: bytes, served: ServedModel
) -> tuple[Rows | pd.DataFrame, Any]:
    kind = media_type(request)
    if kind in CSV_TYPES:
        return frame_from_csv(body), None
    if kind and kind != "application/json":
        raise UnsupportedMediaType(
            f"/invocations reads application/json or text/csv, not '{kind[:100]}'."
        )
    data = parse_json(body)  # MLflow's clients write NaN for a missing value: read as null
    keys = [k for k in _MLFLOW_KEYS if isinstance(data, dict) and k in data]
    if len(keys) != 1:
        raise InvalidInput(
            "Send a JSON object with exactly one of the keys "
            f"{', '.join(_MLFLOW_KEYS)} (MLflow's scoring format), or a CSV body."
        )
    key, value = keys[0], data[keys[0]]
    if key == "dataframe_split":
        if not isinstance(value, dict):
            raise InvalidInput("'dataframe_split' must be an object with 'columns' and 'data'.")
        return rows_from_split(value.get("columns"), value.get("data")), None
    if key == "dataframe_records":
        return rows_from_records(value, where=key), None
    if key == "inputs" and isinstance(value, dict):
        return frame_from_columns(value), None
    return rows_from_rows(value, served.schema.names(), where=key), None


def _encode_mlflow(
    served: ServedModel, labels: Any, proba: Any, ids: list[str], extra: Any
) -> dict[str, Any]:
    return {"predictions": json_floats(labels) if labels.dtype.kind == "f" else labels.tolist()}


def _add_scoring_routes(app: ShipyardAPI) -> None:
    def route(endpoint: str, decode: Decode, encode: Encode) -> Callable[..., Awaitable[Response]]:
        async def handler(request: Request, name: str, version: str | None = None) -> Response:
            state = _state(request)
            if is_group(state.pool, name, version):
                return await answer_group(state, request, name, endpoint)
            return await score_request(request, name, version, endpoint, decode, encode)

        return handler

    scoring = (
        (
            ("/v2/models/{name}/infer", "/v2/models/{name}/versions/{version}/infer"),
            route("v2_infer", _decode_infer, _encode_infer),
            "v2",
            "Model inference (Open Inference Protocol v2)",
            doc.INFER_BODY,
            doc.INFER_OK,
        ),
        (
            ("/models/{name}/predict", "/models/{name}/versions/{version}/predict"),
            route("predict", _decode_predict, _encode_predict),
            "shipyard",
            "Predict from JSON records or columns + data",
            doc.PREDICT_BODY,
            doc.PREDICT_OK,
        ),
    )
    for paths, handler, tag, summary, body, answer in scoring:
        for path in paths:
            app.add_api_route(
                path,
                _for_path(path, handler),
                methods=["POST"],
                tags=[tag],
                summary=summary,
                openapi_extra=body,
                responses={200: answer, **doc.SCORING_ERRORS},
            )
            app.add_fast_route(path, handler)  # the same handler, without FastAPI's layers

    async def invocations(request: Request, model: str | None = None) -> Response:
        state = _state(request)
        name = model or state.settings.default_model or next(iter(sorted(state.pool.slots)), "")
        return await score_request(
            request, name, None, "invocations", _decode_mlflow, _encode_mlflow
        )

    async def feedback(request: Request, name: str) -> Response:
        state = _state(request)
        await state.gate.check(request)
        served = None
        if name not in state.pool.groups:  # a group's labels join its own records
            served = state.pool.current(name)  # 404 for a model not served here
        require_json(request)
        data = parse_json(await read_body(request, state.settings.max_body_bytes))
        items = data.get("labels") if isinstance(data, dict) and "labels" in data else [data]
        if (
            not isinstance(items, list)
            or not items
            or not all(
                isinstance(i, dict) and isinstance(i.get("prediction_id"), str) and "label" in i
                for i in items
            )
        ):
            raise InvalidInput(
                'Send {"prediction_id": "...", "label": ...} or {"labels": [{...}, ...]}.'
            )
        record = getattr(state.sink, "record_feedback_frame", None)
        if record is None:
            raise ModelUnavailable(
                "This server keeps no prediction log, so labels cannot be joined to "
                "predictions; start it with its prediction log on."
            )
        learns = served is not None and is_learner(served)
        if learns:  # a label the learner cannot take is refused before it is recorded
            assert served is not None
            state.learning.check_labels(served, [i["label"] for i in items])
        frame = pd.DataFrame(
            {
                "prediction_id": [i["prediction_id"] for i in items],
                "label": pd.Series([i["label"] for i in items], dtype=object),
            }
        )
        # A learner learns labels in the order they are recorded: one request at a time.
        async with state.learning.turn(name) if learns else contextlib.nullcontext():
            result = await asyncio.to_thread(record, name, frame)
            if result.matched == 0:
                what = "this id" if len(items) == 1 else "these ids"
                raise NotFound(f"No logged prediction of '{name}' has {what}.")
            body: dict[str, Any] = {
                "matched": result.matched,
                "unknown": result.unknown,
                "unknown_ids": result.unknown_ids,
            }
            root = getattr(state.sink, "root", None)
            if learns and root is not None:
                assert served is not None
                unknown = set(result.unknown_ids)
                known = [(i["prediction_id"], i["label"]) for i in items]
                known = [(pid, y) for pid, y in known if pid not in unknown]
                switches = state.pool.slots[name].switches
                learned = await state.learning.learn(served, switches, Path(root), known)
                body["learning"] = learned.to_json()
        return _json(body)

    app.add_api_route(
        "/models/{name}/feedback",
        feedback,
        methods=["POST"],
        tags=["shipyard"],
        summary="Record ground-truth labels of logged predictions",
        openapi_extra=doc.FEEDBACK_BODY,
        responses={200: doc.FEEDBACK_OK, **doc.FEEDBACK_ERRORS},
    )

    app.add_api_route(
        "/invocations",
        invocations,
        methods=["POST"],
        tags=["mlflow"],
        summary="MLflow scoring protocol (?model= picks the model; default: the first)",
        openapi_extra=doc.INVOCATIONS_BODY,
        responses={200: doc.INVOCATIONS_OK, **doc.SCORING_ERRORS},
    )

    async def invocations_fast(request: Request, name: str, version: str | None) -> Response:
        return await invocations(request)

    app.add_fast_route("/invocations", invocations_fast, query=False)  # ?model=: FastAPI parses
