"""The audit chain detects edits, deletions, reorderings and (with an anchor) truncation."""

from __future__ import annotations

import pytest
from sqlalchemy import delete, update

from modelward.errors import AuditChainBroken
from modelward.governance.audit import GENESIS_HASH, AuditLog, event_hash
from modelward.store import Store, audit_events


def _log_with(store: Store, n: int) -> AuditLog:
    log = AuditLog(store)
    for i in range(n):
        log.append("promote", f"m:{i}", {"i": i, "note": "ünïcode"}, actor="tester")
    return log


def test_empty_chain_verifies(store: Store) -> None:
    result = AuditLog(store).verify()
    assert result.ok
    assert result.events == 0
    assert result.head_hash == GENESIS_HASH


def test_events_link_by_hash_from_genesis(store: Store) -> None:
    log = _log_with(store, 3)
    events = log.events()
    assert [e.seq for e in events] == [1, 2, 3]
    assert events[0].prev_hash == GENESIS_HASH
    assert events[1].prev_hash == events[0].hash
    e = events[2]
    assert e.hash == event_hash(e.prev_hash, e.seq, e.ts, e.actor, e.action, e.subject, e.payload)
    assert log.verify().ok


def test_edited_payload_fails_naming_that_seq(store: Store) -> None:
    log = _log_with(store, 5)
    with store.write() as conn:
        conn.execute(update(audit_events).where(audit_events.c.seq == 3).values(payload='{"i":99}'))
    result = log.verify()
    assert not result.ok
    assert result.bad_seq == 3
    assert "edited" in (result.reason or "")
    with pytest.raises(AuditChainBroken, match="seq 3"):
        result.raise_for_status()


def test_edited_actor_fails_naming_that_seq(store: Store) -> None:
    log = _log_with(store, 4)
    with store.write() as conn:
        conn.execute(update(audit_events).where(audit_events.c.seq == 2).values(actor="mallory"))
    assert log.verify().bad_seq == 2


def test_deleted_event_fails_naming_the_missing_seq(store: Store) -> None:
    log = _log_with(store, 5)
    with store.write() as conn:
        conn.execute(delete(audit_events).where(audit_events.c.seq == 2))
    result = log.verify()
    assert not result.ok
    assert result.bad_seq == 2
    assert "missing" in (result.reason or "")


def test_reordered_events_fail(store: Store) -> None:
    log = _log_with(store, 4)
    with store.write() as conn:  # swap the contents of seq 2 and 3, keeping the seq numbers
        rows = {r.seq: r for r in conn.execute(audit_events.select())}
        for a, b in ((2, 3), (3, 2)):
            src = rows[b]
            conn.execute(
                update(audit_events)
                .where(audit_events.c.seq == a)
                .values(
                    ts=src.ts,
                    action=src.action,
                    subject=src.subject,
                    payload=src.payload,
                    prev_hash=src.prev_hash,
                    hash=src.hash,
                )
            )
    assert log.verify().bad_seq == 2


def test_rehashed_edit_is_caught_by_the_next_link(store: Store) -> None:
    log = _log_with(store, 3)
    e = log.events()[1]
    forged = event_hash(e.prev_hash, e.seq, e.ts, e.actor, e.action, e.subject, {"i": 42})
    with store.write() as conn:
        conn.execute(
            update(audit_events).where(audit_events.c.seq == 2).values(payload='{"i":42}', hash=forged)
        )
    result = log.verify()
    assert result.bad_seq == 3
    assert "prev_hash" in (result.reason or "")


def test_truncated_tail_is_caught_by_an_anchor(store: Store) -> None:
    log = _log_with(store, 5)
    anchor = log.head()
    assert anchor[0] == 5
    assert log.verify(anchor=anchor).ok
    with store.write() as conn:
        conn.execute(delete(audit_events).where(audit_events.c.seq >= 4))
    assert log.verify().ok  # a plain chain cannot see a cut tail
    result = log.verify(anchor=anchor)
    assert not result.ok
    assert result.bad_seq == 4


def test_append_inside_a_failed_transaction_leaves_no_event(store: Store) -> None:
    log = AuditLog(store)
    with pytest.raises(RuntimeError), store.write() as conn:
        log.append("x", "y", {}, actor="a", conn=conn)
        raise RuntimeError("abort")
    assert log.events() == []
    assert log.verify().ok


def test_events_filter_by_model_subject_and_action(store: Store) -> None:
    log = AuditLog(store)
    log.append("register", "churn:1", {}, actor="a")
    log.append("register", "churnx:1", {}, actor="a")
    log.append("promote", "churn:1", {}, actor="a")
    assert [e.seq for e in log.events(subject="churn")] == [1, 3]
    assert [e.seq for e in log.events(action="register")] == [1, 2]
    assert [e.seq for e in log.events(limit=1, newest_first=True)] == [3]


def test_payload_with_nan_is_refused(store: Store) -> None:
    with pytest.raises(ValueError, match="JSON"):
        AuditLog(store).append("x", "y", {"v": float("nan")}, actor="a")
