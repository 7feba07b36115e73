"""Adaptive batching: concurrent requests for one model version coalesced into one predict call.

There is no timer. The first request finds the batcher idle, lets the event loop run the requests
that arrived with it up to their queueing (one turn of the loop, no sleeping), and runs with them:
an idle server adds no wait. While a predict call runs (in a worker thread, so the event loop keeps
accepting and validating requests), new requests queue; when it returns, everything queued (up to ``max_rows``
rows) goes into the next call. Under load the batch size grows by itself with the arrival rate, and
the cost of the thread hop and of the model's per-call overhead is shared by the batch.

Each caller gets exactly its own rows back: outputs are sliced by the offsets the rows were
concatenated at. If a coalesced call raises, each request of it is run again alone, so one bad
request (or a model that fails now and then) fails only its own caller.

A latency budget bounds the queue: a request that would wait longer than ``budget`` seconds (by the
measured time per row) is refused at once with :class:`Overloaded`, and one that has waited longer
than the budget when its turn comes is refused too; the server answers 503 with Retry-After.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

from modelward.errors import ModelwardError

__all__ = ["BatchStats", "Batcher", "Overloaded"]

Columns = Mapping[str, np.ndarray]
Outputs = tuple[np.ndarray, np.ndarray | None]


class Overloaded(ModelwardError, RuntimeError):
    """The request would wait beyond the latency budget: shed it (503, Retry-After)."""

    def __init__(self, name: str, wait: float, budget: float, retry_after: int = 1) -> None:
        self.name, self.wait, self.budget, self.retry_after = name, wait, budget, retry_after
        super().__init__(
            f"{name} is overloaded: the request would wait about {wait * 1000:.0f} ms, beyond the "
            f"latency budget of {budget * 1000:.0f} ms; retry in {retry_after} s"
        )


@dataclass(slots=True)
class _Item:
    columns: Columns
    rows: int
    future: asyncio.Future[tuple[Outputs, float]]
    enqueued: float


@dataclass(slots=True)
class BatchStats:
    """What the batcher did: calls made, requests and rows served, requests shed, largest batch."""

    calls: int = 0
    requests: int = 0
    rows: int = 0
    shed: int = 0
    retried: int = 0
    largest: int = 0
    seconds_per_row: float = 0.0  # moving average of the model's time per row
    seconds_per_call: float = 0.0  # moving average of a call's wall time
    cpu_per_call: float = 0.0  # moving average of a call's CPU time in its thread


def _concat(items: list[_Item]) -> dict[str, np.ndarray]:
    first = items[0].columns
    if len(items) == 1:
        return dict(first)
    return {name: np.concatenate([it.columns[name] for it in items]) for name in first}


def _slice(outputs: Outputs, start: int, stop: int) -> Outputs:
    labels, proba = outputs
    return labels[start:stop], (proba[start:stop] if proba is not None else None)


class Batcher:
    """Coalesces concurrent ``run(columns, rows)`` calls into ``predict(columns)`` calls.

    ``predict`` runs in ``executor`` (a private one-thread pool by default), or on the event loop when
    the measured cost of the call is below ``inline_seconds`` (a compiled model predicting a few rows
    costs less than handing the call to a thread and back; requests are still coalesced, because
    the requests that arrived together run up to their queueing before the batch is taken). With
    ``enabled`` False every request is its own call. ``run`` returns the caller's outputs and the
    seconds its predict call took.
    """

    def __init__(
        self,
        name: str,
        predict: Callable[[Columns], Outputs],
        *,
        enabled: bool = True,
        max_rows: int = 256,
        budget: float = 1.0,
        executor: ThreadPoolExecutor | None = None,
        inline_seconds: float = 0.001,
    ) -> None:
        if max_rows < 1 or not budget > 0:
            raise ValueError("a batcher needs max_rows >= 1 and a positive latency budget")
        self.name = name
        self.predict = predict
        self.enabled = enabled
        self.max_rows = max_rows
        self.budget = budget
        self.inline_seconds = inline_seconds
        self._own_executor = executor is None
        self.executor = executor or ThreadPoolExecutor(1, thread_name_prefix=f"modelward-{name}")
        self.stats = BatchStats()
        self._queue: deque[_Item] = deque()
        self._queued_rows = 0
        self._running = False
        self._last_cpu = 0.0
        self._task: asyncio.Task[None] | None = None  # the drain running now (a reference keeps it alive)

    def _timed(self, columns: Columns) -> tuple[Outputs, float]:
        started, cpu = time.perf_counter(), time.thread_time()
        out = self.predict(columns)
        self._last_cpu = time.thread_time() - cpu
        return out, time.perf_counter() - started

    def _learn(self, rows: int, seconds: float) -> None:
        s = self.stats
        per_row = seconds / max(rows, 1)
        first = s.calls <= 1
        s.seconds_per_row = per_row if first else 0.8 * s.seconds_per_row + 0.2 * per_row
        s.seconds_per_call = seconds if first else 0.8 * s.seconds_per_call + 0.2 * seconds
        # The model's own CPU time (wall time also counts waiting for the GIL under load).
        s.cpu_per_call = self._last_cpu if first else 0.8 * s.cpu_per_call + 0.2 * self._last_cpu

    def expected_wait(self) -> float:
        """Seconds a request arriving now would wait before its rows are predicted."""
        s = self.stats
        if not self._running:
            return 0.0
        calls = 1 + self._queued_rows // self.max_rows
        return calls * s.seconds_per_call + self._queued_rows * s.seconds_per_row

    def _inline(self, rows: int) -> bool:
        """Run on the event loop: the call is expected to cost less than a thread hop would."""
        s = self.stats
        if s.calls < 3 or self.inline_seconds <= 0:
            return False  # measure first, off the loop
        return s.cpu_per_call <= self.inline_seconds

    async def run(self, columns: Columns, rows: int) -> tuple[Outputs, float]:
        loop = asyncio.get_running_loop()
        if not self.enabled:
            if self._inline(rows):
                out, seconds = self._timed(columns)
            else:
                out, seconds = await loop.run_in_executor(self.executor, self._timed, columns)
            self.stats.calls += 1
            self.stats.requests += 1
            self.stats.rows += rows
            self._learn(rows, seconds)
            return out, seconds
        wait = self.expected_wait()
        if wait > self.budget:
            self.stats.shed += 1
            raise Overloaded(self.name, wait, self.budget, max(1, round(wait)))
        item = _Item(columns, rows, loop.create_future(), time.monotonic())
        self._queue.append(item)
        self._queued_rows += rows
        if self._running:
            return await item.future
        # The leader: one turn of the loop lets the requests that arrived with this one queue up
        # (no timer), then it serves that batch; a drain task takes whatever came meanwhile.
        self._running = True
        try:
            await asyncio.sleep(0)
            items = self._take()
            if items:
                await self._call(loop, items)
        finally:
            if self._queue:
                self._task = loop.create_task(self._drain())
            else:
                self._running = False
        return await item.future

    def _take(self) -> list[_Item]:
        now = time.monotonic()
        taken: list[_Item] = []
        rows = 0
        while self._queue and (not taken or rows + self._queue[0].rows <= self.max_rows):
            item = self._queue.popleft()
            self._queued_rows -= item.rows
            if item.future.done():  # the caller went away (client disconnected)
                continue
            waited = now - item.enqueued
            if waited > self.budget:
                self.stats.shed += 1
                item.future.set_exception(Overloaded(self.name, waited, self.budget))
                continue
            taken.append(item)
            rows += item.rows
        return taken

    async def _drain(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            while self._queue:
                items = self._take()
                if not items:
                    continue
                await self._call(loop, items)
        finally:
            self._running = False
            if self._queue:  # arrived while we were finishing: serve them too
                self._running = True
                self._task = loop.create_task(self._drain())

    async def _call(self, loop: asyncio.AbstractEventLoop, items: list[_Item]) -> None:
        rows = sum(it.rows for it in items)
        s = self.stats
        try:
            columns = _concat(items)
            if self._inline(rows):
                out, seconds = self._timed(columns)
            else:
                out, seconds = await loop.run_in_executor(self.executor, self._timed, columns)
        except BaseException as exc:  # handed to the callers
            if len(items) > 1 and isinstance(exc, Exception):
                s.retried += len(items)
                for it in items:  # each request alone: only the failing ones fail
                    await self._call(loop, [it])
                return
            for it in items:
                if not it.future.done():
                    it.future.set_exception(exc)
            if not isinstance(exc, Exception):
                raise
            return
        s.calls += 1
        s.requests += len(items)
        s.rows += rows
        s.largest = max(s.largest, len(items))
        self._learn(rows, seconds)
        start = 0
        for it in items:
            if not it.future.done():
                it.future.set_result((_slice(out, start, start + it.rows), seconds))
            start += it.rows

    def close(self) -> None:
        """Refuse what is still queued and stop the private thread (after its current call)."""
        while self._queue:
            item = self._queue.popleft()
            if not item.future.done():
                item.future.set_exception(Overloaded(self.name, 0.0, self.budget))
        self._queued_rows = 0
        if self._own_executor:
            self.executor.shutdown(wait=False)
