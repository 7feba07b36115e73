"""The quickstart's client application: requests to the server, the labels that come back later,
and what the server's own monitoring says about them (alerts, live performance)."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

import httpx

from modelward.errors import ModelwardError

__all__ = ["Sent", "TrafficClient", "wait_for"]

T = TypeVar("T")


def wait_for(probe: Callable[[], T], done: Callable[[T], bool], *, timeout: float, what: str) -> T:
    """``probe()`` once ``done`` holds for it, polling; :class:`ModelwardError` naming ``what`` if not
    within ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not done(value := probe()):
        if time.monotonic() > deadline:
            raise ModelwardError(f"{what} did not happen within {timeout:g} s (last seen: {value})")
        time.sleep(0.25)
    return value


@dataclass
class Sent:
    """What a batch of requests got: request ids, P(churn), and the versions that answered."""

    request_ids: list[str] = field(default_factory=list)
    scores: list[float] = field(default_factory=list)
    versions: Counter[str] = field(default_factory=Counter)


class TrafficClient:
    def __init__(self, url: str, model: str, *, batch: int = 50) -> None:
        self.model = model
        self.batch = batch
        self.http = httpx.Client(base_url=url, timeout=60)

    def close(self) -> None:
        self.http.close()

    def _check(self, answer: httpx.Response, what: str) -> Any:
        if answer.status_code >= 400:
            raise ModelwardError(f"{what}: HTTP {answer.status_code}: {answer.text[:500]}")
        return answer.json()

    def predict(self, rows: Sequence[dict[str, Any]]) -> Sent:
        sent = Sent()
        for i in range(0, len(rows), self.batch):
            body = self._check(
                self.http.post(
                    f"/models/{self.model}/predict", json={"instances": list(rows[i : i + self.batch])}
                ),
                "a prediction request",
            )
            for p in body["predictions"]:
                sent.request_ids.append(str(p["request_id"]))
                sent.scores.append(float(p["probabilities"]["1"]))
                sent.versions[str(p.get("version") or body.get("version"))] += 1
        return sent

    def label(self, request_ids: Sequence[str], labels: Sequence[int]) -> int:
        """Post the truth for each request (idempotent); returns how many the server received."""
        items = [{"request_id": r, "label": int(y)} for r, y in zip(request_ids, labels, strict=True)]
        received = 0
        for i in range(0, len(items), 1000):
            body = self._check(
                self.http.post("/feedback", json={"items": items[i : i + 1000]}), "posting labels"
            )
            received += int(body.get("received", 0))
        return received

    def alerts(self) -> list[dict[str, Any]]:
        body = self._check(self.http.get("/alerts", params={"model": self.model}), "reading the alerts")
        found: list[dict[str, Any]] = body["alerts"]
        return found

    def firing(self, rule: str) -> dict[str, Any] | None:
        return next((a for a in self.alerts() if a["rule"] == rule and a["state"] == "firing"), None)

    def described(self) -> dict[str, Any]:
        found: dict[str, Any] = self._check(self.http.get(f"/models/{self.model}"), "describing the model")
        return found
