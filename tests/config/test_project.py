"""``load_project``: one model of shipyard.toml, one message for a file that is not TOML, and
one style (``<file>: <table> <key>: <problem>``) for every problem, whichever table it is in."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from shipyard.config import (
    ProjectConfig,
    RetentionTable,
    load_project,
)
from shipyard.errors import InvalidInput


def _load(tmp_path: Path, text: str) -> ProjectConfig:
    path = tmp_path / "shipyard.toml"
    path.write_text(text, encoding="utf-8")
    return load_project(path)


def test_a_missing_file_declares_nothing(tmp_path: Path) -> None:
    project = load_project(tmp_path / "none.toml")
    assert project.model_dump() == ProjectConfig().model_dump()
    assert project.path == tmp_path / "none.toml"
    assert project.retention == RetentionTable()
    assert (project.alerts, project.notify, project.jobs, project.channels) == ([], [], [], {})
    assert project.monitoring.label_delay == timedelta(0)


def test_every_table_is_parsed(tmp_path: Path) -> None:
    project = _load(
        tmp_path,
        """
[channels.team]
type = "webhook"
url_env = "HOOK"

[[alerts]]
name = "psi"
metric = "psi"
threshold = 0.2
window = "6h"
channels = ["team"]

[[notify]]
events = ["version.promoted"]
channels = ["team"]

[scheduler]
channels = ["team"]
alert_cooldown = "30m"

[[jobs]]
name = "gc"
kind = "gc"
schedule = "0 3 * * *"
predictions = "30d"

[retention]
predictions = "2w"
monitoring = "keep"

