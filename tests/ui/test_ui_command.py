"""``modelward ui`` serves the dashboard on a store without serving any model."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import httpx

from tests.serving.conftest import free_port, server_env


def test_modelward_ui_serves_the_dashboard_without_models(churn_home: Path) -> None:
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "modelward", "ui", "--no-browser", "--port", str(port)],
        env=server_env(churn_home),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 60
        page = None
        while page is None:
            assert proc.poll() is None, proc.communicate()[0].decode()
            assert time.monotonic() < deadline, "modelward ui did not answer in 60 s"
            try:
                page = httpx.get(f"http://127.0.0.1:{port}/ui", timeout=30)
            except httpx.TransportError:
                time.sleep(0.2)
        assert page.status_code == 200
        assert 'data-model="churn"' in page.text
        # no model is served: the prediction routes do not exist
        assert httpx.post(f"http://127.0.0.1:{port}/models/churn/predict", json={}).status_code == 404
    finally:
        proc.terminate()
        proc.wait(timeout=30)
