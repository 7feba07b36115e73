"""Adaptive batching: concurrent requests for one model version coalesced into one predict call.

There is no timer. A request that finds the batcher idle schedules a call for the next turn of the
event loop (``call_soon``), so the requests that arrived in the same turn (every connection the
loop read at once) queue up behind it and go into the same call: an idle server adds no wait.
While a predict call runs (in a worker thread, so the event loop keeps accepting and validating
requests), new requests queue; when it returns, everything queued (up to ``max_rows`` rows) goes
into the next call. Under load the batch size grows by itself with the arrival rate, and the cost
of the thread hop and of the model's per-call overhead is shared by the batch.

The core is callback-based (:meth:`Batcher.submit`): the server's HTTP protocol answers a request
from the callback without a task or a future per request. :meth:`Batcher.run` is the same as a
coroutine, for routes written with ``await``.

Each caller gets exactly its own rows back: outputs are sliced by the offsets the rows were
concatenated at. If a coalesced call raises, each request of it is run again alone, so one bad
request (or a model that fails now and then) fails only its own caller.

A latency budget bounds the queue: a request that would wait longer than ``budget`` seconds (by the
measured time per call and per row: :meth:`Batcher.expected_wait`) is refused at once with
:class:`Overloaded`, and one that has waited longer than the budget when its turn comes is refused
too; the server answers 503 with Retry-After.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Callable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial
from typing import Any

import numpy as np

from modelward.errors import (
    Overloaded,  # importable here as before
)

__all__ = ["BatchStats", "Batcher", "Done", "OnBatch", "Outputs", "Overloaded", "Pending"]

log = logging.getLogger("modelward.runtime")

Columns = Mapping[str, np.ndarray]
Outputs = tuple[np.ndarray, np.ndarray | None]
# done(outputs, seconds, None) with the caller's rows, or done(None, 0.0, error)
Done = Callable[[Outputs | None, float, BaseException | None], None]
# on_batch(requests, their columns concatenated, their outputs, seconds): once per successful call
OnBatch = Callable[[list["Pending"], Columns, Outputs, float], None]


class Pending:
    """A submitted request: ``cancel()`` when its caller went away (its rows are then not predicted
    if they have not been taken yet, and ``done`` is not called)."""

    __slots__ = ("cancelled", "columns", "done", "enqueued", "requests", "rows", "tag")

    def __init__(
        self, columns: Columns, rows: int, done: Done, enqueued: float, tag: object, requests: int = 1
    ) -> None:
        self.columns = columns
        self.rows = rows
        self.requests = requests  # client requests these rows stand for (several from a hot batch)
        self.done = done
        self.enqueued = enqueued
        self.tag = tag  # the caller's, for on_batch
        self.cancelled = False

    def cancel(self) -> None:
        self.cancelled = True


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


def _concat(items: list[Pending]) -> dict[str, np.ndarray]:
    first = items[0].columns
    if len(items) == 1:
        return dict(first)
    return {name: np.concatenate([it.columns[name] for it in items]) for name in first}


class Batcher:
    """Coalesces concurrent :meth:`submit` (or ``await run(...)``) calls into ``predict(columns)``.

    ``predict`` runs in ``executor`` (a private one-thread pool by default), or on the event loop when
    the measured cost of the call is below ``inline_seconds`` (a compiled model predicting a few rows
    costs less than handing the call to a thread and back; requests are still coalesced, because
    the call waits for the turn of the loop in which the requests arrived). With ``enabled`` False
    every request is its own call and none is shed. Callers learn their outputs and the seconds
    their predict call took; ``on_batch`` (if given) learns each successful call once, with every
    request in it (their ``tag``), after they were answered: what a server records per batch
    (prediction log, live profiles) costs per call, not per request.
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
        on_batch: OnBatch | None = None,
    ) -> None:
        if max_rows < 1 or not budget > 0:
            raise ValueError("a batcher needs max_rows >= 1 and a positive latency budget")
        self.name = name
        self.predict = predict
        self.enabled = enabled
        self.max_rows = max_rows
        self.budget = budget
        self.inline_seconds = inline_seconds
        self.on_batch = on_batch
        self._own_executor = executor is None
        self.executor = executor or ThreadPoolExecutor(1, thread_name_prefix=f"modelward-{name}")
        self.stats = BatchStats()
        self._queue: deque[Pending] = deque()
        self._queued_rows = 0
        self._running = False  # a call is in the executor
        self._scheduled = False  # a call_soon of _serve is pending
        self._last_cpu = 0.0
        self._loop: asyncio.AbstractEventLoop | None = None

    # -- measuring ----------------------------------------------------------------------------------

    def _timed(self, columns: Columns) -> tuple[Outputs, float]:
        started, cpu = time.perf_counter(), time.thread_time()
        out = self.predict(columns)
        self._last_cpu = time.thread_time() - cpu
        return out, time.perf_counter() - started

    def _each(self, items: list[Pending]) -> list[tuple[Outputs, float] | Exception]:
        """Each request alone (after a coalesced call failed): only the failing ones fail."""
        out: list[tuple[Outputs, float] | Exception] = []
        for it in items:
            try:
                out.append(self._timed(it.columns))
            except Exception as exc:  # handed to its own caller
                out.append(exc)
        return out

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
        if not self._running:
            return 0.0
        # The call in progress (at most a whole call), then the queued rows in calls of max_rows.
        full, rest = divmod(self._queued_rows, self.max_rows)
        wait = self.stats.seconds_per_call + full * self._call_seconds(self.max_rows)
        return wait + (self._call_seconds(rest) if rest else 0.0)

    def _call_seconds(self, rows: int) -> float:
        """Expected wall time of a call of ``rows`` rows: the measured time of a call, scaled by the
        measured time per row when the call is larger than the measured ones. For a cost that is a
        fixed part plus a part per row, this is never below the true time and equal to it at the
        measured batch size."""
        s = self.stats
        return max(s.seconds_per_call, rows * s.seconds_per_row)

    def _inline(self) -> bool:
        """Run on the event loop: the call is expected to cost less than a thread hop would."""
        s = self.stats
        if s.calls < 3 or self.inline_seconds <= 0:
            return False  # measure first, off the loop
        return s.cpu_per_call <= self.inline_seconds

    # -- submitting ---------------------------------------------------------------------------------

    def submit(
        self, columns: Columns, rows: int, done: Done, tag: object = None, requests: int = 1
    ) -> Pending:
        """Queue ``rows`` rows for prediction; ``done`` is called on the event loop thread with the
        caller's outputs (or the error). Raises :class:`Overloaded` at once when the request would
        wait beyond the latency budget. Must be called on the thread running the event loop."""
        if self.enabled:
            wait = self.expected_wait()
            if wait > self.budget:
                self.stats.shed += requests
                raise Overloaded(self.name, wait, self.budget, max(1, round(wait)))
        item = Pending(columns, rows, done, time.monotonic(), tag, requests)
        self._queue.append(item)
        self._queued_rows += rows
        if not self._running and not self._scheduled:
            self._scheduled = True
            self._loop = asyncio.get_running_loop()
            self._loop.call_soon(self._serve)
        return item

    async def run(self, columns: Columns, rows: int, tag: object = None) -> tuple[Outputs, float]:
        """:meth:`submit` as a coroutine: the caller's outputs and the seconds its call took."""
        future: asyncio.Future[tuple[Outputs, float]] = asyncio.get_running_loop().create_future()

        def done(out: Outputs | None, seconds: float, exc: BaseException | None) -> None:
            if future.done():
                return
            if exc is not None:
                future.set_exception(exc)
            else:
                assert out is not None  # noqa: S101 - outputs come with every success
                future.set_result((out, seconds))

        item = self.submit(columns, rows, done, tag)
        try:
            return await future
        except asyncio.CancelledError:
            item.cancel()
            raise

    # -- serving ------------------------------------------------------------------------------------

    def _take(self) -> list[Pending]:
        now = time.monotonic()
        taken: list[Pending] = []
        rows = 0
        limit = self.max_rows if self.enabled else 0  # disabled: one request per call
        while self._queue and (not taken or rows + self._queue[0].rows <= limit):
            item = self._queue.popleft()
            self._queued_rows -= item.rows
            if item.cancelled:  # the caller went away (client disconnected)
                continue
            if self.enabled and now - item.enqueued > self.budget:
                self.stats.shed += item.requests
                _deliver(item, None, 0.0, Overloaded(self.name, now - item.enqueued, self.budget))
                continue
            taken.append(item)
            rows += item.rows
        return taken

    def _serve(self) -> None:
        """Take what is queued and predict it: inline calls until the queue is empty, or one call
        handed to the executor (its completion serves what queued meanwhile)."""
        self._scheduled = False
        while self._queue and not self._running:
            items = self._take()
            if not items:
                continue
            columns = _concat(items)
            if self._inline():
                try:
                    result = self._timed(columns)
                except Exception as exc:
                    if len(items) > 1:
                        self.stats.retried += len(items)
                    self._finish(items, columns, None, self._each(items) if len(items) > 1 else [exc])
                    continue
                self._finish(items, columns, result, None)
                continue
            self._running = True
            future = self.executor.submit(self._timed, columns)
            future.add_done_callback(partial(self._from_thread, items, columns, alone=False))

    def _from_thread(self, items: list[Pending], columns: Columns, future: Future[Any], alone: bool) -> None:
        loop = self._loop
        if loop is None or loop.is_closed():
            return
        try:
            loop.call_soon_threadsafe(self._called, items, columns, future, alone)
        except RuntimeError:  # the loop closed between the check and the call
            return

    def _called(self, items: list[Pending], columns: Columns, future: Future[Any], alone: bool) -> None:
        """A call in the executor returned (on the event loop thread): answer its callers, then
        serve what queued while it ran."""
        self._running = False
        try:
            exc = future.exception()
        except BaseException as cancelled:  # the executor was shut down
            exc = cancelled
        if alone:
            if exc is not None:
                self._fail(items, exc)
            else:
                self._finish(items, columns, None, future.result())
        elif exc is None:
            self._finish(items, columns, future.result(), None)
        elif len(items) > 1 and isinstance(exc, Exception):
            self.stats.retried += len(items)
            self._running = True
            retry = self.executor.submit(self._each, items)
            retry.add_done_callback(partial(self._from_thread, items, columns, alone=True))
            return
        else:
            self._fail(items, exc)
        self._serve()

    def _fail(self, items: list[Pending], exc: BaseException) -> None:
        for it in items:
            _deliver(it, None, 0.0, exc)

    def _finish(
        self,
        items: list[Pending],
        columns: Columns,
        result: tuple[Outputs, float] | None,
        each: list[tuple[Outputs, float] | Exception] | None,
    ) -> None:
        """Hand each caller its rows: from one coalesced ``result``, or from ``each`` request's own
        call (after a coalesced call failed)."""
        s = self.stats
        if result is not None:
            (labels, proba), seconds = result
            rows = sum(it.rows for it in items)
            s.calls += 1
            requests = sum(it.requests for it in items)
            s.requests += requests
            s.rows += rows
            s.largest = max(s.largest, requests)
            self._learn(rows, seconds)
            if len(items) == 1:
                _deliver(items[0], (labels, proba), seconds, None)
            else:
                start = 0
                for it in items:
                    stop = start + it.rows
                    _deliver(
                        it,
                        (labels[start:stop], proba[start:stop] if proba is not None else None),
                        seconds,
                        None,
                    )
                    start = stop
            self._batch_done(items, columns, (labels, proba), seconds)
            return
        assert each is not None  # noqa: S101 - one of the two is given
        for it, got in zip(items, each, strict=True):
            if isinstance(got, Exception):
                _deliver(it, None, 0.0, got)
                continue
            s.calls += 1
            s.requests += it.requests
            s.rows += it.rows
            s.largest = max(s.largest, it.requests)
            self._learn(it.rows, got[1])
            _deliver(it, got[0], got[1], None)
            self._batch_done([it], it.columns, got[0], got[1])

    def _batch_done(self, items: list[Pending], columns: Columns, out: Outputs, seconds: float) -> None:
        if self.on_batch is not None:
            try:
                self.on_batch(items, columns, out, seconds)
            except Exception:  # recording must not stop serving
                log.exception("recording a batch of predictions failed")

    def close(self) -> None:
        """Refuse what is still queued and stop the private thread (after its current call)."""
        while self._queue:
            item = self._queue.popleft()
            _deliver(item, None, 0.0, Overloaded(self.name, 0.0, self.budget))
        self._queued_rows = 0
        if self._own_executor:
            self.executor.shutdown(wait=False)


def _deliver(item: Pending, out: Outputs | None, seconds: float, exc: BaseException | None) -> None:
    if item.cancelled:
        return
    item.cancelled = True  # answered once
    try:
        item.done(out, seconds, exc)
    except Exception:  # a caller's callback must not stop the others being answered
        log.exception("a batched request's callback failed")
