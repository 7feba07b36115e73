"""/metrics parses with Prometheus' own parser and its counters match the requests sent, with 1 and 2 workers."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.serving.conftest import Server, server_env, start_server
from tests.serving.test_predict_api import ROW, ROW2


def samples(url: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    text = httpx.get(url + "/metrics", timeout=10).text
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, frozenset(s.labels.items()))] = s.value
    return out


def value(found: dict, name: str, **labels: str) -> float:
    return found.get((name, frozenset(labels.items())), 0.0)


def exercise(server: Server) -> None:
    """7 good predictions (9 rows), 3 client errors; a new connection each time to spread over workers."""
    for _ in range(5):
        assert httpx.post(server.url + "/models/churn/predict", json={"features": ROW}).status_code == 200
    for _ in range(2):
        assert (
            httpx.post(server.url + "/models/churn/predict", json={"instances": [ROW, ROW2]}).status_code
            == 200
        )
    for _ in range(3):
        assert (
            httpx.post(
                server.url + "/models/churn/predict", json={"features": {**ROW, "age": "x"}}
            ).status_code
            == 422
        )


def check_counts(server: Server, before: dict) -> None:
    after = samples(server.url)

    def delta(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    ok = {"model": "churn", "version": "1", "endpoint": "predict"}
    assert delta("modelward_requests_total", **ok, status="200") == 7
    assert delta("modelward_requests_total", **ok, status="422") == 3
    assert delta("modelward_rows_per_request_count", model="churn") == 7
    assert delta("modelward_rows_per_request_sum", model="churn") == 9
    assert delta("modelward_request_duration_seconds_count", model="churn", endpoint="predict") == 10
    assert delta("modelward_inference_duration_seconds_count", model="churn", version="1") == 7
    classes = sum(
        delta("modelward_predictions_total", model="churn", version="1", **{"class": c}) for c in ("0", "1")
    )
    assert classes == 9
    assert delta("modelward_prediction_score_count", model="churn", version="1") == 9
    assert value(after, "modelward_model_info", model="churn", version="1", alias="champion") == 1
    assert value(after, "modelward_model_ready", model="churn") == 1
    assert value(after, "modelward_in_flight_requests", model="churn") == 0
    produced = delta("modelward_prediction_log_produced_total")
    assert produced == 9
    # every produced record is eventually written or dropped
    for _ in range(50):
        now = samples(server.url)
        settled = value(now, "modelward_prediction_log_written_total") + value(
            now, "modelward_prediction_log_dropped_total"
        )
        if settled == value(now, "modelward_prediction_log_produced_total"):
            break
        time.sleep(0.1)
    else:
        pytest.fail("prediction log counters never settled")


def test_counters_match_the_requests_sent(server: Server) -> None:
    before = samples(server.url)
    exercise(server)
    check_counts(server, before)


@pytest.fixture(scope="module")
def two_workers(churn_home: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    metrics_dir = tmp_path_factory.mktemp("prometheus")
    env = server_env(churn_home, PROMETHEUS_MULTIPROC_DIR=str(metrics_dir))
    s = start_server(churn_home, "churn", "--workers", "2", "--reload-interval", "0", env=env)
    s.extra["metrics_dir"] = metrics_dir
    # Ready means one worker answers; each listens only once it has loaded. These tests need both.
    if Path("/proc/net/tcp").exists():
        port = int(s.url.rsplit(":", 1)[1])
        deadline = time.monotonic() + 120
        while sum(state == "0A" for state in _tcp_sockets(port).values()) < 2:
            assert time.monotonic() < deadline, "the second worker never listened"
            time.sleep(0.1)
    yield s
    s.stop()


@pytest.mark.slow
def test_counters_are_correct_across_two_workers(two_workers: Server) -> None:
    before = samples(two_workers.url)
    exercise(two_workers)
    check_counts(two_workers, before)
    # two worker processes recorded requests: each writes its own file in the shared folder
    files = list(Path(str(two_workers.extra["metrics_dir"])).glob("counter_*.db"))
    assert len({f.stem.split("_")[-1] for f in files}) >= 2, files


def _tcp_sockets(port: int, peers: set[int] | None = None) -> dict[int, str]:
    """inode -> state ("0A" listening, "01" established) of this machine's IPv4 sockets on ``port``
    (local side), only those whose remote port is in ``peers`` when given."""
    out: dict[int, str] = {}
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        if int(fields[1].split(":")[1], 16) != port:
            continue
        if peers is None or int(fields[2].split(":")[1], 16) in peers:
            out[int(fields[9])] = fields[3]
    return out


def _owners(inodes: set[int], pids: list[int]) -> dict[int, int]:
    """inode -> pid of the process holding it, among ``pids``."""
    owners: dict[int, int] = {}
    for pid in pids:
        for fd in Path(f"/proc/{pid}/fd").iterdir():
            try:
                target = os.readlink(fd)
            except OSError:
                continue
            if target.startswith("socket:["):
                inode = int(target[8:-1])
                if inode in inodes:
                    owners[inode] = pid
    return owners


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/net/tcp").exists(), reason="reads Linux's /proc/net/tcp")
def test_each_worker_listens_on_its_own_socket_and_connections_spread_over_them(two_workers: Server) -> None:
    import socket

    port = int(two_workers.url.rsplit(":", 1)[1])
    children = Path(f"/proc/{two_workers.proc.pid}/task/{two_workers.proc.pid}/children").read_text()
    listening = {i for i, state in _tcp_sockets(port).items() if state == "0A"}
    owners = _owners(listening, [int(p) for p in children.split()])  # a resource tracker is a child too
    workers = sorted(set(owners.values()))
    assert len(workers) == 2 and len(owners) == 2  # two workers, one listening socket each
    clients = [socket.create_connection(("127.0.0.1", port)) for _ in range(32)]
    try:
        time.sleep(0.5)
        ours = {c.getsockname()[1] for c in clients}
        established = {i for i, state in _tcp_sockets(port, ours).items() if state == "01"}
        per_worker = list(_owners(established, workers).values())
        counts = sorted(per_worker.count(w) for w in workers)
        assert sum(counts) == 32 and counts[0] >= 6, counts  # the kernel spreads them (binomial)
    finally:
        for c in clients:
            c.close()
