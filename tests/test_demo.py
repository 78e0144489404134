"""``shipyard demo`` runs the whole loop and ends in the state it describes."""

from __future__ import annotations

from pathlib import Path

import pytest
from rich.console import Console

from shipyard.demo import run_demo
from shipyard.errors import InvalidInput


def test_demo_runs_the_loop(tmp_path: Path) -> None:
    console = Console(record=True, width=120)
    outcome = run_demo(tmp_path / "demo", console)
    text = console.export_text()
    assert outcome["production"] == {1}  # promoted v2, then rolled back
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
    # a second run resets its own folder, and never deletes a folder it did not create
    run_demo(tmp_path / "demo", Console(quiet=True))
    other = tmp_path / "mine"
    other.mkdir()
    (other / "keep.txt").write_text("x")
    with pytest.raises(InvalidInput, match="not a Shipyard demo folder"):
        run_demo(other, Console(quiet=True))
    assert (other / "keep.txt").exists()
