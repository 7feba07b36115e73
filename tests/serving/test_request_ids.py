"""Generated request ids: unique, valid UUIDv7, and growing with time (what keeps the prediction
log's request-id index cheap to insert into)."""

from __future__ import annotations

import time
import uuid

from modelward.serving.middleware import new_request_id, safe_request_id


def test_generated_request_ids_are_unique_uuid7_in_32_hex_digits() -> None:
    ids = [new_request_id() for _ in range(50_000)]
    assert len(set(ids)) == len(ids)
    for rid in ids[:1000]:
        assert len(rid) == 32 and safe_request_id(rid) == rid
        parsed = uuid.UUID(rid)
        assert parsed.version == 7
        assert parsed.variant == uuid.RFC_4122


def test_generated_request_ids_carry_the_time_and_sort_by_it() -> None:
    before = time.time_ns() // 1_000_000
    first = new_request_id()
    time.sleep(0.005)
    second = new_request_id()
    after = time.time_ns() // 1_000_000
    assert before <= int(first[:12], 16) <= int(second[:12], 16) <= after
    assert first < second  # a later millisecond sorts after, as text too


def test_ids_made_together_are_as_unique_valid_and_timed_as_ids_made_one_by_one() -> None:
    from modelward.serving.middleware import new_request_ids

    before = time.time_ns() // 1_000_000
    ids = [rid for _ in range(500) for rid in new_request_ids(100)]
    after = time.time_ns() // 1_000_000
    assert len(set(ids)) == len(ids) == 50_000
    for rid in ids[::50]:
        parsed = uuid.UUID(rid)
        assert len(rid) == 32 and safe_request_id(rid) == rid
        assert (parsed.version, parsed.variant) == (7, uuid.RFC_4122)
        assert before <= int(rid[:12], 16) <= after
    assert new_request_ids(0) == []
