"""``shipyard demo``: the whole loop on scikit-learn's bundled breast-cancer data.

Everything happens in its own embedded store (a folder it owns, reset on every run), with
three people: an admin who creates the store, Alice (a data scientist) and Bob (an approver),
and the project file ``shipyard.toml`` it writes there (the model's objective and acceptance
criterion, its gates, its retraining, an e-mail channel to a local SMTP server the demo starts,
and a drift alert that asks for a retraining). Train, register, validate, approve, promote and
roll back; then serve (``shipyard.demo._live``), log and label the traffic, monitor drift,
performance and its label-free estimate, alert, retrain from the labelled log (validated
against production, the approvers e-mailed), approve, roll the candidate out (a canary stepped
to production by the rollout's judge) and roll back under load. Each step calls the product's
own pipeline: the one behind the ``shipyard`` command that does the same.
"""

from __future__ import annotations

import os
import shlex
import shutil
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from shipyard.audit import verify
from shipyard.client import Client
from shipyard.config import load_project
from shipyard.demo._live import DRIFT, LiveDemo, MailBox
from shipyard.errors import MissingDependency, ShipyardError
from shipyard.settings import Settings
from shipyard.store import Store

MARKER = ".shipyard-demo"


def _require_extra() -> None:
    """Refuse to start, in one line saying what to install, without the ``[demo]`` extra
    (aiosmtpd: the local SMTP server of the e-mail alert step)."""
    try:
        import aiosmtpd  # noqa: F401 - only whether it imports
    except ImportError as exc:
        raise MissingDependency(
            "The demo needs aiosmtpd (its local SMTP server), which is not installed: run "
            'pip install -e ".[demo]" in a clone of Shipyard (or pip install "shipyard[demo]").'
        ) from exc


def shipyard_command() -> str:
    """How a shell runs this installation's ``shipyard``: the bare name when the one on PATH
    is this one; else the script beside this interpreter (a venv not on PATH); else
    ``<python> -m shipyard``.

    >>> shipyard_command().endswith(("shipyard", "-m shipyard"))
    True
    """
    beside = shutil.which("shipyard", path=os.path.dirname(sys.executable))
    if beside is None:
        return f"{shlex.quote(sys.executable)} -m shipyard"
    on_path = shutil.which("shipyard")
    if on_path is not None and os.path.samefile(on_path, beside):
        return "shipyard"
    return shlex.quote(beside)


def explore_commands(home: Path) -> list[str]:
    """Shell commands that show the demo's store, each runnable as printed (the store's
    ``SHIPYARD_HOME`` set on each one).

    >>> explore_commands(Path("/tmp/my demo"))[0].startswith("SHIPYARD_HOME='/tmp/my demo' ")
    True
    """
    env = (
        f"SHIPYARD_HOME={shlex.quote(str(home))} "
        f"SHIPYARD_CONFIG={shlex.quote(str(home / 'shipyard.toml'))}"
    )
    command = shipyard_command()
    return [
        f"{env} {command} models diagnosis",
        f"{env} {command} validate diagnosis 3 --show",
        f"{env} {command} card diagnosis 3",
        f"{env} {command} audit log",
    ]


def _reset(home: Path) -> None:
    if home.exists():
        if not (home / MARKER).exists():
            from shipyard.errors import InvalidInput

            raise InvalidInput(
                f"'{home}' exists and is not a Shipyard demo folder; pass --home with a new path."
            )
        shutil.rmtree(home)
    home.mkdir(parents=True)
    (home / MARKER).write_text("Created by 'shipyard demo'; deleted by the next demo run.\n")


def _refusal(action: Callable[[], object]) -> Callable[[], str]:
    """A demo step that must be refused: shows the refusal's message."""

    def step() -> str:
        try:
            action()
        except ShipyardError as exc:
            return f"refused: {exc.message}"
        return "unexpectedly allowed"

    return step


def load_data() -> tuple[Any, Any, Any, Any]:
    """Breast-cancer data (ships with scikit-learn), split 75/25 with a fixed seed."""
    from sklearn.datasets import load_breast_cancer
    from sklearn.model_selection import train_test_split

    data = load_breast_cancer(as_frame=True)
    X = data.data.rename(columns=lambda c: c.replace(" ", "_"))
    y = data.target.map({0: "malignant", 1: "benign"})
    return train_test_split(X, y, test_size=0.25, random_state=0, stratify=y)


PROJECT = """\
# Written by shipyard demo: what this demo's model, gates, alerts and retraining follow.
[channels.owner]
type = "email"
host = "127.0.0.1"
port = {port}
from = "shipyard@localhost"
to = ["owner@localhost"]
timeout = 5.0
attempts = 1

[[alerts]]
name = "input-drift"
metric = "drift_share"          # the share of the inputs that drifted
threshold = 0.05
severity = "critical"
channels = ["owner"]
action = "retrain"              # ... and start shipyard retrain diagnosis

[gates]
min_labels = 100                # enough labelled production rows to validate on
window = "1d"
max_p99_ratio = 3.0
metrics = [{{ metric = "roc_auc", min = 0.95, max_drop = 0.03 }}]

[models.diagnosis]
objective = "Flag likely malignant tumours for a pathologist's second read"
accept = "roc_auc >= 0.95"

[models.diagnosis.retrain]
entry = "shipyard.demo:retrain_diagnosis"
source = "feedback"             # the logged inputs joined with the labels that arrived
target = "label"
window = "1d"
channels = ["owner"]
"""


