"""A request submitted to a :class:`~modelward.runtime.batcher.Batcher`, and its answer."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping

import numpy as np

__all__ = ["Columns", "Done", "Outputs", "Pending", "concat", "deliver"]

log = logging.getLogger("modelward.runtime")

Columns = Mapping[str, np.ndarray]
Outputs = tuple[np.ndarray, np.ndarray | None]
# done(outputs, seconds, None) with the caller's rows, or done(None, 0.0, error)
Done = Callable[[Outputs | None, float, BaseException | None], None]


class Pending:
    """A submitted request: ``cancel()`` when its caller went away (its rows are then not predicted
    if they have not been taken yet, and ``done`` is not called)."""

    __slots__ = ("cancelled", "columns", "done", "requests", "rows", "started", "tag")

    def __init__(
        self, columns: Columns, rows: int, done: Done, started: float, tag: object, requests: int = 1
    ) -> None:
        self.columns = columns
        self.rows = rows
        self.requests = requests  # client requests these rows stand for (several from a hot batch)
        self.done = done
        self.started = started  # when the (oldest) request arrived, on the batcher's clock
        self.tag = tag  # the caller's, for on_batch
        self.cancelled = False

    def cancel(self) -> None:
        self.cancelled = True


def concat(items: list[Pending]) -> dict[str, np.ndarray]:
    first = items[0].columns
    if len(items) == 1:
        return dict(first)
    return {name: np.concatenate([it.columns[name] for it in items]) for name in first}


def deliver(item: Pending, out: Outputs | None, seconds: float, exc: BaseException | None) -> None:
    if item.cancelled:
        return
    item.cancelled = True  # answered once
    try:
        item.done(out, seconds, exc)
    except Exception:  # a caller's callback must not stop the others being answered
        log.exception("a batched request's callback failed")
