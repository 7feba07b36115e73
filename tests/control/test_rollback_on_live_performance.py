"""Rollback on live performance end to end: a real server serves churn:2 as champion under continuous
traffic; labels posted over HTTP push its live AUC under the policy's floor; the server's own
controller moves the alias back to churn:1, audited, and no request fails during the switch."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import httpx
import pandas as pd

from modelward.config import Settings
from tests.monitoring.test_prediction_log import wait_until
from tests.serving.conftest import churn_home, home, server_env, start_server

__all__ = ["churn_home", "home"]  # fixtures: imported so that pytest finds them

POLICY = "live: {metric: auc, min: 0.8, window: 1h, sustain: 0, min_labels: 60, on_breach: rollback}\n"


def _traffic(url: str, rows: list[dict[str, Any]], stop: threading.Event, seen: list[dict[str, Any]]) -> None:
    with httpx.Client(base_url=url, timeout=30) as client:
        i = 0
        while not stop.is_set():
            row = rows[i % len(rows)]
            i += 1
            try:
                r = client.post("/models/churn/predict", json={"features": row})
            except httpx.HTTPError as exc:
                seen.append({"status": 0, "error": repr(exc)})
                continue
            answer: dict[str, Any] = {"status": r.status_code, "version": r.headers.get("X-Model-Version")}
            if r.status_code == 200:
                (pred,) = r.json()["predictions"]
                answer.update(request_id=pred["request_id"], p1=pred["probabilities"]["1"])
            seen.append(answer)


def test_a_champion_under_its_live_floor_is_rolled_back_with_no_failed_request(
    home: Path, churn_frame: pd.DataFrame
) -> None:
    import modelward
    from modelward.api import open_registry
    from modelward.governance import VersionReports

    settings = Settings(home=home, actor="tester")
    modelward.promote("churn", 2, settings=settings)
    with open_registry(settings) as registry:
        VersionReports(registry.store).set_policy("churn", POLICY, actor="tester")
    env = server_env(
        home, MODELWARD_CONTROLLER_INTERVAL="0.3", MODELWARD_MONITOR_INTERVAL="0.5", MODELWARD_ACTOR="server"
    )
    server = start_server(home, "churn", "--reload-interval", "0.3", env=env)
    rows = churn_frame.drop(columns=["churn"]).head(200).to_dict("records")
    stop, seen = threading.Event(), []
    threads = [threading.Thread(target=_traffic, args=(server.url, rows, stop, seen)) for _ in range(2)]
    try:
        for t in threads:
            t.start()
        wait_until(lambda: sum(1 for s in seen if s.get("version") == "2") >= 150, timeout=60)
        answered = [s for s in list(seen) if s.get("version") == "2"]
        middle = sorted(s["p1"] for s in answered)[len(answered) // 2]
        # Every label contradicts the model: the more it believes in churn, the less churn there is.
        items = [{"request_id": s["request_id"], "label": int(s["p1"] < middle)} for s in answered]
        with server.client() as client:
            posted = client.post("/feedback", json={"items": items})
            assert posted.status_code == 200, posted.text

        with open_registry(settings) as registry:
            wait_until(lambda: registry.model("churn").aliases.get("champion") == "1", timeout=60)
            switched = len(seen)
            wait_until(lambda: any(s.get("version") == "1" for s in seen[switched:]), timeout=30)
            (event,) = registry.audit.events(subject="churn", action="live_rollback")
            (moved,) = registry.audit.events(subject="churn", action="rollback")
    finally:
        stop.set()
        for t in threads:
            t.join()
        server.stop()
    assert (event.payload["from"], event.payload["to"]) == ("2", "1")
    assert "roc_auc" in event.payload["judged"]
    assert moved.actor.startswith("server") and "live performance" in moved.payload["reason"]
    failed = [s for s in seen if s["status"] != 200]
    assert failed == []
    assert {s["version"] for s in seen} == {"1", "2"}
