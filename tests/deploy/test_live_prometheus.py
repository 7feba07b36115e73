"""A real Prometheus scrapes a real modelward server under traffic (a canary at 50 % with feedback,
so the controller's canary, drift and performance gauges are set); then every PromQL expression of the rules
and dashboards runs through Prometheus's HTTP API without error, the request-rate panel's query
has a result, and every metric name they read is in the server's /metrics."""

from __future__ import annotations

import shutil
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pandas as pd
import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from modelward.config import Settings
from modelward.registry import Registry
from modelward.routing import DeploymentSpec
from tests.deploy.promql import RULE_FILES, all_exprs, dashboard_exprs, metric_names
from tests.serving.conftest import Server, churn_home, free_port, home, server_env, start_server

__all__ = ["churn_home", "home"]  # fixtures: imported so that pytest finds them

pytestmark = pytest.mark.skipif(shutil.which("prometheus") is None, reason="Debian's prometheus")
T = TypeVar("T")
REQUEST_RATE = "modelward-service / Requests per second by model and status / A"


def wait_for(probe: Callable[[], T], done: Callable[[T], bool], timeout: float = 45.0) -> T:
    deadline = time.monotonic() + timeout
    while not done(value := probe()):
        assert time.monotonic() < deadline, f"condition not reached in time; last seen: {value}"
        time.sleep(0.2)
    return value


def _record(row: pd.Series) -> dict[str, Any]:
    return {str(k): (v.item() if hasattr(v, "item") else v) for k, v in row.items()}


@pytest.fixture
def served(home: Path) -> Iterator[Server]:
    """churn:2 as a canary at 50 % against the champion, its controller ticking fast, with
    performance and drift rules."""
    settings = Settings(home=home, actor="tester", tracking_uri=f"sqlite:///{home / 'mlflow.db'}")
    with Registry.from_settings(settings).open() as registry:
        spec = DeploymentSpec.start_canary("churn", 2, steps=(50, 100), step_seconds=3600)
        registry.deployments.put(spec, reason="test")
    (home / "alerts.yaml").write_text(
        "notifiers: []\nrules:\n"
        "  - {kind: performance, when: roc_auc < 0.1, min_labels: 10}\n"
        "  - {kind: estimated_drop, max_drop: 0.9, min_rows: 10}\n"
        "  - {kind: dataset_drift}\n"
    )
    env = server_env(
        home,
        MODELWARD_ALERTS_FILE=str(home / "alerts.yaml"),
        MODELWARD_CONTROLLER_INTERVAL="0.2",
        MODELWARD_MONITOR_INTERVAL="0.5",
        MODELWARD_PROFILE_BUCKET_SECONDS="1",
    )
    server = start_server(home, "churn", "--reload-interval", "0", env=env)
    yield server
    server.stop()


@pytest.fixture
def prometheus(served: Server, tmp_path: Path) -> Iterator[str]:
    """Prometheus scraping ``served`` every second, with deploy/prometheus's rule files."""
    port = free_port()
    config = {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "rule_files": [str(p) for p in RULE_FILES],
        "scrape_configs": [
            {"job_name": "modelward", "static_configs": [{"targets": [served.url.removeprefix("http://")]}]}
        ],
    }
    (tmp_path / "prometheus.yml").write_text(yaml.safe_dump(config))
    log = (tmp_path / "prometheus.log").open("wb")
    proc = subprocess.Popen(
        [
            "prometheus",
            f"--config.file={tmp_path / 'prometheus.yml'}",
            f"--storage.tsdb.path={tmp_path / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"

    def ready() -> bool:
        assert proc.poll() is None, (tmp_path / "prometheus.log").read_text()
        try:
            return httpx.get(url + "/-/ready", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    try:
        wait_for(ready, bool)
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        log.close()


def query(prometheus: str, expr: str) -> dict[str, Any]:
    body: dict[str, Any] = httpx.get(prometheus + "/api/v1/query", params={"query": expr}, timeout=10).json()
    return body


def samples(url: str) -> dict[str, set[str]]:
    """Metric name -> the names of its samples, from the server's /metrics. A family declared with
    no sample yet (a labelled counter nothing has counted) has an empty set; counters are named with
    their ``_total`` (the parser names the family without it)."""
    text = httpx.get(url + "/metrics", timeout=10).text
    return {
        f.name + ("_total" if f.type == "counter" else ""): {s.name for s in f.samples}
        for f in text_string_to_metric_families(text)
    }


def test_every_rule_and_dashboard_expression_runs_against_a_prometheus_scraping_the_server(
    served: Server, prometheus: str, churn_frame: pd.DataFrame
) -> None:
    frame = churn_frame.sample(120, random_state=5).reset_index(drop=True)
    stop = threading.Event()

    def traffic() -> None:  # keeps the counters moving between scrapes
        with served.client() as client:
            i = 0
            while not stop.is_set():
                row = frame.drop(columns=["churn"]).iloc[i % len(frame)]
                body = {"features": _record(row), "request_id": f"r-{i}"}
                client.post("/models/churn/predict", json=body, headers={"X-Routing-Key": f"c-{i}"})
                i += 1

    sender = threading.Thread(target=traffic, daemon=True)
    sender.start()
    try:
        with served.client() as client:  # labels for the first rows, for the performance gauges
            items = [{"request_id": f"r-{i}", "label": int(y)} for i, y in enumerate(frame["churn"])]
            assert client.post("/feedback", json={"items": items}).status_code == 200
        rate = dashboard_exprs()[REQUEST_RATE]
        found = wait_for(lambda: query(prometheus, rate), lambda b: bool(b["data"]["result"]))
        assert {s["metric"]["model"] for s in found["data"]["result"]} == {"churn"}
        # The controller's gauges reach /metrics (and so Prometheus) once labels have joined.
        wait_for(
            lambda: query(prometheus, 'modelward_performance{arm="canary"}'),
            lambda b: bool(b["data"]["result"]),
        )
    finally:
        stop.set()
        sender.join(timeout=30)

    failures = {}
    for name, expr in all_exprs().items():
        answer = query(prometheus, expr)
        if answer.get("status") != "success":
            failures[name] = answer.get("error")
    assert not failures, failures

    exposed = samples(served.url)
    known = set(exposed) | set().union(*exposed.values())
    used = set().union(*(metric_names(e) for e in all_exprs().values()))
    assert used - known == set(), f"metrics the rules or dashboards read that /metrics lacks: {used - known}"
    with_data = used & set().union(*exposed.values())
    for name in (
        "modelward_controller_lease_held",
        "modelward_canary_percent",
        "modelward_performance",
        "modelward_drift_score",
        "modelward_requests_total",
    ):
        assert name in with_data
