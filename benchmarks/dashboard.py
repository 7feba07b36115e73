"""How long each dashboard page takes with a day of traffic logged.

    python benchmarks/dashboard.py                      # 8,640,000 rows: a day at 100 requests/s
    python benchmarks/dashboard.py --rows 20000 --rounds 2   # the harness works (tests run this)
    python benchmarks/dashboard.py --home /tmp/day --idle 31  # keep the home; ask once more after 31 s

A fresh home gets two registered churn models (logistic regression, champion and challenger) in a
90/10 A/B deployment, then a day of prediction log rows spread evenly over the last 24 hours (bulk
inserts in one transaction: the log's own writer would take hours), labels for a tenth of them,
one live profile per minute and arm (the last hour of the champion's with every customer 30 years
older: drifted) and a thousand audit events. Each page is then asked for ``--rounds`` times through
the dashboard's own app (``create_ui_app``, in process, over Starlette's test client: no socket).
The app reads every page once at start-up, in the background (``modelward.ui.page.warm``): the
overview is asked for at once (how long a person opening it at start-up waits), then, once the
warm-up is done, each page once (its first answer) and ``--rounds`` times more; the table shows the
first, the median and the slowest answer. With ``--idle S`` each page is asked once more after S
seconds (31: past the fifteen seconds of a slot going on and every registry read's five to thirty
seconds), what a page set to refresh itself pays. Figures go to docs/dashboard.md.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import random
import sqlite3
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
PAGES = (
    ("overview", "/ui"),
    ("model, 1 h", "/ui/models/churn"),
    ("model, 1 day", "/ui/models/churn?window=1d"),
    ("model, 1 day, feature", "/ui/models/churn?window=1d&feature=age"),
    ("audit", "/ui/audit"),
    ("audit, filtered", "/ui/audit?subject=churn&action=promote"),
)


def _churn(rows: int) -> Any:
    spec = importlib.util.spec_from_file_location(
        "churn_generate", ROOT / "examples" / "churn" / "generate.py"
    )
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.generate(rows, seed=1).drop(columns=["customer_id"])


def _register(home: Path) -> Any:
    from sklearn.compose import ColumnTransformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    import modelward
    from modelward.config import Settings
    from modelward.routing import DeploymentSpec

    frame = _churn(2_000)
    x, y = frame.drop(columns=["churn"]), frame["churn"]
    categorical = ["geography", "gender"]
    numeric = [c for c in x.columns if c not in categorical]
    settings = Settings(home=home, actor="bench", tracking_uri=f"sqlite:///{home / 'mlflow.db'}")
    for c in (0.1, 1.0):
        pre = ColumnTransformer(
            [("num", StandardScaler(), numeric), ("cat", OneHotEncoder(handle_unknown="ignore"), categorical)]
        )
        model = Pipeline([("pre", pre), ("model", LogisticRegression(C=c, max_iter=500))]).fit(x, y)
        modelward.register(model, "churn", train_data=frame, target="churn", settings=settings)
    modelward.promote("churn", 1, settings=settings)
    modelward.promote("churn", 2, "challenger", settings=settings)
    with modelward.open_registry(settings) as registry:
        registry.deployments.put(
            DeploymentSpec.ab("churn", {"champion": 90, "challenger": 10}), reason="bench"
        )
    return settings, frame.drop(columns=["churn"])


def _profiles(settings: Any, frame: Any, now: float) -> list[tuple[Any, ...]]:
    """One live profile row per minute and arm over the day, from real observations."""
    import numpy as np

    from modelward.monitoring.live_drift import load_reference
    from modelward.monitoring.live_profiles import LiveProfiler
    from modelward.registry import Registry
    from modelward.store import Store

    texts: dict[tuple[str, bool], str] = {}
    with Registry.from_settings(settings).open() as registry:
        for version in ("1", "2"):
            reference = load_reference(registry, "churn", version)
            for drifted in (False, True):
                sample = frame.iloc[:600].copy()
                if drifted:
                    sample["age"] = sample["age"] + 30
                with tempfile.TemporaryDirectory() as tmp, Store(f"sqlite:///{tmp}/p.db") as scratch:
                    scratch.migrate()
                    profiler = LiveProfiler(scratch, writer="bench:1", clock=lambda: now)
                    columns = {
                        n: sample[n].to_numpy(dtype=object if n in ("geography", "gender") else np.float64)
                        for n in sample.columns
                    }
                    p = np.tile([0.8, 0.2], (len(sample), 1))
                    profiler.observe(
                        "churn",
                        version,
                        "x",
                        reference,
                        columns,
                        labels=np.zeros(len(sample)),
                        probabilities=p,
                    )
                    profiler.close()
                    with scratch.read() as conn:
                        texts[version, drifted] = conn.exec_driver_sql(
                            "select profile from modelward_live_profiles"
                        ).scalar_one()
    rows = []
    start = now - 86_400
    for minute in range(1440):
        bucket = start + minute * 60
        late = bucket >= now - 3600
        rows.append(("churn", "1", "champion", bucket, 60.0, "bench:1", 5400, texts["1", late]))
        rows.append(("churn", "2", "challenger", bucket, 60.0, "bench:1", 600, texts["2", False]))
    return rows


def _fill(db: Path, rows: int, frame: Any, now: float) -> float:
    started = time.perf_counter()
    rng = random.Random(0)
    records = frame.iloc[:1000].to_dict(orient="records")
    inputs = [json.dumps(r, sort_keys=True, default=float) for r in records]
    outputs = []
    for _ in range(1000):
        p = rng.random()
        outputs.append(json.dumps({"prediction": int(p > 0.5), "probabilities": {"0": 1 - p, "1": p}}))
    conn = sqlite3.connect(db)
    conn.execute("pragma synchronous=off")
    step = 86_400 / rows
    first_ts = now - 86_400
    chunk = 100_000
    for begin in range(0, rows, chunk):
        batch, labels = [], []
        for i in range(begin, min(begin + chunk, rows)):
            ts = first_ts + i * step
            champion = i % 10
            k = i % 1000
            batch.append(
                (
                    f"{i:016x}",
                    ts,
                    "churn",
                    "1" if champion else "2",
                    "champion" if champion else "challenger",
                    inputs[k],
                    outputs[k],
                    1.0 + (i % 97) / 10,
                    "boom" if i % 500 == 0 else None,
                )
            )
            if i % 10 == 3:
                label = int(rng.random() < 0.2)
                labels.append(
                    (f"{i:016x}", json.dumps(label), float(label), "churn", ts + 60, ts + 60, "bench")
                )
        conn.executemany(
            "insert into modelward_predictions (request_id, ts, model, version, arm, inputs, outputs,"
            " latency_ms, error, consent) values (?, ?, ?, ?, ?, ?, ?, ?, ?, 1)",
            batch,
        )
        conn.executemany(
            "insert into modelward_feedback (request_id, label, value, model, ts, updated_at, source)"
            " values (?, ?, ?, ?, ?, ?, ?)",
            labels,
        )
        conn.commit()
        print(f"\r  {min(begin + chunk, rows):,} / {rows:,} rows", end="", file=sys.stderr, flush=True)
    print(file=sys.stderr)
    conn.close()
    return time.perf_counter() - started


def _populate(home: Path, rows: int) -> tuple[float, float]:
    from modelward.governance.audit import AuditLog
    from modelward.store import Store

    settings, frame = _register(home)
    now = time.time()
    db = home / "modelward.db"
    fill = _fill(db, rows, frame, now)
    profiles = _profiles(settings, frame, now)
    with Store(f"sqlite:///{db}") as store:
        store.migrate()
        with store.write() as conn:
            conn.exec_driver_sql(
                "insert into modelward_live_profiles"
                " (model, version, arm, bucket, seconds, writer, rows, profile)"
                " values (?, ?, ?, ?, ?, ?, ?, ?)",
                profiles,
            )
        audit = AuditLog(store)
        for i in range(1000):
            audit.append(
                "canary.hold", "churn", {"step": i % 4, "reasons": ["waiting for data"]}, actor="bench"
            )
    return now, fill


class _Clock:
    """``time`` as the pages see it: the end of the logged day, moving on as the benchmark runs
    (filling a day of rows takes minutes; the pages must look at the day, not at the minutes after)."""

    def __init__(self, offset: float) -> None:
        self.offset = offset

    def time(self) -> float:
        return time.time() - self.offset

    def monotonic(self) -> float:
        return time.monotonic()


def _measure(
    settings: Any, now: float, rounds: int, idle: float
) -> tuple[dict[str, float], list[dict[str, Any]]]:
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # Starlette's note on its test client
        from fastapi.testclient import TestClient

    import modelward.ui.board
    import modelward.ui.page
    from modelward.ui import create_ui_app

    clock = _Clock(time.time() - now)
    for module in (modelward.ui.board, modelward.ui.page):
        vars(module)["time"] = clock
    results = []
    started = time.perf_counter()
    app = create_ui_app(settings)
    with TestClient(app) as client:
        # A person who opens the overview the moment the server is up: the page waits for the reads
        # it shares with the start-up warm-up (MLflow's client, references, the models' rows).
        assert client.get("/ui").status_code == 200
        at_start = time.perf_counter() - started
        app.state.ui_board.warmed.wait()
        warm_up = time.perf_counter() - started
        for name, path in PAGES:
            t = time.perf_counter()
            r = client.get(path)
            first = (time.perf_counter() - t) * 1000
            assert r.status_code == 200, (path, r.text[:500])
            times = []
            for _ in range(rounds):
                t = time.perf_counter()
                r = client.get(path)
                times.append((time.perf_counter() - t) * 1000)
                assert r.status_code == 200, (path, r.text[:500])
            after_idle = None
            if idle > 0:  # what the newest slots and the registry cost once their time is up
                time.sleep(idle)
                t = time.perf_counter()
                r = client.get(path)
                after_idle = (time.perf_counter() - t) * 1000
                assert r.status_code == 200, (path, r.text[:500])
            results.append(
                {
                    "page": name,
                    "path": path,
                    "status": r.status_code,
                    "first_ms": first,
                    "median_ms": statistics.median(times),
                    "max_ms": max(times),
                    "after_idle_ms": after_idle,
                }
            )
    return {"overview_at_start_s": at_start, "warm_up_s": warm_up}, results


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=8_640_000)
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument(
        "--idle",
        type=float,
        default=0.0,
        help="then wait this long and ask once more (31: past every kept answer's time but a slot's)",
    )
    parser.add_argument("--home", type=Path, help="keep the filled home here (default: a temporary folder)")
    parser.add_argument("--out", type=Path, help="also write the results as JSON")
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT / "src"))
    with tempfile.TemporaryDirectory(prefix="modelward-dashboard-") as tmp:
        home = args.home or Path(tmp)
        home.mkdir(parents=True, exist_ok=True)
        marker = home / "bench.json"
        if marker.exists():  # a home filled by an earlier run (--home): measure it again
            kept = json.loads(marker.read_text())
            now, fill, args.rows = kept["now"], kept["fill_seconds"], kept["rows"]
        else:
            now, fill = _populate(home, args.rows)
            marker.write_text(json.dumps({"now": now, "fill_seconds": fill, "rows": args.rows}))
        from modelward.config import Settings

        settings = Settings(home=home, actor="bench", tracking_uri=f"sqlite:///{home / 'mlflow.db'}")
        start, results = _measure(settings, now, args.rounds, args.idle)
    print(f"{args.rows:,} logged rows (filled in {fill:.0f} s), {args.rounds} rounds per page")
    print(
        f"start-up: the overview asked for at once answered after {start['overview_at_start_s']:.1f} s;"
        f" the warm-up read every page once in {start['warm_up_s']:.1f} s"
    )
    idle = f"after {args.idle:g} s" if args.idle > 0 else ""
    print(f"{'page':<24} {'first ms':>10} {'median ms':>10} {'max ms':>10} {idle:>12}")
    for r in results:
        later = f"{r['after_idle_ms']:>12.1f}" if r["after_idle_ms"] is not None else ""
        print(f"{r['page']:<24} {r['first_ms']:>10.1f} {r['median_ms']:>10.1f} {r['max_ms']:>10.1f} {later}")
    if args.out:
        document = {"rows": args.rows, "fill_seconds": fill, "start": start, "pages": results}
        args.out.write_text(json.dumps(document, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
