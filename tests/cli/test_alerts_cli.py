"""Alert rules in shipyard.toml fire on monitoring runs, are sent, stored, cooled down, acked;
``alerts add`` appends checked rules, ``alerts rules`` lists them, and ``[[notify]]`` sends the
registry events of CLI commands through a real SMTP server and a real HTTP server."""

from __future__ import annotations

import email
import email.policy
import json
import socket
import threading
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass, field
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import joblib
import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session
from sklearn.ensemble import HistGradientBoostingClassifier
from test_monitor_cli import registered  # noqa: F401 - the fixture is used by name

from churn_data import churn_frame
from gates_off import GATES_OFF_TOML
from shipyard import Client, Settings
from shipyard.cli import run_cli


class HookServer:
    """A real HTTP server answering ``status`` to every POST and recording the JSON bodies."""

    def __init__(self, status: int = 200) -> None:
        self.received: list[dict[str, Any]] = []
        received = self.received

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                received.append(json.loads(body))
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)


@pytest.fixture
def hook() -> Iterator[tuple[str, list[dict]]]:  # type: ignore[type-arg]
    server = HookServer()
    yield server.url, server.received
    server.close()


@dataclass
class Mailbox:
    """A real SMTP server (aiosmtpd) keeping every message it accepts."""

    envelopes: list[Envelope] = field(default_factory=list)

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        self.envelopes.append(envelope)
        return "250 Message accepted for delivery"

    def messages(self) -> list[EmailMessage]:
        return [
            email.message_from_bytes(e.content, policy=email.policy.default)  # type: ignore[misc]
            for e in self.envelopes
        ]


@pytest.fixture
def mailbox() -> Iterator[tuple[int, Mailbox]]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = int(sock.getsockname()[1])
    box = Mailbox()
    controller = Controller(box, hostname="127.0.0.1", port=port)
    controller.start()
    yield port, box
    controller.stop()


def _config(path: Path, url: str, *, extra: str = "") -> None:
    path.write_text(
        f"""
[channels.team]
type = "webhook"
url = "{url}"
timeout = 2.0
attempts = 1

[[alerts]]
name = "age-drift"
metric = "drift"
feature = "age"
severity = "critical"
cooldown = "1h"
channels = ["team"]
{extra}
""",
        encoding="utf-8",
    )


