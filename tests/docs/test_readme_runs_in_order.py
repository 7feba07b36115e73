"""The README runs as written, top to bottom: every ```bash block, in order, on a fresh home.

The commands run through bash in a new folder holding a copy of `examples/` (so `./.modelward` and
the example data are new), with the real CLI of this checkout. What the README itself says decides
what runs; a marker is an HTML comment on the line before a block:

- `<!-- run only: `COMMAND`; why -->`: run COMMAND instead of the block (the set-up block: its
  installs are this environment, the quickstart runs at its CI size on a free port, and its test
  suite is what runs this test);
- `<!-- not run: why -->`: shown, not run;
- `<!-- in the background: why -->`: each command starts in the background and is stopped at the
  end; `modelward serve` counts as started once its `/ready` answers 200.

A command whose comment says `(exit N)` must exit N; every other must exit 0. The server listens on a
free port instead of 8000: the test adds `--port` to `modelward serve` and rewrites `localhost:8000`.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from tests.docs.markdown_blocks import Block, blocks, commands_of

import modelward

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
RUN_ONLY = re.compile(r"^`([^`]+)`")
EXIT = re.compile(r"#[^'\"]*\(exit (\d+)\)[^'\"]*$")
DEFAULT_PORT = re.compile(r"\b(localhost|127\.0\.0\.1):8000\b")
SERVE = re.compile(r"\bmodelward serve (\S+)")
COMMAND_TIMEOUT = 600
READY_TIMEOUT = 300


def readme_commands() -> list[tuple[Block, list[str]]]:
    """Each ```bash block of the README with the commands that run for it."""
    out = []
    for block in blocks(README.read_text()):
        if block.lang != "bash":
            continue
        if block.marker == "run only":
            command = RUN_ONLY.match(block.note)
            assert command, f"'run only' names its command in backquotes (README.md line {block.line})"
            out.append((block, [command.group(1)]))
        else:
            out.append((block, [] if block.marker == "not run" else commands_of(block.code)))
    return out


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def environment() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MODELWARD_", "MLFLOW_", "PROMETHEUS_"))}
    src = str(Path(modelward.__file__).resolve().parents[1])
    env["PYTHONPATH"] = os.pathsep.join(p for p in (src, env.get("PYTHONPATH")) if p)
    # `python` and `modelward` are this interpreter's.
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    env["COLUMNS"] = "120"
    # Live profiles reach the store when their bucket ends (60 s by default): `drift --window 1h`
    # right after the traffic would find none when the README runs within one minute. A user waits
    # that minute (the error says so); the test takes one-second buckets instead of waiting.
    env["MODELWARD_PROFILE_BUCKET_SECONDS"] = "1"
    return env


def localize(command: str, port: int) -> str:
    command = SERVE.sub(lambda m: f"modelward serve {m.group(1)} --port {port}", command)
    return DEFAULT_PORT.sub(lambda m: f"{m.group(1)}:{port}", command)


def wait_ready(proc: subprocess.Popen[bytes], port: int, log: Path) -> None:
    deadline = time.monotonic() + READY_TIMEOUT
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(
                f"the server exited with {proc.returncode}:\n{log.read_text(errors='replace')[-4000:]}"
            )
        try:
            if httpx.get(f"http://127.0.0.1:{port}/ready", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    pytest.fail(
        f"the server was not ready after {READY_TIMEOUT} s:\n{log.read_text(errors='replace')[-4000:]}"
    )


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def test_the_readme_marks_few_blocks_and_opens_with_its_two_set_up_commands() -> None:
    runs = readme_commands()
    first, commands = runs[0]
    assert first.marker == "run only"
    assert commands == [
        "MODELWARD_QUICKSTART_SIZE=smoke modelward quickstart --port 0 && modelward audit verify"
    ]
    assert commands_of(first.code) == [
        "pip install -e . && modelward quickstart",
        'pip install -e ".[dev]" && python -m pytest',
    ]
    marked = [b.line for b, _ in runs if b.marker is not None]
    assert len(marked) <= 3, f"README.md marks the blocks at lines {marked}: keep exceptions few"


@pytest.mark.slow
@pytest.mark.timeout(1800)
def test_every_shell_block_of_the_readme_runs_in_order_on_a_fresh_home(tmp_path: Path) -> None:
    work = tmp_path / "readme"
    shutil.copytree(
        ROOT / "examples", work / "examples", ignore=shutil.ignore_patterns("data", "__pycache__")
    )
    env = environment()
    port = free_port()
    background: list[tuple[subprocess.Popen[bytes], Path]] = []
    ran = 0
    try:
        for block, commands in readme_commands():
            for i, written in enumerate(commands):
                command = localize(written, port)
                where = f"README.md line {block.line}: {written}"
                if block.marker == "in the background":
                    log = tmp_path / f"background-{block.line}-{i}.log"
                    proc = subprocess.Popen(
                        ["bash", "-c", f"exec {command}"],
                        cwd=work,
                        env=env,
                        stdout=log.open("wb"),
                        stderr=subprocess.STDOUT,
                        start_new_session=True,
                    )
                    background.append((proc, log))
                    if SERVE.search(command):
                        wait_ready(proc, port, log)
                    continue
                done = subprocess.run(
                    ["bash", "-o", "pipefail", "-c", command],
                    cwd=work,
                    env=env,
                    capture_output=True,
                    text=True,
                    timeout=COMMAND_TIMEOUT,
                )
                ran += 1
                expected = EXIT.search(written)
                wanted = int(expected.group(1)) if expected else 0
                shown = f"{where}\nexit {done.returncode}\n--- stdout\n{done.stdout[-3000:]}\n--- stderr\n{done.stderr[-3000:]}"
                assert done.returncode == wanted, shown
                if written.startswith("curl"):
                    assert "/problems/" not in done.stdout, shown  # an HTTP error answers a problem document
                if written.startswith("modelward deploy "):
                    assert "warning:" not in done.stderr, shown  # no version served against itself
                if "--join-on" in written:
                    assert " 0 unmatched, 0 ambiguous" in done.stdout, shown
    finally:
        for proc, _ in background:
            stop(proc)
    assert ran >= 25, f"only {ran} commands ran: is the README's tour still in ```bash blocks?"
    assert background, "the README serves a model in the background"
