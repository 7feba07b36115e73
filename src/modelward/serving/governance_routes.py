"""The promotion gates over HTTP.

- ``GET /models/{name}/versions/{version}/validation`` (policy ``predict``): the newest stored
  validation of that version (what ``modelward validate`` printed); 404 problem+json when the version
  was never validated, or the model or version is unknown.
- ``POST /admin/models/{name}/promote`` (policy ``admin``): ``{"version": "2", "alias": "champion",
  "reason": "...", "force": false}``. The version's gates run first (the model's stored policy; its
  ``holdout:`` when it names one); a failure is a 409 problem+json listing the failing gates under
  ``gates`` and moves nothing. ``"force": true`` with a ``reason`` promotes anyway, and the override
  goes to the audit chain with every gate's result. Answers the promoted version and the validation.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from modelward.errors import ConfigError, NotFound
from modelward.governance.gates import latest_validation
from modelward.governance.promotion import promote_gated
from modelward.monitoring.metrics import ServingMetrics
from modelward.registry import DEFAULT_ALIAS, Registry
from modelward.serving.auth import AUTH_KEY, Policy
from modelward.serving.problems import json_response, problem_response
from modelward.serving.rest import check_json
from modelward.validation import parse_json

__all__ = ["add_routes"]

_FIELDS = {"version", "alias", "reason", "force"}
_PROMOTE_BODY: dict[str, Any] = {
    "required": True,
    "content": {
        "application/json": {
            "schema": {
                "title": "GatedPromotion",
                "type": "object",
                "properties": {
                    "version": {"type": "string"},
                    "alias": {"type": "string", "default": DEFAULT_ALIAS},
                    "reason": {"type": "string"},
                    "force": {"type": "boolean", "default": False},
                },
                "required": ["version"],
                "additionalProperties": False,
            }
        }
    },
}


def _body_problem(body: Any) -> str | None:
    if not isinstance(body, dict):
        return 'the body is a JSON object: {"version": "2", "alias": "champion", "reason": "..."}'
    extra = sorted(set(body) - _FIELDS)
    if extra:
        return f"unknown field(s) {', '.join(extra)} (known: {', '.join(sorted(_FIELDS))})"
    if not isinstance(body.get("version"), (str, int)) or isinstance(body.get("version"), bool):
        return 'version is required: a version number such as "2"'
    for key in ("alias", "reason"):
        if body.get(key) is not None and not isinstance(body[key], str):
            return f"{key} must be a string"
    if not isinstance(body.get("force", False), bool):
        return "force must be true or false"
    return None


def add_routes(
    app: FastAPI, registry: Registry, metrics: ServingMetrics, dependencies: dict[Policy, Any]
) -> None:
    def not_found(request: Request, detail: str) -> Response:
        return problem_response(404, "not found", detail, kind="not-found", instance=request.url.path)

    async def get_validation(request: Request, name: str, version: str) -> Response:
        try:
            await run_in_threadpool(registry.version, name, version)
        except NotFound as exc:
            return not_found(request, str(exc))
        found = await run_in_threadpool(latest_validation, registry, name, version)
        if found is None:
            detail = f"{name}:{version} was never validated: run `modelward validate {name}:{version}`"
            return problem_response(404, "not found", detail, kind="no-validation", instance=request.url.path)
        return json_response(found.to_dict())

    async def promote(request: Request, name: str) -> Response:
        check_json(request.headers.get("content-type"))
        body: Any = parse_json(await request.body())
        problem = _body_problem(body)
        if problem is not None:
            return problem_response(
                422, "invalid promotion", problem, kind="invalid-promotion", instance=request.url.path
            )
        version = str(body["version"])
        alias = body.get("alias") or DEFAULT_ALIAS
        try:
            done = await run_in_threadpool(
                lambda: promote_gated(
                    registry, name, version, alias, reason=body.get("reason"), force=body.get("force", False)
                )
            )
        except NotFound as exc:
            return not_found(request, str(exc))
        except ConfigError as exc:
            return problem_response(
                422, "invalid promotion", str(exc), kind="invalid-promotion", instance=request.url.path
            )
        validation = done.validation.to_dict()
        if done.info is None:
            return problem_response(
                409,
                "promotion refused",
                done.refusal(),
                kind="gates-failed",
                instance=request.url.path,
                extra={"gates": [g.to_dict() for g in done.validation.failing], "validation": validation},
            )
        return json_response(
            {**done.info.to_dict(), "alias": alias, "forced": done.forced, "validation": validation}
        )

    app.add_api_route(
        "/models/{name}/versions/{version}/validation",
        get_validation,
        methods=["GET", "HEAD"],
        summary="The newest promotion-gate validation of a version",
        dependencies=[dependencies["predict"]],
        tags=["governance"],
        openapi_extra={AUTH_KEY: "predict"},
    )
    app.add_api_route(
        "/admin/models/{name}/promote",
        promote,
        methods=["POST"],
        summary="Promote a version once its gates pass (force + reason overrides, audited)",
        dependencies=[dependencies["admin"]],
        tags=["governance"],
        openapi_extra={AUTH_KEY: "admin", "requestBody": _PROMOTE_BODY},
    )
