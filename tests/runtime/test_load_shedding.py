"""Load shedding by the batcher: a request is admitted when it is expected to be answered within the
latency budget, counting the time it already spent in the server; the estimate comes from the
measured cost of calls (a fixed part and a part per row), is trusted only after a few calls, and a
call never takes more rows than fit in the budget.

The batcher runs on a fake clock that each predict call advances by the model's cost, so every
figure here is exact: what is asserted is the rule, not a speed.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable

import numpy as np
import pytest

from modelward.runtime.batcher import Batcher, Overloaded


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Model:
    """A model costing ``cost(rows)`` seconds of the fake clock per call; ``hold`` keeps the next
    call in progress until ``release``."""

    def __init__(self, clock: Clock, cost: Callable[[int], float]) -> None:
        self.clock = clock
        self.cost = cost
        self.calls: list[int] = []
        self.holding = False
        self.entered = threading.Event()
        self.released = threading.Event()

    def hold(self) -> None:
        self.holding = True
        self.entered.clear()
        self.released.clear()

    def release(self) -> None:
        self.holding = False
        self.released.set()

    def __call__(self, columns):  # type: ignore[no-untyped-def]
        x = np.asarray(columns["x"], dtype=np.float64)
        self.calls.append(len(x))
        if self.holding:
            self.entered.set()
            self.released.wait(10)
        self.clock.now += self.cost(len(x))
        return x * 2, None


def make(cost: Callable[[int], float], **kw: object) -> tuple[Batcher, Model, Clock]:
    clock = Clock()
    model = Model(clock, cost)
    kw.setdefault("budget", 1.0)
    return Batcher("m:1", model, clock=clock, inline_seconds=0, **kw), model, clock  # type: ignore[arg-type]


async def calls_of(batcher: Batcher, sizes: list[int]) -> None:
    """One call per size, one after the other (each measured by the batcher)."""
    for n in sizes:
        await batcher.run({"x": np.zeros(n)}, n)


async def wait_for(event: threading.Event) -> None:
    while not event.is_set():
        await asyncio.sleep(0.001)


def test_a_fixed_cost_model_measured_on_small_calls_is_not_expected_to_cost_per_row() -> None:
    # 10 ms a call whatever its rows: calls of 1-4 rows measured at 2.5-10 ms a row must not make
    # a queue of 255 rows look like 255 x 10 ms (the old estimate shed here with 30 ms answers).
    batcher, model, _clock = make(lambda rows: 0.010)

    async def main() -> tuple[float, Overloaded | None]:
        await calls_of(batcher, [1, 2, 3, 4] * 3)
        model.hold()
        first = asyncio.ensure_future(batcher.run({"x": np.zeros(1)}, 1))
        await wait_for(model.entered)
        queued = [asyncio.ensure_future(batcher.run({"x": np.zeros(5)}, 5)) for _ in range(51)]
        await asyncio.sleep(0)
        expected, refusal = batcher.expected_time(1), batcher.admission(1)
        model.release()
        await asyncio.gather(first, *queued)
        return expected, refusal

    expected, refusal = asyncio.run(main())
    assert refusal is None and batcher.stats.shed == 0
    # the call in progress, then one call of the 255 queued rows and this one
    assert expected == pytest.approx(0.020, abs=0.002)


def test_the_expected_time_counts_the_call_in_progress_and_each_queued_call_once() -> None:
    batcher, model, clock = make(lambda rows: 0.100, max_rows=10)

    async def main() -> list[float]:
        await calls_of(batcher, [10] * 6)  # full calls of 10 rows, 0.1 s each
        times = [batcher.expected_time(1)]  # idle: its own call
        model.hold()
        first = asyncio.ensure_future(batcher.run({"x": np.zeros(10)}, 10))
        await wait_for(model.entered)
        times.append(batcher.expected_time(1))  # the call in progress, then its own
        clock.now += 0.04
        times.append(batcher.expected_time(1))  # 40 ms of it have passed
        queued = [asyncio.ensure_future(batcher.run({"x": np.zeros(5)}, 5)) for _ in range(5)]
        await asyncio.sleep(0)
        times.append(batcher.expected_time(1))  # then 26 rows: two calls of 10 and one of 6
        clock.now += 0.2
        times.append(batcher.expected_time(1))  # the call in progress overran by 0.14 s
        model.release()
        await asyncio.gather(first, *queued)
        return times

    assert asyncio.run(main()) == pytest.approx([0.1, 0.2, 0.16, 0.36, 0.44])


def test_the_first_call_is_not_taken_as_the_model_s_cost() -> None:
    # The first call of a freshly loaded version may pay for lazy initialisation.
    costs = iter([5.0] + [0.010] * 100)
    batcher, model, _clock = make(lambda rows: next(costs))

    async def main() -> Overloaded | None:
        await calls_of(batcher, [1] * 7)
        model.hold()
        first = asyncio.ensure_future(batcher.run({"x": np.zeros(1)}, 1))
        await wait_for(model.entered)
        queued = [asyncio.ensure_future(batcher.run({"x": np.zeros(1)}, 1)) for _ in range(3)]
        await asyncio.sleep(0)
        refusal = batcher.admission(1)
        model.release()
        await asyncio.gather(first, *queued)
        return refusal

    assert asyncio.run(main()) is None
    assert batcher.stats.shed == 0


def test_no_request_is_shed_on_an_estimate_from_too_few_calls() -> None:
    batcher, model, _clock = make(lambda rows: 0.600)

    async def main() -> list[Overloaded | None]:
        seen = []
        await calls_of(batcher, [1, 1])  # too few to trust: 0.6 s calls, but only two of them
        model.hold()
        first = asyncio.ensure_future(batcher.run({"x": np.zeros(1)}, 1))
        await wait_for(model.entered)
        seen.append(batcher.admission(1))
        model.release()
        await first
        await calls_of(batcher, [1] * 4)  # now enough
        model.hold()
        first = asyncio.ensure_future(batcher.run({"x": np.zeros(1)}, 1))
        await wait_for(model.entered)
        seen.append(batcher.admission(1))  # 0.6 s in progress + 0.6 s of its own: beyond 1 s
        model.release()
        await first
        seen.append(batcher.admission(1))  # idle again: 0.6 s of its own
        return seen

    untrusted, trusted, idle = asyncio.run(main())
    assert untrusted is None
    assert isinstance(trusted, Overloaded) and trusted.retry_after >= 1
    assert idle is None


def test_the_budget_counts_the_time_the_request_already_spent_in_the_server() -> None:
    batcher, _model, clock = make(lambda rows: 0.100)

    async def main() -> list[Overloaded | None]:
        await calls_of(batcher, [1] * 8)
        now = clock.now
        return [
            batcher.admission(1, started=now - 0.5),  # 0.5 s old + 0.1 s call
            batcher.admission(1, started=now - 0.95),  # would be answered 1.05 s after it arrived
            batcher.admission(1, started=now - 1.5),  # already beyond the budget
        ]

    young, late, older = asyncio.run(main())
    assert young is None
    assert isinstance(late, Overloaded) and isinstance(older, Overloaded)
    assert "latency budget of 1000 ms" in str(late)


def test_a_request_that_alone_exceeds_the_budget_is_still_served_by_an_idle_model() -> None:
    # Refusing it would be for ever: no retry can make it fit.
    batcher, _model, _clock = make(lambda rows: 0.001 * rows)

    async def main() -> Overloaded | None:
        await calls_of(batcher, [1, 10, 100, 5, 50, 20, 2])
        return batcher.admission(5000)

    assert asyncio.run(main()) is None


def test_under_overload_every_admitted_request_is_answered_within_the_budget() -> None:
    # 12 ms a row: a call of 256 rows would take 3 s. Calls are cut to what fits in half the
    # budget, requests beyond what the budget holds are refused at once, and every answered one
    # is answered within the budget of its arrival.
    batcher, model, clock = make(lambda rows: 0.012 * rows, max_rows=256)
    answered: list[float] = []
    refused: list[Overloaded] = []

    async def main() -> None:
        await calls_of(batcher, [1, 2, 4, 8, 16, 3, 5])
        model.calls.clear()

        async def one() -> None:
            started = clock.now
            try:
                await batcher.run({"x": np.zeros(1)}, 1, started=started)
            except Overloaded as exc:
                refused.append(exc)
                return
            answered.append(clock.now - started)

        await asyncio.gather(*(one() for _ in range(300)))

    asyncio.run(main())
    assert answered and refused and len(answered) + len(refused) == 300
    assert max(answered) <= 1.0
    assert batcher.call_rows == 41 and max(model.calls) <= 41  # 41 x 12 ms = 0.49 s: half the budget
    assert sum(model.calls) == len(answered)  # the refused ones cost the model nothing
    assert batcher.stats.shed == len(refused)
    assert all(r.retry_after >= 1 for r in refused)


def test_a_request_that_waited_beyond_the_budget_is_shed_when_its_turn_comes() -> None:
    # A stalled model: its call runs far longer than measured; what queued behind it is refused
    # when its turn comes instead of being answered late.
    costs = iter([0.010] * 8 + [3.0] + [0.010] * 10)
    batcher, _model, clock = make(lambda rows: next(costs))

    async def main() -> list[object]:
        await calls_of(batcher, [1] * 8)

        async def one() -> object:
            try:
                return await batcher.run({"x": np.zeros(1)}, 1, started=clock.now)
            except Overloaded as exc:
                return exc

        first = asyncio.ensure_future(one())
        await asyncio.sleep(0)
        second = asyncio.ensure_future(one())
        return [await first, await second]

    first, second = asyncio.run(main())
    assert not isinstance(first, Overloaded)  # the stalled call itself still answers
    assert isinstance(second, Overloaded)
