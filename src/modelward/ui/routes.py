"""The dashboard's routes under ``/ui``: pages (policy ``predict``), the login form and the style
sheet (``public``), admin actions (``admin``, with CSRF and a confirmation step).

Pages accept what the ``predict`` routes accept (no token when no prediction token is set; else the
bearer header) and also a dashboard session (:mod:`modelward.ui.session`): a browser cannot send a
bearer header from a link. Admin actions need an admin session with the form's CSRF token, or the
admin bearer token (scripts; a browser never sends that header by itself).
"""

from __future__ import annotations

from datetime import UTC, datetime
from importlib.resources import files
from typing import Any
from urllib.parse import parse_qsl, quote

from fastapi import FastAPI, Request
from jinja2 import Environment, PackageLoader, select_autoescape
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.responses import HTMLResponse, RedirectResponse, Response

from modelward.errors import ModelNotFound, ModelwardError
from modelward.governance.card import build_card, render_card
from modelward.registry import Registry
from modelward.registry.refs import ModelRef
from modelward.serving.auth import AUTH_KEY, bearer_matches, policy_tokens
from modelward.ui.actions import ACTIONS, ActionRequest, describe, parse_weights, perform
from modelward.ui.audit_view import AuditView
from modelward.ui.board import Board
from modelward.ui.page import model_page
from modelward.ui.session import COOKIE, SESSION_SECONDS, Sessions

__all__ = ["add_ui_routes"]

PREFIX = "/ui"
_CSS = files("modelward.ui").joinpath("static/dashboard.css").read_bytes


def _templates() -> Environment:
    env = Environment(loader=PackageLoader("modelward.ui", "templates"), autoescape=select_autoescape())
    env.filters["pct"] = lambda v: "\u2013" if v is None else f"{v:.1%}"
    env.filters["num"] = lambda v, f="{:.3g}": "\u2013" if v is None else f.format(v)
    env.filters["q"] = lambda v: quote(str(v), safe="")
    env.filters["when"] = _when
    return env


