"""``GET /models/{name}/card?format=html|md|json&version=|alias=``: a version's model card.

Built on each request (its live status is of the moment): the version given, else the one the alias
points at, else the model's champion (its latest live version without one). HTML by default. An
unknown model, version or alias is a 404 problem, a bad parameter a 422 problem. Policy ``predict``,
like the other read routes.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from modelward.governance.card import CARD_FORMATS, build_card, render_card
from modelward.monitoring.metrics import ServingMetrics
from modelward.registry import Registry
from modelward.registry.refs import ModelRef
from modelward.serving.auth import AUTH_KEY, Policy
from modelward.serving.problems import problem_response

__all__ = ["add_routes"]

_QUERY = frozenset({"format", "version", "alias"})
_MEDIA = {
    "html": "text/html; charset=utf-8",
    "md": "text/markdown; charset=utf-8",
    "json": "application/json",
}


def add_routes(
    app: FastAPI, registry: Registry, metrics: ServingMetrics, dependencies: dict[Policy, Any]
) -> None:
    async def get_card(request: Request, name: str) -> Response:
        params = request.query_params
        unknown = sorted(set(params) - _QUERY)
        fmt = (params.get("format") or "html").lower()
        version, alias = params.get("version") or None, params.get("alias") or None
        problem = None
        if unknown:
            problem = f"unknown query parameter(s) {', '.join(unknown)} (known: {', '.join(sorted(_QUERY))})"
        elif fmt not in CARD_FORMATS:
            problem = f"unknown format '{fmt}' (known: {', '.join(CARD_FORMATS)})"
        elif version is not None and alias is not None:
            problem = "give version or alias, not both"
        elif version is not None and not version.isdigit():
            problem = f"version must be a version number, not '{version}' (use alias= for an alias)"
        if problem is not None:
            return problem_response(
                422, "invalid query", problem, kind="invalid-query", instance=request.url.path
            )

        def answer() -> str:
            ref = ModelRef(name, version, alias)
            card = build_card(registry, str(ref), actor=registry.actor)
            return render_card(card, fmt)

        text = await run_in_threadpool(answer)  # modelward's errors become problems (404, 400)
        return Response(text, media_type=_MEDIA[fmt])

    app.add_api_route(
        "/models/{name}/card",
        get_card,
        methods=["GET", "HEAD"],
        summary="The model card of a version (HTML, Markdown or JSON)",
        dependencies=[dependencies["predict"]],
        tags=["governance"],
        openapi_extra={AUTH_KEY: "predict"},
    )
