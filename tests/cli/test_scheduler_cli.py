"""``shipyard scheduler`` and ``shipyard jobs [history | run]`` on SQLite and PostgreSQL, and a
real scheduler process stopped by SIGTERM."""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from shipyard.cli import run_cli
from shipyard.scheduler import JobRuns
from shipyard.store import Store

JOBS = """
[[jobs]]
name = "hello"
kind = "command"
schedule = "* * * * * */1"
command = ["sh", "-c", "echo hi"]

[[jobs]]
name = "boom"
kind = "command"
schedule = "0 0 1 1 *"
command = ["sh", "-c", "echo '[error] bad thing happened' >&2; exit 3"]
"""


@pytest.fixture
def project(db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """shipyard.toml with two command jobs; the CLI on the test database."""
    config = tmp_path / "shipyard.toml"
    config.write_text(JOBS, encoding="utf-8")
    monkeypatch.setenv("SHIPYARD_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("SHIPYARD_DB_URL", db_url)
    monkeypatch.setenv("SHIPYARD_CONFIG", str(config))
    monkeypatch.setenv("SHIPYARD_USER", "alice")
    return config


def _json(capsys: pytest.CaptureFixture[str], args: list[str]) -> object:
    capsys.readouterr()
    assert run_cli(args) == 0
    return json.loads(capsys.readouterr().out)


BAD = {
    "unknown kind": (
        JOBS.replace('kind = "command"', 'kind = "retrian"', 1),
        "[[jobs]] 'hello' kind: must be one of",
    ),
    "bad cron": (
        JOBS.replace("* * * * * */1", "* * * * * */1 9"),
        "[[jobs]] 'hello' schedule: must be a cron",
    ),
    "unknown channel": (JOBS + 'channels = ["pager"]\n', "unknown channel(s) ['pager']"),
    "extra field": (JOBS + "retries = 3\n", "[[jobs]] 'boom' retries: unknown key"),
    "not TOML": ("[[jobs]\nname =", "is not valid TOML"),
    "missing name": (JOBS.replace('name = "hello"\n', ""), "[[jobs]] #1 name: required"),
    "bad alert_cooldown": (
        '[scheduler]\nalert_cooldown = "soon"\n' + JOBS,
        "[scheduler] alert_cooldown: must be",
    ),
}


def test_a_bad_config_is_refused_before_any_work(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for case, (text, message) in BAD.items():
        project.write_text(text, encoding="utf-8")
        for args in (["scheduler"], ["scheduler", "--once"], ["jobs"], ["jobs", "run", "hello"]):
            assert run_cli(args) == 2, (case, args)
            err = capsys.readouterr().err
            assert err.startswith("Error: ") and message in err, (case, args, err)
            assert "Traceback" not in err and str(project) in err
    project.write_text(JOBS, encoding="utf-8")
    assert _json(capsys, ["jobs", "history", "--json"]) == []  # no job_runs row written


def test_jobs_list_run_and_history(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    listed = _json(capsys, ["jobs", "--json"])
    assert isinstance(listed, list)
    assert [(j["name"], j["kind"], j["schedule"], j["last_run"]) for j in listed] == [
        ("hello", "command", "* * * * * */1", None),
        ("boom", "command", "0 0 1 1 *", None),
    ]
    assert listed[1]["next_run"].endswith("-01-01T00:00:00+00:00")
    assert run_cli(["jobs"]) == 0
    out = capsys.readouterr().out
    assert "hello" in out and "boom" in out and "never" in out

    assert run_cli(["jobs", "run", "hello"]) == 0
    captured = capsys.readouterr()
    assert "Job hello succeeded" in captured.out and "sh exited with code 0" in captured.out
    assert "INFO    Job hello started" in captured.err  # the log lines, on stderr
    assert run_cli(["jobs", "run", "boom"]) == 1
    captured = capsys.readouterr()
    assert "Job boom failed" in captured.out
    assert "sh exited with code 3: [error] bad thing happened" in captured.out
    assert "ERROR   Job boom failed" in captured.err and "Traceback" not in captured.err
    assert run_cli(["jobs", "run", "nope"]) == 1
    err = capsys.readouterr().err
    assert "Error: There is no job 'nope' in shipyard.toml (declared: hello, boom)." in err

    listed = _json(capsys, ["jobs", "--json"])
    assert isinstance(listed, list)
    last = {j["name"]: j["last_run"] for j in listed}
    assert last["hello"]["status"] == "succeeded" and last["hello"]["trigger"] == "manual"
    assert last["boom"]["status"] == "failed" and last["boom"]["seconds"] >= 0
    history = _json(capsys, ["jobs", "history", "--json"])
    assert isinstance(history, list)
    assert [(r["job"], r["status"]) for r in history] == [
        ("boom", "failed"),
        ("hello", "succeeded"),
    ]
    for run in history:
        assert run["started_at"] <= run["finished_at"] and run["seconds"] >= 0
        assert run["rows"] == (0 if run["job"] == "hello" else None)
    assert history[0]["message"] == "sh exited with code 3: [error] bad thing happened"
    assert len(_json(capsys, ["jobs", "history", "hello", "--json"])) == 1  # type: ignore[arg-type]
    assert len(_json(capsys, ["jobs", "history", "--limit", "1", "--json"])) == 1  # type: ignore[arg-type]
    assert run_cli(["jobs", "history", "boom"]) == 0
    out = capsys.readouterr().out
    assert "failed" in out and "hello" not in out
    assert run_cli(["jobs", "history", "nope"]) == 0
    assert "No runs of job 'nope' yet" in capsys.readouterr().out


def test_scheduler_once_for_and_job_selection(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run_cli(["scheduler", "--once"]) == 1  # boom failed
    out = capsys.readouterr().out
    assert "Job hello succeeded" in out and "Job boom failed" in out
    assert run_cli(["scheduler", "--once", "--job", "hello"]) == 0
    assert run_cli(["scheduler", "--once", "--job", "nope"]) == 1
    assert "There is no job 'nope'" in capsys.readouterr().err
    assert run_cli(["scheduler", "--once", "--for", "3"]) == 2
    assert "either --once or --for" in capsys.readouterr().err

    before = signal.getsignal(signal.SIGTERM)
    assert run_cli(["scheduler", "--for", "1.2", "--job", "hello"]) == 0
    captured = capsys.readouterr()
    assert "next run (UTC)" in captured.out and "Scheduler stopped after" in captured.out
    assert "boom" not in captured.out  # not selected
    assert "Job hello succeeded" in captured.err
    history = _json(capsys, ["jobs", "history", "--json"])
    assert isinstance(history, list)
    assert {r["job"] for r in history if r["trigger"] == "schedule"} == {"hello", "boom"}
    assert sum(r["job"] == "hello" for r in history) >= 3  # --once twice, then ticks
    assert signal.getsignal(signal.SIGTERM) == before  # handlers put back

    project.write_text("", encoding="utf-8")
    assert run_cli(["scheduler", "--once"]) == 1
    assert "No jobs are declared in" in capsys.readouterr().err
    assert run_cli(["scheduler", "--for", "0.2"]) == 0  # it drives rollouts
    assert "drives the rollouts only" in " ".join(capsys.readouterr().out.split())
    assert _json(capsys, ["jobs", "--json"]) == []


def test_sigterm_stops_a_scheduler_process_cleanly(tmp_path: Path) -> None:
    config = tmp_path / "shipyard.toml"
    config.write_text(
        JOBS
        + """
[[jobs]]
name = "slow"
kind = "command"
schedule = "* * * * * */1"
command = ["sh", "-c", "echo $$ > {pidfile}; exec sleep 5"]
""".replace("{pidfile}", str(tmp_path / "slow.pid")),
        encoding="utf-8",
    )
    env = {
        **os.environ,
        "SHIPYARD_HOME": str(tmp_path / "home"),
        "SHIPYARD_CONFIG": str(config),
        "SHIPYARD_USER": "alice",
    }
    env.pop("SHIPYARD_DB_URL", None)
    started = time.monotonic()
    process = subprocess.Popen(
        [sys.executable, "-m", "shipyard", "scheduler", "--for", "30", "--grace", "0.5"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    lines: queue.Queue[str] = queue.Queue()
    assert process.stderr is not None
    reader = threading.Thread(target=lambda: [lines.put(line) for line in process.stderr])  # type: ignore[union-attr]
    reader.start()
    seen: list[str] = []
    while not any("Job slow started" in line for line in seen):
        assert time.monotonic() - started < 25, "".join(seen)
        try:
            seen.append(lines.get(timeout=1))
        except queue.Empty:
            assert process.poll() is None, "".join(seen)
    process.send_signal(signal.SIGTERM)
    process.wait(timeout=15)
    reader.join(5)
    assert process.stdout is not None
    out = process.stdout.read()
    process.stdout.close()
    process.stderr.close()
    while not lines.empty():
        seen.append(lines.get())
    err = "".join(seen)
    assert process.returncode == 0, err
    assert time.monotonic() - started < 28  # well before --for 30
    assert "SIGTERM received: stopping" in err and "Traceback" not in err
    assert "Scheduler stopped after" in out

    pid = int((tmp_path / "slow.pid").read_text())
    assert not Path(f"/proc/{pid}").exists(), "the running command was left orphaned"
    url = f"sqlite:///{tmp_path / 'home' / 'shipyard.db'}"
    with Store(url, str(tmp_path / "home" / "artifacts"), creator="alice").open() as store:
        runs = [
            {"job": r.job, "status": r.status, "message": r.message}
            for r in JobRuns(store, owner="test:0").history()
        ]
    assert runs and all(r["status"] != "running" for r in runs)
    slow = [r for r in runs if r["job"] == "slow" and r["status"] != "skipped"]
    assert slow and slow[0]["status"] == "failed"
    assert slow[0]["message"].startswith("interrupted: the scheduler stopped")
