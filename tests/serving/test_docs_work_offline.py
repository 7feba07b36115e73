"""/docs and /redoc work without the internet: every script, style, icon and the OpenAPI document
they load is served by the server itself, and nothing in the pages points anywhere else."""

from __future__ import annotations

import os
import re
import subprocess
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import urljoin, urlsplit

import pytest

from tests.serving.conftest import Server

CONTENT_TYPES = {
    ".js": "text/javascript",
    ".css": "text/css",
    ".png": "image/png",
    ".json": "application/json",
}


class _Urls(HTMLParser):
    """Every URL an HTML page loads by itself: script sources, links, images, ReDoc's spec-url."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for name, value in attrs:
            if value and name in {"src", "href", "spec-url"}:
                self.urls.append(value)


def page_urls(html: str) -> list[str]:
    parser = _Urls()
    parser.feed(html)
    # Swagger UI's spec address is in its inline start-up script: `url: '/openapi.json'`
    parser.urls += re.findall(r"""\burl:\s*['"]([^'"]+)['"]""", html)
    return parser.urls


@pytest.mark.parametrize(
    ("page", "expected"),
    [
        ("/docs", {".js", ".css", ".png", ".json"}),
        ("/redoc", {".js", ".png", ".json"}),
    ],
)
def test_the_docs_pages_load_every_asset_from_the_server(
    server: Server, page: str, expected: set[str]
) -> None:
    with server.client() as c:
        response = c.get(page)
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/html")
        html = response.text
        urls = page_urls(html)
        base = server.url + page
        here = urlsplit(server.url).netloc
        assert [u for u in urls if urlsplit(urljoin(base, u)).netloc != here] == []
        # Nothing else in the page names another host either (fonts, validator badges, CDNs).
        assert re.findall(r"(?:https?:)?//[\w.-]+", html) == []
        seen: set[str] = set()
        for url in urls:
            suffix = "." + urlsplit(url).path.rsplit(".", 1)[-1]
            asset = c.get(urljoin(base, url))
            assert asset.status_code == 200, url
            assert asset.headers["content-type"].startswith(CONTENT_TYPES[suffix]), (url, asset.headers)
            assert len(asset.content) > 0
            seen.add(suffix)
    assert seen == expected


def test_swagger_ui_does_not_call_the_online_validator(server: Server) -> None:
    with server.client() as c:
        html = c.get("/docs").text
    assert '"validatorUrl": null' in html


def test_a_missing_asset_is_a_problem_not_a_page(server: Server) -> None:
    with server.client() as c:
        missing = c.get("/docs/assets/nope.js")
    assert missing.status_code == 404
    assert missing.headers["content-type"] == "application/problem+json"


CHROMIUM = Path("/usr/bin/chromium")


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
def test_the_docs_pages_render_the_models_schema_in_a_browser_cut_off_from_other_hosts(
    server: Server, page: str, tmp_path: Path
) -> None:
    if not CHROMIUM.exists():
        if os.environ.get("CI"):
            pytest.fail("CI installs Debian's chromium (.ci/run): /usr/bin/chromium is missing")
        pytest.skip("needs a headless browser: apt-get install -y chromium")
    # Every host name but the server's fails to resolve, so a page that needed a CDN stays blank.
    browser = subprocess.run(
        [
            str(CHROMIUM),
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            f"--user-data-dir={tmp_path}",
            "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
            "--virtual-time-budget=10000",
            "--dump-dom",
            server.url + page,
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert browser.returncode == 0, browser.stderr
    # What only the rendered page has: the model's route and its typed request schema.
    assert "/models/churn/predict" in browser.stdout and "ChurnFeatures" in browser.stdout
