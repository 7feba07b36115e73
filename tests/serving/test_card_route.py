"""``GET /models/{name}/card`` over HTTP on a real server: the champion by default, a version or an
alias on request, three formats, problems for mistakes, and the live section once traffic is served."""

from __future__ import annotations

import sqlite3
import sys
import time
from html.parser import HTMLParser
from pathlib import Path

import httpx

from tests.serving.conftest import Server, server_env, start_server
from tests.serving.test_feedback_routes import wait_logged


class _Links(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.remote: list[str] = []
        self.sections: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        self.remote += [v for k, v in attrs if k in {"src", "href"} and v and not v.startswith("#")]
        if a.get("data-section"):
            self.sections.append(str(a["data-section"]))


def _live(client: httpx.Client, timeout: float = 60) -> dict[str, object]:
    """The live section once the served rows' 1 s live-profile bucket has been written."""
    deadline = time.monotonic() + timeout
    while True:
        body = client.get("/models/churn/card", params={"format": "json"}).json()
        live = next(s for s in body["sections"] if s["key"] == "live")
        if live["available"] and live["data"]["rows"] and live["data"]["drift"] is not None:
            return dict(live["data"])
        assert time.monotonic() < deadline, f"the live section never filled: {live}"
        time.sleep(0.5)


def _served(home: Path) -> Server:
    with sqlite3.connect(home / "modelward.db") as db:  # the copied home may hold other tests' traffic
        db.execute("DELETE FROM modelward_predictions")
        db.execute("DELETE FROM modelward_live_profiles")
    env = server_env(home, MODELWARD_PROFILE_BUCKET_SECONDS="1")
    return start_server(home, "churn", "--reload-interval", "0", env=env)


def test_card_route_serves_the_champion_versions_aliases_and_problems(home: Path) -> None:
    server = _served(home)
    try:
        with server.client() as client:
            page = client.get("/models/churn/card")
            assert page.status_code == 200
            assert page.headers["content-type"].startswith("text/html")
            links = _Links()
            links.feed(page.text)
            assert links.remote == []
            assert "Model card: <span" in page.text and "churn:1" in page.text
            assert len(links.sections) == 10

            body = client.get("/models/churn/card", params={"format": "json"}).json()
            assert (body["model"], body["version"], body["aliases"]) == ("churn", "1", ["champion"])
            alias = client.get("/models/churn/card", params={"format": "json", "alias": "challenger"}).json()
            assert alias["version"] == "2"
            md = client.get("/models/churn/card", params={"format": "md", "version": "2"})
            assert md.headers["content-type"].startswith("text/markdown")
            assert md.text.startswith("# Model card: churn:2")

            for path, params, status in (
                ("/models/nosuch/card", {}, 404),
                ("/models/churn/card", {"version": "9"}, 404),
                ("/models/churn/card", {"alias": "nosuch"}, 404),
                ("/models/churn/card", {"format": "pdf"}, 422),
                ("/models/churn/card", {"version": "one"}, 422),
                ("/models/churn/card", {"version": "1", "alias": "champion"}, 422),
                ("/models/churn/card", {"colour": "red"}, 422),
            ):
                answer = client.get(path, params=params)
                assert answer.status_code == status, (path, params, answer.text)
                assert answer.headers["content-type"] == "application/problem+json"
    finally:
        server.stop()


def test_the_live_section_reports_the_served_traffic(home: Path) -> None:
    frame = sys.modules["churn_generate"].generate(300, seed=5).drop(columns=["customer_id", "churn"])
    ids = [f"card-{i}" for i in range(len(frame))]
    server = _served(home)
    try:
        with server.client() as client:
            r = client.post(
                "/models/churn/predict", json={"instances": frame.to_dict("records"), "request_ids": ids}
            )
            assert r.status_code == 200, r.text
            wait_logged(server, ids)
            live = _live(client)
    finally:
        server.stop()
    assert live["rows"] == len(ids)
    performance = live["performance"]
    assert isinstance(performance, dict)
    assert (performance["n_predictions"], performance["n_labelled"]) == (len(ids), 0)
    assert "accuracy" in performance["estimated"]  # label-free, from the calibrated probabilities
