"""POST /feedback and GET /models/{name}/performance on a real server, over HTTP."""

from __future__ import annotations

import json
import shutil
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select

from modelward.store import Store
from modelward.store.tables import feedback, predictions
from tests.serving.conftest import Server, start_server
from tests.serving.test_predict_api import ROW, ROW2


@pytest.fixture(scope="module")
def served(churn_home: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A server on a private copy of the home: the labels posted here touch no other test."""
    home = tmp_path_factory.mktemp("feedback-home") / "home"
    shutil.copytree(churn_home, home, ignore=shutil.ignore_patterns("server-*.log"))
    server = start_server(home, "churn", "--reload-interval", "0")
    yield server
    server.stop()


def store_of(server: Server) -> Store:
    return Store(f"sqlite:///{server.home / 'modelward.db'}").open()


def predict(server: Server, ids: list[str]) -> dict:
    rows = [ROW if i % 2 else ROW2 for i in range(len(ids))]
    with server.client() as c:
        r = c.post("/models/churn/predict", json={"instances": rows, "request_ids": ids})
    assert r.status_code == 200, r.text
    wait_logged(server, ids)
    return r.json()


def wait_logged(server: Server, ids: list[str], timeout: float = 20) -> None:
    store = store_of(server)
    try:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with store.read() as conn:
                query = select(func.count()).where(predictions.c.request_id.in_(ids))
                if conn.execute(query).scalar_one() >= len(ids):
                    return
            time.sleep(0.1)
    finally:
        store.close()
    raise AssertionError("the predictions were never logged")


def test_a_label_posted_twice_is_stored_once_and_a_different_one_is_409(served: Server) -> None:
    predict(served, ["once-1"])
    with served.client() as c:
        first = c.post("/feedback", json={"request_id": "once-1", "label": 1})
        again = c.post("/feedback", json={"request_id": "once-1", "label": 1})
        other = c.post("/feedback", json={"request_id": "once-1", "label": 0})
        forced = c.post("/feedback", json={"request_id": "once-1", "label": 0, "overwrite": True})
    assert first.status_code == 200 and first.json()["inserted"] == 1 and first.json()["orphans"] == 0
    assert again.status_code == 200 and again.json()["unchanged"] == 1 and again.json()["inserted"] == 0
    assert other.status_code == 409
    assert other.headers["content-type"].startswith("application/problem+json")
    assert other.json()["conflicts"] == [{"request_id": "once-1", "stored": 1, "sent": 0}]
    assert "once-1" in other.json()["detail"]
    assert forced.status_code == 200 and forced.json()["overwritten"] == 1


def test_a_bulk_with_a_conflict_writes_the_rest(served: Server) -> None:
    with served.client() as c:
        c.post("/feedback", json={"request_id": "bulk-1", "label": "yes"})
        r = c.post(
            "/feedback",
            json={"items": [{"request_id": "bulk-1", "label": "no"}, {"request_id": "bulk-2", "value": 2.5}]},
        )
    assert r.status_code == 409
    body = r.json()
    assert body["conflicts"] == [{"request_id": "bulk-1", "stored": "yes", "sent": "no"}]
    assert body["result"]["inserted"] == 1 and body["result"]["orphans"] == 1
    store = store_of(served)
    try:
        with store.read() as conn:
            stored = dict(
                conn.execute(
                    select(feedback.c.request_id, feedback.c.label).where(
                        feedback.c.request_id.in_(["bulk-1", "bulk-2"])
                    )
                ).all()
            )
    finally:
        store.close()
    assert stored == {"bulk-1": '"yes"', "bulk-2": "2.5"}


def test_bad_items_are_422_naming_the_index_and_too_many_are_413(served: Server) -> None:
    with served.client() as c:
        bad = c.post(
            "/feedback",
            json={"items": [{"request_id": "ok", "label": 1}, {"request_id": "x", "label": None}]},
        )
        shape = c.post("/feedback", json=[1, 2])
        many = c.post(
            "/feedback", json={"items": [{"request_id": f"m{i}", "label": 1} for i in range(10_001)]}
        )
        flag = c.post("/feedback", json={"request_id": "f", "label": 1, "overwrite": "yes"})
    assert bad.status_code == 422
    assert bad.json()["errors"] == [{"index": 1, "field": "items[1].label", "message": "label is null"}]
    assert "item 1" in bad.json()["detail"]
    assert shape.status_code == 422 and many.status_code == 413 and flag.status_code == 422
    store = store_of(served)
    try:
        with store.read() as conn:
            assert conn.execute(select(func.count()).where(feedback.c.request_id == "ok")).scalar_one() == 0
    finally:
        store.close()


def test_a_lone_surrogate_in_a_bulk_label_is_a_400_naming_it_and_nothing_is_written(served: Server) -> None:
    items = [{"request_id": f"sur-{i}", "label": "yes"} for i in range(10_000)]
    items[5_000]["label"] = "LONE"
    body = json.dumps({"items": items}).replace('"LONE"', '"\\ud800"').encode()
    with served.client() as c:
        refused = c.post("/feedback", content=body, headers={"content-type": "application/json"})
        items[5_000]["label"] = "no"
        accepted = c.post("/feedback", json={"items": items})
    assert refused.status_code == 400, refused.text
    assert refused.headers["content-type"] == "application/problem+json"
    assert "items[5000].label has a lone UTF-16 surrogate" in refused.json()["detail"]
    assert accepted.status_code == 200 and accepted.json()["inserted"] == 10_000


def test_eight_concurrent_clients_store_each_label_once(served: Server) -> None:
    ids = [f"race-{i}" for i in range(50)]
    predict(served, ids)
    barrier = threading.Barrier(8)
    answers: list[httpx.Response] = []

    def client() -> None:
        with served.client() as c:
            barrier.wait()
            answers.append(c.post("/feedback", json={"items": [{"request_id": i, "label": 1} for i in ids]}))

    threads = [threading.Thread(target=client) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert [a.status_code for a in answers] == [200] * 8
    assert sum(a.json()["inserted"] for a in answers) == len(ids)
    assert sum(a.json()["unchanged"] for a in answers) == 7 * len(ids)
    store = store_of(served)
    try:
        with store.read() as conn:
            count = conn.execute(select(func.count()).where(feedback.c.request_id.in_(ids))).scalar_one()
    finally:
        store.close()
    assert count == len(ids)


def test_an_orphan_joins_once_its_prediction_is_served(served: Server) -> None:
    with served.client() as c:
        orphan = c.post("/feedback", json={"request_id": "late-1", "label": 1})
        before = c.get("/models/churn/performance", params={"window": "1h"}).json()
    assert orphan.json()["orphans"] == 1
    predict(served, ["late-1"])
    with served.client() as c:
        after = c.get("/models/churn/performance", params={"window": "1h"})
    assert after.status_code == 200
    body = after.json()
    assert body["n_labelled"] == before["n_labelled"] + 1
    assert body["n_predictions"] == before["n_predictions"] + 1
    group = next(g for g in body["groups"] if g["version"] == "1")
    assert group["estimated"]["accuracy"]["value"] is not None
    assert group["calibration"]["source"] == "registration"


def test_performance_query_errors(served: Server) -> None:
    with served.client() as c:
        unknown = c.get("/models/nope/performance")
        window = c.get("/models/churn/performance", params={"window": "yesterday"})
        extra = c.get("/models/churn/performance", params={"colour": "red"})
        ok = c.get("/models/churn/performance", params={"version": "2", "arm": "primary"})
    assert unknown.status_code == 404
    assert window.status_code == 400 and "window" in window.json()["detail"]
    assert extra.status_code == 400
    assert ok.status_code == 200 and ok.json()["n_predictions"] == 0
