"""What the dashboard keeps between pages: slots keep their keys until the newest slot ends, one read
of a key at a time, and an answer past its time is given at once while it is read again."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from modelward.registry import Registry
from modelward.ui.board import Board
from modelward.ui.series import slots


def wait_until(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        threading.Event().wait(0.01)


def test_a_day_in_two_hour_slots_keeps_its_slots_until_the_newest_ends() -> None:
    start = 1_800_000_000.0 - 1_800_000_000.0 % 7_200  # a slot boundary
    first = slots(86_400, start + 600)
    assert first.seconds == 7_200 and first.until == start + 7_200
    assert slots(86_400, start + 7_000).starts == first.starts  # a minute later: the same slots
    assert slots(86_400, start + 7_260).starts == [*first.starts[1:], start + 7_200]
    assert first.elapsed(start) == 600  # the newest slot counts what has passed of it
    assert first.elapsed(first.starts[0]) == 7_200


def test_one_read_per_key_at_a_time_and_stale_answers_at_once(registry: Registry) -> None:
    board = Board(registry)
    release, reads = threading.Event(), []

    def slow() -> int:
        reads.append(1)
        release.wait(10)
        return len(reads)

    answers: list[int] = []
    threads = [threading.Thread(target=lambda: answers.append(board.cached(("k",), slow))) for _ in range(3)]
    for t in threads:
        t.start()
    wait_until(lambda: len(reads) == 1)
    release.set()
    for t in threads:
        t.join(10)
    assert answers == [1, 1, 1] and len(reads) == 1  # the two others waited for the first read

    release.clear()
    # Past its time (ttl 0), with stale: the older answer at once, the new one read behind it.
    assert board.cached(("k",), slow, 0.0, stale=True) == 1
    assert len(reads) == 2
    release.set()
    wait_until(lambda: board.cached(("k",), slow, 60.0) == 2)
    board.forget()
    assert board.cached(("k",), lambda: 7) == 7
