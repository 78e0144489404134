"""``[scheduler]`` and ``[[jobs]]``: a good file is parsed, each bad input is refused by name."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from shipyard.config import load_project
from shipyard.errors import InvalidInput
from shipyard.scheduler import CommandParams, GcParams, MonitorParams, SchedulerConfig

CHANNELS = """
[channels.oncall]
type = "webhook"
url = "http://127.0.0.1:9/oncall"

[channels.team]
type = "webhook"
url = "http://127.0.0.1:9/team"
"""

GOOD = """
[scheduler]
channels = ["oncall"]
alert_cooldown = "30m"

[[jobs]]
name = "churn-drift"
kind = "monitor"
schedule = "0 * * * *"
model = "churn@production"
window = "1h"
report = "reports/churn-{date}.html"

[[jobs]]
name = "retention"
kind = "gc"
schedule = "30 3 * * *"
predictions = "30d"
channels = ["team"]

[[jobs]]
name = "retrain"
kind = "command"
schedule = "* * * * * */10"
command = ["python", "train.py", "--fast"]
timeout = 60
"""

COMMAND = '[[jobs]]\nname = "a"\nkind = "command"\nschedule = "* * * * *"\ncommand = ["true"]\n'


def scheduler_config_of(path: Path) -> SchedulerConfig:
    return SchedulerConfig.from_project(load_project(path))


def test_a_good_file_is_parsed(tmp_path: Path) -> None:
    path = tmp_path / "shipyard.toml"
    path.write_text(CHANNELS + GOOD, encoding="utf-8")
    config = scheduler_config_of(path)
    assert config.channels == ["oncall"] and config.alert_cooldown == "30m"
    drift, gc, retrain = config.jobs
    assert (drift.name, drift.kind, drift.model, drift.channels) == (
        "churn-drift",
        "monitor",
        "churn@production",
        None,
    )
    assert isinstance(drift.params, MonitorParams) and drift.params.window == "1h"
    assert isinstance(gc.params, GcParams) and gc.params.predictions == "30d"
    assert gc.channels == ["team"] and gc.model is None
    assert isinstance(retrain.params, CommandParams)
    assert retrain.params.command == ["python", "train.py", "--fast"]
    assert retrain.params.timeout == 60
    at = datetime(2024, 5, 1, 12, 0, 1, tzinfo=UTC)
    assert drift.next_run(at) == datetime(2024, 5, 1, 13, 0, tzinfo=UTC)
    assert gc.next_run(at) == datetime(2024, 5, 2, 3, 30, tzinfo=UTC)
    assert retrain.next_run(at) == datetime(2024, 5, 1, 12, 0, 10, tzinfo=UTC)  # seconds field
    assert config.job("retention") is gc
    with pytest.raises(Exception, match=r"There is no job 'nope'.*churn-drift, retention, retrain"):
        config.job("nope")


def test_a_missing_file_declares_no_jobs(tmp_path: Path) -> None:
    assert scheduler_config_of(tmp_path / "none.toml").jobs == []


BAD = {
    "unknown kind": (
        COMMAND.replace('"command"\n', '"retrian"\n', 1),
        "\\[\\[jobs\\]\\] 'a' kind: must be one of command, digest, gc, monitor, retrain, "
        "snapshot. Got 'retrian'",
    ),
    "bad cron": (
        COMMAND.replace("* * * * *", "61 * * * *"),
        "\\[\\[jobs\\]\\] 'a' schedule: must be a cron expression.*Got '61 \\* \\* \\* \\*'",
    ),
    "missing name": (
        COMMAND.replace('name = "a"\n', ""),
        "\\[\\[jobs\\]\\] #1 name: required, but missing",
    ),
    "duplicate name": (
        COMMAND + COMMAND,
        "\\[\\[jobs\\]\\] 'a' name: declared twice \\(as \\[\\[jobs\\]\\] #1 and #2\\); names must",
    ),
    "empty name": (
        COMMAND.replace('name = "a"', 'name = " "'),
        "\\[\\[jobs\\]\\] #1 name: must be a non-empty string of at most 100 characters",
    ),
    "unknown channel": (
        COMMAND + 'channels = ["pager"]\n',
        "\\[\\[jobs\\]\\] 'a' channels: names unknown channel\\(s\\) \\['pager'\\]; declare them",
    ),
    "bad window": (
        '[[jobs]]\nname = "a"\nkind = "monitor"\nschedule = "* * * * *"\nmodel = "churn"\n'
        'window = "0d"\n',
        "\\[\\[jobs\\]\\] 'a' window: Invalid window '0d': use a number",
    ),
    "bad label delay": (
        '[[jobs]]\nname = "a"\nkind = "monitor"\nschedule = "* * * * *"\nmodel = "churn"\n'
        'label_delay = "soon"\n',
        "\\[\\[jobs\\]\\] 'a' label_delay: Invalid window 'soon'",
    ),
    "bad gc age": (
        '[[jobs]]\nname = "a"\nkind = "gc"\nschedule = "* * * * *"\npredictions = "forever"\n',
        "\\[\\[jobs\\]\\] 'a' predictions: Invalid age 'forever'",
    ),
    "extra field": (
        COMMAND + 'colour = "red"\n',
        "\\[\\[jobs\\]\\] 'a' colour: unknown key. Use one of: name, kind, schedule, channels, "
        "command, timeout, cwd.",
    ),
    "empty command": (
        COMMAND.replace('["true"]', "[]"),
        "\\[\\[jobs\\]\\] 'a' command: List should have at least 1 item",
    ),
    "bad alert_cooldown": (
        '[scheduler]\nalert_cooldown = "soon"\n' + COMMAND,
        "\\[scheduler\\] alert_cooldown: must be a whole number >= 0 followed by m, h, d or w.*"
        "'soon'",
    ),
    "unknown scheduler channel": (
        '[scheduler]\nchannels = ["pager"]\n' + COMMAND,
        "\\[scheduler\\] channels: names unknown channel\\(s\\) \\['pager'\\]",
    ),
    "extra scheduler field": (
        "[scheduler]\nretries = 3\n" + COMMAND,
        "\\[scheduler\\] retries: unknown key. Use one of: channels, alert_cooldown.",
    ),
    "jobs not an array": ('jobs = "a"\n', "\\[\\[jobs\\]\\]: must be an array of tables"),
    "not TOML": ("this = = not toml", "is not valid TOML"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_each_bad_input_is_refused_naming_the_job_and_field(tmp_path: Path, case: str) -> None:
    text, message = BAD[case]
    path = tmp_path / "shipyard.toml"
    path.write_text(text + CHANNELS, encoding="utf-8")
    with pytest.raises(InvalidInput, match=message) as raised:
        scheduler_config_of(path)
    assert raised.value.message.startswith(str(path)) and "\n" not in raised.value.message
