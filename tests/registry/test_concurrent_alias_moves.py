"""8 processes x 50 alternating promote/rollback on one alias: no false refusal, one coherent history.

Each move must read the alias and move it under one lock: read first and lock second, and two
processes both see the same holder, so one of them refuses a rollback ("changed outside
modelward") that nobody made outside, or both record the same move from the same holder.
"""

from __future__ import annotations

import multiprocessing as mp
from typing import Any

import pandas as pd
import pytest

from modelward.config import Settings
from modelward.registry import Registry, register_model
from modelward.store import Store

PROCESSES = 8
MOVES = 50  # per process: promote, rollback, promote, ...
VERSIONS = ("1", "2", "3")
NAME = "race"
# Rollbacks pop what promotions pushed; a promotion of the current holder pushes nothing. Seed a
# stack deeper than all promotions of the run, so a rollback can never legitimately run out.
SEED = PROCESSES * MOVES // 2 + 1


def _registry(tracking_uri: str, store_url: str, actor: str) -> Registry:
    return Registry(tracking_uri=tracking_uri, store=Store(store_url), actor=actor).open()


def _mover(tracking_uri: str, store_url: str, worker: int, out: mp.Queue) -> None:  # type: ignore[type-arg]
    done = {"promote": 0, "rollback": 0}
    problems: list[str] = []
    try:
        registry = _registry(tracking_uri, store_url, f"worker-{worker}")
        for step in range(MOVES):
            try:
                if step % 2 == 0:
                    registry.promote(NAME, VERSIONS[(worker + step // 2) % len(VERSIONS)])
                    done["promote"] += 1
                else:
                    registry.rollback(NAME)
                    done["rollback"] += 1
            except Exception as exc:  # every refusal is a false one here: the parent asserts none
                problems.append(f"step {step}: {type(exc).__name__}: {exc}")
        registry.close()
    except BaseException as exc:
        problems.append(f"{type(exc).__name__}: {exc}")
    out.put((worker, done, problems))


def _check_history(moves: list[dict[str, Any]]) -> list[str]:
    """Every move starts where the one before ended, and a rollback undoes the newest promotion left."""
    problems: list[str] = []
    holder: str | None = None
    stack: list[tuple[str | None, str | None]] = []
    for i, move in enumerate(moves):
        if move["previous_version"] != holder:
            problems.append(f"move {i} ({move['kind']}) starts at {move['previous_version']}, not {holder}")
        if move["version"] == move["previous_version"]:
            problems.append(f"move {i} ({move['kind']}) moves {move['version']} onto itself")
        if move["kind"] == "promote":
            stack.append((move["previous_version"], move["version"]))
        elif not stack or stack.pop() != (move["version"], move["previous_version"]):
            problems.append(f"move {i} (rollback) does not undo the newest promotion left")
        holder = move["version"]
    return problems


@pytest.mark.slow
def test_concurrent_promotes_and_rollbacks_never_refuse_falsely_nor_record_a_move_twice(
    settings: Settings, store_url: str, churn_models: dict, churn_frame: pd.DataFrame
) -> None:
    tracking_uri = settings.resolved_tracking_uri
    registry = Registry(
        tracking_uri=tracking_uri,
        store=Store(store_url),
        artifact_location=settings.resolved_artifact_location,
        actor="setup",
    ).open()
    for key in ("logreg", "forest", "logreg"):
        register_model(registry, churn_models[key], NAME, train_data=churn_frame, target="churn")
    for i in range(SEED):
        registry.promote(NAME, VERSIONS[i % 2])
    seeded = len(registry.alias_history(NAME, "champion"))
    assert seeded == SEED

    ctx = mp.get_context("spawn")
    out = ctx.Queue()
    procs = [ctx.Process(target=_mover, args=(tracking_uri, store_url, w, out)) for w in range(PROCESSES)]
    for p in procs:
        p.start()
    results = [out.get(timeout=600) for _ in procs]  # a guard against a hung child, not a bound
    for p in procs:
        p.join()
    false_errors = [f"worker {w}: {p}" for w, _, problems in results for p in problems]
    assert false_errors == []
    assert all(p.exitcode == 0 for p in procs)

    moves = registry.alias_history(NAME, "champion")
    assert _check_history(moves) == []
    rollbacks = sum(done["rollback"] for _, done, _ in results)
    assert rollbacks == PROCESSES * MOVES // 2
    assert sum(m["kind"] == "rollback" for m in moves[seeded:]) == rollbacks

    # The audit chain holds the same moves, once each, in the same order, and still verifies.
    audited = [
        (e.action, e.payload["from"], e.payload["to"])
        for e in registry.audit.events(subject=NAME)
        if e.action in {"promote", "rollback"}
    ]
    assert audited == [(m["kind"], m["previous_version"], m["version"]) for m in moves]
    assert registry.audit.verify().ok
    assert registry.resolve(f"{NAME}@champion").version == moves[-1]["version"]
    registry.close()


def test_history_check_catches_a_move_recorded_twice() -> None:
    def move(kind: str, previous: str | None, version: str) -> dict[str, Any]:
        return {"kind": kind, "previous_version": previous, "version": version}

    good = [move("promote", None, "1"), move("promote", "1", "2"), move("rollback", "2", "1")]
    assert _check_history(good) == []
    twice = [move("promote", None, "1"), move("promote", "1", "2"), move("promote", "1", "3")]
    assert _check_history(twice) == ["move 2 (promote) starts at 1, not 2"]
    undone_twice = [*good, move("rollback", "2", "1")]
    assert _check_history(undone_twice) == [
        "move 3 (rollback) starts at 2, not 1",
        "move 3 (rollback) does not undo the newest promotion left",
    ]
