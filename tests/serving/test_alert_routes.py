"""`GET /alerts` on a real server: active alerts, the history, the predict policy, problem+json for a
bad query."""

from __future__ import annotations

from pathlib import Path

import httpx
from sqlalchemy import delete

from modelward.config import Settings
from modelward.monitoring.alert_rules import Signal
from modelward.monitoring.alerts import AlertCenter
from modelward.store import Store
from modelward.store.tables import alert_events, alerts
from tests.serving.conftest import server_env, start_server


def test_alerts_route_lists_active_alerts_and_history(home: Path) -> None:
    store = Store(Settings(home=home).resolved_database_url).open()
    store.migrate()
    # The home is a copy of the session's served home, where servers of earlier test files may have
    # raised alerts of their own: start from none.
    with store.write() as conn:
        conn.execute(delete(alert_events))
        conn.execute(delete(alerts))
    center = AlertCenter(store, [], resolve_after=0)
    # Alerts of version 1, the champion, as the server's monitor raises them.
    center.apply(
        [Signal("latency", "churn", "latency_p95", "warning", True, 812.0, "churn:1: slow", "1")], now=100
    )
    center.apply(
        [Signal("error_rate", "churn", "error_rate", "critical", True, 0.2, "churn:1: errors", "1")], now=110
    )
    center.apply(
        [Signal("error_rate", "churn", "error_rate", "critical", False, 0.0, "churn:1: fine", "1")], now=120
    )
    store.close()
    # The route is under test, not the monitor: with the controller off, nothing but this test
    # writes alerts (a loaded machine's slow first requests could otherwise fire a latency alert).
    env = server_env(home, MODELWARD_PREDICT_TOKEN="predict-secret", MODELWARD_CONTROLLER="false")
    server = start_server(home, "churn", "--reload-interval", "0", env=env)
    try:
        with httpx.Client(base_url=server.url, timeout=30) as c:
            assert c.get("/alerts").status_code == 401
            auth = {"Authorization": "Bearer predict-secret"}
            active = c.get("/alerts", headers=auth)
            assert active.status_code == 200 and active.headers["content-type"] == "application/json"
            (alert,) = active.json()["alerts"]
            assert (alert["rule"], alert["value"], alert["state"]) == ("latency", 812.0, "firing")
            history = c.get("/alerts", params={"all": "true", "model": "churn", "limit": 2}, headers=auth)
            assert [e["kind"] for e in history.json()["history"]] == ["resolve", "fire"]
            assert c.get("/alerts", params={"model": "other"}, headers=auth).json() == {"alerts": []}
            for params in (
                {"limit": "lots", "all": "1"},
                {"limit": "0", "all": "1"},
                {"all": "maybe"},
                {"x": "1"},
            ):
                bad = c.get("/alerts", params=params, headers=auth)
                assert bad.status_code == 400, params
                assert bad.headers["content-type"] == "application/problem+json"
                assert bad.json()["detail"]
    finally:
        server.stop()
