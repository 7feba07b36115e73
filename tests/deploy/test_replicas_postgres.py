"""Two `modelward serve` replicas sharing one PostgreSQL store and one MLflow tracking server (itself
on PostgreSQL, its artifacts proxied from a local folder standing in for object storage): the scale-out
of docs/scaling.md, run for real.

The tests share the module's processes and run in file order: serving, promotion, A/B, feedback, the
shared log, then the lease take-over (which kills a replica) and a changed artifact (which spoils the
tracking server's copies), last.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import TypeVar

import httpx
import pandas as pd
import pytest
from sqlalchemy import create_engine, select

from modelward.config import Settings
from modelward.routing import DeploymentSpec
from modelward.store import Store
from modelward.store.lease import Lease
from modelward.store.tables import predictions
from tests.serving.conftest import Server, free_port, server_env, start_server
from tests.serving.test_predict_api import ROW

pytestmark = [pytest.mark.slow, pytest.mark.postgres]
T = TypeVar("T")
POLL = 0.5  # each replica's registry poll (--reload-interval)
INTERVAL = 0.5  # controller tick
LEASE_TTL = 2.0  # controller lease, short so that the take-over is quick


def wait_for(probe: Callable[[], T], done: Callable[[T], bool], timeout: float = 30.0) -> T:
    deadline = time.monotonic() + timeout
    while not done(value := probe()):
        assert time.monotonic() < deadline, f"condition not reached in time; last seen: {value}"
        time.sleep(0.1)
    return value


@dataclass
class Cluster:
    tracking_uri: str
    store_url: str
    replicas: list[Server]
    settings: Settings

    def store(self) -> Store:
        return Store(self.store_url).open()


@pytest.fixture(scope="module")
def databases(postgres_base_url: str) -> Iterator[tuple[str, str]]:
    """Two fresh databases, MLflow's and modelward's, dropped afterwards."""
    import psycopg

    stem = f"mw_replicas_{uuid.uuid4().hex[:10]}"
    names = (f"{stem}_mlflow", f"{stem}_store")
    admin = postgres_base_url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(admin, autocommit=True) as conn:
        for name in names:
            conn.execute(f'CREATE DATABASE "{name}"')
    base = postgres_base_url.rsplit("/", 1)[0]
    yield f"{base}/{names[0]}", f"{base}/{names[1]}"
    with psycopg.connect(admin, autocommit=True) as conn:
        for name in names:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@dataclass
class TrackingServer:
    url: str
    proc: subprocess.Popen[bytes]
    log_path: Path

    def wait_healthy(self) -> str:
        def healthy() -> bool:
            assert self.proc.poll() is None, self.log_path.read_text(errors="replace")
            try:
                return httpx.get(self.url + "/health", timeout=2).status_code == 200
            except httpx.HTTPError:
                return False

        wait_for(healthy, bool, timeout=180)
        return self.url


@pytest.fixture(scope="module")
def tracking_server(
    databases: tuple[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[TrackingServer]:
    """`mlflow server` on PostgreSQL, serving artifacts from a local folder (--artifacts-destination).
    Started, not waited for: it imports and migrates while the models train."""
    folder = tmp_path_factory.mktemp("mlflow-server")
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "MODELWARD_"))}
    env["MLFLOW_SERVER_ENABLE_JOB_EXECUTION"] = "false"  # its job runner processes: not used here
    log_path = folder / "mlflow.log"
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            [
                *(sys.executable, "-m", "mlflow", "server"),
                *("--backend-store-uri", databases[0]),
                *("--artifacts-destination", (folder / "artifacts").as_uri()),
                *("--host", "127.0.0.1", "--port", str(port), "--workers", "1"),
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=folder,
        )
    try:
        yield TrackingServer(f"http://127.0.0.1:{port}", proc, log_path)
    finally:
        proc.terminate()
        proc.wait(timeout=30)


@pytest.fixture(scope="module")
def cluster(
    databases: tuple[str, str],
    tracking_server: TrackingServer,
    tmp_path_factory: pytest.TempPathFactory,
    churn_models: dict[str, object],
    churn_frame: pd.DataFrame,
) -> Iterator[Cluster]:
    """churn:1 (champion) and churn:2 registered through the tracking server, then two replicas."""
    import modelward

    url = tracking_server.wait_healthy()
    store_url = databases[1]
    client_home = tmp_path_factory.mktemp("client")
    settings = Settings(home=client_home, tracking_uri=url, database_url=store_url, actor="tester")
    modelward.register(
        churn_models["logreg"], "churn", train_data=churn_frame, target="churn", settings=settings
    )
    modelward.promote("churn", 1, settings=settings)
    replicas: list[Server] = []
    try:
        for i in range(2):
            home = tmp_path_factory.mktemp(f"replica-{i}")
            env = server_env(
                home,
                MODELWARD_TRACKING_URI=url,
                MODELWARD_DATABASE_URL=store_url,
                MODELWARD_CONTROLLER_INTERVAL=str(INTERVAL),
                MODELWARD_CONTROLLER_LEASE_TTL=str(LEASE_TTL),
                MODELWARD_COMPILE="false",  # the ONNX conversion is not what this test is about
            )
            replicas.append(
                start_server(home, "churn", "--reload-interval", str(POLL), env=env, wait_ready=False)
            )
        # churn:2 while they start: they serve the champion, which it does not change
        modelward.register(
            churn_models["forest"], "churn", train_data=churn_frame, target="churn", settings=settings
        )
        for replica in replicas:
            wait_for(partial(_ready, replica), bool, timeout=180)
        yield Cluster(url, store_url, replicas, settings)
    finally:
        for replica in replicas:
            replica.stop()


def _ready(server: Server) -> bool:
    assert server.proc.poll() is None, server.log()
    try:
        return httpx.get(server.url + "/ready", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def _predict(server: Server, *, key: str | None = None, request_id: str | None = None) -> httpx.Response:
    body: dict[str, object] = {"features": ROW}
    if request_id is not None:
        body["request_id"] = request_id
    headers = {"X-Routing-Key": key} if key is not None else {}
    with server.client() as c:
        r = c.post("/models/churn/predict", json=body, headers=headers)
    assert r.status_code == 200, r.text
    return r


def _header(server: Server, name: str, *, key: str | None = None) -> str:
    return str(_predict(server, key=key).headers[name])


def test_both_replicas_serve_the_version_registered_through_the_tracking_server(cluster: Cluster) -> None:
    for replica in cluster.replicas:
        r = _predict(replica)
        assert r.headers["X-Model-Version"] == "1"
        assert r.json()["predictions"][0]["prediction"] in (0, 1)
    # the artifacts went to the tracking server's store, not to a folder of the registering client
    assert not (cluster.settings.home / "artifacts").exists()


def test_a_promotion_through_one_replica_reaches_both_within_a_poll(cluster: Cluster) -> None:
    first, second = cluster.replicas
    with first.client() as c:
        r = c.post(
            "/admin/models/churn/promote",
            json={"version": "2", "reason": "replica test", "force": True},
            headers=first.admin_headers(),
        )
    assert r.status_code == 200, r.text
    for replica in cluster.replicas:
        wait_for(partial(_header, replica, "X-Model-Version"), lambda version: version == "2")
    assert "switched churn from version 1 to 2" in second.log()


def test_a_routing_key_gets_the_same_arm_from_both_replicas(cluster: Cluster) -> None:
    second = cluster.replicas[1]
    spec = {"spec": DeploymentSpec.ab("churn", {"1": 50, "2": 50}).to_dict(), "reason": "replica test"}
    with second.client() as c:
        r = c.put("/admin/deployments/churn", json=spec, headers=second.admin_headers())
    assert r.status_code == 200, r.text
    for replica in cluster.replicas:  # both on the A/B split
        wait_for(partial(_header, replica, "X-Model-Arm", key="probe"), lambda arm: arm in ("v1", "v2"))
    keys = [f"customer-{i}" for i in range(24)]
    arms = [[_predict(replica, key=k).headers["X-Model-Arm"] for k in keys] for replica in cluster.replicas]
    assert arms[0] == arms[1]
    assert set(arms[0]) == {"v1", "v2"}


def test_feedback_posted_to_one_replica_joins_predictions_served_by_the_other(cluster: Cluster) -> None:
    first, second = cluster.replicas
    ids = [f"fb-{uuid.uuid4().hex[:8]}-{i}" for i in range(20)]
    for i, rid in enumerate(ids):
        _predict(first, key=f"k{i}", request_id=rid)
    with cluster.store() as store:
        wait_for(lambda: _logged(store, ids), lambda rows: len(rows) == len(ids))
    with second.client() as c:
        r = c.post("/feedback", json={"items": [{"request_id": rid, "label": 1} for rid in ids]})
        assert r.status_code == 200, r.text
        assert (r.json()["inserted"], r.json()["orphans"]) == (len(ids), 0)
        perf = c.get("/models/churn/performance", params={"window": "1h"})
    assert perf.status_code == 200, perf.text
    assert perf.json()["n_labelled"] >= len(ids), perf.json()


def _logged(store: Store, ids: list[str]) -> dict[str, str | None]:
    with store.read() as conn:
        rows = conn.execute(
            select(predictions.c.request_id, predictions.c.arm).where(predictions.c.request_id.in_(ids))
        ).all()
    return {row.request_id: row.arm for row in rows}


def test_the_prediction_log_of_both_replicas_is_one_table(cluster: Cluster) -> None:
    ids = {f"log-{i}-{uuid.uuid4().hex[:8]}": replica for i, replica in enumerate(cluster.replicas * 5)}
    for rid, replica in ids.items():
        _predict(replica, request_id=rid)
    with cluster.store() as store:
        rows = wait_for(lambda: _logged(store, list(ids)), lambda rows: len(rows) == len(ids))
    assert set(rows) == set(ids)
    engine = create_engine(cluster.store_url)
    try:
        with engine.connect() as conn:
            tables = conn.exec_driver_sql(
                "SELECT count(*) FROM information_schema.tables WHERE table_name = 'modelward_predictions'"
            ).scalar()
    finally:
        engine.dispose()
    assert tables == 1


def _holder(store: Store) -> str | None:
    info = Lease(store, "controller", holder="test").info()
    return None if info is None or info.expires_at <= time.time() else info.holder


def _lease_held(server: Server) -> float:
    text = httpx.get(server.url + "/metrics", timeout=5).text
    line = next(x for x in text.splitlines() if x.startswith("modelward_controller_lease_held"))
    return float(line.split()[-1])


def test_exactly_one_controller_acts_and_another_takes_the_lease_when_it_is_killed(
    cluster: Cluster,
) -> None:
    pids = {f":{replica.proc.pid}": replica for replica in cluster.replicas}
    with cluster.store() as store:
        lease = Lease(store, "controller", holder="test")
        holder = wait_for(lambda: _holder(store), lambda h: h is not None)
        assert holder is not None
        [acting] = [replica for suffix, replica in pids.items() if holder.endswith(suffix)]
        [other] = [replica for replica in cluster.replicas if replica is not acting]
        wait_for(lambda: (_lease_held(acting), _lease_held(other)), lambda held: held == (1.0, 0.0))
        acting.proc.send_signal(signal.SIGKILL)
        killed = time.monotonic()
        acting.proc.wait()
        last = lease.info()  # the dead holder's last renewal
        assert last is not None and last.holder == holder
        taken = wait_for(
            lease.info,
            lambda info: info is not None and info.holder.endswith(f":{other.proc.pid}"),
            timeout=LEASE_TTL + 10 * INTERVAL,
        )
        took = time.monotonic() - killed
    assert taken is not None
    # taken at the other's first tick after the dead holder's lease lapsed (the store's timestamps)
    assert last.expires_at <= taken.acquired_at <= last.expires_at + 2 * INTERVAL + 1.0
    wait_for(lambda: _lease_held(other), lambda held: held == 1.0)
    print(f"lease taken over {took:.2f} s after SIGKILL (ttl {LEASE_TTL} s, interval {INTERVAL} s)")
    assert _predict(other).status_code == 200


def test_a_model_file_changed_in_the_tracking_servers_store_is_refused_at_load(
    cluster: Cluster, tracking_server: TrackingServer
) -> None:
    """Last: it spoils the store's models. Pins recorded at registration are checked against what the
    tracking server hands out, so a changed file in its object store never reaches a replica."""
    from modelward.errors import IntegrityError
    from modelward.registry import Registry
    from modelward.runtime.loader import fetch_version

    models = list((tracking_server.log_path.parent / "artifacts").rglob("MLmodel"))
    assert models
    for mlmodel in models:  # the largest file of each model folder: its weights
        weights = max((p for p in mlmodel.parent.iterdir() if p.is_file()), key=lambda p: p.stat().st_size)
        weights.write_bytes(weights.read_bytes() + b"\0")
    with Registry.from_settings(cluster.settings).open() as registry, pytest.raises(IntegrityError):
        fetch_version(registry, registry.version("churn", 1))
