"""How long one row's SHAP explanation takes, for the churn HistGradientBoosting model (churn:2).

    python benchmarks/explain.py                      # trains churn in a fresh home; 300 requests each
    python benchmarks/explain.py --home ./.modelward  # an existing home holding churn (the README's)
    python benchmarks/explain.py --quick              # 20 requests: checks the harness works
    python benchmarks/explain.py --requests 1000 --out explain.json

In-process: ``Explainer(model).explain(one_row_frame)`` timed call by call after the explainer is
built (its build is timed once, apart), beside ``predict_proba`` of the same row for scale. Over HTTP:
``modelward serve churn@challenger`` on a free port, one keep-alive connection sending
``POST /models/churn/explain`` with ``{"features": row}`` one request at a time (the first request,
which builds the explainer, is timed apart), beside ``POST /models/churn/predict`` of the same row.
Figures are p50 and p95 over the requests; docs/benchmarks.md ("Explanations") says how to read them.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
DEFAULT_REF = "churn@challenger"  # examples/churn/train.py: version 2, HistGradientBoostingClassifier


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def prepare_home(home: Path | None, work: Path) -> Path:
    if home is not None:
        return home.resolve()
    log(f"training churn into {work / '.modelward'} (examples/churn/train.py)...")
    subprocess.run(
        [sys.executable, str(ROOT / "examples" / "churn" / "train.py"), "--data-dir", str(work / "data")],
        cwd=work,
        check=True,
        stdout=subprocess.DEVNULL,
    )
    return work / ".modelward"


def percentiles(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    return {"p50_ms": statistics.median(ordered) * 1000, "p95_ms": p95 * 1000, "n": len(ordered)}


def in_process(home: Path, ref: str, requests: int) -> tuple[dict[str, Any], dict[str, Any]]:
    import pandas as pd

    from modelward.api import load
    from modelward.config import Settings
    from modelward.explain import Explainer

    model = load(ref, settings=Settings(home=home))
    assert model.example is not None
    frame = pd.DataFrame(model.example["data"][:1], columns=model.example["columns"])
    started = time.perf_counter()
    explainer = Explainer(model)
    build = time.perf_counter() - started
    explain, predict = [], []
    for _ in range(requests):
        t = time.perf_counter()
        explanation = explainer.explain(frame)
        explain.append(time.perf_counter() - t)
        t = time.perf_counter()
        model.predict_proba(frame)
        predict.append(time.perf_counter() - t)
    row: dict[str, Any] = {
        str(k): v.item() if hasattr(v, "item") else v for k, v in frame.iloc[0].to_dict().items()
    }
    info = {
        "method": explanation.method,
        "output_space": explanation.output_space,
        "build_s": build,
        "row": row,
    }
    return {"explain": percentiles(explain), "predict_proba": percentiles(predict), **info}, row


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def over_http(home: Path, ref: str, row: dict[str, Any], requests: int) -> dict[str, Any]:
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MODELWARD_", "MLFLOW_"))}
    env["MODELWARD_HOME"] = str(home)
    proc = subprocess.Popen(
        [sys.executable, "-m", "modelward", "serve", ref, "--port", str(port), "--reload-interval", "0"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 120
        while True:
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("the server did not become ready")
            try:
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
                conn.request("GET", "/ready")
                if conn.getresponse().status == 200:
                    break
            except OSError:
                pass
            time.sleep(0.2)
        body = json.dumps({"features": row}).encode()
        headers = {"Content-Type": "application/json"}
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)

        def post(path: str) -> float:
            t = time.perf_counter()
            conn.request("POST", path, body, headers)
            response = conn.getresponse()
            response.read()
            elapsed = time.perf_counter() - t
            if response.status != 200:
                raise RuntimeError(f"{path} answered {response.status}")
            return elapsed

        name = ref.split("@")[0].split(":")[0]
        first = post(f"/models/{name}/explain")
        explain = [post(f"/models/{name}/explain") for _ in range(requests)]
        predict = [post(f"/models/{name}/predict") for _ in range(requests)]
        return {"first_explain_s": first, "explain": percentiles(explain), "predict": percentiles(predict)}
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--home", type=Path, default=None, help="a home holding churn (default: train one)")
    parser.add_argument("--ref", default=DEFAULT_REF, help=f"the model to explain (default {DEFAULT_REF})")
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--quick", action="store_true", help="20 requests each")
    parser.add_argument("--out", type=Path, default=None, help="write the results as JSON here")
    args = parser.parse_args(argv)
    requests = 20 if args.quick else args.requests
    with tempfile.TemporaryDirectory(prefix="modelward-explain-bench-") as tmp:
        home = prepare_home(args.home, Path(tmp))
        local, row = in_process(home, args.ref, requests)
        remote = over_http(home, args.ref, row, requests)
    results = {"model": args.ref, "in_process": local, "http": remote, "load": os.getloadavg()[0]}
    print("| measure | p50 | p95 |")
    print("|---|---|---|")
    for label, figures in (
        ("explain, in-process", local["explain"]),
        ("predict_proba, in-process", local["predict_proba"]),
        ("POST /models/{name}/explain", remote["explain"]),
        ("POST /models/{name}/predict", remote["predict"]),
    ):
        print(f"| {label} | {figures['p50_ms']:.2f} ms | {figures['p95_ms']:.2f} ms |")
    print(
        f"\n{local['method']} explainer, {local['output_space']} output; explainer built in "
        f"{local['build_s']:.2f} s in-process, first explain request over HTTP "
        f"{remote['first_explain_s']:.2f} s; {requests} requests each, load average {results['load']:.1f}"
    )
    if args.out is not None:
        args.out.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