[monitoring]
label_delay = "2h"
""",
    )
    assert project.channels["team"].type == "webhook"
    assert project.channels["team"].options == {"url_env": "HOOK"}
    assert project.alerts[0].window == "6h" and project.alerts[0].cooldown == "1h"
    assert project.notify[0].name == "notify-1" and project.notify[0].severity == "info"
    assert project.scheduler.alert_cooldown == "30m"
    assert project.jobs[0].params == {"predictions": "30d"}
    assert project.retention.predictions == timedelta(weeks=2)
    assert project.retention.monitoring is None
    assert project.retention.job_runs == timedelta(days=365)
    assert project.monitoring.label_delay == timedelta(hours=2)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("this = = not toml", "is not valid TOML: "),
        ("pipelines = 1", "pipelines: unknown table. Use one of: channels, alerts, notify,"),
        ('retention = "30d"', "[retention]: must be a table: write [retention]."),
        ("alerts = 3", "[[alerts]]: must be an array of tables: write [[alerts]]."),
        ("channels = 3", "[channels]: must be tables: write [channels.<name>]."),
        ('[retention]\npredictions = "soon"', "[retention] predictions: Invalid age 'soon'"),
        ("[retention]\nmonitoring = 30", "[retention] monitoring: Invalid age: 30. Use a quoted"),
        ('[retention]\njob_runs = "0d"', "[retention] job_runs: Invalid age '0d'"),
        (
            '[retention]\nlogs = "9d"',
            "[retention] logs: unknown key. Use one of: predictions, monitoring, job_runs.",
        ),
        ("[monitoring]\nlabel_delay = 5", "[monitoring] label_delay: must be a string such as"),
        ('[monitoring]\nlabel_delay = "soon"', "[monitoring] label_delay: Invalid label_delay"),
        ("[monitoring]\ndrift = 1", "[monitoring] drift: unknown key. Use one of: label_delay."),
        ("[channels.team]\nurl = 'x'", "[channels.team]: needs a type (email or webhook)"),
        ("[[alerts]]\nmetric = 'psi'", "[[alerts]] #1 name: required, but missing."),
        (
            "[[alerts]]\nname = 'psi'\nmetric = 'psi'\nseverity = 'loud'",
            "[[alerts]] 'psi' severity: Input should be 'info', 'warning' or 'critical'. "
            "Got 'loud'.",
        ),
        (
            "[[alerts]]\nname = 'psi'\nmetric = 'psi'\nthreshold = nan",
            "[[alerts]] 'psi' threshold: must be a finite number. Got nan.",
        ),
        (
            "[[notify]]\nevents = []\nchannels = ['x']",
            "[[notify]] 'notify-1' events: List should have at least 1 item",
        ),
        (
            "[[notify]]\nevents = ['version.promoted']\nchannels = ['pager']",
            "[[notify]] 'notify-1' channels: names unknown channel(s) ['pager']",
        ),
        ("[scheduler]\nretries = 3", "[scheduler] retries: unknown key. Use one of: channels,"),
        ("[gates]\nwindow = 'soon'", "[gates] window: must be a whole number >= 1 followed by"),
        ("[gates]\nmin_parity_ratio = 1.5", "[gates] min_parity_ratio: Input should be less"),
        ("[models.churn]\naccept = 'auc > 1'", "[models.churn] accept: Unknown metric 'auc'."),
        (
            "[models.churn]\naccept = 'roc_auc >> 0.8'",
            "[models.churn] accept: The acceptance criterion 'roc_auc >> 0.8' does not parse",
        ),
        ("[models.churn]\nobjectiv = 'x'", "[models.churn] objectiv: unknown key. Use one of:"),
        (
            "[models.churn.gates]\nmetrics = [{ metric = 'roc_auc' }]",
            "[models.churn] gates.metrics.0: the gate on 'roc_auc' sets no limit",
        ),
        (
            "[models.churn.retrain]\nentry = 'train'\ntarget = 'y'\nsource = 'feedback'",
            "[models.churn] retrain.entry: String should match pattern",
        ),
        (
            "[models.churn.retrain]\nentry = 'train:fit'\ntarget = 'y'",
            "[models.churn] retrain: needs exactly one data source",
        ),
        ("[models.'a b']\nobjective = 'x'", "[models.a b]: Invalid model name 'a b'"),
        (
            "[[alerts]]\nname = 'psi'\nmetric = 'psi'\naction = 'page'",
            "[[alerts]] 'psi' action: Input should be 'retrain'",
        ),
        (
            "[[jobs]]\nname = 'a'\nkind = 'gc'\nschedule = '* * * * *'\n"
            "[[jobs]]\nname = 'a'\nkind = 'gc'\nschedule = '* * * * *'\n",
            "[[jobs]] 'a' name: declared twice (as [[jobs]] #1 and #2); names must be unique, "
            "rename one.",
        ),
    ],
)
def test_each_problem_is_one_line_naming_the_table_and_key(
    tmp_path: Path, text: str, message: str
) -> None:
    path = tmp_path / "shipyard.toml"
    with pytest.raises(InvalidInput) as info:
        load_project(path, text=text)  # the would-be content of path
    assert message in info.value.message, info.value.message
    assert info.value.message.startswith(f"{path}"), info.value.message
    assert "\n" not in info.value.message


def test_every_problem_of_a_file_is_reported_at_once(tmp_path: Path) -> None:
    text = '[retention]\npredictions = "soon"\n\n[scheduler]\nalert_cooldown = "later"\n'
    with pytest.raises(InvalidInput) as info:
        _load(tmp_path, text)
    assert "[retention] predictions: Invalid age 'soon'" in info.value.message
    assert "[scheduler] alert_cooldown: must be a whole number >= 0" in info.value.message


def test_bytes_that_are_not_utf8_are_not_toml_either(tmp_path: Path) -> None:
    path = tmp_path / "shipyard.toml"
    path.write_bytes(b"[retention]\npredictions = '\xff'\n")
    with pytest.raises(InvalidInput, match=r"shipyard.toml is not valid TOML: 'utf-8' codec"):
        load_project(path)


def test_a_consumer_reports_in_the_same_style(tmp_path: Path) -> None:
    project = _load(tmp_path, "[[jobs]]\nname = 'nightly'\nkind = 'x'\nschedule = '* * * * *'\n")
    error = project.invalid(("jobs", 0, "kind"), "must be one of command, gc, monitor.")
    assert error.message == (
        f"{tmp_path / 'shipyard.toml'}: [[jobs]] 'nightly' kind: must be one of command, gc, "
        "monitor."
    )
