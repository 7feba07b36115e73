"""Two replicas against one: requests per second of `modelward serve` sharing one PostgreSQL store,
and how long a replica takes to pick up the controller lease when its holder is killed.

    python benchmarks/replicas.py                   # 10 s per run, 16 connections in all
    python benchmarks/replicas.py --duration 20 --connections 32 --out replicas.json
    python benchmarks/replicas.py --quick           # 2 s runs: checks that the harness works

It trains and registers churn:1 into a fresh home (``prepare.py --minimal``), with modelward's store
in a fresh PostgreSQL database (``--postgres``, default ``MODELWARD_TEST_POSTGRES_URL`` or the local
server; dropped at the end). MLflow's registry stays the home's SQLite file, which both replicas read:
it is read once at load and at each poll, so it plays no part in the request rate; the artifacts are
read where they are, as they would be from a tracking server's object store.

1. One replica (one worker) takes the load: wrk, ``--connections`` connections, ``--duration`` s.
2. A second replica starts; two wrk processes, each with half the connections, load one replica
   each at the same time (a load balancer's even split, without the balancer's own cost); their
   request rates add up.

Both replicas log every prediction to the one store and run a controller (only the lease holder
acts). On a machine with N cores the second replica has at most N - 1 more to use, less what wrk
and PostgreSQL take: the ratio says how far one more process on the same machine goes, not how two
machines scale. The take-over: the lease holder is sent SIGKILL, and the time until the other
replica holds the lease is measured (``--lease-ttl`` and ``--interval`` set the controller's).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import loadgen
import machine
import servers

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
DEFAULT_POSTGRES = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
WARM_UP = 2.0  # seconds of load before each measured run, not counted
CPU: dict[int, float] = {}  # replicas loaded -> CPU seconds they spent in the last run


def log(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def _admin(url: str) -> str:
    return url.replace("postgresql+psycopg://", "postgresql://")


def create_database(base: str) -> tuple[str, str]:
    """A fresh database next to ``base``'s: its name and its URL."""
    import psycopg

    name = f"mw_bench_replicas_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(_admin(base), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return name, f"{base.rsplit('/', 1)[0]}/{name}"


