"""The ``digest`` job e-mails each subscriber one HTML digest through a real local SMTP server
(aiosmtpd): metric values against the criterion, alerts since the last digest, an inline PNG
referenced by ``cid:``, a link to the model's page; bad configurations are refused."""

from __future__ import annotations

import email
import email.policy
import struct
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from alerting_support import SmtpHandler
from sqlalchemy import update

from gates_off import NO_GATES
from shipyard.alerting import AlertConfig
from shipyard.auth import Users
from shipyard.checks._digest_plot import PNG_SIGNATURE
from shipyard.config import load_project
from shipyard.errors import InvalidInput
from shipyard.registry import Registry
from shipyard.scheduler import Scheduler, SchedulerConfig
from shipyard.store import Store
from shipyard.store.tables import AlertRecord, Model, MonitoringResult, User

pytestmark = pytest.mark.sqlite_only  # the database is incidental here (conftest)

NOW = datetime.now(UTC)
LINK = "http://ui.example:8600"


def _channel(port: int) -> str:
    return (
        '[channels.mail]\ntype = "email"\nhost = "127.0.0.1"\n'
        f'port = {port}\nfrom = "shipyard@example.com"\nto = ["ops@example.com"]\n'
        "attempts = 1\ntimeout = 5\n\n"
        '[channels.hook]\ntype = "webhook"\nurl = "http://127.0.0.1:9/"\n\n'
    )


def _job(**keys: Any) -> str:
    lines = ['[[jobs]]\nname = "weekly"\nkind = "digest"\nschedule = "0 8 * * 1"']
    for key, value in keys.items():
        rendered = (
            "[" + ", ".join(f'"{v}"' for v in value) + "]"
            if isinstance(value, list)
            else f'"{value}"'
        )
        lines.append(f"{key} = {rendered}")
    return "\n".join(lines) + "\n"


def _scheduler(store: Store, tmp_path: Path, toml: str) -> Scheduler:
    path = tmp_path / "shipyard.toml"
    path.write_text(toml, encoding="utf-8")
    project = load_project(path)
    return Scheduler(
        store,
        SchedulerConfig.from_project(project),
        AlertConfig.from_project(project).channels,
        actor="scheduler",
        project=project,
        log_root=tmp_path / "predictions",
    )


def _result(
    model: str, metric: str, value: float, at: datetime, threshold: float | None = None
) -> MonitoringResult:
    return MonitoringResult(
        run_id=f"r{at:%Y%m%d}",
        model_name=model,
        version=1,
        source="log",
        window_start=None,
        window_end=at,
        metric=metric,
        feature="*",
        value=value,
        threshold=threshold,
        flagged=False,
        rows=100,
        seconds=0.1,
        created_at=at,
    )


@pytest.fixture
def models(store: Store, fitted_pipeline: Any, training_data: Any) -> None:
    """``churn`` (production v1, ``roc_auc >= 0.8``, 10 days of roc_auc ending at 0.7725)
    and ``fraud`` (no criterion, drift share rows), both of team ``risk``; an alert on churn
    with HTML in its message; user ann with an e-mail address."""
    from shipyard.packaging import prepare_archive

    X, y, _, _ = training_data
    prepared = prepare_archive(fitted_pipeline, X_train=X, y_train=y, onnx=False)
    registry = Registry(store, NO_GATES)
    registry.create_model("churn", actor="admin", accept="roc_auc >= 0.8")
    registry.register(prepared, name="churn", actor="admin")
    registry.register(prepared, name="fraud", actor="admin")
    Users(store).set_role("bob", "approver", actor="admin")
    registry.approve("churn", 1, actor="bob", reason="ok")
    registry.promote("churn", 1, actor="admin")
    with store.write() as session:
        session.execute(update(Model).values(team="risk"))
        session.add_all(
            _result("churn", "roc_auc", 0.85 - 0.0075 * d, NOW - timedelta(days=10 - d))
            for d in range(11)
        )
        session.add_all(
            _result("fraud", "drift_share", 0.1 * d, NOW - timedelta(days=5 - d), threshold=0.3)
            for d in range(6)
        )
        session.add(
            AlertRecord(
                id="al1",
                rule="auc",
                key="k",
                severity="critical",
                model_name="churn",
                version=1,
                metric="roc_auc",
                feature=None,
                value=0.77,
                threshold=0.8,
                message="AUC fell <script>alert(1)</script>",
                status="sent",
                deliveries={},
                created_at=NOW - timedelta(hours=2),
            )
        )
        session.add(
            User(
                name="ann",
                role="viewer",
                created_at=NOW,
                created_by="admin",
                email="ann@example.com",
            )
        )


def _messages(handler: SmtpHandler) -> dict[str, EmailMessage]:
    out = {}
    for envelope in handler.envelopes:
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        assert isinstance(message, EmailMessage)
        (rcpt,) = envelope.rcpt_tos
        out[rcpt] = message
    return out


