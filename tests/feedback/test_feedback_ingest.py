"""Labels are stored once per request id: repeats are no-ops, differences are conflicts, orphans are kept."""

from __future__ import annotations

import json
import threading
import time
from typing import Any

import pytest
from sqlalchemy import func, select

from modelward.feedback import FeedbackInvalid, FeedbackItem, FeedbackStore, live_performance
from modelward.store import Store
from modelward.store.tables import feedback, predictions


def log_prediction(
    store: Store, rid: str, *, model: str = "churn", arm: str | None = None, p: float = 0.8
) -> None:
    outputs = {"prediction": int(p > 0.5), "probabilities": {"0": 1 - p, "1": p}}
    with store.write() as conn:
        conn.execute(
            predictions.insert().values(
                request_id=rid,
                ts=time.time(),
                model=model,
                version="1",
                arm=arm,
                routing_key=None,
                inputs="{}",
                outputs=json.dumps(outputs),
                latency_ms=1.0,
            )
        )


def rows(store: Store) -> list[dict[str, Any]]:
    with store.read() as conn:
        return [dict(r._mapping) for r in conn.execute(select(feedback).order_by(feedback.c.request_id))]


def test_feedback_posted_twice_is_stored_once(store: Store) -> None:
    labels = FeedbackStore(store)
    first = labels.record([{"request_id": "a", "label": 1}, {"request_id": "b", "label": "no"}])
    again = labels.record([{"request_id": "a", "label": 1.0}, {"request_id": "b", "label": "no"}])
    assert (first.inserted, first.unchanged, first.conflicts) == (2, 0, ())
    assert (again.inserted, again.unchanged, again.conflicts) == (0, 2, ())
    stored = rows(store)
    assert [(r["request_id"], json.loads(r["label"]), r["value"]) for r in stored] == [
        ("a", 1, 1.0),
        ("b", "no", None),
    ]


def test_a_different_label_is_a_conflict_unless_overwrite(store: Store) -> None:
    labels = FeedbackStore(store)
    labels.record([FeedbackItem("a", "yes"), FeedbackItem("b", "yes")])
    refused = labels.record([FeedbackItem("a", "no"), FeedbackItem("c", "yes")])
    assert [c.to_dict() for c in refused.conflicts] == [{"request_id": "a", "stored": "yes", "sent": "no"}]
    assert refused.inserted == 1  # the rest of the bulk was written
    assert labels.get(["a", "c"]) == {"a": "yes", "c": "yes"}
    replaced = labels.record([FeedbackItem("a", "no")], overwrite=True, source="fix")
    assert (replaced.overwritten, replaced.conflicts) == (1, ())
    assert labels.get(["a"]) == {"a": "no"}
    assert next(r for r in rows(store) if r["request_id"] == "a")["source"] == "fix"


def test_repeats_within_one_call_count_the_first_label(store: Store) -> None:
    labels = FeedbackStore(store)
    result = labels.record([FeedbackItem("a", 1), FeedbackItem("a", 1), FeedbackItem("a", 0)])
    assert (result.received, result.inserted, result.unchanged) == (3, 1, 1)
    assert [(c.stored, c.sent) for c in result.conflicts] == [(1, 0)]
    assert labels.get(["a"]) == {"a": 1}
    last = labels.record([FeedbackItem("b", 1), FeedbackItem("b", 0)], overwrite=True)
    assert labels.get(["b"]) == {"b": 0} and last.conflicts == ()


def test_orphans_are_counted_and_join_once_their_prediction_is_logged(store: Store) -> None:
    labels = FeedbackStore(store)
    log_prediction(store, "served")
    log_prediction(store, "mirrored", arm="shadow")
    result = labels.record([FeedbackItem("served", 1), FeedbackItem("early", 0), FeedbackItem("mirrored", 1)])
    assert result.orphans == 2  # a shadow row never reached a client: its id has no served prediction
    assert labels.count_orphans() == 2
    assert live_performance(store, "churn").n_labelled == 1
    log_prediction(store, "early", p=0.3)  # the prediction shows up after its label
    report = live_performance(store, "churn")
    assert (report.n_predictions, report.n_labelled) == (2, 2)
    assert report.overall.metrics["accuracy"].value == 1.0
    assert labels.count_orphans() == 1


def test_the_model_is_recorded_when_the_prediction_is_known(store: Store) -> None:
    log_prediction(store, "r1", model="fraud")
    FeedbackStore(store).record([FeedbackItem("r1", 1), FeedbackItem("r2", 1)])
    assert {r["request_id"]: r["model"] for r in rows(store)} == {"r1": "fraud", "r2": None}


@pytest.mark.parametrize(
    ("item", "message"),
    [
        ({"request_id": "", "label": 1}, "item 1: request_id is empty"),
        ({"request_id": "x" * 129, "label": 1}, "item 1: request_id is longer than 128 characters"),
        ({"request_id": "a", "label": float("nan")}, "item 1: label must be a finite number"),
        ({"request_id": "a", "label": "y" * 1001}, "item 1: label is longer than 1000 characters"),
        ({"request_id": "a", "label": [1]}, "item 1: label must be a class label"),
        ({"request_id": "a", "value": "1.5"}, "item 1: value must be a number, not str"),
        ({"request_id": "a"}, "item 1: label (or value) is missing"),
        ({"request_id": "a", "label": 1, "extra": 2}, "item 1: unknown member 'extra'"),
        ({"request_id": 7, "label": 1}, "item 1: request_id must be a string"),
        ({"request_id": "a", "label": "\ud800"}, "item 1: label is not Unicode text"),
        ({"request_id": "\udc00", "label": 1}, "item 1: request_id is not Unicode text"),
    ],
)
def test_bad_items_are_named_by_index_and_nothing_is_written(store: Store, item: dict, message: str) -> None:
    with pytest.raises(FeedbackInvalid, match=message.replace("(", r"\(").replace(")", r"\)")) as caught:
        FeedbackStore(store).record([{"request_id": "good", "label": 1}, item])
    assert caught.value.problems[0].index == 1
    assert rows(store) == []


def test_booleans_and_values_are_labels(store: Store) -> None:
    labels = FeedbackStore(store)
    labels.record([{"request_id": "b", "label": True}, {"request_id": "v", "value": 2.5}])
    assert labels.get(["b", "v"]) == {"b": True, "v": 2.5}
    assert {r["request_id"]: r["value"] for r in rows(store)} == {"b": None, "v": 2.5}


def test_eight_concurrent_writers_store_each_label_once(store: Store) -> None:
    ids = [f"c{i}" for i in range(200)]
    results: list[Any] = []
    failures: list[BaseException] = []
    start = threading.Barrier(8)

    def client() -> None:
        own = Store(store.url).open()
        try:
            start.wait()
            results.append(FeedbackStore(own).record([{"request_id": i, "label": 1} for i in ids]))
        except BaseException as exc:
            failures.append(exc)
        finally:
            own.close()

    threads = [threading.Thread(target=client) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert failures == []
    assert sum(r.inserted for r in results) == len(ids)
    assert sum(r.unchanged for r in results) == 7 * len(ids)
    with store.read() as conn:
        assert conn.execute(select(func.count()).select_from(feedback)).scalar_one() == len(ids)
