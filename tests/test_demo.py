"""``shipyard demo`` runs the whole loop and ends in the state it describes."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from rich.console import Console

from shipyard.audit import list_events
from shipyard.cli import run_cli
from shipyard.demo import run_demo, shipyard_command
from shipyard.errors import InvalidInput
from shipyard.settings import Settings
from shipyard.store import Store


def _line(text: str, title: str) -> str:
    """The printed outcome of the step called ``title`` in ``text`` (whitespace collapsed)."""
    start = text.index(f"✓ {title}: ") + len(title) + 4
    end = text.find("✓ ", start)
    return text[start : end if end >= 0 else None]


def _audit(home: Path) -> list[tuple[str, str, dict[str, object]]]:
    store = Store.from_settings(Settings(home=home, user="admin")).open()
    try:
        with store.read() as session:
            events = list_events(session, limit=10_000)
            return [(e.action, e.reason, dict(e.details)) for e in reversed(events)]
    finally:
        store.close()


def test_demo_runs_the_loop(tmp_path: Path) -> None:
    console = Console(record=True, width=120)
    outcome = run_demo(tmp_path / "demo", console)
    printed = console.export_text()
    text = " ".join(printed.split())  # Rich wraps long lines
    # promoted v2 then rolled back; later v3 was promoted after its canary and rolled back
    assert outcome["production"] == {1}
    assert {"mean_radius", "mean_texture"} <= set(outcome["flagged"])
    page = Path(outcome["report"]).read_text(encoding="utf-8")
    assert "mean_radius" in page and "<script src=" not in page
    for expected in (
        "refused: ",
        "422 (",
        "answered with v2 after",
        "delivered to owner@",
        "chain intact",
    ):
        assert expected in text, expected

    # validation gates before every promotion: v1 with no champion, v2 against v1
    assert _line(text, "validate v1 (the first model: no champion to compare with)").startswith(
        "every gate passed"
    )
    assert "no gate record for its archive" in _line(
        text, "alice tries to promote v2 before validation"
    )
    assert "every gate passed" in _line(
        text, "validate v2 against production (v1) on the same rows"
    )
    # labels went in through the feedback API; performance is measured against them
    assert _line(text, "post ground-truth labels for 80% of the predictions").startswith(
        "400 of 500 predictions labelled through POST /models/diagnosis/feedback"
    )
    # the monitoring run e-mailed the drift alert, which started the retraining of v3 from the
    # labelled log; v3 was validated on its held-out rows and the approvers were e-mailed
    assert "alerts: input-drift (sent)" in _line(
        text, "monitor the logged window (shipyard monitor run)"
    )
    assert outcome["mail"][0].endswith("diagnosis v1: drift_share")
    assert outcome["retrain"] == {"version": 3, "passed": True}
    assert "Retrained diagnosis: v3 passed its gates" in outcome["mail"][1]
    validation = Path(outcome["validation_report"]).read_text(encoding="utf-8")
    assert "diagnosis v3" in validation and "<script src=" not in validation
    assert "held-out rows" in validation
    estimate = outcome["estimate"].metric("accuracy")
    assert estimate.ci_low <= estimate.value <= estimate.ci_high
    perf = outcome["performance"]
    accuracy = perf.metric("accuracy")
    assert perf.n_used == 400 and accuracy.baseline is not None
    assert accuracy.ci_low < accuracy.value < accuracy.ci_high
    assert perf.metric("roc_auc").value is not None
    assert 0.7 < perf.coverage.coverage < 0.85  # 400 of v1's ~505 answered predictions
    line = _line(text, "measure performance against the labels")
    assert re.search(r"accuracy 0\.\d{3} \(95% CI 0\.\d{3}\.\.[01]\.\d{3}, archive 0\.986\)", line)
    assert re.search(r"label coverage \d+% \(400 of \d+\)", line), line
    assert '<h2 id="performance">Performance and service</h2>' in page
    assert "label coverage" in page and "roc_auc" in page

    # the rollout: both versions answered, judged by the rollouts' driver, then promoted or ended
    answered = outcome["canary"]["answered"]
    assert answered[("1", "production")] >= 100 and answered[("3", "canary")] >= 100
    canary_line = _line(text, "send traffic during the canary")
    assert re.search(r"v1 \(production\) answered \d+, v3 \(canary\) answered \d+", canary_line)
    posted = re.search(r"labels of their (\d+) predictions posted", canary_line)
    assert posted and int(posted[1]) >= 200  # 1 to 5 rows per request, all labelled
    decision = outcome["canary"]["decision"]
    assert f"the rollout's judge (shipyard traffic advance): decision: {decision}" in text
    assert decision in ("promote", "rollback", "wait")
    if decision == "promote":
        assert "promoted to production after 25%" in text
        assert "the server answered with v3 on production after" in text
    # one call rolled back under load, and no request failed meanwhile (unless the rollout's
    # judge rolled the canary back itself: then there is nothing left to roll back)
    drill = outcome["drill"]
    if decision == "rollback":
        assert drill is None and "the rollout rolled the canary back by itself" in text
    else:
        assert drill["failed"] == 0 and drill["requests"] >= 20
        assert f"{drill['requests']} requests from 2 clients around the call, 0 failed" in text

    events = _audit(tmp_path / "demo")
    actions = [action for action, _, _ in events]
    canary = actions.index("traffic.canary")
    assert events[canary][2]["version"] == 3 and events[canary][2]["percent"] == 25
    after = events[canary + 1 :]
    if decision == "promote":
        assert [a for a, _, _ in after if a.startswith(("version.pro", "version.rol"))] == [
            "version.promoted",
            "version.rolled_back",
        ]
        assert "rollout.promoted" in actions
        cleared = next(d for a, _, d in after if a == "traffic.cleared")
        assert str(cleared["cause"]).startswith("promotion")
    elif decision == "rollback":
        assert "rollout.rolled_back" in actions
    else:
        cleared = next(d for a, _, d in after if a == "traffic.cleared")
        assert cleared["cause"] == "rollback"

    # the last lines are commands that run as printed, each against the demo's store
    lines = [line.strip() for line in printed.splitlines()]
    start = lines.index("Explore it:")
    assert [line for line in lines[start + 1 :] if line] == outcome["explore"]
    for command in outcome["explore"]:
        done = subprocess.run(
            command,
            shell=True,
            capture_output=True,
            text=True,
            cwd=tmp_path,
            env={**os.environ, "COLUMNS": "200"},  # tables unwrapped, so names can be found
            timeout=120,
        )
        assert done.returncode == 0, (command, done.stderr)
        assert "diagnosis" in done.stdout, command
    assert not (tmp_path / ".shipyard").exists()  # none of them opened a store of its own

    # a second run resets its own folder, and never deletes a folder it did not create
    run_demo(tmp_path / "demo", Console(quiet=True))
    other = tmp_path / "mine"
    other.mkdir()
    (other / "keep.txt").write_text("x")
    with pytest.raises(InvalidInput, match="not a Shipyard demo folder"):
        run_demo(other, Console(quiet=True))
    assert (other / "keep.txt").exists()


def test_the_shipyard_command_is_this_installation() -> None:
    # the interpreter's own script when the one on PATH is another (or none), else the name
    command = shipyard_command()
    bare = subprocess.run(
        f"{command} --help", shell=True, capture_output=True, text=True, timeout=60
    )
    assert bare.returncode == 0 and "Usage: shipyard" in bare.stdout
    empty = {**os.environ, "PATH": ""}
    done = subprocess.run(
        [sys.executable, "-c", "from shipyard.demo import shipyard_command as c; print(c())"],
        capture_output=True,
        text=True,
        env=empty,
        check=True,
    )
    assert done.stdout.strip() != "shipyard"


def test_without_the_demo_extra_the_demo_says_how_to_install_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setitem(sys.modules, "aiosmtpd", None)  # as if not installed: import fails
    assert run_cli(["demo", "--home", str(tmp_path / "demo")]) == 1
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1, err
    assert 'pip install -e ".[demo]"' in err
    assert not (tmp_path / "demo").exists()  # refused before any work
