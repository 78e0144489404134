"""A progress display that shows nothing, for callers that pass none."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

from shipyard.monitoring import Progress


def display(progress: Progress | None) -> Progress:
    """``progress``, or one that shows nothing."""
    return progress or _nothing


@contextmanager
def _nothing(description: str, total: int | None) -> Iterator[Callable[[int], None]]:
    yield lambda n: None
