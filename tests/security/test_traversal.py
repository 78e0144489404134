"""Path traversal in every name and path parameter of the model server, the UI and its API.

The routes come from the apps themselves (``app.routes``), so a route added later is attacked
too: every path parameter and every query parameter of every route gets each payload below,
sent byte for byte (``http.client`` puts the target on the wire as given) to a real uvicorn
serving the model server with the UI beside it (``shipyard serve --ui``), with an admin token
so that the request gets past authentication to the code that uses the name.

A route is safe when no payload gets a 5xx or a 2xx through a path parameter, no answer
quotes a file from outside (``/etc/passwd``, a planted canary), and nothing appears, changes
or disappears on disk outside the store's own folders.

The payloads are the classic ones plus those of MLflow's path traversal CVEs.
"""

from __future__ import annotations

import http.client
import os
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import pytest
from fastapi.routing import APIRoute
from starlette.routing import Mount, Route

from security.conftest import Served
from shipyard.serving import create_app, serve_in_thread
from shipyard.settings import ServeSettings
from shipyard.ui import create_ui, with_ui

#: (label, the text put in the URL as is). Percent signs stay: they are what goes on the wire.
PAYLOADS: list[tuple[str, str]] = [
    ("dot-dot", ".."),
    ("dot-dot-slash", "../../../../etc/passwd"),
    ("encoded", "%2e%2e%2f%2e%2e%2f%2e%2e%2fetc%2fpasswd"),
    ("encoded dots", "%2e%2e"),
    # CVE-2023-6730 and CVE-2024-1560: double encoding, decoded twice by the vulnerable server
    ("double encoded", "%252e%252e%252f%252e%252e%252fetc%252fpasswd"),
    # CVE-2023-2780: backslashes
    ("backslash", "..%5c..%5c..%5cetc%5cpasswd"),
    ("raw backslash", "..\\..\\..\\etc\\passwd"),
    ("semicolon", "churn;..%2f..%2fetc"),
    ("dot-dot-semicolon", "..;"),
    ("nul", "churn%00"),
    ("nul then path", "%00..%2f..%2fetc%2fpasswd"),
    ("trailing newline", "churn%0a"),
    ("header injection", "churn%0d%0aX-Injected:%201"),
    # CVE-2023-1177: a file:// model source
    ("file url", "file:%2f%2f%2fetc%2fpasswd"),
    # CVE-2023-6977: //proc/self/root
    ("proc root", "%2f%2fproc%2fself%2froot%2fetc%2fpasswd"),
    # CVE-2023-2356: a relative mlflow-artifacts: source
    ("mlflow-artifacts", "mlflow-artifacts:%2f..%2f..%2f..%2fetc%2fpasswd"),
    # CVE-2024-1483 / CVE-2024-3848: a fragment skipping the check
    ("fragment", "http:%2f%2f%2f%23%2f..%2f..%2f..%2fetc%2fpasswd"),
    ("absolute", "%2fetc%2fpasswd"),
    ("long", "a" * 5000),
]

#: The payloads also sent as query values (a query value is no path segment: only those a
#: server could turn into a path, as MLflow's ``get-artifact?path=`` did).
QUERY_PAYLOADS = {"dot-dot-slash", "double encoded", "backslash", "nul", "file url", "absolute"}

#: A valid value for each path parameter, so that one parameter is attacked at a time.
VALID = {
    "name": "churn",
    "version": "1",
    "alert_id": "1",
    "run_id": "r1",
    "prediction_id": "18f3a2b4c5d6e7f8091a2b0000",
}
#: Text that would only appear in an answer that read a file outside the store.
CANARY = "canary-5c1b7e0d-outside-the-store"
PASSWD_MARK = "root:x:0:0"
#: Statuses a refused attack may get (303: a page redirecting somewhere of its own).
REFUSED = {303, 307, 400, 401, 403, 404, 405, 409, 413, 415, 422}


def _routes(app: Any) -> list[tuple[str, frozenset[str], list[str], list[str]]]:
    """(path, methods, path parameters, query parameters) of every route of ``app``."""
    return _walk(app.routes, "")


def _walk(routes: list[Any], prefix: str) -> list[tuple[str, frozenset[str], list[str], list[str]]]:
    out = []
    for route in routes:
        included = getattr(route, "original_router", None)  # FastAPI >= 0.165's include_router
        if included is not None:
            context = getattr(route, "include_context", None)
            out += _walk(included.routes, prefix + getattr(context, "prefix", ""))
            continue
        if isinstance(route, Mount):
            continue  # /ui/static: StaticFiles, attacked by test_static_files_stay_inside
        if not isinstance(route, Route | APIRoute):
            continue
        params = list(route.param_convertors)
        query: list[str] = []
        if isinstance(route, APIRoute):
            query = [p.alias for p in route.dependant.query_params]
        methods = frozenset(route.methods or {"GET"}) - {"HEAD"}
        out.append((prefix + route.path, methods, params, query))
    return out


