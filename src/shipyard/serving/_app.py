"""``create_app(store)``: the FastAPI application serving registered models.

Routes (``{v}`` is a version number; without it the served alias answers)::

    GET  /v2  /v2/health/live  /v2/health/ready              Open Inference Protocol v2
    GET  /v2/models/{name}[/versions/{v}][/ready]
    POST /v2/models/{name}[/versions/{v}]/infer
    POST /models/{name}[/versions/{v}]/predict               plain JSON records or split
    GET  /models                                             what is served, and how
    POST /invocations  GET /ping  GET /version               MLflow's scoring protocol
    GET  /metrics                                            Prometheus

Scoring and metadata routes need a bearer token (role scorer or admin) unless the settings
turn auth off; health, ``/ping``, ``/version`` and ``/metrics`` are open, for probes and
scrapers. Every error has one JSON shape, ``ShipyardError.to_dict()``.

>>> app = create_app(store, settings=ServeSettings(auth=False))  # doctest: +SKIP
>>> uvicorn.run(app)  # doctest: +SKIP
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from time import perf_counter
from typing import Any

import orjson
import pandas as pd
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException
from starlette.responses import Response

from shipyard.errors import (
    InvalidInput,
    ModelUnavailable,
    NotFound,
    ShipyardError,
    UnsupportedMediaType,
)
from shipyard.predlog import NullSink, PredictionSink
from shipyard.serving import _v2
from shipyard.serving._fastroute import ShipyardAPI
from shipyard.serving._inputs import (
    CSV_TYPES,
    Rows,
    check_rows,
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
from shipyard.serving._metrics import CONTENT_TYPE as METRICS_TYPE
from shipyard.serving._openapi import FEEDBACK_BODY, INFER_BODY, INVOCATIONS_BODY, PREDICT_BODY
from shipyard.serving._routing import Route, ShadowRecorder
from shipyard.serving._runtime import ServedModel, json_floats
from shipyard.serving._state import ServingState, new_ids
from shipyard.settings import ServeSettings
from shipyard.store import Store

log = logging.getLogger("shipyard.serving")

VERSION_HEADER = "X-Shipyard-Version"
MODEL_HEADER = "X-Shipyard-Model"
#: How the answering version was chosen: production (the alias), canary, split:<v>, explicit.
ARM_HEADER = "X-Shipyard-Arm"
_JSON = "application/json"

#: decode(request, body, served) -> (raw frame, extra): extra is passed on to encode.
Decode = Callable[[Request, bytes, ServedModel], tuple[Rows | pd.DataFrame, Any]]
#: encode(served, labels, proba, ids, extra) -> the JSON body.
Encode = Callable[[ServedModel, Any, Any, list[str], Any], Any]


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
        try:
            yield
        finally:
            await state.pool.stop()
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
    _add_error_handlers(app)
    _add_health_routes(app, shipyard_version)
    _add_scoring_routes(app)
    return app


def _no_telemetry() -> dict[str, Any]:
    """Turn off FastAPI's built-in OpenTelemetry hooks (FastAPI >= 0.165 has them).

    They cost time on every request and log exception messages, which can quote inputs;
    ``/metrics`` is this server's telemetry.
    """
    if "telemetry" not in inspect.signature(FastAPI.__init__).parameters:
        return {}
    off = ("tracing", "metrics", "logs", "operation_spans", "auto_configure")
    return {"telemetry": dict.fromkeys(off, False)}


# -- errors --------------------------------------------------------------------------------


def error_response(exc: ShipyardError) -> Response:
    headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else None
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
        body = {"error": kinds.get(exc.status_code, "HTTPError"), "message": str(exc.detail)}
        return Response(orjson.dumps(body), exc.status_code, exc.headers, _JSON)

    async def unexpected(request: Request, exc: Exception) -> Response:
        log.exception("Unexpected error on %s %s", request.method, request.url.path)
        body = {"error": "InternalError", "message": "The server failed; see its log."}
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


def _version_number(name: str, version: str | None) -> int | None:
    if version is None:
        return None
    if not (version.isascii() and version.isdigit()) or int(version) < 1:
        raise NotFound(f"Model '{name[:128]}' has no version '{version[:32]}'.")
    return int(version)


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


def _add_health_routes(app: FastAPI, server_version: str) -> None:
    @app.get("/v2", tags=["v2"], summary="Server metadata")
    async def server_metadata() -> Response:
        return _json({"name": "shipyard", "version": server_version, "extensions": []})

    @app.get("/v2/health/live", tags=["v2"], summary="Server live")
    async def live() -> Response:
        return _json({"live": True})

    @app.get("/v2/health/ready", tags=["v2"], summary="Server ready (all models)")
    async def ready(request: Request) -> Response:
        pool = _state(request).pool
        waiting = {
            name: slot.error.message
            for name, slot in pool.slots.items()
            if slot.served is None and slot.error is not None
        }
        # The protocol reads 200 as true and a 4xx as false.
        return _json({"ready": pool.ready, "models": waiting}, 200 if pool.ready else 400)

    async def model_ready(request: Request, name: str, version: str | None = None) -> Response:
        state = _state(request)
        await state.gate.check(request)
        number = _version_number(name, version)
        try:
            served = await state.pool.get(name, number)
        except NotFound:
            raise
        except ShipyardError as exc:
            return _json({"name": name, "ready": False, "reason": exc.message}, 400)
        return _json({"name": name, "ready": True, "version": str(served.version)})

    async def model_metadata(request: Request, name: str, version: str | None = None) -> Response:
        state = _state(request)
        await state.gate.check(request)
        served = await state.pool.get(name, _version_number(name, version))
        body = _v2.model_metadata(served)
        slot = state.pool.slots.get(name)
        if slot is not None and slot.switch_error and version is None:
            body["parameters"] = {"switch_error": slot.switch_error}
        return _json(body, headers={VERSION_HEADER: str(served.version)})

    for path, summary in (
        ("/v2/models/{name}/ready", "Model ready"),
        ("/v2/models/{name}/versions/{version}/ready", "Model version ready"),
    ):
        app.add_api_route(path, model_ready, methods=["GET"], tags=["v2"], summary=summary)
    for path, summary in (
        ("/v2/models/{name}", "Model metadata"),
        ("/v2/models/{name}/versions/{version}", "Model version metadata"),
    ):
        app.add_api_route(path, model_metadata, methods=["GET"], tags=["v2"], summary=summary)

    @app.get("/models", tags=["shipyard"], summary="Served models")
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
        return _json({"alias": state.settings.alias, "models": out})

    @app.get("/ping", tags=["mlflow"], summary="MLflow health check")
    async def ping(request: Request) -> Response:
        ok = _state(request).pool.ready
        return Response(b"\n", 200 if ok else 503, media_type=_JSON)

    @app.get("/version", tags=["mlflow"], summary="Server version")
    async def version() -> Response:
        return Response(server_version.encode(), media_type="text/plain")

    @app.get("/metrics", tags=["shipyard"], summary="Prometheus metrics")
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
    """The one path every scoring route takes: auth, model, body, schema, score, log."""
    state = _state(request)
    start = perf_counter()
    # The "arm" of the log: how the answering version was chosen.
    arm = state.settings.alias if version is None else "explicit"
    served: ServedModel | None = None
    shadow: ServedModel | None = None
    authorized = False
    try:
        await state.gate.check(request)
        authorized = True
        served = await state.pool.get(name, _version_number(name, version))
        body = await read_body(request, state.settings.max_body_bytes)
        raw, extra = decode(request, body, served)
        check_rows(len(raw), state.settings.max_batch_rows)
        if version is None:  # the traffic policy picks; explicit-version URLs bypass it
            served, arm, shadow = state.pool.route_request(name, request.headers, raw)
        frame = served.coerce(raw)
        labels, proba = await served.score(frame)
    except ShipyardError as exc:
        seconds = perf_counter() - start
        logged = authorized and served is not None
        state.refused(name, served, endpoint, exc, seconds, arm, log=logged)
        raise
    ids = new_ids(len(raw))
    state.scored(served, endpoint, raw, labels, proba, ids, perf_counter() - start, arm)
    if shadow is not None:  # scored off the request path; never changes this answer
        state.pool.mirror.submit(shadow, raw, _shadow_recorder(state, endpoint, raw, ids))
    headers = {VERSION_HEADER: str(served.version), MODEL_HEADER: served.name, ARM_HEADER: arm}
    return Response(orjson.dumps(encode(served, labels, proba, ids, extra)), 200, headers, _JSON)


def _shadow_recorder(
    state: ServingState, endpoint: str, raw: Rows | pd.DataFrame, ids: list[str]
) -> ShadowRecorder:
    """Logs a shadow's answers under the answered request's prediction ids (arm ``shadow``),
    so the labels sent for those ids score the shadow version too."""

    def record(shadow: ServedModel, labels: Any, proba: Any, seconds: float) -> None:
        state.scored(shadow, endpoint, raw, labels, proba, ids, seconds, "shadow")

    return record


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


def _decode_infer(request: Request, body: bytes, served: ServedModel) -> tuple[Rows, Any]:
    require_json(request)
    rows, request_id, wanted = _v2.parse_infer_request(parse_json(body), served.schema.names())
    return rows, (request_id, wanted)


def _encode_infer(
    served: ServedModel, labels: Any, proba: Any, ids: list[str], extra: Any
) -> dict[str, Any]:
    request_id, wanted = extra
    return _v2.infer_response(served, labels, proba, ids, request_id, wanted)


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
    data = parse_json(body)
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
            return await score_request(request, name, version, endpoint, decode, encode)

        return handler

    scoring = (
        (
            ("/v2/models/{name}/infer", "/v2/models/{name}/versions/{version}/infer"),
            route("v2_infer", _decode_infer, _encode_infer),
            "v2",
            "Model inference (Open Inference Protocol v2)",
            INFER_BODY,
        ),
        (
            ("/models/{name}/predict", "/models/{name}/versions/{version}/predict"),
            route("predict", _decode_predict, _encode_predict),
            "shipyard",
            "Predict from JSON records or columns + data",
            PREDICT_BODY,
        ),
    )
    for paths, handler, tag, summary, body in scoring:
        for path in paths:
            app.add_api_route(
                path,
                handler,
                methods=["POST"],
                tags=[tag],
                summary=summary,
                openapi_extra=body,
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
        state.pool.current(name)  # 404 for a model not served here
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
        frame = pd.DataFrame(
            {
                "prediction_id": [i["prediction_id"] for i in items],
                "label": pd.Series([i["label"] for i in items], dtype=object),
            }
        )
        result = await asyncio.to_thread(record, name, frame)
        if result.matched == 0:
            what = "this id" if len(items) == 1 else "these ids"
            raise NotFound(f"No logged prediction of '{name}' has {what}.")
        return _json(
            {
                "matched": result.matched,
                "unknown": result.unknown,
                "unknown_ids": result.unknown_ids,
            }
        )

    app.add_api_route(
        "/models/{name}/feedback",
        feedback,
        methods=["POST"],
        tags=["shipyard"],
        summary="Record ground-truth labels of logged predictions",
        openapi_extra=FEEDBACK_BODY,
    )

    app.add_api_route(
        "/invocations",
        invocations,
        methods=["POST"],
        tags=["mlflow"],
        summary="MLflow scoring protocol (?model= picks the model; default: the first)",
        openapi_extra=INVOCATIONS_BODY,
    )

    async def invocations_fast(request: Request, name: str, version: str | None) -> Response:
        return await invocations(request)

    app.add_fast_route("/invocations", invocations_fast, query=False)  # ?model=: FastAPI parses
