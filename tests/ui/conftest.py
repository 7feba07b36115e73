"""One real server for the dashboard's tests, on a private copy of the churn home, with one-second
live-profile buckets so traffic shows in the drift map within seconds; and what the browser tests
share: headless Chromium, a tab cut off from every other host, screenshots at two widths."""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from tests.serving.conftest import Server, churn_home, server_env, start_server

__all__ = ["churn_home"]

CHROMIUM = Path("/usr/bin/chromium")
SCREENSHOTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "screenshots"
WIDTHS = (1280, 390)


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


def wait_until(condition: Callable[[], object], timeout: float = 30.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"{what} not reached in {timeout} s"
        time.sleep(0.2)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    need_chromium()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox", "--disable-gpu"])
        yield b
        b.close()


class Offline:
    """A browser context whose requests to any host but the server's are aborted (and recorded)."""

    def __init__(self, browser: Any, server: Server, width: int = 1280) -> None:
        self.blocked: list[str] = []
        self.context = browser.new_context(viewport={"width": width, "height": 900})
        here = urlsplit(server.url).hostname

        def route(r: Any) -> None:
            if urlsplit(r.request.url).hostname == here:
                r.continue_()
            else:
                self.blocked.append(r.request.url)
                r.abort()

        self.context.route("**/*", route)
        self.page = self.context.new_page()


def shoot(page: Any, name: str) -> None:
    """Save ``page`` at each width and check that nothing overflows horizontally on the phone."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    for width in WIDTHS:
        page.set_viewport_size({"width": width, "height": 900})
        page.screenshot(path=str(SCREENSHOTS / f"{name}-{width}.png"), full_page=True)
        overflow = page.evaluate(
            "document.documentElement.scrollWidth - document.documentElement.clientWidth"
        )
        assert overflow <= 0, f"{name} overflows by {overflow} px at {width} px"
    page.set_viewport_size({"width": 1280, "height": 900})
