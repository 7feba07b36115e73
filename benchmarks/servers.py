"""The systems under test: how each is started, what it is sent, and how it is stopped.

Every system is a separate process tree started on a free loopback port in its own session, so
stopping it (SIGTERM to its process group, SIGKILL after a grace period) ends the server and every
worker it forked, and nothing else. A system that fails to start is reported with its log's tail;
the benchmark goes on with the others.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
PEERS = HERE / "peers"

# One realistic churn customer; every churn system gets the same row in its own request format.
CHURN_ROW: dict[str, object] = {
    "age": 42,
    "tenure": 3,
    "balance": 1000.0,
    "num_products": 2,
    "has_cr_card": 1,
    "is_active_member": 0,
    "estimated_salary": 50000.0,
    "geography": "Germany",
    "gender": "Female",
}
NOOP_ROW: dict[str, object] = {"x": 0.5}

# modelward's settings as the benchmark sets them unless a scenario or --mw-env says otherwise.
MODELWARD_DEFAULTS = {
    "MODELWARD_PREDICTION_LOG": "true",
    "MODELWARD_BATCHING": "false",
    "MODELWARD_MAX_BATCH_ROWS": "256",
    "MODELWARD_COMPILE": "true",
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def clean_env(**extra: str) -> dict[str, str]:
    """The harness's environment without any modelward, MLflow or Prometheus settings of its own."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MODELWARD_", "MLFLOW_", "PROMETHEUS_"))}
    env.update(extra)
    return env


@dataclass(frozen=True)
class System:
    """A server to benchmark: ``cmd`` may contain ``{port}``; ``body`` is what every request sends."""

    name: str
    description: str
    cmd: tuple[str, ...]
    env: dict[str, str]
    ready_path: str
    predict_path: str
    body: bytes
    settings: dict[str, str] = field(default_factory=dict)
    start_timeout: float = 120.0
    port: int | None = None  # for servers whose port is in a config file written beforehand
    listeners: int = 1  # processes that each listen on the port (modelward's workers: SO_REUSEPORT)
    cwd: Path = ROOT


def tracking_uri(home: Path) -> str:
    return f"sqlite:///{home / 'mlflow.db'}"


def modelward_system(
    name: str, description: str, home: Path, model: str, *, workers: int = 1, settings: dict[str, str]
) -> System:
    row = NOOP_ROW if model == "noop" else CHURN_ROW
    route = model.split(":")[0].split("@")[0]  # a version is served under its model's name
    cmd: tuple[str, ...] = (sys.executable, "-m", "modelward", "serve", model, "--port", "{port}")
    cmd += ("--workers", str(workers), "--reload-interval", "0", "--no-access-log", "--log-level", "warning")
    env = clean_env(MODELWARD_HOME=str(home), MODELWARD_ACTOR="benchmark", **settings)
    return System(
        name=name,
        description=description,
        cmd=cmd,
        env=env,
        ready_path="/ready",
        predict_path=f"/models/{route}/predict",
        body=json.dumps({"features": row}).encode(),
        settings={**settings, "workers": str(workers), "model": model},
        listeners=workers if hasattr(socket, "SO_REUSEPORT") else 1,
    )


def mlflow_system(home: Path, version: str) -> System:
    mlflow = shutil.which("mlflow") or "mlflow"
    cmd: tuple[str, ...] = (mlflow, "models", "serve", "-m", f"models:/churn/{version}")
    cmd += ("--env-manager", "local", "--host", "127.0.0.1", "-p", "{port}")
    return System(
        name="mlflow",
        description=f"`mlflow models serve -m models:/churn/{version} --env-manager local` (its defaults)",
        cmd=cmd,
        env=clean_env(MLFLOW_TRACKING_URI=tracking_uri(home)),
        ready_path="/ping",
        predict_path="/invocations",
        body=json.dumps({"dataframe_records": [CHURN_ROW]}).encode(),
        settings={"model": f"churn:{version}"},
        start_timeout=180.0,
    )


def _uvicorn(module: str) -> tuple[str, ...]:
    server = (sys.executable, "-m", "uvicorn", module, "--app-dir", str(PEERS), "--host", "127.0.0.1")
    return (*server, "--port", "{port}", "--no-access-log", "--log-level", "warning")


def fastapi_system(home: Path, version: str) -> System:
    return System(
        name="fastapi",
        description="plain FastAPI + pydantic, one-row DataFrame `predict_proba` per request "
        "(benchmarks/peers/plain_fastapi.py)",
        cmd=_uvicorn("plain_fastapi:app"),
        env=clean_env(MLFLOW_TRACKING_URI=tracking_uri(home), MODEL_URI=f"models:/churn/{version}"),
        ready_path="/health",
        predict_path="/predict",
        body=json.dumps(CHURN_ROW).encode(),
        settings={"model": f"churn:{version}"},
    )


def bare_system() -> System:
    return System(
        name="bare-asgi",
        description="bare uvicorn + orjson ASGI app, no-op model (benchmarks/peers/bare_asgi.py)",
        cmd=_uvicorn("bare_asgi:app"),
        env=clean_env(),
        ready_path="/health",
        predict_path="/models/noop/predict",
        body=json.dumps({"features": NOOP_ROW}).encode(),
    )


