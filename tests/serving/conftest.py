"""A real server on a free port, serving real registered churn models, talked to over HTTP."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pandas as pd
import pytest

from modelward.config import Settings

ADMIN_TOKEN = "admin-secret-for-tests"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Server:
    url: str
    home: Path
    env: dict[str, str]
    proc: subprocess.Popen[bytes]
    log_path: Path
    extra: dict[str, object] = field(default_factory=dict)

    def client(self, **kw: object) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=30, **kw)  # type: ignore[arg-type]

    def admin_headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {ADMIN_TOKEN}"}

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self, timeout: float = 30) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return int(self.proc.returncode)


def server_env(home: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MODELWARD_", "MLFLOW_", "PROMETHEUS_"))}
    env.update(
        {"MODELWARD_HOME": str(home), "MODELWARD_ACTOR": "tester", "MODELWARD_ADMIN_TOKEN": ADMIN_TOKEN}
    )
    env.update(extra)
    return env


def start_server(
    home: Path, *args: str, env: dict[str, str] | None = None, timeout: float = 90, wait_ready: bool = True
) -> Server:
    port = free_port()
    env = env or server_env(home)
    log_path = home / f"server-{port}.log"
    handle = log_path.open("wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "modelward", "serve", *args, "--port", str(port)],
        stdout=handle,
        stderr=subprocess.STDOUT,
        env=env,
    )
    server = Server(f"http://127.0.0.1:{port}", home, env, proc, log_path)
    if not wait_ready:
        return server
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}:\n{server.log()}")
        try:
            if _settled(httpx.get(server.url + "/ready", timeout=2)):
                return server
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    server.stop()
    raise RuntimeError(f"server not ready after {timeout} s:\n{server.log()}")


def _settled(ready: httpx.Response) -> bool:
    """Ready, and every model loaded fully: a version started from the compiled cache loads its native
    model right after /ready turns 200 (seconds of CPU and tens of MiB), which tests that measure the
    server's memory or time must not see."""
    if ready.status_code != 200:
        return False
    return not any(m.get("provisional") for m in ready.json().get("models", {}).values())


@pytest.fixture(scope="session")
def churn_home(
    tmp_path_factory: pytest.TempPathFactory, churn_models: dict, churn_frame: pd.DataFrame
) -> Path:
    """A home with churn:1 (logistic regression, champion) and churn:2 (random forest, challenger)."""
    import modelward

    home = tmp_path_factory.mktemp("serving-home")
    settings = Settings(home=home, actor="tester", tracking_uri=f"sqlite:///{home / 'mlflow.db'}")
    modelward.register(
        churn_models["logreg"], "churn", train_data=churn_frame, target="churn", settings=settings
    )
    modelward.register(
        churn_models["forest"], "churn", train_data=churn_frame, target="churn", settings=settings
    )
    modelward.promote("churn", 1, settings=settings)
    modelward.promote("churn", 2, "challenger", settings=settings)
    return home


@pytest.fixture
def home(churn_home: Path, tmp_path: Path) -> Path:
    """A private copy of the served home, so changes made here touch no other test."""
    import shutil

    target = tmp_path / "home"
    shutil.copytree(churn_home, target, ignore=shutil.ignore_patterns("server-*.log"))
    return target


@pytest.fixture(scope="module")
def server(churn_home: Path) -> Iterator[Server]:
    s = start_server(churn_home, "churn", "--reload-interval", "0")
    yield s
    s.stop()
