"""``GET /alerts``: the alerts firing now, or the alert history with ``?all=true``.

Policy ``predict``: the answer is read-only and carries no secret (notifiers appear by name, never
by URL), so whoever may call the models may also see what is wrong with them, and a dashboard can
show it without the admin token (admin routes are refused outright when no admin token is set).
It is not ``public`` because messages name features, metrics and versions.

Query parameters: ``all`` (true: history instead of active alerts), ``model`` (one model's alerts),
``limit`` (history rows, 1 to 1,000, default 100).
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from modelward.monitoring.alerts import AlertCenter
from modelward.monitoring.metrics import ServingMetrics
from modelward.registry import Registry
from modelward.serving.auth import AUTH_KEY, Policy
from modelward.serving.problems import json_response, problem_response

__all__ = ["add_routes"]

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}
_KNOWN = {"all", "model", "limit"}


def add_routes(
    app: FastAPI, registry: Registry, metrics: ServingMetrics, dependencies: dict[Policy, Any]
) -> None:
    center = AlertCenter(registry.store, ())  # reads only: no notifier is ever called here

    def bad(request: Request, detail: str) -> Response:
        return problem_response(400, "invalid query", detail, kind="invalid-query", instance=request.url.path)

    async def list_alerts(request: Request) -> Response:
        params = request.query_params
        unknown = sorted(set(params) - _KNOWN)
        if unknown:
            return bad(request, f"unknown query parameter(s) {', '.join(unknown)} (known: all, model, limit)")
        flag = params.get("all", "false").strip().lower()
        if flag not in _TRUE | _FALSE:
            return bad(request, f"all={params['all']!r}: use true or false")
        model = params.get("model") or None
        try:
            limit = int(params.get("limit", "100"))
        except ValueError:
            return bad(request, f"limit={params['limit']!r} is not an integer")
        if not 1 <= limit <= 1000:
            return bad(request, f"limit={limit} must be between 1 and 1000")
        if flag in _TRUE:
            events = await run_in_threadpool(center.history, limit, model)
            return json_response({"history": [e.to_dict() for e in events]})
        active = await run_in_threadpool(center.active, model)
        return json_response({"alerts": [a.to_dict() for a in active]})

    app.add_api_route(
        "/alerts",
        list_alerts,
        methods=["GET", "HEAD"],
        summary="Alerts firing now (?all=true: the alert history)",
        dependencies=[dependencies["predict"]],
        tags=["monitoring"],
        openapi_extra={AUTH_KEY: "predict"},
    )
