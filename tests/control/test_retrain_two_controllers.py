"""Two controllers in two processes on one store, both acting as if they held the lease (a lease
that lapsed mid-tick): each scheduled incident is retrained exactly once, never twice, on SQLite and
on PostgreSQL."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

from modelward.control.retrain_runs import RetrainRuns
from modelward.governance.reports import VersionReports
from modelward.store import Store

WORKER = Path(__file__).with_name("retrain_worker.py")
SRC = Path(__file__).resolve().parents[2] / "src"


def _wait_for(paths: list[Path], procs: list[subprocess.Popen[str]], timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not all(p.exists() for p in paths):
        for proc in procs:
            if proc.poll() is not None:
                raise AssertionError(f"a worker ended early: {proc.communicate()}")
        assert time.monotonic() < deadline, "the workers did not get ready"
        time.sleep(0.01)


def test_two_controllers_retrain_each_incident_once(store_url: str, tmp_path: Path) -> None:
    store = Store(store_url).open()
    store.migrate()
    counter = tmp_path / "trained.txt"
    command = [sys.executable, "-c", f"open({str(counter)!r}, 'a').write('run\\n')"]
    body = {"retrain": {"schedule": "0 * * * *", "cooldown": "30m", "command": command}}
    set_at = VersionReports(store).set_policy("churn", json.dumps(body), actor="tester").updated_at
    due = (int(set_at) // 3600 + 2) * 3600.0
    # Two incidents (two due times), each seen by both controllers at several ticks.
    moments = [due + 600, due + 660, due + 720, due + 3600 + 600, due + 3600 + 660]
    go = tmp_path / "go"
    env = {**os.environ, "PYTHONPATH": f"{SRC}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    procs, ready = [], []
    for i in (1, 2):
        ready.append(tmp_path / f"ready{i}")
        argv = [sys.executable, str(WORKER), store_url, str(tmp_path), str(ready[-1]), str(go)]
        procs.append(
            subprocess.Popen(
                argv + [str(m) for m in moments],
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
        )
    try:
        _wait_for(ready, procs)
        go.touch()
        outputs = [proc.communicate(timeout=120) for proc in procs]
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
    for proc, (_, err) in zip(procs, outputs, strict=True):
        assert proc.returncode == 0, err
    started = [s for out, _ in outputs for line in out.splitlines() for s in json.loads(line)]
    assert sorted(s["figures"]["due"] for s in started) == [due, due + 3600]
    runs = RetrainRuns(store).history("churn")
    assert [r.status for r in runs] == ["succeeded", "succeeded"]
    assert counter.read_text().splitlines() == ["run", "run"]
    store.close()