def drop_database(base: str, name: str) -> None:
    import psycopg

    with psycopg.connect(_admin(base), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def prepare(home: Path, store_url: str) -> None:
    env = servers.clean_env(
        MODELWARD_HOME=str(home), MODELWARD_ACTOR="benchmark", MODELWARD_DATABASE_URL=store_url
    )
    cmd = [sys.executable, str(HERE / "prepare.py"), "--minimal", "--rows", "5000"]
    cmd += ["--data-dir", str(home.parent / "data")]
    done = subprocess.run(cmd, env=env, cwd=ROOT, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"preparing churn failed:\n{done.stdout[-2000:]}\n{done.stderr[-4000:]}")


def replica(name: str, home: Path, store_url: str, args: argparse.Namespace) -> servers.Server:
    settings = {
        **servers.MODELWARD_DEFAULTS,
        "MODELWARD_DATABASE_URL": store_url,
        "MODELWARD_CONTROLLER_INTERVAL": str(args.interval),
        "MODELWARD_CONTROLLER_LEASE_TTL": str(args.lease_ttl),
    }
    system = servers.modelward_system(name, f"replica {name}", home, "churn", settings=settings)
    return servers.Server(system, home.parent / "logs")


def settled(server: servers.Server, timeout: float = 300.0) -> servers.Server:
    """Wait until the server's models are fully loaded: a replica started from the compiled cache
    (the second one here) loads its native model after it answers, which would be measured."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        models = httpx.get(server.url + "/ready", timeout=10).json().get("models", {})
        if not any(m.get("provisional") for m in models.values()):
            return server
        time.sleep(0.5)
    raise SystemExit(f"{server.system.name} did not finish loading in {timeout:g} s")


def load(targets: list[servers.Server], connections: int, duration: float) -> list[loadgen.LoadResult]:
    """Load every target at once, ``connections`` split evenly between them."""
    results: list[loadgen.LoadResult | None] = [None] * len(targets)
    each = max(1, connections // len(targets))

    def run(i: int, server: servers.Server) -> None:
        results[i] = loadgen.run_load(server.predict_url, server.system.body, each, duration)

    threads = [threading.Thread(target=run, args=(i, s)) for i, s in enumerate(targets)]
    before = [machine.process_tree_cpu(s.pid) for s in targets]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    after = [machine.process_tree_cpu(s.pid) for s in targets]
    if any(r is None or not r.ok for r in results):
        raise SystemExit(f"a load run failed: {results}")
    CPU[len(targets)] = sum(
        b - a for a, b in zip(before, after, strict=True) if a is not None and b is not None
    )
    return [r for r in results if r is not None]


def take_over(store_url: str, pair: list[servers.Server], timeout: float) -> dict[str, Any]:
    """SIGKILL the lease holder; seconds until the other replica holds the lease."""
    sys.path.insert(0, str(ROOT / "src"))
    from modelward.store import Store
    from modelward.store.lease import Lease

    with Store(store_url).open() as store:
        lease = Lease(store, "controller", holder="benchmark")

        def holder() -> str | None:
            info = lease.info()
            return info.holder if info is not None and info.expires_at > time.time() else None

        deadline = time.monotonic() + timeout
        while (current := holder()) is None:
            if time.monotonic() > deadline:
                raise SystemExit("no replica took the controller lease")
            time.sleep(0.05)
        by_pid = {f":{s.pid}": s for s in pair}
        acting = next(s for suffix, s in by_pid.items() if current.endswith(suffix))
        other = next(s for s in pair if s is not acting)
        os.kill(acting.pid, signal.SIGKILL)
        killed = time.monotonic()
        while not (holder() or "").endswith(f":{other.pid}"):
            if time.monotonic() > killed + timeout:
                raise SystemExit("the other replica did not take the lease")
            time.sleep(0.02)
        return {"seconds": round(time.monotonic() - killed, 2), "killed": acting.system.name}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--postgres", default=os.environ.get("MODELWARD_TEST_POSTGRES_URL", DEFAULT_POSTGRES))
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per load run")
    parser.add_argument("--connections", type=int, default=16, help="connections in all, split per replica")
    parser.add_argument("--interval", type=float, default=1.0, help="controller tick, seconds")
    parser.add_argument("--lease-ttl", type=float, default=5.0, help="controller lease, seconds")
    parser.add_argument("--quick", action="store_true", help="2 s runs")
    parser.add_argument("--out", type=Path, help="write the results as JSON here")
    args = parser.parse_args(argv)
    duration = 2.0 if args.quick else args.duration
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # stop the servers, drop the database
    host = machine.describe()  # before anything of ours runs: the load average of the others
    name, store_url = create_database(args.postgres)
    pair: list[servers.Server] = []
    try:
        with tempfile.TemporaryDirectory(prefix="mw-replicas-") as tmp:
            home = Path(tmp) / "home"
            home.mkdir()
            log("training and registering churn:1 ...")
            prepare(home, store_url)
            pair.append(settled(replica("a", home, store_url, args).start()))
            log(f"one replica: {args.connections} connections for {duration:g} s (after a warm-up) ...")
            load(pair[:1], args.connections, WARM_UP)
            [one] = load(pair[:1], args.connections, duration)
            cpu_one = CPU[1]
            pair.append(settled(replica("b", home, store_url, args).start()))
            log(f"two replicas: {args.connections // 2} connections each for {duration:g} s ...")
            load(pair, args.connections, WARM_UP)
            two = load(pair, args.connections, duration)
            cpu_two = CPU[2]
            took = take_over(store_url, pair, timeout=args.lease_ttl * 4 + 30)
    finally:
        for server in pair:
            server.stop()
        drop_database(args.postgres, name)
    both = sum(r.rps for r in two)
    results = {
        "machine": host,
        "connections": args.connections,
        "seconds": duration,
        "one": one.to_dict(),
        "two": [r.to_dict() for r in two],
        "rps_one": one.rps,
        "rps_two": round(both, 1),
        "ratio": round(both / one.rps, 2),
        "cpu_seconds_one": round(cpu_one, 2),  # the replicas' CPU time during the measured run
        "cpu_seconds_two": round(cpu_two, 2),
        "lease_ttl": args.lease_ttl,
        "interval": args.interval,
        "take_over": took,
        "load_after": machine.load_average(),
    }
    if args.out:
        args.out.write_text(json.dumps(results, indent=2))
    print("| | requests/s | p99 | replicas' CPU per second |")
    print("|---|---|---|---|")
    print(f"| one replica | {one.rps:,.0f} | {one.p99_ms:.1f} ms | {cpu_one / duration:.2f} |")
    p99 = max(r.p99_ms for r in two)
    print(f"| two replicas | {both:,.0f} ({results['ratio']}x) | {p99:.1f} ms | {cpu_two / duration:.2f} |")
    print(f"load average before: {host['load_before']}")
    print(
        f"lease taken over {took['seconds']} s after SIGKILL of its holder "
        f"(ttl {args.lease_ttl:g} s, controller tick {args.interval:g} s)"
    )


if __name__ == "__main__":
    main()
