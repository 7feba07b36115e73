"""The dashboard's other admin actions and its shadow section in headless Chromium, cut off from every
host but the server: a rollback through the page (log in, confirm) moves ``@champion`` back in the
registry and shows in the audit timeline, and without a session the same form is refused and moves
nothing; new A/B weights through the page become the stored deployment; with a shadow arm and real
traffic, the model page shows the agreement the admin status route reports; a version's card link
opens its card inside the dashboard, fitting a phone. Each test leaves the shared server as it found
it (churn single-armed on ``@champion`` -> 1)."""

from __future__ import annotations

import re
from typing import Any

import httpx
import pandas as pd

from modelward.config import Settings
from modelward.routing import DeploymentSpec
from tests.serving.conftest import ADMIN_TOKEN, Server
from tests.ui.conftest import SCREENSHOTS, Offline, shoot, wait_until


def champion(server: Server) -> str:
    """Where ``@champion`` points, read from the registry itself (not from the page under test)."""
    from modelward.registry import Registry

    settings = Settings(home=server.home, tracking_uri=f"sqlite:///{server.home / 'mlflow.db'}")
    with Registry.from_settings(settings).open() as registry:
        return registry.model("churn").aliases["champion"]


def log_in(page: Any, server: Server) -> None:
    page.goto(server.url + "/ui/login?next=/ui/models/churn")
    page.fill("input[name=token]", ADMIN_TOKEN)
    page.click("button[type=submit]")
    page.wait_for_url(re.compile(r"/ui/models/churn$"))


def deploy(c: httpx.Client, server: Server, spec: DeploymentSpec) -> int:
    r = c.put(
        "/admin/deployments/churn",
        json={"spec": spec.to_dict(), "reason": "browser test"},
        headers=server.admin_headers(),
    )
    assert r.status_code == 200, r.text
    return int(r.json()["revision"])


def test_a_rollback_through_the_page_moves_the_champion_back_and_is_audited(
    browser: Any, ui_server: Server
) -> None:
    with ui_server.client() as c:
        promoted = c.post(
            "/admin/models/churn/promote",
            json={"version": "2", "alias": "champion", "reason": "to roll back in the browser"},
            headers=ui_server.admin_headers(),
        )
        assert promoted.status_code == 200, promoted.text
    assert champion(ui_server) == "2"

    # Without a session, the rollback form posted from the dashboard's own origin is refused.
    anonymous = Offline(browser, ui_server)
    page = anonymous.page
    page.goto(ui_server.url + "/ui/models/churn")
    assert page.locator("form[action$='/actions/rollback']").count() == 0
    page.set_content(
        f'<form method="post" action="{ui_server.url}/ui/models/churn/actions/rollback">'
        '<input name="alias" value="champion"><input name="confirm" value="yes"><button>go</button></form>'
    )
    with page.expect_navigation() as refused:
        page.click("button")
    assert refused.value.status == 401
    assert "log in with the admin token first" in page.content()
    assert champion(ui_server) == "2"
    assert anonymous.blocked == []
    anonymous.context.close()

    tab = Offline(browser, ui_server)
    page = tab.page
    log_in(page, ui_server)
    form = page.locator("form[action$='/actions/rollback']")
    assert form.locator("input[name=alias]").input_value() == "champion"
    form.locator("button").click()
    assert (
        "Roll @champion of churn back to the version it held before" in page.locator(".message").inner_text()
    )
    assert champion(ui_server) == "2"  # the confirmation step alone moves nothing
    shoot(page, "confirm-rollback")
    page.click("button.danger")
    assert "@champion of churn is back on version 1" in page.locator(".message").inner_text()
    assert champion(ui_server) == "1"

    page.goto(ui_server.url + "/ui/audit?subject=churn&action=rollback")
    assert page.locator(".verify.ok").count() == 1
    newest = page.locator("li.event").first.inner_text()
    assert "rollback" in newest and "churn:1" in newest, newest
    assert tab.blocked == []
    tab.context.close()