def test_rules_fire_send_store_cool_down_and_ack(
    registered: Path,  # noqa: F811 - pytest fixture
    hook,  # type: ignore[no-untyped-def]
    capsys,  # type: ignore[no-untyped-def]
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    url, received = hook
    config = registered / "shipyard.toml"
    _config(config, url)
    monkeypatch.setenv("SHIPYARD_CONFIG", str(config))
    clean, drifted = registered / "clean.parquet", registered / "drifted.parquet"
    churn_frame(5_000, 1).to_parquet(clean)
    shifted = churn_frame(5_000, 2)
    shifted["age"] += 5.0
    shifted.to_parquet(drifted)

    assert run_cli(["monitor", "run", "churn:1", "--current", str(clean)]) == 0
    assert received == []
    assert run_cli(["monitor", "run", "churn:1", "--current", str(drifted)]) == 1
    assert "Alert " in capsys.readouterr().out
    assert len(received) == 1
    assert "churn v1: drift drift on age" in received[0]["text"]
    assert received[0]["alert"]["severity"] == "critical"
    # within the cool-down: stored as suppressed, not sent again
    assert run_cli(["monitor", "run", "churn:1", "--current", str(drifted)]) == 1
    assert len(received) == 1
    capsys.readouterr()
    assert run_cli(["alerts", "list", "--json"]) == 0
    alerts = json.loads(capsys.readouterr().out)
    assert [a["status"] for a in alerts] == ["suppressed", "sent"]
    assert alerts[1]["deliveries"]["team"]["ok"] is True
    assert run_cli(["alerts", "ack", alerts[1]["id"]]) == 0
    assert run_cli(["alerts", "ack", alerts[1]["id"]]) == 1
    assert "already acknowledged" in capsys.readouterr().err
    assert run_cli(["alerts", "list", "--open", "--json"]) == 0
    assert [a["id"] for a in json.loads(capsys.readouterr().out)] == [alerts[0]["id"]]
    assert run_cli(["alerts", "ack", "nope"]) == 1
    assert "no alert 'nope'" in capsys.readouterr().err
    assert run_cli(["audit", "log", "--action", "alert.acknowledged", "--json"]) == 0
    (event,) = json.loads(capsys.readouterr().out)
    assert event["details"]["alert"] == alerts[1]["id"]


def test_failed_delivery_is_stored_and_bad_config_is_refused(
    registered: Path,  # noqa: F811 - pytest fixture
    capsys,  # type: ignore[no-untyped-def]
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    config = registered / "shipyard.toml"
    _config(config, "http://127.0.0.1:9/hook")  # nothing listens on port 9
    monkeypatch.setenv("SHIPYARD_CONFIG", str(config))
    drifted = registered / "drifted.parquet"
    shifted = churn_frame(5_000, 2)
    shifted["age"] += 5.0
    shifted.to_parquet(drifted)
    assert run_cli(["monitor", "run", "churn:1", "--current", str(drifted)]) == 1
    capsys.readouterr()
    assert run_cli(["alerts", "list", "--json"]) == 0
    (alert,) = json.loads(capsys.readouterr().out)
    assert alert["status"] == "failed" and alert["deliveries"]["team"]["ok"] is False

    _config(config, "http://127.0.0.1:9/hook", extra='colour = "red"\n')
    assert run_cli(["monitor", "run", "churn:1", "--current", str(drifted)]) == 2
    assert "[[alerts]] 'age-drift' colour: unknown key" in capsys.readouterr().err
    assert run_cli(["monitor", "history", "churn", "--metric", "rows", "--json"]) == 0
    assert len(json.loads(capsys.readouterr().out)) == 1  # a refused run stores nothing
    config.write_text("[[alerts]]\nname = 'x'\nmetric = 'psi'\nchannels = ['pager']\n")
    assert run_cli(["monitor", "run", "churn:1", "--current", str(drifted)]) == 2
    assert "unknown channel" in capsys.readouterr().err
    config.write_text("this is = = not toml")
    assert run_cli(["monitor", "run", "churn:1", "--current", str(drifted)]) == 2
    assert "not valid TOML" in capsys.readouterr().err


# --- shipyard alerts add / rules -------------------------------------------------------

BASE = """# team alert config: keep this comment
[channels.team]
type = "webhook"
url = "http://127.0.0.1:9/hook"   # inline comment

[[alerts]]
name = "psi-age"
metric = "psi"
feature = "age"
threshold = 0.2
channels = ["team"]"""  # no final newline on purpose


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty project folder as the working directory (shipyard.toml is looked up there)."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("SHIPYARD_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("SHIPYARD_USER", "alice")
    monkeypatch.delenv("SHIPYARD_DB_URL", raising=False)
    monkeypatch.delenv("SHIPYARD_CONFIG", raising=False)
    return tmp_path


def _audited(capsys: pytest.CaptureFixture[str]) -> list[dict[str, Any]]:
    capsys.readouterr()
    assert run_cli(["audit", "log", "--action", "alerts.rule_added", "--json"]) == 0
    events: list[dict[str, Any]] = json.loads(capsys.readouterr().out)
    return events


def test_alerts_add_creates_then_appends_and_rules_lists(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = project / "shipyard.toml"
    assert run_cli(["alerts", "add", "drift-any", "--metric", "drift"]) == 0
    assert "Added alert rule 'drift-any'" in capsys.readouterr().out
    assert tomllib.loads(config.read_text())["alerts"] == [
        {
            "name": "drift-any",
            "metric": "drift",
            "feature": "*",
            "severity": "warning",
            "cooldown": "1h",
            "channels": [],
        }
    ]
    config.write_text(BASE, encoding="utf-8", newline="")
    before = config.read_bytes()
    args = ["--metric", "psi", "--feature", "income", "--threshold", "0.25", "--window", "6h"]
    args += ["--severity", "critical", "--cooldown", "30m", "--channel", "team"]
    assert run_cli(["alerts", "add", "psi-income", *args]) == 0
    after = config.read_bytes()
    assert after.startswith(before)  # the user's text, comments included, is untouched
    weird = 'odd "name" \\ with\nnewline, tab\t and ünïcode 🚀'
    assert run_cli(["alerts", "add", weird, "--metric", "accuracy", "--below", "0.8"]) == 0
    assert config.read_bytes().startswith(after)
    rules = tomllib.loads(config.read_text(encoding="utf-8"))["alerts"]
    assert [r["name"] for r in rules] == ["psi-age", "psi-income", weird]
    assert rules[1] == {
        "name": "psi-income",
        "metric": "psi",
        "feature": "income",
        "threshold": 0.25,
        "window": "6h",
        "severity": "critical",
        "cooldown": "30m",
        "channels": ["team"],
    }
    assert rules[2]["below"] == 0.8 and "threshold" not in rules[2]
    capsys.readouterr()
    assert run_cli(["alerts", "rules", "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert [(a["name"], a["condition"], a["window"]) for a in listed["alerts"]] == [
        ("psi-age", "> 0.2", None),
        ("psi-income", "> 0.25", "6h"),
        (weird, "< 0.8", None),
    ]
    assert listed["alerts"][1]["channels"] == ["team"] and listed["notify"] == []
    assert run_cli(["alerts", "rules"]) == 0
    out = capsys.readouterr().out
    assert "[[alerts]]" in out and "[[notify]]" in out and "6h" in out and "< 0.8" in out
    events = _audited(capsys)
    assert [e["subject"] for e in events] == [
        f"alert-rule:{weird}",
        "alert-rule:psi-income",
        "alert-rule:drift-any",
    ]
    assert events[1]["actor"] == "alice" and events[1]["details"]["rule"]["window"] == "6h"


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["x", "--metric", "psi", "--channel", "pager"], 2, "names unknown channel(s) ['pager']"),
        (["psi-age", "--metric", "psi"], 2, "[[alerts]] 'psi-age' name: declared twice"),
        (["x", "--metric", "psi", "--severity", "loud"], 2, "'info', 'warning' or 'critical'"),
        (["x", "--metric", "psi", "--threshold", "1", "--below", "0"], 2, "sets both"),
        (["x", "--metric", "psi", "--threshold", "1", "--window", "6"], 2, "'x' window: must"),
        (["x", "--metric", "psi", "--threshold", "1", "--window", "0h"], 2, "Got '0h'"),
        (["x", "--metric", "psi", "--window", "6h"], 2, "needs 'threshold' or 'below'"),
        (["x", "--metric", "psi", "--cooldown", "soon"], 2, "'x' cooldown: must"),
        (["x", "--metric", "psi", "--threshold", "nan"], 2, "must be a finite number"),
        (["", "--metric", "psi"], 2, "at least 1 character"),
        (["x", "--metric", "psi", "--threshold", "high"], 2, "Invalid value for '--threshold'"),
        (["x"], 2, "Missing option '--metric'"),
    ],
)
def test_alerts_add_refuses_bad_input_and_leaves_the_file_alone(
    project: Path,
    capsys: pytest.CaptureFixture[str],
    args: list[str],
    code: int,
    message: str,
) -> None:
    config = project / "shipyard.toml"
    config.write_text(BASE, encoding="utf-8", newline="")
    before = config.read_bytes()
    assert run_cli(["alerts", "add", *args]) == code
    err = capsys.readouterr().err
    assert message in " ".join(err.split()), err
    assert config.read_bytes() == before
    assert not list(project.glob(".shipyard.toml.*"))  # no temporary file left behind
    if (project / "home").exists():
        assert _audited(capsys) == []


def test_alerts_add_refuses_to_touch_a_broken_file(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = project / "shipyard.toml"
    for broken, message in (
        ("[channels.team\ntype = 'webhook'", "not valid TOML"),
        ('[channels.team]\ntype = "pager"\n', "Unknown channel type 'pager'"),
        (
            "[channels.team]\ntype = 'webhook'\nurl = 'http://127.0.0.1:9/'\n"
            "[[notify]]\nevents = ['version.exploded']\nchannels = ['team']\n",
            "unknown event(s) ['version.exploded']",
        ),
        ("alerts = 3\n", "must be an array of tables"),
    ):
        config.write_text(broken, encoding="utf-8")
        assert run_cli(["alerts", "add", "x", "--metric", "psi"]) == 2
        err = " ".join(capsys.readouterr().err.split())
        assert message in err and "was left unchanged" in err, err
        assert config.read_text(encoding="utf-8") == broken
    assert not list(project.glob(".shipyard.toml.*"))  # no temporary file left behind


# --- [[notify]]: registry events of CLI commands ----------------------------------------


def _notify_config(path: Path, smtp_port: int, hook_url: str) -> None:
    path.write_text(
        f"""
[channels.mail]
type = "email"
host = "127.0.0.1"
port = {smtp_port}
from = "shipyard@example.com"
to = ["deploys@example.com"]
timeout = 2.0

[channels.hook]
type = "webhook"
url = "{hook_url}"
timeout = 2.0
attempts = 1

[[notify]]
name = "deploys"
events = ["version.registered", "version.approved", "version.promoted", "version.rolled_back"]
channels = ["mail", "hook"]
"""
        + GATES_OFF_TOML,
        encoding="utf-8",
    )


def test_cli_registry_commands_notify_through_email_and_webhook(
    registered: Path,  # noqa: F811 - pytest fixture
    mailbox: tuple[int, Mailbox],
    hook: tuple[str, list[dict[str, Any]]],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    port, box = mailbox
    url, received = hook
    config = registered / "shipyard.toml"
    _notify_config(config, port, url)
    monkeypatch.setenv("SHIPYARD_CONFIG", str(config))
    seen = 0

    def as_user(user: str, *args: str) -> None:
        monkeypatch.setenv("SHIPYARD_USER", user)
        assert run_cli(list(args)) == 0, capsys.readouterr().err

    def expect(event: str, version: int, actor: str, sentence: str) -> None:
        nonlocal seen
        seen += 1
        assert len(box.envelopes) == seen and len(received) == seen, event
        message = box.messages()[-1]
        assert message["Subject"] == f"[Shipyard info] {event}: churn v{version}"
        body = message.get_body(preferencelist=("plain",))
        assert body is not None
        text = body.get_content()  # type: ignore[attr-defined]
        for line in (sentence, f"Event: {event}", f"Model: churn v{version}", f"Actor: {actor}"):
            assert line in text and line in received[-1]["text"], (line, text)
        alert = received[-1]["alert"]
        assert (alert["model"], alert["version"], alert["metric"]) == ("churn", version, event)

    as_user("alice", "users", "add", "bob", "--role", "approver")
    assert len(box.envelopes) == 0 and received == []  # not a selected event
    as_user("bob", "approve", "churn", "1", "--reason", "AUC ok")
    expect("version.approved", 1, "bob", "bob approved churn v1 for production. Reason: AUC ok")
    as_user("alice", "promote", "churn", "1")
    expect("version.promoted", 1, "alice", "alice promoted churn v1 to production.")
    X = churn_frame(3_000, 5)
    X["label"] = (X["age"] > 40).astype(int)
    model = HistGradientBoostingClassifier(max_iter=5, categorical_features=["plan"])
    model.fit(X.drop(columns="label"), X["label"])
    joblib.dump(model, registered / "model.joblib")
    X.to_parquet(registered / "train.parquet")
    as_user(
        "alice",
        "register",
        str(registered / "model.joblib"),
        "--name",
        "churn",
        "--train",
        str(registered / "train.parquet"),
        "--target",
        "label",
    )
    expect("version.registered", 2, "alice", "alice registered churn v2.")
    as_user("bob", "approve", "churn", "2", "--reason", "fresher")
    expect("version.approved", 2, "bob", "bob approved churn v2 for production.")
    as_user("alice", "promote", "churn", "2", "--reason", "retrained")
    expect("version.promoted", 2, "alice", "alice promoted churn v2 to production (was v1).")
    as_user("alice", "rollback", "churn", "--reason", "too slow")
    expect("version.rolled_back", 1, "alice", "rolled churn@production back from v2 to v1.")
    assert run_cli(["promote", "churn", "2", "--to", "production"]) == 0
    expect("version.promoted", 2, "alice", "alice promoted churn v2 to production (was v1).")
    assert run_cli(["promote", "churn", "2"]) == 1  # refused: already production
    assert len(box.envelopes) == seen and len(received) == seen
    capsys.readouterr()
    assert run_cli(["alerts", "list", "--json"]) == 0
    stored = json.loads(capsys.readouterr().out)
    assert len(stored) == seen and {a["status"] for a in stored} == {"sent"}
    assert stored[-1]["rule"] == "notify:deploys" and stored[-1]["metric"] == "version.approved"


def test_a_failing_channel_warns_but_the_cli_change_stands(
    registered: Path,  # noqa: F811 - pytest fixture
    mailbox: tuple[int, Mailbox],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    port, box = mailbox
    failing = HookServer(500)
    try:
        config = registered / "shipyard.toml"
        _notify_config(config, port, failing.url)
        monkeypatch.setenv("SHIPYARD_CONFIG", str(config))
        assert run_cli(["promote", "churn", "1", "--to", "staging"]) == 0
        captured = capsys.readouterr()
        assert "churn@staging" in captured.out and "v1" in captured.out
        err = " ".join(captured.err.split())
        assert "Warning: notification" in err and "was not delivered" in err
        assert "replied 500" in err and "the change itself is saved" in err
        assert len(failing.received) == 1 and len(box.envelopes) == 1  # mail still went
    finally:
        failing.close()
    c = Client(Settings()).open()
    assert c.registry.aliases("churn") == {"staging": 1}
    c.close()
    assert run_cli(["alerts", "list", "--json"]) == 0
    (alert,) = json.loads(capsys.readouterr().out)
    assert alert["status"] == "failed" and alert["metric"] == "version.promoted"
    assert alert["deliveries"]["mail"]["ok"] and not alert["deliveries"]["hook"]["ok"]
    assert run_cli(["alerts", "rules", "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert listed["alerts"] == [] and listed["notify"] == [
        {
            "name": "deploys",
            "events": [
                "version.registered",
                "version.approved",
                "version.promoted",
                "version.rolled_back",
            ],
            "models": [],
            "severity": "info",
            "channels": ["mail", "hook"],
        }
    ]