def retrain_diagnosis(frame: pd.DataFrame) -> Any:
    """The demo's retraining entry point (``[models.diagnosis.retrain] entry``): the same
    scaled logistic regression as v1, fitted on ``frame`` (its ``label`` column the target).

    >>> import numpy as np
    >>> rows = pd.DataFrame({"a": np.arange(20.0), "label": ["x", "y"] * 10})
    >>> retrain_diagnosis(rows).predict(rows[["a"]]).shape
    (20,)
    """
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    model = make_pipeline(StandardScaler(), LogisticRegression(C=0.5, max_iter=500))
    return model.fit(frame.drop(columns=["label"]), frame["label"])


def _gates_line(result: Any) -> str:
    """One line of a validation: passed or the failed gates, how many were n/a, the rows."""
    gates = result.record.report.get("gates", [])
    applicable = [g for g in gates if g.get("applicable", True)]
    failed = [g["name"] for g in applicable if not g.get("passed")]
    verdict = "every gate passed" if not failed else f"failed: {', '.join(failed)}"
    na = len(gates) - len(applicable)
    return (
        f"{verdict} ({len(applicable)} judged, {na} not applicable) on "
        f"{result.data_source.split(' (')[0]}"
    )


def run_demo(home: Path, console: Console | None = None) -> dict[str, Any]:
    """Run the loop; returns a summary (also printed).

    Refuses to start (``MissingDependency``) without the ``[demo]`` extra.
    """
    _require_extra()
    console = console or Console()
    home = home.expanduser().absolute()
    _reset(home)
    with MailBox() as mailbox:
        (home / "shipyard.toml").write_text(PROJECT.format(port=mailbox.port), encoding="utf-8")
        project = load_project(home / "shipyard.toml")
        store = Store.from_settings(Settings(home=home, user="admin")).open()
        try:
            return _loop(home, store, project, mailbox, console)
        finally:
            store.close()


