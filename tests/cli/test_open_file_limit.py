"""``modelward serve`` makes room for its connection cap in the open-file limit: it raises the soft
limit toward the hard one, and lowers the cap when the hard limit is too low for it (so that the
cap, not the file limit, is what refuses connections)."""

from __future__ import annotations

import subprocess
import sys

import pytest

resource = pytest.importorskip("resource")


def cap_and_soft_limit(soft: int, hard: int, wanted: int) -> tuple[int, int]:
    """In a fresh process with the given limits (lowering a hard limit cannot be undone)."""
    code = (
        "import resource; from modelward.cli.serve_cmds import open_file_limit; "
        f"resource.setrlimit(resource.RLIMIT_NOFILE, ({soft}, {hard})); "
        f"print(open_file_limit({wanted}), resource.getrlimit(resource.RLIMIT_NOFILE)[0])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    cap, soft_after = out.split()
    return int(cap), int(soft_after)


def test_the_soft_limit_is_raised_to_fit_the_cap() -> None:
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < 2048 + 256:
        pytest.skip(f"the hard limit here ({hard}) is below what the test needs")
    assert cap_and_soft_limit(300, 2048 + 256, 2048) == (2048, 2048 + 256)


def test_a_hard_limit_too_low_for_the_cap_lowers_the_cap() -> None:
    assert cap_and_soft_limit(300, 300, 2048) == (300 - 256, 300)
