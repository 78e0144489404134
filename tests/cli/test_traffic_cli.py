"""``shipyard promote --canary/--shadow``, ``split``, ``traffic show|history|clear|check``,
``rollback``: exit codes, and ``traffic check --act`` against a real uvicorn server."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import httpx
import numpy as np
import pytest

from cli_support import cli
from gates_off import GATES_OFF_TOML, NO_GATES
from shipyard.packaging import prepare_archive
from shipyard.registry import Registry, Traffic
from shipyard.serving import ARM_HEADER, VERSION_HEADER
from shipyard.store import Store

pytestmark = pytest.mark.sqlite_only  # the database is incidental here (conftest)


@pytest.fixture
def env(
    store: Store, db_url: str, tmp_path: Path, monkeypatch, fitted_pipeline, training_data, approver
):  # type: ignore[no-untyped-def]
    """churn v1..v3 by alice (v1, v2 approved, v1 production); the CLI acts as alice."""
    X, y, _, _ = training_data
    prepared = prepare_archive(fitted_pipeline, X_train=X, y_train=y, onnx=False)
    registry = Registry(store, NO_GATES)
    for _ in range(3):
        registry.register(prepared, name="churn", actor="alice")
    for v in (1, 2):
        approver.approve("churn", v, reason="ok")
    registry.promote("churn", 1, actor="alice")
    monkeypatch.setenv("SHIPYARD_HOME", str(tmp_path / "home"))
    (tmp_path / "shipyard.toml").write_text(GATES_OFF_TOML)
    monkeypatch.setenv("SHIPYARD_CONFIG", str(tmp_path / "shipyard.toml"))
    monkeypatch.setenv("SHIPYARD_DB_URL", db_url)
    monkeypatch.setenv("SHIPYARD_ARTIFACTS", str(tmp_path / "artifacts"))
    monkeypatch.setenv("SHIPYARD_USER", "alice")
    return registry


def _history(capsys: pytest.CaptureFixture[str]) -> list[dict]:  # type: ignore[type-arg]
    code, out, _ = cli(capsys, "traffic", "show", "churn", "--json")
    assert code == 0
    return list(json.loads(out)["history"])


def test_happy_paths(env, capsys) -> None:  # type: ignore[no-untyped-def]
    code, out, _ = cli(capsys, "promote", "churn", "2", "--canary", "10", "--sticky", "header:X-U")
    assert code == 0 and "v2 10%" in out
    code, out, _ = cli(capsys, "promote", "churn", "3", "--shadow")
    assert code == 0 and "shadow v3" in out
    code, out, _ = cli(capsys, "traffic", "show", "churn")
    assert code == 0 and "canary" in out
    code, out, _ = cli(capsys, "rollback", "churn")
    assert code == 0 and "Ended" in out and "production is unchanged" in out
    assert env.aliases("churn")["production"] == 1
    code, out, _ = cli(capsys, "split", "churn", "1=50", "2=50")
    assert code == 0 and "v1 50%" in out
    code, _, _ = cli(capsys, "traffic", "clear", "churn", "--reason", "done")
    assert code == 0
    assert [h["kind"] for h in _history(capsys)][:2] == ["none", "split"]
    code, out, _ = cli(capsys, "traffic", "history", "churn", "--json", "--limit", "2")
    assert code == 0 and [h["reason"] for h in json.loads(out)["history"]] == ["done", ""]
    code, out, _ = cli(capsys, "traffic", "history", "churn")
    assert code == 0 and "ended" in out and "split" in out


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (("split", "churn", "1=abc", "2=50"), 2, "not a percentage"),
        (("split", "churn", "1=50", "2=40"), 2, "sum to 90"),
        (("split", "churn", "1:50", "2=50"), 2, "VERSION=PERCENT"),
        (("split", "churn", "1=50", "9=50"), 1, "no version 9"),
        (("promote", "churn", "9", "--canary", "10"), 1, "no version 9"),
        (("promote", "churn", "3", "--canary", "10"), 1, "needs an approval"),
        (("promote", "churn", "2", "--canary", "10", "--sticky", "cookie"), 2, "header:<name>"),
        (("promote", "churn", "2", "--canary", "150"), 2, "at most 100"),
        (("promote", "churn", "2", "--canary", "10", "--shadow"), 2, "not both"),
        (("traffic", "clear", "churn"), 1, "no traffic policy"),
        (("traffic", "show", "nope"), 1, "no model 'nope'"),
        (("traffic", "churn"), 2, "No such command"),
        (("traffic", "check", "churn"), 1, "no canary or split in force"),
        (("traffic", "check", "nope"), 1, "no model 'nope'"),
        (("traffic", "check", "churn", "--since", "yesterday"), 2, "Invalid --since"),
        (("traffic", "check", "churn", "--min-requests", "0"), 2, "--min-requests"),
        (("traffic", "check", "churn", "--max-p99-ratio", "0.5"), 2, "max_p99_ratio"),
        (("promote", "churn", "2", "--auto"), 2, "e.g. --canary 10"),
        (("promote", "churn", "2", "--canary", "10", "--steps", "10,50"), 2, "apply to --auto"),
        (("promote", "churn", "2", "--canary", "10", "--auto", "--steps", "50,10"), 2, "strictly"),
        (("promote", "churn", "2", "--canary", "10", "--auto", "--steps", "10,x"), 2, "commas"),
        (("promote", "churn", "2", "--canary", "10", "--auto", "--steps", "20,50"), 2, "share"),
        (("promote", "churn", "2", "--canary", "10", "--auto", "--steps", "10,150"), 2, "at most"),
        (("promote", "churn", "2", "--canary", "10", "--auto", "--bake", "soon"), 2, "--bake"),
        (("promote", "churn", "2", "--canary", "10", "--auto", "--bake", "0m"), 2, "--bake"),
        (("promote", "churn", "3", "--canary", "10", "--auto"), 1, "needs an approval"),
        (("promote", "churn", "2", "--canary", "150", "--auto"), 2, "below 100, e.g. 10"),
        (("traffic", "advance", "nope"), 1, "no model 'nope'"),
        (("traffic", "rollouts", "nope"), 1, "no model 'nope'"),
    ],
)
def test_malformed_input(env, capsys, args, code, message) -> None:  # type: ignore[no-untyped-def]
    got, _, err = cli(capsys, *args)
    assert got == code and message in " ".join(err.split())
    assert _history(capsys) == []  # nothing written


def _log_arm(log_dir: Path, n: int, version: int, arm: str, errors: int = 0) -> None:
    """``n`` single-row requests of one arm, logged just after the policy in force started."""
    from shipyard.predlog import PredictionLog

    start = time.time()
    rng = np.random.default_rng(version)
    records: list[dict[str, object]] = []
    for i in range(n):
        base = {"ts": start + i * 1e-5, "model": "churn", "version": version, "arm": arm}
        if i < errors:
            records.append({**base, "status": "rejected", "reason": "bad", "latency_ms": 0.1})
            continue
        p = float(rng.beta(2, 5))
        records.append(
            {
                **base,
                "prediction_id": f"{arm}{i}",
                "latency_ms": float(rng.normal(5, 0.5)),
                "inputs": {"age": 40},
                "prediction": "churn" if p > 0.5 else "stay",
                "proba": {"churn": p, "stay": 1 - p},
            }
        )
    with PredictionLog(log_dir) as log:
        log.append(records)
    time.sleep(0.05)  # the check's window ends now: let the records be in the past


def _audit(store: Store, action: str) -> list[tuple[str, str]]:
    from shipyard.audit import list_events

    with store.read() as session:
        return [(e.actor, e.reason) for e in list_events(session, action=action)]


@pytest.mark.parametrize(
    ("errors", "decision", "code"), [(0, "promote", 0), (20, "rollback", 1), (None, "wait", 0)]
)
def test_check_exit_codes_and_act(  # type: ignore[no-untyped-def]
    env, store, capsys, tmp_path, errors, decision, code
) -> None:
    code_, _, _ = cli(capsys, "promote", "churn", "2", "--canary", "20")
    assert code_ == 0
    log_dir = tmp_path / "log"
    _log_arm(log_dir, 400, 1, "production")
    _log_arm(log_dir, 30 if errors is None else 150, 2, "canary", errors or 0)
    args = ("traffic", "check", "churn", "--log-dir", str(log_dir))
    got, out, _ = cli(capsys, *args)
    assert got == code and f"Decision: {decision}" in " ".join(out.split())
    assert "errors" in out and "latency" in out  # the gates table
    got, out, _ = cli(capsys, *args, "--act", "--json")
    assert got == code
    body = json.loads(out)
    assert body["decision"] == decision and len(body["reasons"]) == 5
    assert body["arms"]["candidate"]["version"] == 2
    current = Traffic(store, NO_GATES).current("churn")
    if decision == "promote":
        assert env.aliases("churn")["production"] == 2 and current is None
        assert body["action"].startswith("promoted v2")
        assert _audit(store, "version.promoted")[0][1].startswith("shipyard traffic check")
    elif decision == "rollback":
        assert env.aliases("churn")["production"] == 1 and current is None
        assert body["action"].startswith("ended policy")
        actor, reason = _audit(store, "traffic.cleared")[0]
        assert actor == "alice" and "errors: canary v2 13.3% (20/150)" in reason
    else:
        assert body["action"] is None and current is not None and current.kind == "canary"
        assert "needs 100" in body["reasons"][0]


def test_auto_rollout(env, store, capsys, tmp_path) -> None:  # type: ignore[no-untyped-def]
    from datetime import UTC, datetime, timedelta

    from shipyard.registry import Rollouts

    args = ("promote", "churn", "2", "--canary", "10", "--auto", "--steps", "10,50", "--bake", "1h")
    code, out, _ = cli(capsys, *args)
    assert code == 0 and "rollout #1 of v2: 10% → 50% → 100%" in " ".join(out.split())
    code, _, err = cli(capsys, *args)  # a second rollout of the model is refused
    assert code == 1 and "already has a running rollout" in " ".join(err.split())
    code, out, _ = cli(capsys, "traffic", "show", "churn", "--json")
    body = json.loads(out)
    assert body["rollout"]["steps"] == [10, 50, 100] and body["rollout"]["bake_seconds"] == 3600
    assert body["current"]["id"] == body["rollout"]["details"]["policy"]
    code, out, _ = cli(capsys, "traffic", "show", "churn")
    assert code == 0 and "rollout #1 of v2: running at 10%" in " ".join(out.split())
    code, out, _ = cli(capsys, "traffic", "advance", "--json")
    assert code == 0 and json.loads(out) == {"steps": []}  # baking for an hour
    code, out, _ = cli(capsys, "traffic", "advance")
    assert code == 0 and "No rollout is due" in out
    code, _, _ = cli(capsys, "traffic", "clear", "churn")  # a manual clear cancels it
    code, out, _ = cli(capsys, "traffic", "rollouts", "churn", "--json")
    (cancelled,) = json.loads(out)["rollouts"]
    assert cancelled["status"] == "cancelled" and "alice changed" in cancelled["message"]

    # A rollout whose bake ended (started an hour ago): one pass steps it to 50%.
    Rollouts(store, NO_GATES).start(
        "churn",
        2,
        [10, 50],
        bake=timedelta(minutes=30),
        actor="alice",
        now=datetime.now(UTC) - timedelta(hours=1),
    )
    log_dir = tmp_path / "log"
    _log_arm(log_dir, 400, 1, "production")
    _log_arm(log_dir, 150, 2, "canary")
    code, out, _ = cli(capsys, "traffic", "advance", "churn", "--log-dir", str(log_dir), "--json")
    assert code == 0, out
    (step,) = json.loads(out)["steps"]
    assert step["action"] == "stepped" and step["rollout"]["percent"] == 50
    assert step["verdict"]["decision"] == "promote"
    code, out, _ = cli(capsys, "traffic", "rollouts", "churn")
    assert code == 0 and "running" in out and "cancelled" in out
    assert "v2 50%" in Traffic(store, NO_GATES).current("churn").describe()  # type: ignore[union-attr]


class Hammer:
    """Sends requests to a real server from a thread, keeping (time, status, version, arm)."""

    def __init__(self, url: str, rows: list[dict[str, object]]) -> None:
        self.url, self.rows = url, rows
        self.seen: list[tuple[float, int, str, str]] = []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        with httpx.Client(base_url=self.url, timeout=10) as client:
            i = 0
            while not self.stop.is_set():
                row = self.rows[i % len(self.rows)]
                r = client.post("/models/churn/predict", json={"records": [row]})
                h = r.headers
                self.seen.append(
                    (
                        time.monotonic(),
                        r.status_code,
                        h.get(VERSION_HEADER, ""),
                        h.get(ARM_HEADER, ""),
                    )
                )
                i += 1

    def wait(self, predicate, timeout: float = 30.0) -> None:  # type: ignore[no-untyped-def]
        deadline = time.monotonic() + timeout
        while not predicate():
            assert time.monotonic() < deadline, "condition not met in time"
            time.sleep(0.01)

    def settled_after(self, since: float, version: str) -> float:
        """Seconds from ``since`` until every later answer is 200 from production ``version``."""
        after = [s for s in self.seen if s[0] >= since]
        bad = [s for s in after if (s[1], s[2], s[3]) != (200, version, "production")]
        assert after[-1][1:] == (200, version, "production")
        return (bad[-1][0] - since) if bad else 0.0


def test_check_act_on_a_live_server(  # type: ignore[no-untyped-def]
    env, store, approver, capsys, tmp_path, training_data
) -> None:
    """Canary 30% of v2 -> check --act promotes it; a failing canary v4 -> rolled back; the
    server's answers follow within 2 s, and no request fails but those of the bad canary."""
    from sklearn.linear_model import LogisticRegression

    from shipyard.predlog import PredictionLog
    from shipyard.serving import create_app, serve_in_thread
    from shipyard.settings import ServeSettings

    X, y, _, _ = training_data
    other = X[["income", "tenure"]].rename(columns={"income": "salary"})
    broken = LogisticRegression().fit(other, y)  # wants 'salary': refuses every request
    env.register(
        prepare_archive(broken, X_train=other, y_train=y, onnx=False), name="churn", actor="alice"
    )
    approver.approve("churn", 4, reason="ok")
    rows = X.sample(200, random_state=0).to_dict("records")
    log_dir = tmp_path / "predlog"
    log = PredictionLog(log_dir).open()
    settings = ServeSettings(auth=False, runtime="native", poll_interval_seconds=0.1)
    check = ("traffic", "check", "churn", "--log-dir", str(log_dir), "--min-requests", "50")
    try:
        with serve_in_thread(create_app(store, settings=settings, prediction_log=log)) as url:
            hammer = Hammer(url, rows)
            assert cli(capsys, "promote", "churn", "2", "--canary", "30")[0] == 0
            hammer.thread.start()
            hammer.wait(lambda: sum(s[3] == "canary" for s in hammer.seen) >= 90)
            assert len(hammer.seen) >= 250
            code, out, _ = cli(capsys, *check, "--max-p99-ratio", "3", "--act", "--json")
            acted = time.monotonic()
            assert code == 0, out
            assert json.loads(out)["decision"] == "promote"
            assert env.aliases("churn")["production"] == 2
            assert Traffic(store, NO_GATES).current("churn") is None
            hammer.wait(lambda: hammer.seen[-1][0] > acted + 2.5)
            assert hammer.settled_after(acted, "2") < 2.0
            assert {s[1] for s in hammer.seen} == {200}  # no request failed around the switch

            assert cli(capsys, "promote", "churn", "4", "--canary", "30")[0] == 0
            started = len(hammer.seen)
            hammer.wait(lambda: sum(s[1] != 200 for s in hammer.seen[started:]) >= 60)
            code, out, _ = cli(capsys, *check, "--act", "--json")
            acted = time.monotonic()
            assert code == 1, out
            verdict = json.loads(out)
            assert verdict["decision"] == "rollback" and verdict["action"].startswith("ended")
            assert "errors fail" in " ".join(verdict["reasons"])
            assert Traffic(store, NO_GATES).current("churn") is None
            assert env.aliases("churn")["production"] == 2
            hammer.wait(lambda: hammer.seen[-1][0] > acted + 2.5)
            assert hammer.settled_after(acted, "2") < 2.0
            hammer.stop.set()
            hammer.thread.join(10)
    finally:
        log.close()
