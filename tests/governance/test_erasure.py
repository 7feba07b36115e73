"""Erasing a person's logged predictions and labels, by request id or by a logged input's value, on
SQLite and PostgreSQL: the rows go, the audit event keeps counts only, the chain still verifies."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import func, select

from modelward.errors import ConfigError
from modelward.feedback.ingest import FeedbackStore
from modelward.governance.audit import AuditLog
from modelward.governance.erasure import Eraser, key_hash, parse_key
from modelward.monitoring.log_insert import write_items
from modelward.monitoring.log_rows import RecordBatch
from modelward.store import Store
from modelward.store.tables import deployment_history, feedback, predictions


def _log(store: Store, model: str, ids: list[str], customers: list[object], *, consent: bool = True) -> None:
    n = len(ids)
    batch = RecordBatch(
        model=model,
        version="1",
        arm="primary",
        ts=1_700_000_000.0,
        latency_ms=1.0,
        request_ids=ids,
        inputs={"customer_id": customers, "age": [40] * n},
        predictions=[0] * n,
        consent=consent,
    )
    encoded, bad, _, error = write_items(store, [batch])
    assert (encoded, bad, error) == (n, 0, None)


def _ids(store: Store, table: object) -> set[str]:
    with store.read() as conn:
        return {r[0] for r in conn.execute(select(table.c.request_id))}  # type: ignore[attr-defined]


@pytest.fixture
def logged(store: Store) -> Store:
    _log(store, "churn", ["a1", "a2", "b1"], [123, 123.0, 456])
    _log(store, "churn", ["c1"], ["123"])  # the same customer, sent as text
    _log(store, "other", ["o1"], [123])
    FeedbackStore(store).record([{"request_id": rid, "label": 1} for rid in ("a1", "b1", "c1", "o1", "x9")])
    return store


def test_forget_by_key_erases_every_row_whose_logged_input_has_the_value(logged: Store) -> None:
    done = Eraser(logged, actor="dpo", chunk_size=1).forget(key=("customer_id", "123"), model="churn")
    assert (done.predictions, done.feedback, done.requests) == (3, 2, 3)
    assert _ids(logged, predictions) == {"b1", "o1"}  # another customer; another model's row stays
    assert _ids(logged, feedback) == {"b1", "o1", "x9"}


def test_forget_by_request_id_erases_predictions_and_labels_and_is_idempotent(logged: Store) -> None:
    eraser = Eraser(logged, actor="dpo")
    first = eraser.forget(request_ids=["a1", "x9", "x9"], reason="ticket 42")
    assert (first.predictions, first.feedback, first.requests) == (1, 2, 2)
    second = eraser.forget(request_ids=["a1", "x9"])
    assert (second.predictions, second.feedback) == (0, 0)
    assert second.audit_seq == (first.audit_seq or 0) + 1


def test_the_audit_event_keeps_counts_and_a_hash_of_the_field_name_only(logged: Store) -> None:
    Eraser(logged, actor="dpo").forget(key=("customer_id", "123"), reason="erasure request")
    audit = AuditLog(logged)
    (event,) = audit.events(action="forget")
    assert event.actor == "dpo"
    assert event.payload["key_field_sha256"] == key_hash("customer_id")
    assert event.payload["predictions"] == 4 and event.payload["feedback"] == 3
    kept = {k: v for k, v in event.payload.items() if k != "key_field_sha256"}
    text = json.dumps(kept) + event.subject
    for erased in ("123", "customer_id", '"a1"', '"a2"', '"c1"', '"o1"'):
        assert erased not in text
    assert audit.verify().ok


def test_a_key_field_a_deployment_routed_on_is_found_in_the_routing_key(store: Store) -> None:
    for model, key in (("keyed", "customer_id"), ("elsewhere", "order_id")):
        with store.write() as conn:
            spec = json.dumps({"strategy": "ab", "key": key})
            conn.execute(
                deployment_history.insert().values(model=model, revision=1, spec=spec, ts=1.0, actor="t")
            )
        batch = RecordBatch(model, "1", "a", 1.0, 1.0, [f"{model}-r"], {"age": [40]}, [0], routing_keys="123")
        assert write_items(store, [batch])[0] == 1
    done = Eraser(store, actor="dpo").forget(key=("customer_id", "123"))
    assert done.predictions == 1
    assert _ids(store, predictions) == {"elsewhere-r"}  # routed on another field that had the same value


def test_preview_counts_without_erasing(logged: Store) -> None:
    found = Eraser(logged, actor="dpo").preview(key=("customer_id", "456"))
    assert (found.predictions, found.feedback, found.audit_seq) == (1, 1, None)
    with logged.read() as conn:
        assert conn.execute(select(func.count()).select_from(predictions)).scalar_one() == 5
    assert AuditLog(logged).events(action="forget") == []


def test_rows_without_consent_are_stored_marked(store: Store) -> None:
    _log(store, "churn", ["p1"], [1], consent=False)
    _log(store, "churn", ["p2"], [2])
    with store.read() as conn:
        marks = dict(conn.execute(select(predictions.c.request_id, predictions.c.consent)).all())
    assert marks == {"p1": False, "p2": True}


@pytest.mark.parametrize("text", ["customer_id", "=3", "customer_id=", ""])
def test_a_key_without_field_and_value_is_refused(text: str) -> None:
    with pytest.raises(ConfigError, match="FIELD=VALUE"):
        parse_key(text)


def test_nothing_named_to_erase_is_refused(store: Store) -> None:
    with pytest.raises(ConfigError, match="name what to erase"):
        Eraser(store, actor="dpo").forget()
