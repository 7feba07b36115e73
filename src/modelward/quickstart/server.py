"""The quickstart's server: a real ``modelward serve`` in a process of its own, its controller ticking
fast so that what takes minutes in production (alerts, canary steps) takes seconds here."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

from modelward.errors import ConfigError, ModelwardError

__all__ = ["ALERT_RULES", "QuickServer", "check_port", "start_server"]

# The rules the quickstart's server judges: dataset drift, and an AUC floor from the labels.
ALERT_RULES = """\
notifiers: [{type: log}]
window: 10m
resolve_after: 5s
rules:
  - {kind: dataset_drift, name: quickstart-drift}
  - {kind: performance, name: quickstart-auc, when: roc_auc < %(floor)s, min_labels: %(min_labels)d}
"""
READY_TIMEOUT = 180.0


@dataclass
class QuickServer:
    url: str
    port: int
    proc: subprocess.Popen[bytes]
    log_path: Path

    def log_tail(self, chars: int = 3000) -> str:
        return self.log_path.read_text(errors="replace")[-chars:]

    def stop(self, timeout: float = 60) -> None:
        if self.proc.poll() is not None:
            return
        os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()


def check_port(host: str, port: int) -> int:
    """``port`` if it is free on ``host`` (0: a free one), else :class:`ConfigError` saying what to do."""
    with socket.socket() as s:
        # As the server binds (SO_REUSEADDR): a port whose last connections linger in TIME_WAIT is free.
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError as exc:
            raise ConfigError(
                f"port {port} on {host} is busy ({exc.strerror}): pass --port with another, or --port 0 "
                "for any free port"
            ) from None
        return int(s.getsockname()[1])


def start_server(
    name: str, *, host: str, port: int, folder: Path, env: dict[str, str], keep: bool
) -> QuickServer:
    """``modelward serve NAME`` on ``host:port``, ready (every model loaded) when this returns."""
    log_path = folder / "server.log"
    handle = log_path.open("wb")
    command = [sys.executable, "-m", "modelward", "serve", name, "--host", host, "--port", str(port)]
    proc = subprocess.Popen(
        command,
        stdout=handle,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        env=env,
        start_new_session=True,  # a process group of its own: stopped as one; outlives us with --keep-serving
    )
    handle.close()
    server = QuickServer(f"http://{host}:{port}", port, proc, log_path)
    deadline = time.monotonic() + READY_TIMEOUT
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise ModelwardError(f"the server exited with {proc.returncode}:\n{server.log_tail()}")
        try:
            ready = httpx.get(server.url + "/ready", timeout=2)
            if ready.status_code == 200 and not any(
                m.get("provisional") for m in ready.json().get("models", {}).values()
            ):
                return server
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    server.stop()
    raise ModelwardError(f"the server was not ready after {READY_TIMEOUT:g} s:\n{server.log_tail()}")


def server_env(folder: Path, *, floor: float, min_labels: int) -> dict[str, str]:
    """The environment of the quickstart's server: the user's, with fast ticks and the quickstart's rules."""
    rules = folder / "alerts.yaml"
    rules.write_text(ALERT_RULES % {"floor": floor, "min_labels": min_labels})
    env = dict(os.environ)
    env.update(
        {
            "MODELWARD_ALERTS_FILE": str(rules.resolve()),
            "MODELWARD_CONTROLLER": "true",
            "MODELWARD_CONTROLLER_INTERVAL": "0.5",
            "MODELWARD_MONITOR_INTERVAL": "1",
            "MODELWARD_PROFILE_BUCKET_SECONDS": "1",
            "MODELWARD_RELOAD_INTERVAL": "1",
        }
    )
    return env
