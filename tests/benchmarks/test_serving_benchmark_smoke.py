"""The serving benchmark harness, run end to end at tiny sizes: it must start the real servers,
measure them, and write a results file whose numbers make sense. It measures nothing worth
publishing (one 1-second run per system); docs/benchmarks.md says how to run it properly."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BENCH = ROOT / "benchmarks"


@pytest.fixture
def bench_modules() -> Iterator[None]:
    sys.path.insert(0, str(BENCH))
    yield
    sys.path.remove(str(BENCH))


def _run(args: list[str], timeout: float) -> subprocess.CompletedProcess[str]:
    """Run the harness; on a timeout SIGTERM it first, so it stops the servers it started."""
    proc = subprocess.Popen(
        [sys.executable, str(BENCH / "run.py"), *args],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=60)
        pytest.fail(f"the benchmark took over {timeout} s:\n{err[-4000:]}")
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


@pytest.mark.slow
def test_the_harness_measures_modelward_and_its_peers_and_writes_sane_results(tmp_path: Path) -> None:
    out = tmp_path / "results.json"
    tiny = (
        "--only serving,noop,latency --systems modelward,fastapi,bare-asgi --connections 1 --rounds 1 "
        "--duration 1 --warmup 0.5 --pause 0 --rows 2000 --calls 30 --latency-models logistic_regression --minimal-models"
    )
    done = _run([*tiny.split(), "--work", str(tmp_path / "work"), "--out", str(out)], timeout=170)
    assert done.returncode == 0, done.stderr[-4000:]
    results = json.loads(out.read_text())

    assert results["failures"] == []
    assert results["client"] in ("wrk", "python")
    machine = results["machine"]
    assert machine["cores"] >= 1
    assert machine["python"].count(".") == 2
    assert "modelward" in machine["packages"]
    assert len(machine["load_before"]) == 3 and len(machine["load_after"]) == 3

    summary = results["summary"]
    for scenario, system in (("serving", "modelward"), ("serving", "fastapi"), ("noop", "bare-asgi")):
        entry = summary[scenario][system]["1"]
        assert entry["measured_runs"] == 1, (scenario, system, entry)
        assert entry["rps"] > 0
        assert entry["errors"] == 0
        assert 0 < entry["p50_ms"] <= entry["p99_ms"]
        if sys.platform == "linux":  # CPU per request is read from /proc and the client's rusage
            assert entry["server_cpu_us"] > 0 and entry["client_cpu_us"] > 0
            assert 0 < entry["server_cores"] <= machine["cores"] * 1.1
        assert results["systems"][system]["sample"]  # it answered a real prediction before the load
    assert set(summary["serving"]) == {"modelward", "fastapi"}  # --systems left the others out

    targets = {row["key"]: row for row in results["targets"]}
    p50 = targets["fastapi_p50_1_client"]
    expected = summary["serving"]["modelward"]["1"]["p50_ms"] / summary["serving"]["fastapi"]["1"]["p50_ms"]
    assert p50["value"] == pytest.approx(expected, rel=1e-2)
    assert p50["met"] is (p50["value"] <= 1.0)
    assert targets["mlflow_rps_batching_off"]["met"] is None  # mlflow was not run: no verdict

    latency = results["latency"]["logistic_regression"]
    assert latency["calls"] == 30
    assert latency["native"]["median_us"] > 0
    if latency["compiled"]:
        assert latency["compiled_arrays"]["median_us"] > 0
        assert latency["speedup_arrays"] > 0

    table = out.with_suffix(".md").read_text()
    assert "| serving | modelward | 1 |" in table
    assert "### Ratios against the targets" in table


def test_the_python_load_generator_counts_requests_latencies_and_errors(
    bench_modules: None, tmp_path: Path
) -> None:
    import loadgen
    import servers

    server = servers.Server(servers.bare_system(), tmp_path).start()
    try:
        good = loadgen.run_load(server.predict_url, server.system.body, 2, 1.0, client="python")
        bad = loadgen.run_load(server.predict_url, b'{"features": {}}', 1, 0.5, client="python")
    finally:
        server.stop()
    assert good.client == "python"
    assert good.requests > 10 and good.rps > 10
    assert good.errors == 0 and good.ok
    assert 0 < good.p50_ms <= good.p99_ms <= good.max_ms
    assert bad.requests > 0 and bad.non_2xx == bad.requests and not bad.ok  # 422s are errors
    assert server.proc is None


def test_the_docs_block_is_replaced_in_place_and_other_sections_are_kept(
    bench_modules: None, tmp_path: Path
) -> None:
    import report

    page = tmp_path / "benchmarks.md"
    page.write_text("# Benchmarks\n\nintro\n\n## Serving\n\nhow to read\n\n## Drift\n\ndrift numbers\n")
    report.write_docs(page, "first table\n")
    report.write_docs(page, "second table\n")
    text = page.read_text()
    assert text.count(report.START) == 1
    assert "second table" in text and "first table" not in text
    assert text.index("how to read") < text.index("second table") < text.index("## Drift")
    assert text.endswith("## Drift\n\ndrift numbers\n")


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads /proc")
def test_a_servers_cpu_reading_counts_the_processes_it_started(bench_modules: None) -> None:
    import machine

    # The parent sleeps; its child burns half a second of CPU, then waits for stdin to close.
    child = "import time, sys\nt = time.process_time()\nwhile time.process_time() - t < 0.5: pass\nprint(1, flush=True)\nsys.stdin.read()"
    parent = f"import subprocess, sys\nsubprocess.run([sys.executable, '-c', {child!r}])"
    proc = subprocess.Popen(
        [sys.executable, "-c", parent], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        assert (
            proc.stdout is not None and proc.stdout.readline().strip() == "1"
        )  # the child has burnt its CPU
        tree = machine.process_tree_cpu(proc.pid)
        stat = Path(f"/proc/{proc.pid}/stat").read_text()
        parent_only = sum(map(int, stat[stat.rindex(")") + 2 :].split()[11:13])) / os.sysconf("SC_CLK_TCK")
        missing = machine.process_tree_cpu(2**22 + 1)  # above Linux's largest pid
    finally:
        assert proc.stdin is not None
        proc.stdin.close()
        proc.wait(10)
    assert missing is None
    assert parent_only < 0.4  # the half second is the child's ...
    assert tree is not None and tree >= 0.45  # ... and the tree's reading has it


def test_listening_sockets_counts_every_listener_on_a_port_and_nothing_else(bench_modules: None) -> None:
    import socket

    import servers

    if not hasattr(socket, "SO_REUSEPORT") or servers.listening_sockets(1) is None:
        pytest.skip("needs SO_REUSEPORT and Linux's /proc/net/tcp")
    held: list[socket.socket] = []
    try:
        for _ in range(3):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            sock.bind(("127.0.0.1", held[0].getsockname()[1] if held else 0))
            held.append(sock)
        port = held[0].getsockname()[1]
        assert servers.listening_sockets(port) == 0  # bound, not listening (a worker still loading)
        held[0].listen()
        held[1].listen()
        assert servers.listening_sockets(port) == 2
    finally:
        for sock in held:
            sock.close()
    assert servers.listening_sockets(port) == 0


PEER_VENVS = ROOT / "benchmarks" / ".work" / "venvs"


def test_extra_peers_expand_to_both_forms_and_take_their_knobs(bench_modules: None) -> None:
    import extra_peers

    assert extra_peers.expand(["mlserver", "bentoml-batching:workers=2"]) == [
        "mlserver",
        "mlserver-batching",
        "bentoml-batching:workers=2",
    ]
    form, knobs = extra_peers.parse_spec("mlserver-batching:max_batch_size=8")
    assert form == "mlserver-batching"
    assert knobs == {**extra_peers.BEST["mlserver-batching"], "max_batch_size": "8"}
    with pytest.raises(ValueError, match="unknown extra peer 'torchserve'"):
        extra_peers.expand(["torchserve"])
    with pytest.raises(
        ValueError, match="'max_batch_time=1' is not KNOB=VALUE with a knob of bentoml-batching"
    ):
        extra_peers.parse_spec("bentoml-batching:max_batch_time=1")
    with pytest.raises(ValueError, match=r"max_batch_size wants a whole number above 0, got '1\.5'"):
        extra_peers.parse_spec("mlserver-batching:max_batch_size=1.5")
    assert extra_peers.parse_spec("bentoml-batching:workers=cpu_count")[1]["workers"] == "cpu_count"
    with pytest.raises(ValueError, match="knob of bentoml \\(none\\)"):
        extra_peers.parse_spec("bentoml:workers=2")


@pytest.mark.slow
def test_the_harness_measures_the_batching_forms_of_bentoml_and_mlserver(tmp_path: Path) -> None:
    missing = [
        p for p in ("bentoml", "mlserver") if not (PEER_VENVS / p / "benchmark-packages.json").exists()
    ]
    if missing:
        pytest.skip(
            f"the peers' virtualenvs ({', '.join(missing)}) are not in {PEER_VENVS}: "
            "python benchmarks/run.py --only serving --extra-peers mlserver,bentoml makes them (needs PyPI)"
        )
    out = tmp_path / "results.json"
    peers = "bentoml-batching,mlserver-batching:max_batch_time=0.001"
    tiny = "--only serving --connections 4 --rounds 1 --duration 1 --warmup 0.5 --pause 0 --rows 2000 --minimal-models"
    args = [*tiny.split(), "--systems", peers, "--extra-peers", peers, "--venvs", str(PEER_VENVS)]
    done = _run([*args, "--work", str(tmp_path / "work"), "--out", str(out)], timeout=240)
    assert done.returncode == 0, done.stderr[-4000:]
    results = json.loads(out.read_text())
    assert results["failures"] == []
    for name in peers.split(","):
        entry = results["summary"]["serving"][name]["4"]
        assert entry["rps"] > 0 and entry["errors"] == 0, (name, entry)
        sample = results["systems"][name]["sample"]  # a real prediction, in the peer's own format
        assert "probability" in sample or "predict_proba" in sample, (name, sample)
    assert (
        results["systems"]["mlserver-batching:max_batch_time=0.001"]["settings"]["max_batch_time"] == "0.001"
    )
