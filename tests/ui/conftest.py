"""One real server for the dashboard's tests, on a private copy of the churn home, with one-second
live-profile buckets so traffic shows in the drift map within seconds."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.serving.conftest import Server, churn_home, server_env, start_server

__all__ = ["churn_home"]

CHROMIUM = Path("/usr/bin/chromium")
SCREENSHOTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "screenshots"


@pytest.fixture(scope="package")
def ui_server(churn_home: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    home = tmp_path_factory.mktemp("ui") / "home"
    shutil.copytree(churn_home, home, ignore=shutil.ignore_patterns("server-*.log"))
    env = server_env(
        home,
        MODELWARD_PROFILE_BUCKET_SECONDS="1",
        MODELWARD_CONTROLLER="false",
        MODELWARD_RELOAD_INTERVAL="0.5",
    )
    s = start_server(home, "churn", env=env)
    yield s
    s.stop()


def need_chromium() -> None:
    if not CHROMIUM.exists():
        if os.environ.get("CI"):
            pytest.fail("CI installs Debian's chromium (.ci/run): /usr/bin/chromium is missing")
        pytest.skip("needs a headless browser: apt-get install -y chromium")
    pytest.importorskip("playwright", reason="pip install playwright (the dev extra)")
