"""The deployments admin API: read and set each model's traffic spec (policy ``admin``).

- ``GET /admin/deployments``: every stored deployment.
- ``GET /admin/deployments/{name}``: one, with its revision (also as the ``ETag``); 404 without one.
- ``PUT /admin/deployments/{name}``: store a new spec. The body is the spec's JSON
  (``DeploymentSpec.to_dict``, as ``GET`` answers it under ``spec``), or ``{"spec": {...},
  "reason": "..."}``. It is validated (422 naming the problem: a bad field, an unknown version or
  alias, an archived version); ``If-Match: "<revision>"`` makes the write conditional (409 when the
  deployment has moved on since). A spec that serves a version against itself (two arms on one
  version, a shadow of a serving version, a canary of its baseline's) is a 422 unless the envelope
  has ``"allow_same_version": true`` (or ``?allow_same_version=true``); then it is stored and each
  overlap is listed under ``warnings``. Answers the stored deployment with its new revision.
- ``GET /admin/deployments/{name}/status``: what ``modelward deploy status`` shows (``?window=1h``).

Servers pick up a new revision at their next poll, as they do alias moves.
"""

from __future__ import annotations

import re
from typing import Any

from fastapi import FastAPI, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from modelward.control.status import deployment_status
from modelward.control.targets import check_targets, same_version_problems
from modelward.errors import LifecycleError, ModelNotFound, NotFound, SameVersionTargets
from modelward.monitoring.metrics import ServingMetrics
from modelward.registry import Registry
from modelward.registry.deployments import Deployment, StaleDeployment
from modelward.routing import STRATEGIES, DeploymentSpec, RoutingError, parse_duration
from modelward.serving.auth import AUTH_KEY, Policy
from modelward.serving.problems import json_response, problem_response
from modelward.serving.rest import check_json
from modelward.validation import parse_json

__all__ = ["add_routes"]

_IF_MATCH = re.compile(r'^\s*(?:W/)?"?(\d+)"?\s*$')
_ENVELOPE = {"spec", "reason", "allow_same_version"}
_ALLOW = "allow_same_version"


_TARGET = {"type": "string", "description": "a version (3) or an alias (@champion)"}
_SPEC: dict[str, Any] = {
    "title": "DeploymentSpec",
    "type": "object",
    "properties": {
        "model": {"type": "string"},
        "strategy": {"type": "string", "enum": list(STRATEGIES)},
        "arms": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {"name": {"type": "string"}, "target": _TARGET, "weight": {"type": "number"}},
                "required": ["target"],
                "additionalProperties": False,
            },
        },
        "key": {"type": ["string", "null"]},
        "salt": {"type": "string"},
        "shadow": {"anyOf": [_TARGET, {"type": "null"}]},
        "shadow_rate": {"type": "number", "minimum": 0, "maximum": 1},
        "canary": {"type": ["object", "null"]},
    },
    "additionalProperties": False,
}
# For the OpenAPI document: the spec alone, or with the reason for the change.
_PUT_BODY: dict[str, Any] = {
    "required": True,
    "content": {
        "application/json": {
            "schema": {
                "anyOf": [
                    _SPEC,
                    {
                        "title": "DeploymentChange",
                        "type": "object",
                        "properties": {"spec": _SPEC, "reason": {"type": "string"}},
                        "required": ["spec"],
                        "additionalProperties": False,
                    },
                ]
            }
        }
    },
}


def _etag(revision: int) -> dict[str, str]:
    return {"ETag": f'"{revision}"'}


def _answer(
    dep: Deployment,
    resolved: dict[str, str] | None = None,
    status: int = 200,
    warnings: list[str] | None = None,
) -> Response:
    body = dep.to_dict()
    if resolved is not None:
        body["resolved"] = resolved
    if warnings is not None:
        body["warnings"] = warnings
    return json_response(body, status, _etag(dep.revision))


