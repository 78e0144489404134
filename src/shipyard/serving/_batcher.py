"""Adaptive micro-batching: concurrent requests share one model call.

A native scikit-learn pipeline costs milliseconds per call, mostly fixed overhead (pandas,
ColumnTransformer), so 32 rows cost little more than one. The batcher's single worker takes
every request queued while the previous call ran, waits up to ``max_wait_s`` for more only
when requests are arriving together, and predicts them in one call. A lone request is never
delayed, so latency at concurrency 1 is unchanged.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from shipyard.errors import ShipyardError

Scores = tuple[np.ndarray, np.ndarray | None]


@dataclass
class _Item:
    frame: pd.DataFrame
    future: asyncio.Future[Scores]


class MicroBatcher:
    """Group concurrent ``submit`` calls into calls of ``predict`` of up to ``max_rows`` rows.

    ``predict`` runs in a worker thread. If a batch fails, each request in it is retried alone,
    so one bad request cannot fail its neighbours.

    >>> batcher = MicroBatcher(served.score_now, max_rows=256, max_wait_s=0.002)  # doctest: +SKIP
    >>> labels, proba = await batcher.submit(frame)  # doctest: +SKIP
    """

    def __init__(
        self, predict: Callable[[pd.DataFrame], Scores], *, max_rows: int, max_wait_s: float
    ) -> None:
        self.predict = predict
        self.max_rows = max_rows
        self.max_wait_s = max_wait_s
        self.batches = 0
        self.rows = 0
        self._queue: asyncio.Queue[_Item | None] | None = None
        self._worker: asyncio.Task[None] | None = None
        self._closed = False

    async def submit(self, frame: pd.DataFrame) -> Scores:
        """Labels and probabilities for ``frame`` (a coerced frame), batched with others."""
        if self._closed or len(frame) >= self.max_rows:
            # A closed batcher (its model was swapped out) or a big frame: predict alone.
            return await asyncio.to_thread(self.predict, frame)
        if self._queue is None:
            self._queue = asyncio.Queue()
            self._worker = asyncio.get_running_loop().create_task(self._run())
        future: asyncio.Future[Scores] = asyncio.get_running_loop().create_future()
        self._queue.put_nowait(_Item(frame, future))
        return await future

    async def close(self) -> None:
        """Answer every queued request, then stop the worker."""
        self._closed = True
        if self._queue is not None and self._worker is not None:
            self._queue.put_nowait(None)
            await self._worker

    async def _run(self) -> None:
        assert self._queue is not None
        queue = self._queue
        stop = False
        while not stop:
            first = await queue.get()
            if first is None:
                return
            batch, rows = [first], len(first.frame)
            stop = self._drain(queue, batch, rows)
            if len(batch) > 1 and not stop:
                # Requests are arriving together: a short wait fills the batch further.
                deadline = time.perf_counter() + self.max_wait_s
                while sum(len(i.frame) for i in batch) < self.max_rows and not stop:
                    remaining = deadline - time.perf_counter()
                    if remaining <= 0:
                        break
                    try:
                        item = await asyncio.wait_for(queue.get(), remaining)
                    except TimeoutError:
                        break
                    if item is None:
                        stop = True
                    else:
                        batch.append(item)
            await self._predict(batch)

    def _drain(self, queue: asyncio.Queue[_Item | None], batch: list[_Item], rows: int) -> bool:
        """Move queued items into ``batch`` up to ``max_rows``; True if the stop mark came."""
        while rows < self.max_rows and not queue.empty():
            item = queue.get_nowait()
            if item is None:
                return True
            batch.append(item)
            rows += len(item.frame)
        return False

    async def _predict(self, batch: list[_Item]) -> None:
        live = [item for item in batch if not item.future.done()]  # skip cancelled requests
        if not live:
            return
        self.batches += 1
        self.rows += sum(len(i.frame) for i in live)
        if len(live) == 1:
            await self._predict_one(live[0])
            return
        frame = pd.concat([item.frame for item in live], ignore_index=True)
        try:
            labels, proba = await asyncio.to_thread(self.predict, frame)
        except ShipyardError:
            for item in live:  # find the culprit(s): each request alone
                await self._predict_one(item)
            return
        except Exception as exc:  # predict wraps model errors; anything else fails them all
            for item in live:
                _settle(item, exc=exc)
            return
        start = 0
        for item in live:
            end = start + len(item.frame)
            _settle(item, (labels[start:end], None if proba is None else proba[start:end]))
            start = end

    async def _predict_one(self, item: _Item) -> None:
        try:
            result = await asyncio.to_thread(self.predict, item.frame)
        except Exception as exc:
            _settle(item, exc=exc)
        else:
            _settle(item, result)


def _settle(item: _Item, result: Scores | None = None, *, exc: BaseException | None = None) -> None:
    if item.future.done():  # the client went away
        return
    if exc is not None:
        item.future.set_exception(exc)
    else:
        assert result is not None
        item.future.set_result(result)
