"""Retraining over HTTP (docs/loop.md, "Retraining: triggers and actions").

- ``POST /admin/models/{name}/retrain`` (policy ``admin``): ``{"reason": "..."}``. Queues a manual run
  of the model's retraining action for the controller (the one in this server, or a
  ``modelward controller``), under the same guard as every run: 202 with the run; 409 problem+json
  when a run of the model is already queued or running; 422 when the body is bad or the model's
  policy has no ``retrain`` action; 404 for an unknown model.
- ``GET /models/{name}/retrains?limit=N`` (policy ``predict``): the model's runs, newest first
  (trigger, reason, figures, status, duration, exit code; not the output).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from modelward.control.retrain import Retrainer
from modelward.control.retrain_runs import RetrainRuns
from modelward.errors import ConfigError, LifecycleError, NotFound
from modelward.monitoring.metrics import ServingMetrics
from modelward.registry import Registry
from modelward.serving.auth import AUTH_KEY, Policy
from modelward.serving.problems import json_response, problem_response
from modelward.serving.rest import check_json
from modelward.validation import parse_json

__all__ = ["add_routes"]

_BODY: dict[str, Any] = {
    "required": True,
    "content": {
        "application/json": {
            "schema": {
                "title": "RetrainRequest",
                "type": "object",
                "properties": {"reason": {"type": "string", "minLength": 1}},
                "required": ["reason"],
                "additionalProperties": False,
            }
        }
    },
}


def _body_problem(body: Any) -> str | None:
    if not isinstance(body, dict):
        return 'the body is a JSON object: {"reason": "..."}'
    extra = sorted(set(body) - {"reason"})
    if extra:
        return f"unknown field(s) {', '.join(extra)} (known: reason)"
    if not isinstance(body.get("reason"), str) or not body["reason"].strip():
        return "reason is required: say why (it is recorded in the run and the audit trail)"
    return None


def add_routes(
    app: FastAPI, registry: Registry, metrics: ServingMetrics, dependencies: dict[Policy, Any]
) -> None:
    # Queuing runs no action here: the controller that starts the run has its own environment.
    retrainer = Retrainer(registry, env={}, export_dir=Path("."), actor=f"api:{registry.actor}")

    async def retrain(request: Request, name: str) -> Response:
        check_json(request.headers.get("content-type"))
        body: Any = parse_json(await request.body())
        problem = _body_problem(body)
        where = request.url.path
        if problem is not None:
            return problem_response(
                422, "invalid retrain request", problem, kind="invalid-retrain", instance=where
            )

        def queue() -> Any:
            registry.model(name)
            return retrainer.request(name, body["reason"].strip(), queued=True)

        try:
            run = await run_in_threadpool(queue)
        except NotFound as exc:
            return problem_response(404, "not found", str(exc), kind="not-found", instance=where)
        except LifecycleError as exc:  # a run of the model is queued or running
            current = await run_in_threadpool(RetrainRuns(registry.store).in_progress, name)
            extra = {"run_id": current[0].id if current else None}
            return problem_response(
                409, "retrain in progress", str(exc), kind="retrain-in-progress", instance=where, extra=extra
            )
        except ConfigError as exc:
            return problem_response(
                422, "no retraining action", str(exc), kind="no-retrain-policy", instance=where
            )
        return json_response(run.to_dict(output=False), status=202)

    async def history(request: Request, name: str) -> Response:
        raw = request.query_params.get("limit") or "50"
        if not raw.isdigit() or not 1 <= int(raw) <= 1000:
            detail = f"limit must be a number from 1 to 1000, not {raw!r}"
            return problem_response(
                422, "invalid query", detail, kind="invalid-query", instance=request.url.path
            )

        def read() -> list[dict[str, Any]]:
            runs = RetrainRuns(registry.store).history(name, limit=int(raw))
            if not runs:
                registry.model(name)  # an unknown name is a 404, not an empty list
            return [r.to_dict(output=False) for r in runs]

        try:
            runs = await run_in_threadpool(read)
        except NotFound as exc:
            return problem_response(404, "not found", str(exc), kind="not-found", instance=request.url.path)
        return json_response({"model": name, "runs": runs})

    app.add_api_route(
        "/admin/models/{name}/retrain",
        retrain,
        methods=["POST"],
        status_code=202,
        summary="Queue a manual retraining run of the model (its policy's action)",
        dependencies=[dependencies["admin"]],
        tags=["loop"],
        openapi_extra={AUTH_KEY: "admin", "requestBody": _BODY},
    )
    app.add_api_route(
        "/models/{name}/retrains",
        history,
        methods=["GET", "HEAD"],
        summary="The model's retraining runs, newest first",
        dependencies=[dependencies["predict"]],
        tags=["loop"],
        openapi_extra={AUTH_KEY: "predict"},
    )
