"""Requests generated from the OpenAPI document (schemathesis) never get a 5xx, and every error is
problem+json.

Every operation of the real server's /openapi.json is exercised, admin routes included (the admin
token is sent), with valid and invalid cases drawn from the declared parameters and request bodies:
a bounded number per operation, so that the whole run takes a minute or two.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis import Case
from schemathesis.checks import not_a_server_error

from tests.serving.conftest import ADMIN_TOKEN, Server, start_server

EXAMPLES = 25  # generated cases per operation (and phase)
PROBLEM_JSON = "application/problem+json"


@pytest.fixture(scope="module")
def fuzzed(home: Path) -> Iterator[Server]:
    """A server of its own, on a private home: generated deployments and labels touch no other test."""
    server = start_server(home, "churn", "--reload-interval", "0")
    yield server
    server.stop()


@pytest.fixture(scope="module")
def home(churn_home: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    import shutil

    target = tmp_path_factory.mktemp("fuzz-home") / "home"
    shutil.copytree(churn_home, target, ignore=shutil.ignore_patterns("server-*.log"))
    return target


# Path parameters mostly name what is served (a made-up name only gets a 404), and every request
# carries the admin token (it opens every route), so that the routes behind them are exercised.
CONFIG = f"""
headers = {{ Authorization = "Bearer {ADMIN_TOKEN}" }}

[generation]
max-examples = {EXAMPLES}
with-security-parameters = false

[dictionaries.models]
values = ["churn"]

[dictionaries.versions]
values = ["1", "2"]

[parameters]
"path.name" = {{ dictionary = "models", probability = 0.8 }}
"path.version" = {{ dictionary = "versions", probability = 0.8 }}
"""


@pytest.fixture(scope="module")
def api_schema(fuzzed: Server) -> schemathesis.BaseSchema:
    config = schemathesis.Config.from_str(CONFIG)
    return schemathesis.openapi.from_url(fuzzed.url + "/openapi.json", config=config)


@schemathesis.check
def errors_are_problems(ctx: schemathesis.CheckContext, response: schemathesis.Response, case: Case) -> None:
    """Every 4xx and 5xx answer is RFC 9457 problem+json with its status in the body."""
    if response.status_code < 400:
        return
    ctype = response.headers.get("content-type", [""])[0].split(";")[0].strip()
    if ctype != PROBLEM_JSON:
        raise AssertionError(f"{response.status_code} answered as {ctype!r}, not {PROBLEM_JSON}")
    if case.method.upper() != "HEAD":
        body = response.json()
        if body.get("status") != response.status_code:
            raise AssertionError(f"problem status {body.get('status')} for a {response.status_code}")


schema = schemathesis.pytest.from_fixture("api_schema")


@schema.parametrize()
@settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=True,
    suppress_health_check=list(HealthCheck),
)
def test_generated_requests_get_no_5xx_and_every_error_is_a_problem(case: Case) -> None:
    case.call_and_validate(checks=[not_a_server_error, errors_are_problems], timeout=30)