def _tree(root: Path) -> dict[str, float]:
    """Every file under ``root`` with its modification time."""
    out = {}
    for dirpath, _, files in os.walk(root):
        for f in files:
            p = Path(dirpath) / f
            out[str(p.relative_to(root))] = p.stat().st_mtime
    return out


@pytest.fixture(scope="module")
def server(served: Served) -> Iterator[tuple[str, Any, Any]]:
    """The model server with the UI beside it, as ``shipyard serve --ui`` runs them."""
    (served.home.parent / "canary.txt").write_text(CANARY)
    serving = create_app(served.store, settings=ServeSettings())
    ui = create_ui(served.store, predlog=served.home / "predictions")
    with serve_in_thread(with_ui(serving, ui)) as url:  # type: ignore[arg-type]
        yield url, serving, ui


def _send(conn: http.client.HTTPConnection, method: str, target: str, token: str) -> Any:
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    body = b"{}" if method in ("POST", "PUT", "PATCH", "DELETE") else None
    try:
        conn.request(method, target, body=body, headers=headers)
    except http.client.InvalidURL:  # http.client itself refuses to send it: nothing to test
        return None
    response = conn.getresponse()
    return response.status, response.read().decode("utf-8", "replace"), response.getheaders()


@pytest.mark.slow
def test_every_parameter_of_every_route_refuses_traversal(
    served: Served, server: tuple[str, Any, Any]
) -> None:
    url, serving, ui = server
    routes = _routes(serving) + _routes(ui)
    unknown = {p for _, _, params, _ in routes for p in params if p not in VALID}
    assert not unknown, f"add a valid value for the path parameter(s) {unknown} to VALID"
    before = _tree(served.home.parent)
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
    attacked: set[tuple[str, str]] = set()
    statuses: Counter[int] = Counter()
    failures: list[str] = []
    for path, methods, params, query in routes:
        targets: list[tuple[str, str, bool]] = []  # (where, target, through the path)
        for label, payload in PAYLOADS:
            for param in params:
                filled = path
                for other in params:
                    value = payload if other == param else VALID[other]
                    filled = filled.replace("{" + other + "}", value)
                    filled = filled.replace("{" + other + ":path}", value)
                targets.append((f"{param}={label}", filled, True))
            concrete = path
            for other in params:
                concrete = concrete.replace("{" + other + "}", VALID[other])
                concrete = concrete.replace("{" + other + ":path}", VALID[other])
            for q in query if label in QUERY_PAYLOADS else ():
                targets.append((f"?{q}={label}", f"{concrete}?{q}={payload}", False))
        for method in sorted(methods):
            for where, target, in_path in targets:
                got = _send(conn, method, target, served.admin_token)
                if got is None:
                    continue
                status, text, headers = got
                attacked.add((method, path))
                statuses[status] += 1
                problem = None
                if status >= 500:
                    problem = f"answered {status}"
                elif in_path and 200 <= status < 300:
                    problem = f"accepted it ({status})"
                elif status not in REFUSED and in_path:
                    problem = f"answered {status}"
                elif PASSWD_MARK in text or CANARY in text:
                    problem = "answered with a file from outside the store"
                elif any(k.lower() == "x-injected" for k, _ in headers):
                    problem = "let a header through"
                if problem:
                    failures.append(f"{method} {path} [{where}]: {problem}: {text[:200]}")
    conn.close()
    # the token opened every route: the payloads reached the code that uses the names
    assert statuses[401] == 0 and statuses[404] and statuses[400], statuses
    assert not failures, "\n".join(failures[:400])
    # every route with a parameter was attacked with every method it answers
    expected = {(m, p) for p, methods, params, query in routes if params or query for m in methods}
    assert expected <= attacked, expected - attacked
    # nothing outside the store's own files appeared, changed or went away
    _assert_nothing_outside_changed(served, before)


def _assert_nothing_outside_changed(served: Served, before: dict[str, float]) -> None:
    """Nothing outside the store's own files appeared, changed or went away since ``before``,
    and the canary beside the store is intact."""
    after = _tree(served.home.parent)
    outside = {
        path
        for path in set(before) ^ set(after)
        if not path.startswith(("home/artifacts/", "home/predictions/", "home/shipyard.db"))
    }
    assert not outside, outside
    assert (served.home.parent / "canary.txt").read_text() == CANARY


