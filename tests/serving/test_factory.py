"""``open_prediction_log``: the log ``shipyard serve`` opens, here and in each worker, compacting
where ``ServeSettings.compactor`` says (settings reach workers as JSON, not through a variable
the log reads)."""

from __future__ import annotations

from pathlib import Path

from shipyard.predlog import PredictionLog
from shipyard.serving import open_prediction_log
from shipyard.settings import ServeSettings


def test_the_compactor_mode_comes_from_the_server_settings(tmp_path: Path) -> None:
    thread = open_prediction_log(str(tmp_path / "a"), ServeSettings(compactor="thread"))
    process = open_prediction_log(str(tmp_path / "b"), ServeSettings())  # serve's default
    try:
        assert isinstance(thread, PredictionLog) and isinstance(process, PredictionLog)
        assert thread.compactor_pid is None
        assert process.compactor_pid is not None
    finally:
        for log in (thread, process):
            if log is not None:
                log.close()
    assert open_prediction_log(None, ServeSettings()) is None  # --no-log


def test_workers_receive_the_compactor_mode() -> None:
    sent = ServeSettings(compactor="thread").model_dump_json()
    assert ServeSettings.model_validate_json(sent).compactor == "thread"
