"""The dashboard's pages over HTTP: they answer HTML that loads nothing from another host, and the
admin actions refuse requests without a session, without the CSRF token or without confirmation."""

from __future__ import annotations

import re

import httpx

from modelward.routing import DeploymentSpec
from tests.serving.conftest import ADMIN_TOKEN, Server


def test_every_page_answers_html_that_names_no_other_host(ui_server: Server) -> None:
    with ui_server.client() as c:
        for path in (
            "/ui",
            "/ui/models/churn",
            "/ui/models/churn?window=1d&feature=age",
            "/ui/audit",
            "/ui/login",
        ):
            r = c.get(path)
            assert r.status_code == 200, (path, r.text[:2000])
            assert r.headers["content-type"].startswith("text/html")
            assert (
                re.findall(r"(?:https?:)?//[\w.-]+", r.text.replace("http://www.w3.org/2000/svg", "")) == []
            )
        css = c.get("/ui/static/dashboard.css")
        assert css.status_code == 200 and css.headers["content-type"].startswith("text/css")
        missing = c.get("/ui/models/nosuch")
        assert missing.status_code == 404 and "nosuch" in missing.text


def login(c: httpx.Client, token: str) -> httpx.Response:
    return c.post("/ui/login", data={"token": token, "next": "/ui/models/churn"})


def test_admin_actions_need_a_session_its_csrf_token_and_a_confirmation(ui_server: Server) -> None:
    with ui_server.client() as c:
        form = {"version": "2", "alias": "staging", "confirm": "yes"}
        assert c.post("/ui/models/churn/actions/promote", data=form).status_code == 401
        assert login(c, "wrong").status_code == 401
        done = login(c, ADMIN_TOKEN)
        assert done.status_code == 303 and done.headers["location"] == "/ui/models/churn"
        cookie = done.headers["set-cookie"]
        assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Path=/ui" in cookie
        assert ADMIN_TOKEN not in cookie
        assert c.post("/ui/models/churn/actions/promote", data=form).status_code == 403  # no CSRF token
        page = c.get("/ui/models/churn").text
        csrf = re.search(r'name="csrf" value="([0-9a-f]+)"', page)
        assert csrf is not None
        forged = c.post("/ui/models/churn/actions/promote", data={**form, "csrf": "0" * 64})
        assert forged.status_code == 403
        asked = c.post(
            "/ui/models/churn/actions/promote", data={**form, "csrf": csrf.group(1), "confirm": ""}
        )
        assert asked.status_code == 200 and "Promote churn:2 to @staging" in asked.text
        with httpx.Client(base_url=ui_server.url) as other:
            assert other.get("/admin/deployments", headers=ui_server.admin_headers()).status_code == 200
            assert c.get("/ui/login?next=https://evil.example/").status_code == 200
            assert "evil" not in c.get("/ui/login?next=https://evil.example/").text


def test_weights_and_canary_actions_go_through_conditional_deployment_revisions(ui_server: Server) -> None:
    admin = ui_server.admin_headers()
    with ui_server.client() as c:
        ab = {"spec": DeploymentSpec.ab("churn", {"1": 50, "2": 50}).to_dict(), "reason": "ui test"}
        stored = c.put("/admin/deployments/churn", json=ab, headers=admin)
        assert stored.status_code == 200, stored.text
        revision = stored.json()["revision"]
        form = {"weights": "v1=80, v2=20", "revision": str(revision - 1), "confirm": "yes"}
        stale = c.post("/ui/models/churn/actions/weights", data=form, headers=admin)
        assert stale.status_code == 409  # the page showed an older revision: refused, not overwritten
        done = c.post(
            "/ui/models/churn/actions/weights", data={**form, "revision": str(revision)}, headers=admin
        )
        assert done.status_code == 200, done.text
        arms = c.get("/admin/deployments/churn", headers=admin).json()["spec"]["arms"]
        assert [(a["name"], a["weight"]) for a in arms] == [("v1", 80.0), ("v2", 20.0)]
        no_canary = c.post(
            "/ui/models/churn/actions/pause",
            data={"revision": str(revision + 1), "confirm": "yes"},
            headers=admin,
        )
        assert no_canary.status_code == 409 and "not running a canary" in no_canary.text
        canary = {
            "spec": DeploymentSpec.start_canary("churn", 2, baseline="1").to_dict(),
            "reason": "ui test",
        }
        revision = c.put("/admin/deployments/churn", json=canary, headers=admin).json()["revision"]
        for action, state in (("pause", "paused"), ("resume", "running")):
            step = {"revision": str(revision), "confirm": "yes"}
            assert c.post(f"/ui/models/churn/actions/{action}", data=step, headers=admin).status_code == 200
            got = c.get("/admin/deployments/churn", headers=admin).json()
            assert got["spec"]["canary"]["state"] == state
            revision = got["revision"]
        back = {"spec": DeploymentSpec.single("churn").to_dict(), "reason": "ui test done"}
        assert c.put("/admin/deployments/churn", json=back, headers=admin).status_code == 200
