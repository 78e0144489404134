"""``[[notify]]``: registry events go out through real SMTP and HTTP servers after the commit,
never for a rolled-back change, and a failing or hanging channel never undoes the change.

Notifications are sent in the background: the tests ``flush()`` the notifier before they
look at what was sent (tests/faults measure that a stalled channel holds no change)."""

from __future__ import annotations

import email
import email.policy
import time
from collections.abc import Callable
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from alerting_support import HttpRecorder, SmtpHandler, SmtpServerFactory

from gates_off import GATES_OFF_TOML
from shipyard import Client, Settings
from shipyard.alerting import Alerts, Notifier
from shipyard.alerting._notify import NOTIFY_BUDGET
from shipyard.audit import append_event, list_events
from shipyard.errors import ApprovalRequired
from shipyard.store import Store
from shipyard.store.tables import AlertRecord

EVENTS = '["version.registered", "version.approved", "version.promoted", "version.rolled_back"]'


def write_config(
    path: Path, *, mail: str, hook: str | None, events: str = EVENTS, models: str = '["churn"]'
) -> Path:
    """``mail`` is the email channel's extra options; ``hook`` the webhook URL (or none)."""
    channels = '["mail", "hook"]' if hook else '["mail"]'
    hook_table = f'[channels.hook]\ntype = "webhook"\nurl = "{hook}"\ntimeout = 2.0\nattempts = 1\n'
    path.write_text(
        GATES_OFF_TOML
        + f"""
[channels.mail]
type = "email"
host = "127.0.0.1"
from = "shipyard@example.com"
to = ["deploys@example.com"]
{mail}

{hook_table if hook else ""}

[[notify]]
name = "deploys"
events = {events}
models = {models}
channels = {channels}
severity = "info"
""",
        encoding="utf-8",
    )
    return path


def mails(handler: SmtpHandler) -> list[EmailMessage]:
    return [
        email.message_from_bytes(e.content, policy=email.policy.default)  # type: ignore[misc]
        for e in handler.envelopes
    ]


def plain(message: EmailMessage) -> str:
    body = message.get_body(preferencelist=("plain",))
    assert body is not None
    return str(body.get_content())  # type: ignore[attr-defined]


@dataclass
class Team:
    alice: Client
    bob: Client
    smtp: SmtpHandler
    hook: HttpRecorder
    store: Store

    def flush(self) -> None:
        assert self.alice.notifier is not None and self.alice.notifier.flush(timeout=30)

    def expect_one(self, event: str, version: int, actor: str, sentence: str) -> None:
        """Exactly one new e-mail and one new webhook call since the last check, about this."""
        self.flush()
        self.seen = getattr(self, "seen", 0) + 1
        assert len(self.smtp.envelopes) == self.seen, f"{event}: e-mails {self.smtp.envelopes}"
        assert len(self.hook.requests) == self.seen, f"{event}: webhook calls"
        message = mails(self.smtp)[-1]
        assert message["Subject"] == f"[Shipyard info] {event}: churn v{version}"
        assert message["To"] == "deploys@example.com"
        text = plain(message)
        for line in (sentence, f"Event: {event}", f"Model: churn v{version}", f"Actor: {actor}"):
            assert line in text, f"{line!r} not in {text!r}"
        body: dict[str, Any] = self.hook.requests[-1].body
        assert sentence in body["text"] and f"Actor: {actor}" in body["text"]
        alert = body["alert"]
        assert (alert["model"], alert["version"], alert["metric"]) == ("churn", version, event)
        assert alert["facts"]["Actor"] == actor and alert["rule"] == "notify:deploys"

    def expect_nothing_new(self) -> None:
        self.flush()
        seen = getattr(self, "seen", 0)
        assert len(self.smtp.envelopes) == seen and len(self.hook.requests) == seen


@pytest.fixture
def team(
    store: Store,
    tmp_path: Path,
    smtp_server: SmtpServerFactory,
    http_server: Callable[..., HttpRecorder],
) -> Team:
    port, handler = smtp_server()
    recorder = http_server(200)
    config = write_config(
        tmp_path / "shipyard.toml", mail=f"port = {port}\ntimeout = 2.0", hook=recorder.url
    )
    alice = Client(Settings(user="alice", config=config), store=store).open()
    alice.users.set_role("bob", "approver", actor="admin")  # a user event: not selected
    bob = Client(Settings(user="bob", config=config), store=store).open()
    assert isinstance(alice.notifier, Notifier) and bob.notifier is alice.notifier
    return Team(alice, bob, handler, recorder, store)


def _register(client: Client, fitted_pipeline: Any, training_data: Any) -> int:
    X, y, _, _ = training_data
    mv = client.register(fitted_pipeline, name="churn", X_train=X, y_train=y, onnx=False)
    return mv.version


