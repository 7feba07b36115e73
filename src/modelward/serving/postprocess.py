"""Work that follows a prediction but must not delay its response: metrics of the predicted values,
the prediction log's records, live drift profiles. One daemon thread runs the jobs in order from a
bounded queue; when the queue is full a job is dropped and counted (``on_dropped``), never waited for.

The thread is not woken per job: it wakes every ``interval`` seconds and runs what has queued, so a
busy server does not pay a thread switch (and a fight for the GIL) per request.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Callable
from typing import Any

__all__ = ["PostProcessor"]

log = logging.getLogger("modelward.serving")


class PostProcessor:
    def __init__(
        self,
        *,
        capacity: int = 10_000,
        interval: float = 0.02,
        on_dropped: Callable[[int], None] | None = None,
        after_burst: Callable[[], None] | None = None,
    ) -> None:
        self.capacity = capacity
        self.interval = interval
        self.after_burst = after_burst  # runs after each burst of jobs: aggregated work goes there
        self.on_dropped = on_dropped
        self._jobs: deque[tuple[Callable[..., None], tuple[Any, ...]]] = deque()
        self._cond = threading.Condition(threading.Lock())
        self._busy = False
        self._stopping = False
        self._thread: threading.Thread | None = None
        self.dropped = 0
        self.done = 0

    def start(self) -> PostProcessor:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="modelward-postprocess", daemon=True)
            self._thread.start()
        return self

    def submit(self, job: Callable[..., None], *args: Any) -> bool:
        """Queue ``job(*args)``; returns at once, False when the job was dropped (queue full). Without
        a running thread the job runs inline."""
        if self._thread is None:
            self._call(job, args)
            self._burst_done()
            return True
        with self._cond:
            if len(self._jobs) >= self.capacity or self._stopping:
                self.dropped += 1
                dropped = True
            else:
                self._jobs.append((job, args))
                dropped = False
        if dropped and self.on_dropped is not None:
            try:
                self.on_dropped(1)
            except Exception:  # a metrics hook must not break serving
                log.debug("post-processing drop hook failed", exc_info=True)
        return not dropped

    def _call(self, job: Callable[..., None], args: tuple[Any, ...]) -> None:
        try:
            job(*args)
        except Exception:  # one failing job must not stop the others
            log.exception("post-processing a prediction failed")
        self.done += 1

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._jobs and not self._stopping:
                    self._busy = False
                    self._cond.notify_all()
                    self._cond.wait(self.interval)
                if not self._jobs:
                    self._busy = False
                    self._cond.notify_all()
                    return
                jobs = list(self._jobs)
                self._jobs.clear()
                self._busy = True
            for job, args in jobs:
                self._call(job, args)
            self._burst_done()

    def _burst_done(self) -> None:
        if self.after_burst is not None:
            try:
                self.after_burst()
            except Exception:
                log.exception("post-processing a burst of predictions failed")

    def flush(self, timeout: float = 5.0) -> bool:
        """Wait until every queued job ran; False on timeout."""
        with self._cond:
            self._cond.notify_all()
            return self._cond.wait_for(lambda: not self._jobs and not self._busy, timeout)

    def close(self, timeout: float = 5.0) -> None:
        """Run what is queued (within ``timeout``), then stop the thread."""
        self.flush(timeout)
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        if self._thread is not None:
            self._thread.join(timeout)