def _when(ts: float | None) -> str:
    """UNIX seconds as the audit timeline shows time: UTC, to the second."""
    if ts is None:
        return "\u2013"
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def add_ui_routes(
    app: FastAPI,
    registry: Registry,
    *,
    admin_token: str | None,
    predict_token: str | None,
    refresh: int = 0,
) -> Board:
    """Add the dashboard to ``app``; ``refresh`` > 0 reloads the read-only pages every so many seconds.
    Returns the pages' :class:`Board`, which start-up reads once (:func:`~modelward.ui.page.warm`)."""
    env = _templates()
    board = Board(registry)
    audit = AuditView(registry.audit)
    sessions = Sessions(admin_token, predict_token)
    page_tokens = policy_tokens("predict", admin_token=admin_token, predict_token=predict_token)
    admin_tokens = policy_tokens("admin", admin_token=admin_token, predict_token=predict_token)

    def header(request: Request) -> bytes | None:
        value = request.headers.get("authorization")
        return value.encode("latin-1") if value is not None else None

    async def may_read(request: Request) -> None:
        if not page_tokens or sessions.role(request.cookies.get(COOKIE)) is not None:
            return
        if bearer_matches(header(request), page_tokens):
            return
        target = quote(request.url.path + (f"?{request.url.query}" if request.url.query else ""), safe="")
        raise HTTPException(303, "log in", headers={"Location": f"{PREFIX}/login?next={target}"})

    def render(request: Request, template: str, status: int = 200, **context: Any) -> HTMLResponse:
        cookie = request.cookies.get(COOKIE)
        admin = sessions.is_admin(cookie)
        body = env.get_template(template).render(
            prefix=PREFIX,
            admin=admin,
            logged_in=sessions.role(cookie) is not None,
            login_possible=sessions.enabled,
            csrf=sessions.csrf(cookie) if admin and cookie else "",
            refresh=refresh if template in ("overview.html", "model.html") else 0,
            **context,
        )
        return HTMLResponse(body, status, headers={"Cache-Control": "no-store"})

    async def overview(request: Request) -> Response:
        rows = await run_in_threadpool(board.overview)
        return render(request, "overview.html", rows=rows, title="Models")

    async def model(request: Request, name: str) -> Response:
        q = request.query_params
        try:
            data = await run_in_threadpool(
                lambda: model_page(board, name, window=q.get("window", "1h"), feature=q.get("feature"))
            )
        except ModelNotFound as exc:
            return render(request, "message.html", 404, title="Not found", message=str(exc))
        return render(request, "model.html", title=name, actions=ACTIONS, **data)

    async def card(request: Request, name: str) -> Response:
        # The card inside the dashboard: the page's session opens it (the REST route /models/{name}/card
        # wants a bearer token when a prediction token is set) and `modelward ui` has no REST routes.
        version = request.query_params.get("version") or None
        if version is not None and not version.isdigit():
            message = f"version must be a version number, not {version!r}"
            return render(request, "message.html", 422, title="Invalid", message=message)

        def answer() -> str:
            built = build_card(registry, str(ModelRef(name, version, None)), actor=registry.actor)
            return render_card(built, "html")

        try:
            text = await run_in_threadpool(answer)
        except ModelwardError as exc:
            status = 404 if isinstance(exc, LookupError) else 422
            return render(request, "message.html", status, title="Model card", message=str(exc))
        return HTMLResponse(text, headers={"Cache-Control": "no-store"})

    async def audit_page(request: Request) -> Response:
        q = request.query_params
        filters = {k: q.get(k) or None for k in ("subject", "action", "actor")}
        data = await run_in_threadpool(lambda: audit.page(**filters))
        return render(request, "audit.html", title="Audit", filters=filters, **data)

    async def login_form(request: Request) -> Response:
        return render(
            request, "login.html", title="Log in", next=_safe_next(request.query_params.get("next"))
        )

    async def login(request: Request) -> Response:
        form = await _form(request)
        role = sessions.role_of_token(str(form.get("token") or ""))
        target = _safe_next(str(form.get("next") or ""))
        if role is None:
            return render(request, "login.html", 401, title="Log in", next=target, wrong=True)
        response = RedirectResponse(target, 303)
        response.set_cookie(
            COOKIE,
            sessions.issue(role),
            max_age=SESSION_SECONDS,
            path=PREFIX,
            httponly=True,
            samesite="strict",
            secure=request.url.scheme == "https",
        )
        return response

    async def logout(request: Request) -> Response:
        response = RedirectResponse(PREFIX, 303)
        response.delete_cookie(COOKIE, path=PREFIX)
        return response

    async def css() -> Response:
        return Response(_CSS(), media_type="text/css", headers={"Cache-Control": "max-age=300"})

    async def action(request: Request, name: str, action: str) -> Response:
        if admin_token is None:
            return render(
                request,
                "message.html",
                403,
                title="Refused",
                message="admin actions are disabled: start the server with MODELWARD_ADMIN_TOKEN set",
            )
        form = await _form(request)
        cookie = request.cookies.get(COOKIE)
        by_header = bearer_matches(header(request), admin_tokens)
        if not by_header and not sessions.is_admin(cookie):
            return render(
                request, "message.html", 401, title="Refused", message="log in with the admin token first"
            )
        if not by_header and not sessions.csrf_matches(cookie, str(form.get("csrf") or "")):
            return render(
                request,
                "message.html",
                403,
                title="Refused",
                message="the form's CSRF token is missing or wrong: reload the page",
            )
        if action not in ACTIONS:
            return render(request, "message.html", 404, title="Not found", message=f"no action {action!r}")
        try:
            r = ActionRequest(
                model=name,
                action=action,
                version=str(form.get("version") or "").strip(),
                alias=str(form.get("alias") or "").strip() or "champion",
                weights=parse_weights(str(form.get("weights"))) if action == "weights" else (),
                revision=int(str(form.get("revision") or "0")),
                reason=str(form.get("reason") or "").strip(),
            )
        except (ModelwardError, ValueError) as exc:
            return render(request, "message.html", 422, title="Invalid", message=str(exc))
        if form.get("confirm") != "yes":
            return render(
                request, "confirm.html", title="Confirm", request_=r, fields=dict(form), what=describe(r)
            )
        try:
            done = await run_in_threadpool(perform, registry, r)
        except ModelwardError as exc:
            board.forget()
            return render(request, "message.html", 409, title="Refused", message=str(exc), back=name)
        board.forget()
        return render(request, "message.html", title="Done", message=done, back=name)

    read: list[tuple[str, Any]] = [
        ("", overview),
        ("/models/{name}", model),
        ("/models/{name}/card", card),
        ("/audit", audit_page),
    ]
    for path, endpoint in read:
        app.add_api_route(
            PREFIX + path,
            endpoint,
            methods=["GET", "HEAD"],
            include_in_schema=False,
            dependencies=[_depends(may_read)],
            openapi_extra={AUTH_KEY: "predict"},
        )
    public: list[tuple[str, Any, str]] = [
        ("/login", login_form, "GET"),
        ("/login", login, "POST"),
        ("/logout", logout, "POST"),
        ("/static/dashboard.css", css, "GET"),
    ]
    for path, endpoint, method in public:
        methods = ["GET", "HEAD"] if method == "GET" else [method]
        app.add_api_route(
            PREFIX + path,
            endpoint,
            methods=methods,
            include_in_schema=False,
            openapi_extra={AUTH_KEY: "public"},
        )
    app.add_api_route(
        PREFIX + "/models/{name}/actions/{action}",
        action,
        methods=["POST"],
        include_in_schema=False,
        openapi_extra={AUTH_KEY: "admin"},
    )
    return board


async def _form(request: Request) -> dict[str, str]:
    """An HTML form's fields (``application/x-www-form-urlencoded``, what the pages send)."""
    body = await request.body()
    return dict(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))


def _depends(check: Any) -> Any:
    from fastapi import Depends

    return Depends(check)


def _safe_next(target: str | None) -> str:
    """Only a path of the dashboard itself: never an open redirect to another site."""
    if target and target.startswith(PREFIX) and not target.startswith("//") and "\\" not in target:
        return target
    return PREFIX
