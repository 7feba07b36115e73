"""``GET /models/{name}/abtest``: the A/B report of a model's deployment, from served traffic and feedback.

Query parameters (all optional): ``metric`` (``correct``, ``label`` or ``value``; default
``correct``), ``since`` and ``until`` (a duration ago such as ``7d``, or an ISO-8601 date/time),
``control`` (an arm; default the deployment's first arm) and ``alpha`` (default 0.05). The answer is
``modelward.feedback.abreport.TrafficReport.to_dict()``, as ``modelward abtest report --json``
prints it. Policy ``predict``: whoever may ask for predictions may read how the arms do.

Problems: 404 for a model that is not registered (``model-not-found``) or that has no A/B test to
report (``no-ab-test``: no A/B deployment and fewer than two arms in the log); 409 while no served
request has usable feedback (``no-feedback``: retry later); 422 for a bad or unknown parameter or an
unknown control arm (``invalid-query``).
"""

from __future__ import annotations

import math
from typing import Any

from fastapi import FastAPI, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from modelward.errors import ConfigError, InvalidReference, NotFound
from modelward.feedback.abreport import METRICS, NoExperiment, NoFeedback, deployment_ab_report
from modelward.feedback.abtest import ABTestError
from modelward.monitoring.metrics import ServingMetrics
from modelward.monitoring.prediction_query import parse_since
from modelward.registry import Registry
from modelward.serving.auth import AUTH_KEY, Policy
from modelward.serving.problems import json_response, problem_response

__all__ = ["add_routes"]

_QUERY = ("metric", "since", "until", "control", "alpha")


class _BadQuery(ConfigError):
    """A query parameter the report cannot use (answered 422)."""


def _parse(params: Any) -> dict[str, Any]:
    unknown = sorted(set(params) - set(_QUERY))
    if unknown:
        raise _BadQuery(f"unknown query parameter(s) {', '.join(unknown)} (known: {', '.join(_QUERY)})")
    metric = params.get("metric") or "correct"
    if metric not in METRICS:
        raise _BadQuery(f"metric must be one of {', '.join(METRICS)}, not {metric!r}")
    bounds: dict[str, float | None] = {}
    for key in ("since", "until"):
        text = params.get(key)
        try:
            bounds[key] = parse_since(text) if text else None
        except ConfigError as exc:
            raise _BadQuery(f"{key}: {exc}") from None
    text = params.get("alpha")
    try:
        alpha = float(text) if text else 0.05
    except ValueError:
        raise _BadQuery(f"alpha must be a number between 0 and 1, not {text!r}") from None
    if not (math.isfinite(alpha) and 0 < alpha < 1):
        raise _BadQuery(f"alpha must lie strictly between 0 and 1, got {text}")
    return {"metric": metric, "alpha": alpha, "control": params.get("control") or None, **bounds}


def add_routes(
    app: FastAPI, registry: Registry, metrics: ServingMetrics, dependencies: dict[Policy, Any]
) -> None:
    async def abtest(request: Request, name: str) -> Response:
        path = request.url.path
        try:
            options = _parse(request.query_params)
        except _BadQuery as exc:
            return problem_response(422, "invalid query", str(exc), kind="invalid-query", instance=path)

        def report() -> dict[str, Any]:
            registry.model(name)  # ModelNotFound: 404
            return deployment_ab_report(registry.store, name, **options).to_dict()

        try:
            return json_response(await run_in_threadpool(report))
        except NoExperiment as exc:
            return problem_response(404, "no A/B test", str(exc), kind="no-ab-test", instance=path)
        except NoFeedback as exc:
            return problem_response(409, "no feedback yet", str(exc), kind="no-feedback", instance=path)
        except (NotFound, InvalidReference) as exc:
            return problem_response(404, "model not found", str(exc), kind="model-not-found", instance=path)
        except ABTestError as exc:  # an unknown control arm
            return problem_response(422, "invalid query", str(exc), kind="invalid-query", instance=path)

    app.add_api_route(
        "/models/{name}/abtest",
        abtest,
        methods=["GET", "HEAD"],
        summary="A/B test report: per-arm outcomes, differences, p-values, sample ratio, verdict",
        description=__doc__,
        tags=["feedback"],
        dependencies=[dependencies["predict"]],
        openapi_extra={AUTH_KEY: "predict"},
    )
