"""Optional peers in virtualenvs of their own: MLServer (Seldon) and BentoML, each in two forms.

``benchmarks/run.py --extra-peers mlserver,bentoml`` creates ``<work>/venvs/<peer>`` with pinned
versions the first time (which needs the package index), exports churn:N's scikit-learn pipeline with
joblib for them (both load pickles; the file is written here, from the verified registered model), and
adds both forms of each peer to the ``serving`` scenario:

* ``mlserver``, ``bentoml``: as their quickstarts write them, one request, one ``predict_proba`` on a
  one-row DataFrame;
* ``mlserver-batching``, ``bentoml-batching``: at their best, with the adaptive batching each documents
  and the settings the sweep in docs/benchmarks.md found best on this machine (``BEST``).

A form may carry settings of its own, ``bentoml-batching:max_batch_size=32:max_latency_ms=5``, which
is how the sweeps were run (each spec is a system of its own, measured alternately with the others).
They are kept out of modelward's own environment because their pins (uvloop, pydantic, starlette,
protobuf) differ.

Checked with: mlserver 1.7.1 + mlserver-sklearn 1.7.1 with uvloop < 0.22 (MLServer's parallel
inference workers crash at start with uvloop >= 0.22, "There is no current event loop":
SeldonIO/MLServer#2286, fix proposed in #2285 and not released; MLflow pins uvloop < 0.22 for the same
reason), bentoml 1.4.40 (tracking off).
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
FORMS = ("mlserver", "mlserver-batching", "bentoml", "bentoml-batching")

# Each batching form's knobs, their defaults being the best of the sweep (docs/benchmarks.md).
BEST: dict[str, dict[str, str]] = {
    "bentoml-batching": {"workers": "cpu_count", "max_batch_size": "100", "max_latency_ms": "60000"},
    "mlserver-batching": {"parallel_workers": "1", "max_batch_size": "32", "max_batch_time": "0.005"},
}


def expand(names: list[str]) -> list[str]:
    """``--extra-peers`` entries to system specs: a peer's name gives both its forms; a form, with or
    without ``:knob=value`` settings, gives itself. Raises ValueError naming what is wrong."""
    specs: list[str] = []
    for name in names:
        if name in PEER_NAMES:
            specs += [name, f"{name}-batching"]
            continue
        parse_spec(name)
        specs.append(name)
    return specs


def parse_spec(spec: str) -> tuple[str, dict[str, str]]:
    """``bentoml-batching:max_batch_size=32`` -> the form and its settings over the best ones."""
    form, *pairs = spec.split(":")
    if form not in FORMS:
        raise ValueError(f"unknown extra peer {form!r}; choose from {', '.join((*PEER_NAMES, *FORMS[1::2]))}")
    settings = dict(BEST.get(form, {}))
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or key not in settings:
            known = ", ".join(settings) or "none"
            raise ValueError(f"{spec!r}: {pair!r} is not KNOB=VALUE with a knob of {form} ({known})")
        try:
            number = float(value) if not (key == "workers" and value == "cpu_count") else 1.0
        except ValueError:
            number = -1.0
        if number <= 0 or (key != "max_batch_time" and not number.is_integer()):
            kind = "seconds above 0" if key == "max_batch_time" else "a whole number above 0"
            raise ValueError(f"{spec!r}: {key} wants {kind}, got {value!r}")
        settings[key] = value
    return form, settings


def _packages(peer: str) -> list[str]:
    sklearn = f"scikit-learn=={metadata.version('scikit-learn')}"  # the pickle's own version
    if peer == "mlserver":
        # uvloop < 0.22: see the module's docstring (MLServer's inference workers need it)
        return [f"mlserver=={MLSERVER}", f"mlserver-sklearn=={MLSERVER}", sklearn, "uvloop<0.22"]
    return [f"bentoml=={BENTOML}", sklearn, "pandas", "joblib"]


def ensure_venv(venvs: Path, peer: str) -> Path:
    """The peer's virtualenv under ``venvs``, created once; raises RuntimeError with pip's words if it
    cannot be."""
    venv = venvs / peer
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


def _folder_name(spec: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in spec)


def mlserver_system(work: Path, version: str, spec: str = "mlserver", venvs: Path | None = None) -> System:
    form, knobs = parse_spec(spec)
    venv = ensure_venv(venvs or work / "venvs", "mlserver")
    model = export_model(work, version)
    folder = work / "peers" / _folder_name(spec)
    (folder / "churn").mkdir(parents=True, exist_ok=True)
    port = servers.free_port()
    settings: dict[str, object] = {
        "host": "127.0.0.1",
        "http_port": port,
        "grpc_port": servers.free_port(),
        "metrics_port": servers.free_port(),
        "parallel_workers": int(knobs.get("parallel_workers", "0")),
    }
    (folder / "settings.json").write_text(json.dumps(settings))
    model_settings: dict[str, object] = {
        "name": "churn",
        "implementation": "mlserver_sklearn.SKLearnModel",
        "parameters": {"uri": str(model), "version": version},
    }
    description = (
        f"MLServer {MLSERVER} with its scikit-learn runtime, Open Inference Protocol request "
        "(parallel_workers 0)"
    )
    if form == "mlserver-batching":
        model_settings["max_batch_size"] = int(knobs["max_batch_size"])
        model_settings["max_batch_time"] = float(knobs["max_batch_time"])
        description = (
            f"MLServer {MLSERVER}, scikit-learn runtime, adaptive batching (max_batch_size "
            f"{knobs['max_batch_size']}, max_batch_time {knobs['max_batch_time']} s), parallel_workers "
            f"{knobs['parallel_workers']}"
        )
    (folder / "churn" / "model-settings.json").write_text(json.dumps(model_settings))
    return System(
        name=spec,
        description=description,
        cmd=(str(venv / "bin" / "mlserver"), "start", str(folder)),
        env=servers.clean_env(),
        ready_path="/v2/models/churn/ready",
        predict_path="/v2/models/churn/infer",
        body=_infer_body(),
        settings={"model": f"churn:{version}", "version": MLSERVER, **knobs},
        port=port,
        cwd=folder,
    )


def bentoml_system(work: Path, version: str, spec: str = "bentoml", venvs: Path | None = None) -> System:
    form, knobs = parse_spec(spec)
    venv = ensure_venv(venvs or work / "venvs", "bentoml")
    model = export_model(work, version)
    env = servers.clean_env(BENCH_MODEL_PATH=str(model), BENTOML_DO_NOT_TRACK="true")
    service, body = "bento_service:Churn", json.dumps({"features": CHURN_ROW}).encode()
    description = (
        f"BentoML {BENTOML}, one worker, one-row DataFrame per request (benchmarks/peers/bento_service.py)"
    )
    if form == "bentoml-batching":
        service, body = "bento_batching:ChurnBatching", json.dumps({"customers": [CHURN_ROW]}).encode()
        env.update({f"BENCH_BENTO_{key.upper()}": value for key, value in knobs.items()})
        description = (
            f"BentoML {BENTOML}, batchable API over a list of records (max_batch_size "
            f"{knobs['max_batch_size']}, max_latency_ms {knobs['max_latency_ms']}), {knobs['workers']} "
            "worker(s) (benchmarks/peers/bento_batching.py)"
        )
    cmd = (str(venv / "bin" / "bentoml"), "serve", service, "--host", "127.0.0.1")
    return System(
        name=spec,
        description=description,
        cmd=(*cmd, "--port", "{port}"),
        env=env,
        ready_path="/readyz",
        predict_path="/predict",
        body=body,
        settings={"model": f"churn:{version}", "version": BENTOML, **knobs},
        cwd=PEERS,
    )


def extra_system(spec: str, work: Path, version: str, venvs: Path | None = None) -> System:
    """The server of one spec of :func:`expand` (``mlserver``, ``bentoml-batching:workers=2``, ...);
    the virtualenvs live in ``venvs`` (default ``<work>/venvs``)."""
    form, _ = parse_spec(spec)
    if form.startswith("mlserver"):
        return mlserver_system(work, version, spec, venvs)
    return bentoml_system(work, version, spec, venvs)
