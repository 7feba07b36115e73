"""`modelward deploy` refuses a deployment that would serve one version against itself: two arms
resolving to the same version, a shadow of a version already serving, a canary of its baseline's
version. `--allow-same-version` stores it anyway and says so on stderr (an A/A test is legitimate)."""

from __future__ import annotations

import json

import pytest
from tests.cli.test_deploy_cli import run

from modelward.registry import Registry


@pytest.fixture
def both_aliases_on_2(churn: Registry) -> Registry:
    """What the README's order used to produce: 2 promoted to champion while it is also challenger."""
    churn.promote("churn", 2, reason="better AUC")
    return churn


SAME = [
    (
        ("--ab", "champion=50", "challenger=50"),
        "arms champion (@champion) and challenger (@challenger) both resolve to version 2",
    ),
    (("--ab", "champion=50", "2=50"), "arms champion (@champion) and v2 (2) both resolve to version 2"),
    (("--shadow", "2"), "the shadow 2 is version 2, which arm primary (@champion) already serves"),
    (("--single", "1", "--shadow", "v1"), "the shadow 1 is version 1, which arm primary (1) already serves"),
    (("--canary", "2"), "a canary of version 2, which its baseline @champion already serves"),
]


@pytest.mark.parametrize(("argv", "message"), SAME, ids=lambda v: " ".join(v) if isinstance(v, tuple) else "")
def test_deploy_refuses_a_version_served_against_itself(
    both_aliases_on_2: Registry, capsys: pytest.CaptureFixture[str], argv: tuple[str, ...], message: str
) -> None:
    code, out, err = run(capsys, "deploy", "churn", *argv)
    assert code == 1, out
    assert message in err, err
    assert "--allow-same-version" in err
    assert err.count("\n") == 1 and "Traceback" not in err, err
    assert both_aliases_on_2.deployments.get("churn") is None


@pytest.mark.parametrize(("argv", "message"), SAME, ids=lambda v: " ".join(v) if isinstance(v, tuple) else "")
def test_allow_same_version_stores_it_with_a_warning(
    both_aliases_on_2: Registry, capsys: pytest.CaptureFixture[str], argv: tuple[str, ...], message: str
) -> None:
    code, out, err = run(capsys, "deploy", "churn", *argv, "--allow-same-version")
    assert code == 0, err
    assert f"warning: {message}" in err, err
    assert both_aliases_on_2.deployments.get("churn") is not None

    code, out, err = run(capsys, "deploy", "churn", *argv, "--allow-same-version", "--json")
    assert code == 0, err
    found = json.loads(out)
    assert any(message in w for w in found["warnings"]), found["warnings"]


def test_distinct_versions_deploy_without_warnings(
    churn: Registry, capsys: pytest.CaptureFixture[str]
) -> None:
    for argv in (
        ("--shadow", "2"),  # @champion (1) serves, 2 is mirrored
        ("--ab", "champion=50", "challenger=50", "--no-shadow"),
        ("--canary", "2"),
        ("--single", "--shadow", "@challenger"),
    ):
        code, out, err = run(capsys, "deploy", "churn", *argv, "--json")
        assert code == 0, (argv, err)
        assert json.loads(out)["warnings"] == [], argv
        assert err == "", err


def test_a_kept_shadow_that_now_serves_is_refused_naming_no_shadow(
    churn: Registry, capsys: pytest.CaptureFixture[str]
) -> None:
    """Options not given keep their value: after 2 is promoted, the stored shadow 2 mirrors the
    champion itself, so the next change says how to drop it."""
    assert run(capsys, "deploy", "churn", "--shadow", "2")[0] == 0
    churn.promote("churn", 2)
    code, _, err = run(capsys, "deploy", "churn", "--key", "customer_id")
    assert code == 1
    assert "the shadow 2 is version 2, which arm primary (@champion) already serves" in err, err
    assert "--no-shadow" in err
    code, _, err = run(capsys, "deploy", "churn", "--key", "customer_id", "--no-shadow")
    assert code == 0, err