def test_new_weights_through_the_page_become_the_stored_deployment(browser: Any, ui_server: Server) -> None:
    with ui_server.client() as c:
        revision = deploy(c, ui_server, DeploymentSpec.ab("churn", {"1": 50, "2": 50}))
        tab = Offline(browser, ui_server)
        page = tab.page
        log_in(page, ui_server)
        form = page.locator("form[action$='/actions/weights']")
        assert form.locator("input[name=revision]").input_value() == str(revision)
        form.locator("input[name=weights]").fill("v1=70, v2=30")
        form.locator("button").click()
        assert f"(revision {revision}) to v1 70, v2 30" in page.locator(".message").inner_text()
        page.click("button.danger")
        assert f"revision {revision + 1} stored" in page.locator(".message").inner_text()
        stored = c.get("/admin/deployments/churn", headers=ui_server.admin_headers()).json()
        assert stored["revision"] == revision + 1
        assert [(a["name"], a["weight"]) for a in stored["spec"]["arms"]] == [("v1", 70.0), ("v2", 30.0)]
        assert tab.blocked == []
        tab.context.close()
        deploy(c, ui_server, DeploymentSpec.single("churn"))


def test_the_model_page_shows_the_shadow_agreement_the_status_route_reports(
    browser: Any, ui_server: Server, churn_frame: pd.DataFrame
) -> None:
    n = 120
    rows = churn_frame.drop(columns=["churn"]).iloc[:n].to_dict(orient="records")
    admin = ui_server.admin_headers()
    with ui_server.client() as c:
        deploy(c, ui_server, DeploymentSpec.single("churn").with_shadow("@challenger"))
        wait_until(
            lambda: c.get("/models/churn").json()["deployment"]["shadow"] is not None,
            what="the server serving the shadow arm",
        )
        for start in range(0, n, 40):
            r = c.post("/models/churn/predict", json={"instances": rows[start : start + 40]})
            assert r.status_code == 200, r.text

        def reported() -> dict[str, Any] | None:
            got = c.get("/admin/deployments/churn/status?window=15m", headers=admin).json()
            agreement: dict[str, Any] = got["shadow_agreement"]
            return agreement if agreement["compared"] == n else None

        wait_until(reported, 30, f"{n} shadow answers compared")
        status = reported()
        assert status is not None and status["agreement"] is not None
        assert status["shadow_versions"] == ["2"] and status["primary_versions"] == ["1"]

        tab = Offline(browser, ui_server)
        page = tab.page
        page.goto(ui_server.url + "/ui/models/churn")
        section = page.locator("section#shadow")

        def shown() -> bool:
            if "Being computed" not in section.inner_text():
                return True
            page.reload()
            return False

        wait_until(shown, 30, "the shadow section computed")
        text = section.inner_text()
        assert f"{n} requests compared" in text, text
        assert f"agreement {status['agreement']:.1%}" in text, text
        assert "v2 shadowing v1" in text, text
        section.screenshot(path=str(SCREENSHOTS / "model-shadow-section.png"))  # docs/dashboard.md
        shoot(page, "model-shadow")
        assert tab.blocked == []
        tab.context.close()
        deploy(c, ui_server, DeploymentSpec.single("churn"))


def test_a_versions_card_opens_inside_the_dashboard(browser: Any, ui_server: Server) -> None:
    tab = Offline(browser, ui_server)
    page = tab.page
    page.goto(ui_server.url + "/ui/models/churn")
    with page.expect_navigation() as opened:
        page.locator("table.versions tr", has_text="@challenger").get_by_role("link", name="card").click()
    assert opened.value.status == 200
    assert page.url.endswith("/ui/models/churn/card?version=2")
    assert page.title() == "Model card: churn:2"
    shoot(page, "card")  # long hashes and paths wrap on the phone
    assert tab.blocked == []
    with ui_server.client() as c:
        assert c.get("/ui/models/churn/card?version=x").status_code == 422
        assert c.get("/ui/models/churn/card?version=99").status_code == 404
        assert c.get("/ui/models/nosuch/card").status_code == 404
    tab.context.close()
