"""Alert rules in shipyard.toml fire on monitoring runs, are sent, stored, cooled down, acked."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from test_monitor_cli import _frame, registered  # noqa: F401 - the fixture is used by name

from shipyard.cli import run_cli


@pytest.fixture
def hook() -> Iterator[tuple[str, list[dict]]]:  # type: ignore[type-arg]
    received: list[dict] = []  # type: ignore[type-arg]

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            received.append(json.loads(body))
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/hook", received
    server.shutdown()
    server.server_close()
    thread.join(5)


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
    _frame(5_000, 1).to_parquet(clean)
    shifted = _frame(5_000, 2)
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
    shifted = _frame(5_000, 2)
    shifted["age"] += 5.0
    shifted.to_parquet(drifted)
    assert run_cli(["monitor", "run", "churn:1", "--current", str(drifted)]) == 1
    capsys.readouterr()
    assert run_cli(["alerts", "list", "--json"]) == 0
    (alert,) = json.loads(capsys.readouterr().out)
    assert alert["status"] == "failed" and alert["deliveries"]["team"]["ok"] is False

    _config(config, "http://127.0.0.1:9/hook", extra='colour = "red"\n')
    assert run_cli(["monitor", "run", "churn:1", "--current", str(drifted)]) == 2
    assert "invalid" in capsys.readouterr().err
    assert run_cli(["monitor", "history", "churn", "--metric", "rows", "--json"]) == 0
    assert len(json.loads(capsys.readouterr().out)) == 1  # a refused run stores nothing
    config.write_text("[[alerts]]\nname = 'x'\nmetric = 'psi'\nchannels = ['pager']\n")
    assert run_cli(["monitor", "run", "churn:1", "--current", str(drifted)]) == 2
    assert "unknown channel" in capsys.readouterr().err
    config.write_text("this is = = not toml")
    assert run_cli(["monitor", "run", "churn:1", "--current", str(drifted)]) == 2
    assert "not valid TOML" in capsys.readouterr().err
