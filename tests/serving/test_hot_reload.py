"""Alias moves reach a running server: under continuous load, with no failed request, and a version
that cannot be loaded never replaces the one serving."""

from __future__ import annotations

import subprocess
import threading
import time
from pathlib import Path

import httpx
import pytest

from modelward.config import Settings
from modelward.errors import LifecycleError
from tests.serving.conftest import Server, start_server
from tests.serving.test_predict_api import ROW


def _load(server: Server, stop: threading.Event, results: list[tuple[float, float, int, str | None]]) -> None:
    with httpx.Client(base_url=server.url, timeout=30) as c:
        while not stop.is_set():
            started = time.monotonic()
            try:
                r = c.post("/models/churn/predict", json={"features": ROW})
                results.append((started, time.monotonic(), r.status_code, r.headers.get("X-Model-Version")))
            except httpx.HTTPError as exc:
                results.append((started, time.monotonic(), 0, repr(exc)))


@pytest.mark.slow
def test_promote_under_load_switches_with_zero_failed_requests(home: Path) -> None:
    server = start_server(home, "churn", "--reload-interval", "0.5")
    try:
        stop = threading.Event()
        results: list[tuple[float, float, int, str | None]] = []
        threads = [threading.Thread(target=_load, args=(server, stop, results)) for _ in range(4)]
        for t in threads:
            t.start()
        time.sleep(1.5)
        promoted = subprocess.run(
            ["modelward", "promote", "churn", "2", "--reason", "load test"],
            env=server.env,
            capture_output=True,
            text=True,
        )
        assert promoted.returncode == 0, promoted.stderr
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and not any(r[3] == "2" for r in results[-20:]):
            time.sleep(0.1)
        time.sleep(1.5)
        stop.set()
        for t in threads:
            t.join()
    finally:
        server.stop()
    assert len(results) > 50
    failures = [r for r in results if r[2] != 200]
    assert failures == []
    assert {r[3] for r in results} == {"1", "2"}
    first_new = min(end for _, end, _, v in results if v == "2")
    # every request sent after the first answer from version 2 was answered by version 2
    assert all(v == "2" for start, _, _, v in results if start > first_new)
    assert "switched churn from version 1 to 2" in server.log()


def test_admin_reload_switches_at_once_and_needs_the_token(home: Path) -> None:
    import modelward

    server = start_server(home, "churn", "--reload-interval", "0")
    try:
        modelward.promote("churn", 2, settings=Settings(home=home, actor="tester"))
        with server.client() as c:
            assert c.post("/models/churn/predict", json={"features": ROW}).headers["X-Model-Version"] == "1"
            assert c.post("/admin/models/churn/reload").status_code == 401
            r = c.post("/admin/models/churn/reload", headers=server.admin_headers())
            assert r.status_code == 200 and r.json() == {"model": "churn", "version": "2", "changed": True}
            assert c.post("/models/churn/predict", json={"features": ROW}).headers["X-Model-Version"] == "2"
            again = c.post("/admin/models/churn/reload", headers=server.admin_headers())
            assert again.json() == {"model": "churn", "version": "2", "changed": False}
            missing = c.post("/admin/models/nope/reload", headers=server.admin_headers())
            assert missing.status_code == 404
    finally:
        server.stop()


def test_a_version_that_fails_to_load_keeps_the_old_one_serving(
    home: Path, churn_models: dict, churn_frame
) -> None:
    import modelward

    settings = Settings(home=home, actor="tester")
    info = modelward.register(
        churn_models["logreg"], "churn", train_data=churn_frame, target="churn", settings=settings
    )
    from modelward.api import open_registry

    with open_registry(settings) as registry:
        run_root = Path(registry.client.get_run(info.run_id).info.artifact_uri.removeprefix("file://"))
    # corrupt version 3's reference profile: its pins no longer match, so it must not load
    profile = run_root / info.tags["modelward.artifacts"] / "reference_profile.json"
    profile.write_text(profile.read_text().replace('"n_rows":2000', '"n_rows":1'))
    server = start_server(home, "churn", "--reload-interval", "0")
    try:
        # The integrity gate refuses it; forced past the gates (audited), the alias moves to a version
        # the server cannot load.
        with pytest.raises(LifecycleError, match="integrity"):
            modelward.promote("churn", info.version, settings=settings)
        modelward.promote("churn", info.version, force=True, reason="load failure drill", settings=settings)
        with server.client() as c:
            r = c.post("/admin/models/churn/reload", headers=server.admin_headers())
            assert r.status_code == 500
            assert r.json()["serving_version"] == "1" and "changed since registration" in r.json()["detail"]
            ok = c.post("/models/churn/predict", json={"features": ROW})
            assert ok.status_code == 200 and ok.headers["X-Model-Version"] == "1"
            metrics = c.get("/metrics").text
        assert 'modelward_model_reload_failures_total{model="churn"} 1.0' in metrics
        assert "loading churn:3 failed, still serving version 1" in server.log()
    finally:
        server.stop()
