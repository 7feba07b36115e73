"""Optional peers in virtualenvs of their own: MLServer (Seldon) and BentoML.

``benchmarks/run.py --extra-peers mlserver,bentoml`` creates ``<work>/venvs/<peer>`` with pinned
versions the first time (which needs the package index), exports churn:N's scikit-learn pipeline with
joblib for them (both load pickles; the file is written here, from the verified registered model), and
adds them to the ``serving`` scenario. They are kept out of modelward's own environment because their
pins (uvloop, pydantic, starlette, protobuf) differ.

Checked with: mlserver 1.7.1 + mlserver-sklearn 1.7.1 (its default parallel inference pool crashes at
start with uvloop >= 0.22, "There is no current event loop", so it runs with ``parallel_workers: 0``,
inference in the server process), bentoml 1.4.40 (one worker, tracking off).
"""

from __future__ import annotations

import json
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import servers
from servers import CHURN_ROW, PEERS, System

MLSERVER = "1.7.1"
BENTOML = "1.4.40"
PEER_NAMES = ("mlserver", "bentoml")


def _packages(peer: str) -> list[str]:
    sklearn = f"scikit-learn=={metadata.version('scikit-learn')}"  # the pickle's own version
    if peer == "mlserver":
        return [f"mlserver=={MLSERVER}", f"mlserver-sklearn=={MLSERVER}", sklearn]
    return [f"bentoml=={BENTOML}", sklearn, "pandas", "joblib"]


def ensure_venv(work: Path, peer: str) -> Path:
    """The peer's virtualenv, created once; raises RuntimeError with pip's words if it cannot be."""
    venv = work / "venvs" / peer
    marker = venv / "benchmark-packages.json"
    wanted = _packages(peer)
    if marker.exists() and json.loads(marker.read_text()) == wanted:
        return venv
    subprocess.run([sys.executable, "-m", "venv", "--clear", str(venv)], check=True, capture_output=True)
    pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "-q", "--disable-pip-version-check"]
    done = subprocess.run([*pip, *wanted], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(
            f"pip install {' '.join(wanted)} failed:\n{done.stdout[-1500:]}{done.stderr[-2500:]}"
        )
    marker.write_text(json.dumps(wanted))
    return venv


def export_model(work: Path, version: str) -> Path:
    target = work / "peers" / f"churn-{version}.joblib"
    if target.exists():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    code = (
        f"import sys, joblib, modelward\njoblib.dump(modelward.load('churn:{version}').native, sys.argv[1])\n"
    )
    env = servers.clean_env(MODELWARD_HOME=str(work / "home"), MODELWARD_ACTOR="benchmark")
    done = subprocess.run([sys.executable, "-c", code, str(target)], env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"exporting churn:{version} failed:\n{done.stderr[-2000:]}")
    return target


def _infer_body() -> bytes:
    inputs = []
    for name, value in CHURN_ROW.items():
        entry: dict[str, object] = {"name": name, "shape": [1], "data": [value]}
        if isinstance(value, str):
            entry.update(datatype="BYTES", parameters={"content_type": "str"})
        else:
            entry["datatype"] = "FP64" if isinstance(value, float) else "INT64"
        inputs.append(entry)
    body = {"parameters": {"content_type": "pd"}, "inputs": inputs, "outputs": [{"name": "predict_proba"}]}
    return json.dumps(body).encode()


def mlserver_system(work: Path, version: str) -> System:
    venv = ensure_venv(work, "mlserver")
    model = export_model(work, version)
    folder = work / "peers" / "mlserver"
    (folder / "churn").mkdir(parents=True, exist_ok=True)
    port = servers.free_port()
    settings = {
        "host": "127.0.0.1",
        "http_port": port,
        "grpc_port": servers.free_port(),
        "metrics_port": servers.free_port(),
        "parallel_workers": 0,
    }
    (folder / "settings.json").write_text(json.dumps(settings))
    model_settings = {
        "name": "churn",
        "implementation": "mlserver_sklearn.SKLearnModel",
        "parameters": {"uri": str(model), "version": version},
    }
    (folder / "churn" / "model-settings.json").write_text(json.dumps(model_settings))
    return System(
        name="mlserver",
        description=f"MLServer {MLSERVER} with its scikit-learn runtime, Open Inference Protocol request "
        "(parallel_workers 0)",
        cmd=(str(venv / "bin" / "mlserver"), "start", str(folder)),
        env=servers.clean_env(),
        ready_path="/v2/models/churn/ready",
        predict_path="/v2/models/churn/infer",
        body=_infer_body(),
        settings={"model": f"churn:{version}", "version": MLSERVER},
        port=port,
        cwd=folder,
    )


def bentoml_system(work: Path, version: str) -> System:
    venv = ensure_venv(work, "bentoml")
    model = export_model(work, version)
    cmd = (str(venv / "bin" / "bentoml"), "serve", "bento_service:Churn", "--host", "127.0.0.1")
    return System(
        name="bentoml",
        description=f"BentoML {BENTOML}, one worker, one-row DataFrame per request "
        "(benchmarks/peers/bento_service.py)",
        cmd=(*cmd, "--port", "{port}"),
        env=servers.clean_env(BENCH_MODEL_PATH=str(model), BENTOML_DO_NOT_TRACK="true"),
        ready_path="/readyz",
        predict_path="/predict",
        body=json.dumps({"features": CHURN_ROW}).encode(),
        settings={"model": f"churn:{version}", "version": BENTOML},
        cwd=PEERS,
    )


def extra_system(name: str, work: Path, version: str) -> System:
    if name == "mlserver":
        return mlserver_system(work, version)
    if name == "bentoml":
        return bentoml_system(work, version)
    raise ValueError(f"unknown extra peer {name!r}; choose from {', '.join(PEER_NAMES)}")