def add_routes(
    app: FastAPI, registry: Registry, metrics: ServingMetrics, dependencies: dict[Policy, Any]
) -> None:
    deployments = registry.deployments

    def invalid(request: Request, detail: str) -> Response:
        return problem_response(
            422, "invalid deployment", detail, kind="invalid-deployment", instance=request.url.path
        )

    def not_found(request: Request, detail: str) -> Response:
        return problem_response(
            404, "not found", detail, kind="deployment-not-found", instance=request.url.path
        )

    async def list_deployments() -> Response:
        found = await run_in_threadpool(deployments.all)
        return json_response({"deployments": [d.to_dict() for d in found]})

    async def get_deployment(request: Request, name: str) -> Response:
        dep = await run_in_threadpool(deployments.get, name)
        if dep is None:
            return not_found(request, f"model '{name}' has no deployment spec (it serves @champion)")
        return _answer(dep)

    async def put_deployment(request: Request, name: str) -> Response:
        expected: int | None = None
        if_match = request.headers.get("if-match")
        if if_match is not None:
            match = _IF_MATCH.match(if_match)
            if match is None:
                detail = f'If-Match {if_match!r} is not a revision: send the ETag of GET, e.g. "3"'
                return problem_response(
                    400, "bad request", detail, kind="bad-if-match", instance=request.url.path
                )
            expected = int(match.group(1))
        check_json(request.headers.get("content-type"))
        body: Any = parse_json(await request.body())  # from_dict names what is wrong with its shape
        reason = request.query_params.get("reason")
        allow: object = request.query_params.get(_ALLOW, "false").lower() in ("true", "1", "yes")
        if isinstance(body, dict) and isinstance(body.get("spec"), dict):
            extra = sorted(set(body) - _ENVELOPE)
            if extra:
                known = ", ".join(sorted(_ENVELOPE))
                return invalid(request, f"unknown field(s) {', '.join(extra)} beside 'spec' (known: {known})")
            if body.get("reason") is not None and not isinstance(body["reason"], str):
                return invalid(request, "reason must be a string")
            reason = body.get("reason") or reason
            allow = body.get(_ALLOW, allow)
            if not isinstance(allow, bool):
                return invalid(request, f"{_ALLOW} must be true or false, got {allow!r}")
            body = body["spec"]
        try:
            spec = DeploymentSpec.from_dict(body, model=name)
        except (RoutingError, TypeError) as exc:
            return invalid(request, str(exc))
        try:
            await run_in_threadpool(registry.model, name)
        except ModelNotFound as exc:
            return not_found(request, str(exc))
        try:
            resolved = await run_in_threadpool(
                lambda: check_targets(registry, spec, allow_same_version=bool(allow))
            )
        except SameVersionTargets as exc:
            detail = f'{exc} (send "{_ALLOW}": true beside "spec", or ?{_ALLOW}=true, to deploy it anyway)'
            return problem_response(
                422,
                "invalid deployment",
                detail,
                kind="invalid-deployment",
                instance=request.url.path,
                extra={"problems": list(exc.problems)},
            )
        except (NotFound, LifecycleError) as exc:
            return invalid(request, str(exc))
        try:
            stored = await run_in_threadpool(
                lambda: deployments.put(spec, reason=reason, expected_revision=expected, action="deploy")
            )
        except StaleDeployment as exc:
            return problem_response(
                409,
                "conflict",
                f"{exc}; GET it again and retry with its ETag",
                kind="stale-deployment",
                instance=request.url.path,
                extra={"revision": exc.found},
            )
        return _answer(stored, resolved, warnings=same_version_problems(spec, resolved))

    async def get_status(request: Request, name: str) -> Response:
        text = request.query_params.get("window", "1h")
        try:
            window = parse_duration(text)
        except RoutingError as exc:
            return problem_response(
                400, "invalid query", str(exc), kind="invalid-query", instance=request.url.path
            )
        try:
            report = await run_in_threadpool(lambda: deployment_status(registry, name, window=window))
        except ModelNotFound as exc:
            return not_found(request, str(exc))
        return json_response(report)

    routes: list[tuple[str, Any, str, str]] = [
        ("/admin/deployments", list_deployments, "GET", "Every model's deployment spec"),
        ("/admin/deployments/{name}", get_deployment, "GET", "A model's deployment spec and revision"),
        (
            "/admin/deployments/{name}",
            put_deployment,
            "PUT",
            "Set a model's deployment spec (If-Match: revision)",
        ),
        (
            "/admin/deployments/{name}/status",
            get_status,
            "GET",
            "Arms, canary progress, window stats, shadow",
        ),
    ]
    for path, endpoint, method, summary in routes:
        body = {"requestBody": _PUT_BODY} if method == "PUT" else {}
        app.add_api_route(
            path,
            endpoint,
            methods=[method, "HEAD"] if method == "GET" else [method],
            summary=summary,
            dependencies=[dependencies["admin"]],
            tags=["deployments"],
            openapi_extra={AUTH_KEY: "admin", **body},
        )
