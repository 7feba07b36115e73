"""``DELETE /feedback/{request_id}``: erase one request's logged prediction and its label.

The right to erasure over HTTP (``modelward forget`` is the same for many requests, or by the
value of a logged input). Erasing data is an admin action: the route has the ``admin`` policy.
It answers 200 with the counts erased, zero when there was nothing (erasing twice is no error);
the audit event records the counts, never the request id.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from modelward.governance.erasure import Eraser
from modelward.monitoring.metrics import ServingMetrics
from modelward.registry import Registry
from modelward.serving.auth import AUTH_KEY, Policy
from modelward.serving.problems import json_response, problem_response

__all__ = ["add_routes"]


def add_routes(
    app: FastAPI, registry: Registry, metrics: ServingMetrics, dependencies: dict[Policy, Any]
) -> None:
    eraser = Eraser(registry.store, actor=registry.actor)

    async def delete_feedback(request: Request, request_id: str) -> Response:
        request.state.endpoint, request.state.model = "erasure", ""
        if not 0 < len(request_id) <= 128:
            return problem_response(
                400,
                "invalid request id",
                "a request id is 1 to 128 characters",
                kind="invalid-request",
                instance=request.url.path,
            )
        done = await run_in_threadpool(
            eraser.forget, request_ids=[request_id], reason=f"DELETE {request.url.path}"
        )
        return json_response({"request_id": request_id, **done.to_dict()})

    app.add_api_route(
        "/feedback/{request_id}",
        delete_feedback,
        methods=["DELETE"],
        summary="Erase a request's logged prediction (inputs and outputs) and its label",
        dependencies=[dependencies["admin"]],
        tags=["feedback"],
        openapi_extra={AUTH_KEY: "admin"},
    )
