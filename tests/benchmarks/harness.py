"""Running a benchmark script once, as its smoke tests do: from the checkout's root, in this
environment, its output captured and a failure shown with the end of both streams."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def run_benchmark(script: str, *argv: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    """``python benchmarks/<script> *argv``, asserted to exit 0."""
    done = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / script), *argv],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env=dict(os.environ),
        timeout=timeout,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-4000:]
    return done