def listening_sockets(port: int) -> int | None:
    """How many sockets on this machine listen on TCP ``port`` (IPv4 and IPv6); None where there is
    no /proc/net/tcp."""
    tables = [Path("/proc/net/tcp"), Path("/proc/net/tcp6")]
    if not tables[0].exists():
        return None
    count = 0
    for table in tables:
        try:
            lines = table.read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if fields[3] == "0A" and int(fields[1].rsplit(":", 1)[1], 16) == port:
                count += 1
    return count


class Server:
    """A running :class:`System`; ``start`` returns once it answers its ready route and one
    prediction, ``stop`` ends its whole process group."""

    def __init__(self, system: System, log_dir: Path) -> None:
        self.system = system
        self.log_dir = log_dir
        self.port = 0
        self.proc: subprocess.Popen[bytes] | None = None
        self.log_path = log_dir / f"{system.name}.log"
        self.started_in: float | None = None
        self.sample: str | None = None
        self._began = 0.0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        """The launched process (the root of the server's process tree); 0 before launch."""
        return self.proc.pid if self.proc is not None else 0

    @property
    def predict_url(self) -> str:
        return self.url + self.system.predict_path

    def log_tail(self, chars: int = 3000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except OSError:
            return ""

    def launch(self) -> Server:
        """Start the process and return at once (servers of a scenario start side by side)."""
        self.port = self.system.port or free_port()
        self.log_dir.mkdir(parents=True, exist_ok=True)
        cmd = [part.replace("{port}", str(self.port)) for part in self.system.cmd]
        self._began = time.monotonic()
        with self.log_path.open("wb") as log:
            self.proc = subprocess.Popen(
                cmd,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=self.system.env,
                cwd=self.system.cwd,
                start_new_session=True,
            )
        return self

    def wait(self) -> Server:
        """Return once the server answers its ready route and one prediction; else stop it and raise."""
        try:
            self._wait_ready(self._began + self.system.start_timeout)
        except BaseException:
            self.stop()
            raise
        self.started_in = round(time.monotonic() - self._began, 2)
        return self

    def start(self) -> Server:
        return self.launch().wait()

    def _wait_ready(self, deadline: float) -> None:
        assert self.proc is not None
        streak = 0  # several workers share the port: ask until a run of answers is all ready
        with httpx.Client(timeout=5) as client:
            while time.monotonic() < deadline:
                if self.proc.poll() is not None:
                    raise RuntimeError(
                        f"{self.system.name} exited with {self.proc.returncode}:\n{self.log_tail()}"
                    )
                try:
                    ok = httpx.get(self.url + self.system.ready_path, timeout=5).status_code == 200
                except httpx.HTTPError:
                    ok = False
                streak = streak + 1 if ok else 0
                if streak >= 5 and self._all_listening():
                    answer = client.post(
                        self.predict_url,
                        content=self.system.body,
                        headers={"content-type": "application/json"},
                    )
                    if answer.status_code == 200:
                        self.sample = answer.text[:300]
                        return
                    raise RuntimeError(
                        f"{self.system.name} answered {answer.status_code} to a prediction: "
                        f"{answer.text[:500]}"
                    )
                time.sleep(0.1 if ok else 0.3)
        listening = listening_sockets(self.port)
        workers = (
            f" ({listening} of {self.system.listeners} workers listening)" if listening is not None else ""
        )
        raise RuntimeError(
            f"{self.system.name} not ready after {self.system.start_timeout:.0f} s{workers}:\n"
            + self.log_tail()
        )

    def _all_listening(self) -> bool:
        """Every worker listens on the port. A worker listens only once it has loaded, so ready
        answers came from the loaded ones only: a run must not open its connections while only
        some workers take them."""
        if self.system.listeners <= 1:
            return True
        listening = listening_sockets(self.port)
        return listening is None or listening >= self.system.listeners

    def stop(self, grace: float = 20.0) -> None:
        proc = self.proc
        if proc is None:
            return
        family = _descendants(proc.pid)  # workers that moved to groups of their own (BentoML's)
        for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 10.0)):
            if proc.poll() is not None:
                break
            try:
                os.killpg(proc.pid, sig)  # the group this server leads: it and its workers only
            except ProcessLookupError:
                break
            try:
                proc.wait(timeout=wait)
            except subprocess.TimeoutExpired:
                continue
        with contextlib.suppress(ProcessLookupError, PermissionError):  # workers left behind in its group
            os.killpg(proc.pid, signal.SIGKILL)
        for pid, started in family.items():
            if _start_time(pid) == started:  # still the same process, not a reused pid
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(pid, signal.SIGKILL)
        self.proc = None


def _start_time(pid: int) -> str | None:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return None


def _descendants(root: int) -> dict[int, str]:
    """Every process below ``root`` (Linux /proc), with its start time to recognise it later."""
    parents: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir() if Path("/proc").is_dir() else ():
        if entry.name.isdigit():
            try:
                ppid = int(Path(entry, "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            parents.setdefault(ppid, []).append(int(entry.name))
    found: dict[int, str] = {}
    todo = list(parents.get(root, []))
    while todo:
        pid = todo.pop()
        started = _start_time(pid)
        if started is not None:
            found[pid] = started
        todo.extend(parents.get(pid, []))
    return found