def test_register_approve_promote_rollback_each_send_one_message(
    team: Team, fitted_pipeline: Any, training_data: Any
) -> None:
    team.expect_nothing_new()
    assert _register(team.alice, fitted_pipeline, training_data) == 1
    team.expect_one("version.registered", 1, "alice", "alice registered churn v1.")
    team.bob.approve("churn", 1, reason="AUC fine")
    team.expect_one("version.approved", 1, "bob", "bob approved churn v1 for production.")
    team.alice.promote("churn", 1, reason="first release")
    team.expect_one(
        "version.promoted", 1, "alice", "alice promoted churn v1 to production. Reason: first"
    )
    assert _register(team.alice, fitted_pipeline, training_data) == 2
    team.expect_one("version.registered", 2, "alice", "alice registered churn v2.")
    team.bob.approve("churn", 2, reason="better")
    team.expect_one("version.approved", 2, "bob", "bob approved churn v2 for production.")
    team.alice.promote("churn", 2)
    team.expect_one(
        "version.promoted", 2, "alice", "alice promoted churn v2 to production (was v1)."
    )
    team.alice.rollback("churn", reason="latency")
    team.expect_one(
        "version.rolled_back",
        1,
        "alice",
        "alice rolled churn@production back from v2 to v1. Reason: latency",
    )
    # events no rule selects send nothing: archive, tags, users
    team.alice.registry.archive("churn", 2, actor="alice")
    team.alice.registry.set_tags("churn", {"team": "risk"}, actor="alice")
    team.alice.users.set_role("carol", "approver", actor="admin")
    team.expect_nothing_new()
    records = Alerts(team.store).list()
    assert len(records) == 7 and {r.status for r in records} == {"sent"}
    assert {r.rule for r in records} == {"notify:deploys"}
    assert all(r.deliveries["mail"]["ok"] and r.deliveries["hook"]["ok"] for r in records)
    with team.store.read() as session:
        sent = list_events(session, action="alert.sent", limit=100)
    assert len(sent) == 7


def test_a_rolled_back_transaction_sends_nothing(
    team: Team, fitted_pipeline: Any, training_data: Any
) -> None:
    _register(team.alice, fitted_pipeline, training_data)
    team.expect_one("version.registered", 1, "alice", "alice registered churn v1.")
    with pytest.raises(ApprovalRequired):  # refused inside its write transaction
        team.alice.promote("churn", 1)
    team.expect_nothing_new()
    with pytest.raises(RuntimeError, match="boom"), team.store.write() as session:
        append_event(
            session,
            actor="alice",
            action="version.promoted",
            subject="model:churn/1",
            details={"alias": "production"},
        )
        raise RuntimeError("boom")
    team.expect_nothing_new()
    assert len(Alerts(team.store).list()) == 1
    # the same event, committed, is sent: the test above could have failed
    with team.store.write() as session:
        append_event(
            session,
            actor="alice",
            action="version.promoted",
            subject="model:churn/1",
            details={"alias": "production"},
        )
    team.expect_one("version.promoted", 1, "alice", "alice promoted churn v1 to production.")


def test_a_refusing_mail_server_and_a_failing_webhook_never_undo_the_change(
    store: Store,
    tmp_path: Path,
    smtp_server: SmtpServerFactory,
    http_server: Callable[..., HttpRecorder],
    fitted_pipeline: Any,
    training_data: Any,
) -> None:
    port, handler = smtp_server(data_reply="550 5.7.1 Relaying denied")
    recorder = http_server(500)
    config = write_config(
        tmp_path / "shipyard.toml",
        mail=f"port = {port}\ntimeout = 2.0\nbackoff = 0.01",
        hook=recorder.url,
    )
    alice = Client(Settings(user="alice", config=config), store=store).open()
    failures: list[AlertRecord] = []
    assert alice.notifier is not None
    alice.notifier.on_failure = failures.append
    alice.users.set_role("bob", "approver", actor="admin")
    bob = Client(Settings(user="bob", config=config), store=store).open()
    _register(alice, fitted_pipeline, training_data)
    bob.approve("churn", 1, reason="ok")
    alice.promote("churn", 1)
    assert alice.registry.aliases("churn") == {"production": 1}  # the change stands
    assert alice.notifier.flush(timeout=30)
    assert handler.data_calls == 3 and handler.envelopes == []  # 550 is final: no retry
    assert len(recorder.requests) == 3  # attempts = 1
    records = Alerts(store).list()
    assert [r.metric for r in records] == [
        "version.promoted",
        "version.approved",
        "version.registered",
    ]
    assert {r.status for r in records} == {"failed"}
    promoted = records[0]
    assert "550" in promoted.deliveries["mail"]["error"]
    assert "500" in promoted.deliveries["hook"]["error"]
    assert [f.id for f in failures] == [r.id for r in reversed(records)]
    with store.read() as session:
        failed = list_events(session, action="alert.failed", limit=10)
    assert len(failed) == 3 and failed[0].details["deliveries"]["mail"]["ok"] is False


def test_a_hanging_mail_server_delays_its_notification_by_the_budget_only(
    tmp_path: Path, hanging_port: int, fitted_pipeline: Any, training_data: Any
) -> None:
    """The channel keeps its defaults (10 s timeout, 3 attempts: 33 s on a hanging server);
    the promotion returns at once, and its notification gives up after NOTIFY_BUDGET."""
    store = Store(f"sqlite:///{tmp_path / 'db.sqlite'}", str(tmp_path / "art"), creator="alice")
    store.open()
    config = write_config(
        tmp_path / "shipyard.toml",
        mail=f"port = {hanging_port}",
        hook=None,
        events='["version.promoted"]',
    )
    alice = Client(Settings(user="alice", config=config), store=store).open()
    assert alice.notifier is not None
    _register(alice, fitted_pipeline, training_data)  # not selected: no wait
    start = time.monotonic()
    alice.promote("churn", 1, to="staging")
    assert time.monotonic() - start < 1.0
    assert alice.registry.aliases("churn") == {"staging": 1}
    assert alice.notifier.flush(timeout=NOTIFY_BUDGET + 5.0)
    elapsed = time.monotonic() - start
    assert NOTIFY_BUDGET - 0.5 <= elapsed < NOTIFY_BUDGET + 2.0, elapsed
    (record,) = Alerts(store).list()
    assert record.status == "failed" and record.deliveries["mail"]["attempts"] == 1
    assert "did not answer within" in record.deliveries["mail"]["error"]
    store.close()
