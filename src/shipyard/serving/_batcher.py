"""Adaptive micro-batching: concurrent requests share one model call.

A native scikit-learn pipeline costs milliseconds per call, mostly fixed overhead (pandas,
ColumnTransformer), so 32 rows cost little more than one. The batcher's single worker takes
every request queued while the previous call ran, waits up to ``max_wait_s`` for more only
when requests are arriving together, and predicts them in one call. A lone request is never
delayed, so latency at concurrency 1 is unchanged.

Requests are anything with a length (rows): DataFrames by default, or the server's typed
columns with their own ``combine``. Combining and predicting both run in the batcher's own
thread (always the same one: its memory and caches stay warm), so the event loop only queues
requests and hands out results.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sized
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from shipyard.errors import ShipyardError

Scores = tuple[np.ndarray, np.ndarray | None]


@dataclass
class _Item:
    frame: Any  # a request's rows: anything Sized that ``combine`` accepts
    future: asyncio.Future[Scores]


def concat_frames(frames: list[Any]) -> Any:
    """The default ``combine``: DataFrames end to end, with a fresh index."""
    return frames[0] if len(frames) == 1 else pd.concat(frames, ignore_index=True)


class MicroBatcher:
    """Group concurrent ``submit`` calls into calls of ``predict`` of up to ``max_rows`` rows.

    ``predict`` runs in the batcher's thread, on ``combine(requests)`` (default:
    ``pd.concat``). If a batch fails, each request in it is retried alone, so one bad request
    cannot fail its neighbours.

    >>> batcher = MicroBatcher(served.score_now, max_rows=256, max_wait_s=0.002)  # doctest: +SKIP
    >>> labels, proba = await batcher.submit(frame)  # doctest: +SKIP
    """

    def __init__(
        self,
        predict: Callable[[Any], Scores],
        *,
        max_rows: int,
        max_wait_s: float,
        combine: Callable[[list[Any]], Any] = concat_frames,
    ) -> None:
        self.predict = predict
        self.combine = combine
        self.max_rows = max_rows
        self.max_wait_s = max_wait_s
        self.batches = 0
        self.rows = 0
        self._queue: asyncio.Queue[_Item | None] | None = None
        self._worker: asyncio.Task[None] | None = None
        self._closed = False
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="shipyard-model")

    async def submit(self, frame: Sized) -> Scores:
        """Labels and probabilities for ``frame`` (coerced rows), batched with others."""
        if self._closed:  # its model was swapped out: predict alone, in the shared pool
            return await asyncio.to_thread(self.predict, frame)
        if len(frame) >= self.max_rows:  # a big frame: alone
            return await self._in_thread(self.predict, frame)
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
        self._executor.shutdown(wait=False)  # nothing is queued on it any more

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
        try:
            labels, proba = await self._in_thread(self._combined, [i.frame for i in live])
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

    async def _in_thread(self, fn: Callable[[Any], Scores], arg: Any) -> Scores:
        # Always the same thread: its memory arena, caches and the model library's
        # per-thread state stay warm (a pool hands each call to whichever thread is idle).
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn, arg)

    def _combined(self, frames: list[Any]) -> Scores:
        return self.predict(self.combine(frames))

    async def _predict_one(self, item: _Item) -> None:
        try:
            result = await self._in_thread(self.predict, item.frame)
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
