"""No secret and no submitted value in any log line or error body: failing requests carrying a
real token and a distinctive input value, to the model server and the web UI, with every
logger recording at DEBUG."""

from __future__ import annotations

import gzip
import logging

import pytest

from security.conftest import Served
from serving.conftest import http
from shipyard.serving import create_app
from shipyard.settings import ServeSettings, UiSettings
from shipyard.ui import create_ui

pytestmark = pytest.mark.anyio

VALUE = "Zebulon-Quux-4417"  # the distinctive input value
GOOD = {"age": 40, "income": 52_000.0, "tenure": 2.5, "plan": "pro"}
MADE_UP_TOKEN = "sy_Zebulon-made-up-token-4417-" + "x" * 20


def _texts(caplog: pytest.LogCaptureFixture) -> str:
    """Everything the records say: messages with their arguments, tracebacks, stack info."""
    out = []
    for record in caplog.records:
        out.append(record.getMessage())
        if record.exc_info:
            out.append(logging.Formatter().formatException(record.exc_info))
        out += [str(record.exc_text or ""), str(record.stack_info or "")]
    return "\n".join(out)


async def test_failing_scoring_requests_leak_nothing(
    served: Served, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    token = {"Authorization": f"Bearer {served.scorer_token}"}
    settings = ServeSettings(max_body_bytes=4096, max_batch_rows=3, rate_limit="40/min")
    huge = b'{"records": [{"age": "' + VALUE.encode() * 400 + b'"}]}'
    requests = [
        ("POST", "/models/churn/predict", {"json": {"records": [{**GOOD, "age": VALUE}]}}),
        ("POST", "/models/churn/predict", {"json": {"records": [{**GOOD, "zzz": VALUE}]}}),
        ("POST", "/models/churn/predict", {"json": {"records": [{**GOOD, "plan": {"x": VALUE}}]}}),
        (
            "POST",
            "/models/churn/predict",
            {"content": b'{"records": [{"age": "' + VALUE.encode() + b'"'},
        ),
        ("POST", "/models/churn/predict", {"content": huge}),
        (
            "POST",
            "/models/churn/predict",
            {"content": gzip.compress(huge * 10), "headers": {"content-encoding": "gzip"}},
        ),
        ("POST", "/models/churn/predict", {"json": {"records": [{**GOOD, "age": VALUE}] * 4}}),
        ("POST", "/models/nosuch/predict", {"json": {"records": [{**GOOD, "age": VALUE}]}}),
        (
            "POST",
            "/invocations",
            {
                "content": f"age,income,tenure,plan\n{VALUE},1,2,pro\n".encode(),
                "headers": {"content-type": "text/csv"},
            },
        ),
        (
            "POST",
            "/invocations",
            {"json": {"dataframe_split": {"columns": ["age"], "data": [[VALUE]]}}},
        ),
        (
            "POST",
            "/v2/models/churn/infer",
            {
                "json": {
                    "inputs": [{"name": "age", "shape": [1], "datatype": "FP64", "data": [VALUE]}]
                }
            },
        ),
        ("POST", "/models/churn/feedback", {"json": {"prediction_id": VALUE, "label": VALUE}}),
        (
            "POST",
            "/models/churn/predict",
            {"json": {"records": [GOOD]}, "headers": {"Authorization": f"Bearer {MADE_UP_TOKEN}"}},
        ),
        (
            "POST",
            "/models/churn/predict",
            {"json": {"records": [GOOD]}, "headers": {"Authorization": f"Basic {MADE_UP_TOKEN}"}},
        ),
    ]
    bodies = []
    async with http(create_app(served.store, settings=settings), **token) as client:
        for method, path, kwargs in requests:
            response = await client.request(method, path, **kwargs)
            assert 400 <= response.status_code < 600, (path, response.status_code)
            bodies.append(response.text)
        for _ in range(45):  # and over the rate limit
            last = await client.post(
                "/models/churn/predict", json={"records": [{**GOOD, "age": VALUE}]}
            )
        assert last.status_code == 429
        bodies.append(last.text)
    everything = "\n".join(bodies) + _texts(caplog)
    for secret in (VALUE, MADE_UP_TOKEN, served.scorer_token, "Zebulon"):
        assert secret not in everything, secret


async def test_failing_ui_requests_leak_nothing(
    served: Served, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    ui = create_ui(served.store, settings=UiSettings(max_body_bytes=4096))
    bodies = []
    async with http(ui) as client:
        page = await client.get("/ui/login")
        csrf = client.cookies.get("shipyard_csrf") or ""
        assert page.status_code == 200
        login = await client.post(
            "/ui/login",
            data={"user": "admin", "password": VALUE, "csrf_token": csrf},
        )
        bodies.append(login.text)
        for headers in (
            {"Authorization": f"Bearer {MADE_UP_TOKEN}"},
            {"Authorization": f"Bearer {served.scorer_token}"},  # a scoring token: 403 on /api
        ):
            for path in ("/api/models", "/api/models/churn"):
                answer = await client.get(path, headers=headers)
                assert answer.status_code in (401, 403), (path, answer.status_code)
                bodies.append(answer.text)
        admin = {"Authorization": f"Bearer {served.admin_token}"}
        bad = await client.post(
            "/api/models/churn/promote", json={"version": VALUE, "reason": VALUE}, headers=admin
        )
        assert bad.status_code in (400, 422), bad.text
        bodies.append(bad.text)
    everything = "\n".join(bodies) + _texts(caplog)
    for secret in (VALUE, MADE_UP_TOKEN, served.scorer_token, served.admin_token):
        assert secret not in everything, secret
