"""8 processes appending 200 audit events each to one store: no lock errors, one intact chain."""

from __future__ import annotations

import multiprocessing as mp

import pytest

from modelward.governance.audit import AuditLog
from modelward.store import Store

WRITERS = 8
EACH = 200


def _writer(url: str, worker: int, errors: mp.Queue) -> None:  # type: ignore[type-arg]
    try:
        store = Store(url).open()
        store.migrate()
        log = AuditLog(store)
        for i in range(EACH):
            log.append("test", f"w{worker}", {"i": i}, actor=f"worker-{worker}")
        store.close()
    except BaseException as exc:  # report everything, the parent asserts
        errors.put(f"{type(exc).__name__}: {exc}")


@pytest.mark.slow
def test_eight_processes_append_1600_events_into_one_verified_chain(store_url: str) -> None:
    ctx = mp.get_context("spawn")
    errors = ctx.Queue()
    procs = [ctx.Process(target=_writer, args=(store_url, w, errors)) for w in range(WRITERS)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=240)
    problems = []
    while not errors.empty():
        problems.append(errors.get())
    assert problems == []
    assert all(p.exitcode == 0 for p in procs)
    store = Store(store_url).open()
    log = AuditLog(store)
    result = log.verify()
    assert result.ok, result
    assert result.events == WRITERS * EACH
    per_worker = {f"w{w}": 0 for w in range(WRITERS)}
    for e in log.events():
        per_worker[e.subject] += 1
    assert set(per_worker.values()) == {EACH}
    store.close()
