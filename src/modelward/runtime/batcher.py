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

A latency budget bounds each request's whole time in the server, counted from its arrival (the
``started`` its caller passes: when the server began reading it). A request is admitted only when
it is expected to be answered within the budget: its age, plus the rest of the call in progress,
plus the calls of the rows queued before it and of its own (:meth:`Batcher.expected_time`). Call
costs come from :class:`CallCost`, a fit of the measured calls as a fixed part plus a part per row;
the first call (which may pay for lazy initialisation) is not measured, and until a few calls are
the estimate is not trusted and sheds nothing. A call never takes more rows than fit in half the
budget (one call in progress and its own call must fit in it). Refusing costs nothing of the
model: :class:`Overloaded` is raised at once (the server answers 503 with Retry-After, and can ask
:meth:`Batcher.admission` before it even parses a body). A request that is older than the budget
when its turn comes (a stalled model) is refused then. An idle model still takes a request that
alone needs longer than the budget: no retry would ever make it fit.
"""

from __future__ import annotations

import asyncio
import logging
import math
import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from modelward.errors import (
    Overloaded,  # importable here as before
)
from modelward.runtime.callcost import CallCost
from modelward.runtime.pending import Columns, Done, Outputs, Pending, concat, deliver

__all__ = ["BatchStats", "Batcher", "Columns", "Done", "OnBatch", "Outputs", "Overloaded", "Pending"]

log = logging.getLogger("modelward.runtime")

# on_batch(requests, their columns concatenated, their outputs, seconds): once per successful call
OnBatch = Callable[[list["Pending"], Columns, Outputs, float], None]
# each request's own call (after a coalesced call failed): its outputs and seconds, or its error
Each = list[tuple[Outputs, float] | BaseException]


@dataclass(slots=True)
class BatchStats:
    """What the batcher did: calls made, requests and rows served, requests shed, largest batch."""

    calls: int = 0
    requests: int = 0
    rows: int = 0
    shed: int = 0
    retried: int = 0
    largest: int = 0
    cpu_per_call: float = 0.0  # moving average of a call's CPU time in its thread


class Batcher:
    """Coalesces concurrent :meth:`submit` (or ``await run(...)``) calls into ``predict(columns)``.

    ``predict`` runs in ``executor`` (a private one-thread pool by default), or on the event loop when
    the measured cost of the call is below ``inline_seconds`` (a compiled model predicting a few rows
    costs less than handing the call to a thread and back; requests are still coalesced, because
    the call waits for the turn of the loop in which the requests arrived). With ``enabled`` False
    every request is its own call. Callers learn their outputs and the seconds
    their predict call took; ``on_batch`` (if given) learns each successful call once, with every
    request in it (their ``tag``), after they were answered: what a server records per batch
    (prediction log, live profiles) costs per call, not per request. ``clock`` is the clock of the
    callers' ``started`` times (``time.perf_counter``).
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
        clock: Callable[[], float] = time.perf_counter,
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
        self.clock = clock
        self._own_executor = executor is None
        self.executor = executor or ThreadPoolExecutor(1, thread_name_prefix=f"modelward-{name}")
        self.stats = BatchStats()
        self.cost = CallCost()
        # The queue and the call state are shared by the event loop thread and the executor's.
        self._lock = threading.Lock()
        self._queue: deque[Pending] = deque()
        self._queued_rows = 0
        self._running = False  # a call is in the executor
        self._call_rows = 0  # ... of that many rows
        self._call_started = 0.0  # ... since then
        self._scheduled = False  # a call_soon of _serve is pending
        self._warmed = False  # the first call was made (and not measured)
        self._loop: asyncio.AbstractEventLoop | None = None

    # -- measuring ----------------------------------------------------------------------------------

    def _timed(self, columns: Columns, rows: int) -> tuple[Outputs, float]:
        started, cpu = self.clock(), time.thread_time()
        out = self.predict(columns)
        seconds = self.clock() - started
        self._learn(rows, seconds, cpu)
        return out, seconds

    def _each(self, items: list[Pending]) -> Each:
        """Each request alone (after a coalesced call failed): only the failing ones fail."""
        out: Each = []
        for it in items:
            try:
                out.append(self._timed(it.columns, it.rows))
            except Exception as exc:  # handed to its own caller
                out.append(exc)
        return out

    def _learn(self, rows: int, seconds: float, cpu_started: float) -> None:
        """Measure a call, in the thread that made it."""
        cpu = time.thread_time() - cpu_started
        if not self._warmed:  # a version's first call may pay for lazy initialisation: not its cost
            self._warmed = True
            return
        s = self.stats
        # The model's own CPU time (wall time also counts waiting for the GIL under load).
        s.cpu_per_call = cpu if self.cost.calls == 0 else 0.8 * s.cpu_per_call + 0.2 * cpu
        self.cost.observe(rows, seconds)

    @property
    def call_rows(self) -> int:
        """Rows per call: at most ``max_rows``, and no more than fit in half the budget (a request
        may wait for the call in progress, then its own call, and both must fit in the budget).
        Callers that submit many requests at once submit them in parts of this size."""
        if not self.cost.trusted:
            return self.max_rows
        return self.cost.rows_within(self.budget / 2, self.max_rows)

    def _remaining(self, now: float) -> float:
        """Expected seconds left of the call in progress. One that has run past its expected time
        is expected to overrun by as much again (a stalled model)."""
        if not self._running:
            return 0.0
        return abs(self.cost.seconds(self._call_rows) - (now - self._call_started))

    def _drain(self, rows: int, items: int) -> float:
        """Seconds to predict ``rows`` rows of ``items`` requests, queued, in calls as they are made."""
        if rows <= 0:
            return 0.0
        if not self.enabled:  # one call per request
            return items * self.cost.seconds(rows / items)
        limit = self.call_rows
        full, rest = divmod(rows, limit)
        wait = full * self.cost.seconds(limit) if full else 0.0
        return wait + (self.cost.seconds(rest) if rest else 0.0)

    @property
    def busy(self) -> bool:
        """A call is in progress in the executor, or requests are queued."""
        return self._running or bool(self._queue)

    def expected_time(self, rows: int = 1, started: float | None = None) -> float:
        """Seconds from ``started`` (now, if None) until a request of ``rows`` rows submitted now
        would be answered: its age, the rest of the call in progress, the calls of the rows queued
        before it and its own."""
        now = self.clock()
        age = now - started if started is not None else 0.0
        queued = len(self._queue)
        return age + self._remaining(now) + self._drain(self._queued_rows + rows, queued + 1)

    def admission(self, rows: int = 1, started: float | None = None) -> Overloaded | None:
        """None when a request of ``rows`` rows that arrived at ``started`` (now, if None) may be
        submitted now; else the :class:`Overloaded` to refuse it with. Counts nothing."""
        now = self.clock()
        age = now - started if started is not None else 0.0
        if age > self.budget:  # already late, whatever the model
            return Overloaded(self.name, age, self.budget, 1)
        cost = self.cost
        if not cost.trusted:
            return None
        queued = len(self._queue)
        if not queued and not self._running:  # idle: its own call only
            own = cost.seconds(rows)
            if age + own <= self.budget or own > self.budget:  # fits, or never will: no retry helps
                return None
            return Overloaded(self.name, age + own, self.budget, 1)
        remaining = self._remaining(now)
        expected = age + remaining + self._drain(self._queued_rows + rows, queued + 1)
        if expected <= self.budget:
            return None
        ahead = remaining + self._drain(self._queued_rows, queued)
        return Overloaded(self.name, expected, self.budget, max(1, math.ceil(ahead)))

    def _inline(self) -> bool:
        """Run on the event loop: the call is expected to cost less than a thread hop would."""
        if self.cost.calls < 2 or self.inline_seconds <= 0:
            return False  # measure first, off the loop
        return self.stats.cpu_per_call <= self.inline_seconds

    # -- submitting ---------------------------------------------------------------------------------

    def submit(
        self,
        columns: Columns,
        rows: int,
        done: Done,
        tag: object = None,
        requests: int = 1,
        started: float | None = None,
    ) -> Pending:
        """Queue ``rows`` rows for prediction; ``done`` is called on the event loop thread with the
        caller's outputs (or the error). ``started`` is when the (oldest) request arrived, on the
        batcher's clock (now, if None): the budget counts from then. Raises :class:`Overloaded`
        at once when the request would be answered beyond the budget (:meth:`admission`). Must be
        called on the thread running the event loop."""
        refusal = self.admission(rows, started)
        if refusal is not None:
            self.stats.shed += requests
            raise refusal
        item = Pending(columns, rows, done, self.clock() if started is None else started, tag, requests)
        with self._lock:
            self._queue.append(item)
            self._queued_rows += rows
            if self._running or self._scheduled:
                return item
            self._scheduled = True
        self._loop = asyncio.get_running_loop()
        self._loop.call_soon(self._serve)
        return item

    async def run(
        self, columns: Columns, rows: int, tag: object = None, started: float | None = None
    ) -> tuple[Outputs, float]:
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

        item = self.submit(columns, rows, done, tag, started=started)
        try:
            return await future
        except asyncio.CancelledError:
            item.cancel()
            raise

    # -- serving ------------------------------------------------------------------------------------

    def _take(self) -> tuple[list[Pending], list[Pending]]:
        """The next call's requests, and the requests found late (refused, on the loop). Called
        with the lock held."""
        now = self.clock()
        taken: list[Pending] = []
        late: list[Pending] = []
        rows = 0
        limit = self.call_rows if self.enabled else 0  # disabled: one request per call
        while self._queue and (not taken or rows + self._queue[0].rows <= limit):
            item = self._queue.popleft()
            self._queued_rows -= item.rows
            if item.cancelled:  # the caller went away (client disconnected)
                continue
            if now - item.started > self.budget:  # late already (a stalled model): refused
                late.append(item)
                continue
            taken.append(item)
            rows += item.rows
        if taken:
            self._call_rows, self._call_started = rows, now
        return taken, late

    def _refuse_late(self, late: list[Pending]) -> None:
        now = self.clock()
        for item in late:
            self.stats.shed += item.requests
            deliver(item, None, 0.0, Overloaded(self.name, now - item.started, self.budget))

    def _serve(self) -> None:
        """Take what is queued and predict it (on the event loop thread): inline calls until the
        queue is empty, or a call handed to the executor, whose thread goes on with what queued
        meanwhile (:meth:`_work`)."""
        with self._lock:
            self._scheduled = False
        while True:
            with self._lock:
                if self._running or not self._queue:
                    return
                items, late = self._take()
                inline = bool(items) and self._inline()
                self._running = bool(items) and not inline
            if late:
                self._refuse_late(late)
            if not items:
                continue
            columns = concat(items)
            if inline:
                self._finish(items, columns, *self._call(items, columns))
                continue
            try:
                self.executor.submit(self._work, items, columns)
            except RuntimeError as exc:  # the executor was shut down
                with self._lock:
                    self._running = False
                self._fail(items, exc)
            return

    def _call(
        self, items: list[Pending], columns: Columns
    ) -> tuple[tuple[Outputs, float] | None, Each | None]:
        """One coalesced call, or each request alone when it failed."""
        try:
            return self._timed(columns, sum(it.rows for it in items)), None
        except Exception as exc:
            if len(items) == 1:
                return None, [exc]
            self.stats.retried += len(items)
            return None, self._each(items)

    def _work(self, items: list[Pending], columns: Columns) -> None:
        """In the executor: one call, its answers handed to the event loop, and the next call's
        requests taken at once. The model's calls thus follow each other whatever the event loop
        is busy with (answering requests once per turn of the loop: under load a turn is long);
        each next call is a new executor task, so the versions sharing the executor take turns."""
        try:
            result, each = self._call(items, columns)
        except BaseException as exc:  # not an Exception: still, its callers get an answer
            result, each = None, [exc] * len(items)
        # The next call's requests are taken before the answers go: when a caller learns its
        # answer, the batcher's state already says whether a call is running.
        serve = False
        following: list[Pending] = []
        late: list[Pending] = []
        with self._lock:
            if self._queue and self._inline():  # cheap calls now: the loop makes them
                following, self._running, self._scheduled, serve = [], False, True, True
            else:
                following, late = self._take()
                self._running = bool(following)
        if not self._post(self._finish, items, columns, result, each):
            return
        if late:
            self._post(self._refuse_late, late)
        if serve:
            self._post(self._serve)
        if not following:
            return
        items = following
        try:
            self.executor.submit(self._work, items, concat(items))
        except RuntimeError as exc:  # the executor was shut down
            with self._lock:
                self._running = False
            self._post(self._fail, items, exc)

    def _post(self, callback: Callable[..., None], *args: Any) -> bool:
        """Run ``callback(*args)`` on the event loop thread; False when the loop is gone."""
        loop = self._loop
        if loop is None or loop.is_closed():
            return False
        try:
            loop.call_soon_threadsafe(callback, *args)
        except RuntimeError:  # the loop closed between the check and the call
            return False
        return True

    def _fail(self, items: list[Pending], exc: BaseException) -> None:
        for it in items:
            deliver(it, None, 0.0, exc)

    def _finish(
        self,
        items: list[Pending],
        columns: Columns,
        result: tuple[Outputs, float] | None,
        each: Each | None,
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
            if len(items) == 1:
                deliver(items[0], (labels, proba), seconds, None)
            else:
                start = 0
                for it in items:
                    stop = start + it.rows
                    deliver(
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
            if isinstance(got, BaseException):
                deliver(it, None, 0.0, got)
                continue
            s.calls += 1
            s.requests += it.requests
            s.rows += it.rows
            s.largest = max(s.largest, it.requests)
            deliver(it, got[0], got[1], None)
            self._batch_done([it], it.columns, got[0], got[1])

    def _batch_done(self, items: list[Pending], columns: Columns, out: Outputs, seconds: float) -> None:
        if self.on_batch is not None:
            try:
                self.on_batch(items, columns, out, seconds)
            except Exception:  # recording must not stop serving
                log.exception("recording a batch of predictions failed")

    def close(self) -> None:
        """Refuse what is still queued and stop the private thread (after its current call)."""
        with self._lock:
            queued, self._queue = list(self._queue), deque()
            self._queued_rows = 0
        for item in queued:
            deliver(item, None, 0.0, Overloaded(self.name, 0.0, self.budget))
        if self._own_executor:
            self.executor.shutdown(wait=False)