def test_each_subscriber_gets_one_digest_with_metrics_alerts_and_an_inline_png(
    store: Store, tmp_path: Path, models: None, smtp_server: Any
) -> None:
    port, handler = smtp_server()
    toml = _channel(port) + _job(
        channel="mail", to=["owner@example.com"], users=["ann"], team="risk", link=LINK
    )
    scheduler = _scheduler(store, tmp_path, toml)
    run = scheduler.run_job(scheduler.config.job("weekly"))
    assert run.status == "succeeded", run.message
    assert run.details["models"] == ["churn", "fraud"]
    assert sorted(run.details["sent"]) == ["ann@example.com", "owner@example.com"]
    messages = _messages(handler)
    assert sorted(messages) == ["ann@example.com", "owner@example.com"]  # one each
    message = messages["owner@example.com"]
    assert message["To"] == "owner@example.com" and "need attention" in message["Subject"]
    assert message.get_content_type() == "multipart/alternative"
    text = message.get_body(preferencelist=("plain",))
    html = message.get_body(preferencelist=("html",))
    assert text is not None and html is not None
    plain = text.get_content()
    assert "churn: production v1" in plain and "fraud: no production version" in plain
    assert "roc_auc = 0.775: misses the acceptance criterion roc_auc >= 0.8" in plain
    page = html.get_content()
    assert "roc_auc = 0.775" in page and "roc_auc &gt;= 0.8" in page
    assert "AUC fell &lt;script&gt;alert(1)&lt;/script&gt;" in page and "<script>" not in page
    assert f'href="{LINK}/ui/models/churn"' in page and "50% of features drifted" in page
    related = [p for p in message.walk() if p.get_content_type() == "multipart/related"]
    assert len(related) == 1
    images = [p for p in message.walk() if p.get_content_type() == "image/png"]
    assert len(images) == 2  # one plot per model
    for image in images:
        cid = image["Content-ID"].strip("<>")
        assert f'src="cid:{cid}"' in page
        png = image.get_content()
        assert png[:8] == PNG_SIGNATURE and len(png) > 1000
        assert struct.unpack(">II", png[16:24]) == (480, 160)  # IHDR width, height

    # The next digest covers the time since this one: the old alert is not repeated.
    again = scheduler.run_job(scheduler.config.job("weekly"))
    assert again.status == "succeeded"
    latest = email.message_from_bytes(handler.envelopes[-1].content, policy=email.policy.default)
    assert isinstance(latest, EmailMessage)
    body = latest.get_body(preferencelist=("html",))
    assert body is not None and "none since the last digest" in body.get_content()


@pytest.mark.parametrize(
    ("keys", "message"),
    [
        ({"channel": "mail", "to": ["a@example.com"]}, "names no model: set 'models'"),
        ({"channel": "mail", "models": ["churn"]}, "names no subscriber: set 'to'"),
        (
            {"channel": "mail", "to": ["not-an-address"], "team": "risk"},
            "'not-an-address' is not an e-mail address",
        ),
        (
            {"channel": "mail", "to": ["a@example.com"], "team": "risk", "since": "soon"},
            "Invalid since 'soon'",
        ),
        ({"to": ["a@example.com"], "team": "risk"}, "channel"),
    ],
)
def test_a_bad_digest_job_is_refused_when_the_file_is_read(
    tmp_path: Path, keys: dict[str, Any], message: str
) -> None:
    path = tmp_path / "shipyard.toml"
    path.write_text(_channel(25) + _job(**keys), encoding="utf-8")
    with pytest.raises(InvalidInput, match="weekly") as raised:
        SchedulerConfig.from_project(load_project(path))
    assert message in raised.value.message


@pytest.mark.parametrize(
    ("keys", "message"),
    [
        (
            {"channel": "hook", "to": ["a@example.com"], "team": "risk"},
            "'channel' is 'hook', which is not an email channel",
        ),
        (
            {"channel": "mail", "to": ["a@example.com"], "team": "nobody"},
            "'team' is 'nobody', and no model belongs to that team",
        ),
        (
            {"channel": "mail", "to": ["a@example.com"], "models": ["nope"]},
            "'models' names unknown model(s) ['nope']",
        ),
        (
            {"channel": "mail", "users": ["bob"], "models": ["churn"]},
            "no subscriber has an e-mail address",
        ),
    ],
)
def test_a_digest_that_cannot_be_built_fails_naming_the_job_and_key(
    store: Store,
    tmp_path: Path,
    models: None,
    smtp_server: Any,
    keys: dict[str, Any],
    message: str,
) -> None:
    port, handler = smtp_server()
    scheduler = _scheduler(store, tmp_path, _channel(port) + _job(**keys))
    run = scheduler.run_job(scheduler.config.job("weekly"))
    assert run.status == "failed" and "digest job 'weekly'" in run.message
    assert message in run.message and handler.envelopes == []


def test_an_undeliverable_digest_fails_the_job(
    store: Store, tmp_path: Path, models: None, smtp_server: Any
) -> None:
    port, _ = smtp_server(data_reply="550 5.7.1 Message rejected")
    toml = _channel(port) + _job(channel="mail", to=["a@example.com"], models=["churn"])
    scheduler = _scheduler(store, tmp_path, toml)
    run = scheduler.run_job(scheduler.config.job("weekly"))
    assert run.status == "failed" and "not delivered: a@example.com" in run.message