def test_static_files_stay_inside(served: Served, server: tuple[str, Any, Any]) -> None:
    url, _, _ = server
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
    for _, payload in PAYLOADS:
        for target in (f"/ui/static/{payload}", f"/ui/static/x/{payload}/canary.txt"):
            got = _send(conn, "GET", target, served.admin_token)
            if got is None:
                continue
            status, text, _ = got
            assert status in (400, 404, 405), (target, status)
            assert PASSWD_MARK not in text and CANARY not in text, target
    conn.close()


@pytest.mark.parametrize(
    "name",
    ["churn\n", "../churn", "..", "churn/..", "churn\\..", "churn;x", "churn\x00", "file:///etc"],
)
def test_names_are_checked_where_they_become_paths(name: str) -> None:
    """The one name rule (``shipyard.names``) refuses every traversal payload: the registry,
    the prediction log and the artifact keys all build paths from checked names only."""
    from shipyard.errors import InvalidInput
    from shipyard.names import check_name
    from shipyard.registry import check_alias

    with pytest.raises(InvalidInput):
        check_name(name)
    with pytest.raises(InvalidInput):
        check_alias(name.replace("churn", "production"))


def _grpc_calls(value: str) -> list[tuple[str, str, Any]]:
    """(method, field, request) of every gRPC method taking a model name or version, with
    ``value`` in that field and valid values elsewhere."""
    from tritonclient.grpc import service_pb2 as pb

    def infer(name: str, version: str) -> Any:
        request = pb.ModelInferRequest(model_name=name, model_version=version)
        tensor = request.inputs.add(name="age", datatype="INT64", shape=[1])
        tensor.contents.int64_contents.append(40)
        return request

    name, version = VALID["name"], VALID["version"]
    return [
        ("ModelReady", "name", pb.ModelReadyRequest(name=value)),
        ("ModelReady", "version", pb.ModelReadyRequest(name=name, version=value)),
        ("ModelMetadata", "name", pb.ModelMetadataRequest(name=value)),
        ("ModelMetadata", "version", pb.ModelMetadataRequest(name=name, version=value)),
        ("ModelInfer", "model_name", infer(value, "")),
        ("ModelInfer", "model_name", infer(value, version)),
        ("ModelInfer", "model_version", infer(name, value)),
    ]


def test_every_grpc_name_and_version_refuses_traversal(served: Served) -> None:
    """The gRPC methods that take a model name or version get every payload, as sent in a URL
    and decoded (a gRPC field is no URL: ``../`` arrives as is): NOT_FOUND or
    INVALID_ARGUMENT each time, never a server error, never a file's contents."""
    import grpc
    from tritonclient.grpc import service_pb2_grpc

    from shipyard.serving import free_port

    (served.home.parent / "canary.txt").write_text(CANARY)
    before = _tree(served.home.parent)
    port = free_port()
    app = create_app(served.store, settings=ServeSettings(grpc_port=port))
    metadata = (("authorization", f"Bearer {served.admin_token}"),)
    refused = {grpc.StatusCode.NOT_FOUND, grpc.StatusCode.INVALID_ARGUMENT}
    failures: list[str] = []
    codes: Counter[str] = Counter()
    values = {v for _, payload in PAYLOADS for v in (payload, unquote(payload))}
    with serve_in_thread(app), grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        stub = service_pb2_grpc.GRPCInferenceServiceStub(channel)
        # the token and a valid call open the way: the payloads reach the code using the names
        assert stub.ModelReady(_grpc_calls("churn")[0][2], metadata=metadata).ready
        for value in sorted(values):
            for method, field, request in _grpc_calls(value):
                try:
                    getattr(stub, method)(request, metadata=metadata, timeout=30)
                except grpc.RpcError as error:
                    code, details = error.code(), error.details() or ""
                else:
                    failures.append(f"{method} {field}={value[:40]!r}: answered")
                    continue
                codes[code.name] += 1
                if code not in refused:
                    failures.append(f"{method} {field}={value[:40]!r}: {code.name}: {details}")
                elif PASSWD_MARK in details or CANARY in details:
                    failures.append(f"{method} {field}={value[:40]!r}: quoted a file")
    assert not failures, "\n".join(failures[:100])
    assert codes["NOT_FOUND"], codes
    _assert_nothing_outside_changed(served, before)
