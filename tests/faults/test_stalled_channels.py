"""A stalled alert channel never holds a registry change, nor the web request that made it.

The webhook is a real server that accepts the connection and never answers; the mail server
accepts, says ``220`` and then stalls. Both channels keep their defaults (10 s timeout, 3
attempts: 33 s each on a stalled server). The changes return at once (measured); the
notifications then fail within the budget, and are stored as failed alerts.
"""

from __future__ import annotations

import statistics
import time
from pathlib import Path

import httpx
import pytest

from faults.conftest import Staller
from gates_off import GATES_OFF_TOML
from shipyard import Client, Settings
from shipyard.alerting import Alert, AlertRule, Alerts, channel_from_config
from shipyard.auth import Tokens
from shipyard.config import load_project
from shipyard.serving import serve_in_thread
from shipyard.store import Store
from shipyard.ui import create_ui

#: What "at once" means here: a promotion on SQLite takes milliseconds (tens on a busy CI
#: machine); two channels that held it would take twice the budget (2 s here, 10 s by default).
AT_ONCE = 1.0
BUDGET = 1.0


def _config(path: Path, webhook: Staller, smtp: Staller) -> Path:
    path.write_text(
        GATES_OFF_TOML
        + f"""
[channels.hook]
type = "webhook"
url = "http://127.0.0.1:{webhook.port}/hook"

[channels.mail]
type = "email"
host = "127.0.0.1"
port = {smtp.port}
from = "shipyard@example.com"
to = ["ops@example.com"]

[[notify]]
name = "deploys"
events = ["version.promoted"]
channels = ["hook", "mail"]
""",
        encoding="utf-8",
    )
    return path


@pytest.mark.slow  # the notifications' budgets: ~8 s
def test_a_stalled_webhook_and_mail_server_hold_no_change_and_no_request(
    served_store: Store, tmp_path: Path, stalled_webhook: Staller, stalled_smtp: Staller
) -> None:
    config = _config(tmp_path / "shipyard.toml", stalled_webhook, stalled_smtp)
    alice = Client(Settings(user="alice", config=config), store=served_store).open()
    notifier = alice.notifier
    assert notifier is not None
    notifier.budget = BUDGET  # the default (5 s) would only make the test longer
    # Registry changes through the Python API (what the CLI does).
    seconds = []
    for alias in ("staging", "shadow"):
        start = time.perf_counter()
        alice.promote("churn", 1, to=alias)
        seconds.append(time.perf_counter() - start)
    # A web request: the UI's JSON API, with a token acting for alice.
    alice.users.set_role("alice", "scientist", actor="admin")
    secret, _ = Tokens(served_store).create(role="admin", name="ops", actor="admin", user="alice")
    ui = create_ui(served_store, project=load_project(config))
    with serve_in_thread(ui) as url:
        bearer = {"authorization": f"Bearer {secret}"}
        assert httpx.get(f"{url}/api/me", headers=bearer).status_code == 200  # warm
        # The route's first call imports and builds what it needs: warm it with a promotion
        # refused inside its transaction (a stale "expected"), which notifies no one.
        stale = {"version": 1, "alias": "candidate", "expected": 7}
        warm = httpx.post(f"{url}/api/models/churn/promote", json=stale, headers=bearer)
        assert warm.status_code == 409, warm.text
        requests = []
        for alias in ("candidate", "review"):
            start = time.perf_counter()
            response = httpx.post(
                f"{url}/api/models/churn/promote",
                json={"version": 1, "alias": alias, "expected": 0},
                headers=bearer,
                timeout=60,
            )
            requests.append(time.perf_counter() - start)
            assert response.status_code == 200, response.text
    assert alice.registry.aliases("churn") == {
        "production": 1,
        "staging": 1,
        "shadow": 1,
        "candidate": 1,
        "review": 1,
    }
    assert max(seconds) < AT_ONCE, seconds
    # The UI's promotion does more (its checks, the answer's summary): held, it would take
    # 2 s or more; a busy machine makes it a few hundred milliseconds.
    assert max(requests) < 1.5 * AT_ONCE, requests
    print(
        f"\nstalled channels: promotion median {statistics.median(seconds) * 1000:.1f} ms, "
        f"UI API promotion median {statistics.median(requests) * 1000:.1f} ms"
    )
    # The notifications go on in the background, each channel within its budget.
    assert notifier.pending >= 1
    start = time.perf_counter()
    assert notifier.flush(timeout=4 * 2 * (BUDGET + 1.0))
    assert time.perf_counter() - start <= 4 * 2 * (BUDGET + 0.5)
    records = [r for r in Alerts(served_store).list() if r.rule == "notify:deploys"]
    assert len(records) == 4 and {r.status for r in records} == {"failed"}
    for record in records:
        for channel in ("hook", "mail"):
            assert "did not answer within" in record.deliveries[channel]["error"], record
    assert stalled_webhook.accepted >= 4 and stalled_smtp.accepted >= 4
    alice.close()


def test_a_stalled_channel_costs_a_monitoring_run_one_timeout_not_one_per_alert(
    served_store: Store, stalled_webhook: Staller, stalled_smtp: Staller
) -> None:
    """A monitoring run raising several alerts at once (``Alerts.raise_all``, no budget: the
    channels' own timeout and attempts) waits for each stalled channel once."""
    timeout = 1.0
    channels = {
        "hook": channel_from_config(
            "webhook",
            {"url": f"http://127.0.0.1:{stalled_webhook.port}/", "timeout": timeout, "attempts": 1},
        ),
        "mail": channel_from_config(
            "email",
            {"host": "127.0.0.1", "port": stalled_smtp.port, "from": "shipyard@example.com",
             "to": ["ops@example.com"], "timeout": timeout, "attempts": 1},
        ),
    }  # fmt: skip
    features = ["age", "income", "tenure", "plan"]
    fired = [
        (
            AlertRule(
                name=f"drift-{f}", metric="psi", feature=f, threshold=0.2, channels=["hook", "mail"]
            ),
            Alert(
                rule=f"drift-{f}",
                severity="warning",
                model="churn",
                version=1,
                metric="psi",
                feature=f,
                value=0.4,
                threshold=0.2,
                message=f"{f} drifted",
            ),
        )
        for f in features
    ]
    start = time.perf_counter()
    records = Alerts(served_store).raise_all(fired, channels, actor="cron")
    elapsed = time.perf_counter() - start
    print(f"\n4 alerts x 2 stalled channels (timeout {timeout:g} s): {elapsed:.2f} s")
    # Without the skip: 4 alerts x 2 channels x 1 s = 8 s; with it 2 s, plus the records'
    # writes (slow on a busy CI machine).
    assert elapsed < 5.0, elapsed
    assert [r.status for r in records] == ["failed"] * 4
    first, *rest = records
    for channel in ("hook", "mail"):
        assert "did not answer within" in first.deliveries[channel]["error"]
        for record in rest:
            delivery = record.deliveries[channel]
            assert delivery["attempts"] == 0 and "not tried: it timed out" in delivery["error"]