def _loop(
    home: Path, store: Store, project: Any, mailbox: MailBox, console: Console
) -> dict[str, Any]:
    """The demo's steps, one after the other (one story: read it top to bottom)."""
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    admin, alice, bob = (
        Client(Settings(home=home, user=u), store=store, project=project).open()
        for u in ("admin", "alice", "bob")
    )
    steps: list[tuple[str, str]] = []

    def step(title: str, action: Callable[[], str]) -> None:
        with console.status(title):
            outcome = action()
        steps.append((title, outcome))
        console.print(f"[green]✓[/] {escape(title)}: {escape(outcome)}")

    console.rule("[bold]Shipyard demo")
    console.print(f"Store: {home} (SQLite + local artifacts); project file: shipyard.toml\n")
    step(
        "admin makes bob an approver",
        lambda: (admin.users.set_role("bob", "approver", actor="admin"), "bob is approver")[1],
    )
    X_train, X_test, y_train, y_test = load_data()

    def train(model: Any, params: dict[str, Any]) -> str:
        with alice.start_run(model="diagnosis", params=params) as run:
            run.log_dataset("train", X_train.assign(target=y_train), target="target")
            run.log_dataset("eval", X_test.assign(target=y_test), target="target")
            model.fit(X_train, y_train)
            mv = run.register(model, X_train=X_train, y_train=y_train, X_eval=X_test, y_eval=y_test)
            for key, value in mv.metrics.items():
                run.log_metric(key, value)
        onnx = alice.load("diagnosis", mv.version).manifest.onnx or {}
        parity = (
            f", ONNX max |diff| {onnx['max_abs_diff']:.1e}"
            if onnx.get("max_abs_diff") is not None
            else ""
        )
        return (
            f"v{mv.version} registered (accuracy {mv.metrics['accuracy']:.3f}, "
            f"AUC {mv.metrics['roc_auc']:.3f}{parity}), run {run.id[:8]}"
        )

    def validate(version: int) -> Callable[[], str]:
        def action() -> str:
            report = home / f"validation-v{version}.html"
            return _gates_line(alice.validate("diagnosis", version, report=report))

        return action

    step(
        "alice trains a logistic regression",
        lambda: train(
            make_pipeline(StandardScaler(), LogisticRegression(C=0.5, max_iter=500)),
            {"model": "logistic", "C": 0.5},
        ),
    )
    step("validate v1 (the first model: no champion to compare with)", validate(1))
    step(
        "alice tries to make herself an approver",
        _refusal(lambda: alice.users.set_role("alice", "approver", actor="alice")),
    )
    step(
        "bob approves v1",
        lambda: (bob.approve("diagnosis", 1, reason="AUC beats baseline"), "approved")[1],
    )
    step(
        "alice promotes v1 to production",
        lambda: (alice.promote("diagnosis", 1), "diagnosis@production → v1")[1],
    )
    step(
        "alice trains gradient boosting",
        lambda: train(
            HistGradientBoostingClassifier(max_iter=60, random_state=0),
            {"model": "hist_gradient_boosting", "max_iter": 60},
        ),
    )
    step(
        "alice tries to promote v2 before approval", _refusal(lambda: alice.promote("diagnosis", 2))
    )
    step(
        "bob approves v2",
        lambda: (bob.approve("diagnosis", 2, reason="better recall"), "approved")[1],
    )
    step(
        "alice tries to promote v2 before validation",
        _refusal(lambda: alice.promote("diagnosis", 2)),
    )
    step("validate v2 against production (v1) on the same rows", validate(2))
    step(
        "alice promotes v2 to production",
        lambda: (alice.promote("diagnosis", 2), "diagnosis@production → v2")[1],
    )
    step(
        "bob rolls production back",
        lambda: (
            bob.rollback("diagnosis", reason="demo: v2 misbehaves"),
            "diagnosis@production → v1",
        )[1],
    )

    def predict() -> str:
        model = alice.load("diagnosis@production")
        pred = model.predict(X_test.head(5))
        return f"v{model.version} predicts {', '.join(map(str, pred))}"

    step("load production and predict 5 rows (archive verified first)", predict)

    def audit() -> str:
        with store.read() as session:
            result = verify(session)
        return f"{result.checked} events, chain intact" if result.ok else result.problem

    with LiveDemo(home, store, "diagnosis", X_test, y_test, project=project) as live:
        step("send 200 rows of traffic to the REST server", live.traffic)
        step("send 3 invalid requests", live.invalid)
        step("switch production to v2 and back while serving", lambda: live.live_switch(alice, bob))
        step("send drifted traffic", live.drifted)
        step("post ground-truth labels for 80% of the predictions", live.feedback)
        step("query the prediction log with DuckDB", live.query)
        step("monitor the logged window (shipyard monitor run)", live.monitor)
        step("measure performance against the labels", live.performance)
        step("estimate performance without labels (CBPE)", live.estimate)
        step("the drift alert e-mails the owner", lambda: mailbox.last("Subject", 1))
        step(
            f"the alert starts a retraining from the labelled log ({DRIFT} in it)",
            live.retrain,
        )
        step("the approvers are e-mailed the candidate", lambda: mailbox.last("Subject", 2))
        step(
            "bob approves v3",
            lambda: (bob.approve("diagnosis", 3, reason="handles the drift"), "approved")[1],
        )
        step("alice starts an automatic rollout of v3 (25% → 100%)", lambda: live.rollout(3))
        step("send traffic during the canary", live.canary_traffic)
        step("the rollout's judge (shipyard traffic advance)", live.advance)
        if live.decision == "rollback":  # the rollout ended the canary itself, alerted
            step(
                "the rollout rolled the canary back by itself",
                lambda: "production stays v1; the on-call channels were alerted",
            )
        else:
            if live.decision == "promote":
                title, why = "bob rolls v3 back under load (a drill, one call)", "demo: drill"
            else:  # "wait": the demo does not wait, it ends the canary
                title = f"bob ends the canary under load (verdict {live.decision}, one call)"
                why = f"canary verdict: {live.decision}"
            step(
                title,
                lambda: live.under_load(
                    lambda: bob.traffic.rollback("diagnosis", actor="bob", reason=why), 1
                ),
            )
    step("verify the audit log", audit)

    versions = alice.registry.versions("diagnosis")
    t = Table(title="diagnosis versions", title_justify="left")
    for col in ("version", "stage", "aliases", "author", "approved by", "accuracy"):
        t.add_column(col)
    for info in versions:
        t.add_row(
            str(info.version.version),
            info.stage,
            ", ".join(info.aliases),
            info.version.author,
            ", ".join(info.approvals),
            f"{info.version.metrics.get('accuracy', float('nan')):.3f}",
        )
    console.print()
    console.print(t)
    console.print(f"\nMonitoring report (drift, performance, service): {live.report_path}")
    console.print(f"Validation report of v3: {live.validation_report}")
    explore = explore_commands(home)
    console.print("Explore it:")
    for line in explore:  # not wrapped, not styled: each line runs as printed
        console.print(f"  {line}", soft_wrap=True, markup=False, highlight=False)
    return {
        "home": str(home),
        "steps": steps,
        "report": str(live.report_path),
        "validation_report": str(live.validation_report),
        "flagged": live.result.report.flagged(),
        "performance": live.result.performance,
        "estimate": live.result.estimate,
        "retrain": live.retrained,
        "mail": mailbox.subjects(),
        "canary": {"answered": live.answered, "decision": live.decision},
        "drill": live.drill,
        "production": {i.version.version for i in versions if i.stage == "production"},
        "explore": explore,
    }
