"""``POST /models/{name}/explain?top_k=5&version=``: SHAP explanations of the served version.

The body takes every form the predict route takes (the same parser and validator), up to
``MODELWARD_EXPLAIN_MAX_ROWS`` rows (413 beyond). Each row is answered with its contributions per
input feature, the base value, the model's output in the stated ``output_space`` (base value plus
contributions equal it) and the ``top_k`` contributions by magnitude. The version is the primary
arm's, or ``version=`` (a version this server has loaded). The explainer is built on the version's
first explanation, in that thread, and kept (:class:`~modelward.explain.ExplainerCache`).

Nothing here touches the prediction path: the route is an ordinary FastAPI route, its work runs in
a thread of its own (one explanation at a time), and its latency has its own histogram,
``modelward_explain_seconds``; explainers built are counted in ``modelward_explainer_builds_total``.
Without SHAP the answer is a 501 problem naming the ``[explain]`` extra. Policy ``predict``.
"""

from __future__ import annotations

import asyncio
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from fastapi import FastAPI, Request
from prometheus_client import CollectorRegistry, Counter, Histogram
from starlette.responses import Response

from modelward.errors import MissingDependency, SchemaError
from modelward.monitoring.metrics import ServingMetrics
from modelward.registry import Registry
from modelward.serving.auth import AUTH_KEY, Policy
from modelward.serving.models import ModelManager
from modelward.serving.problems import ModelLoading, ModelNotServed, json_response, problem_response
from modelward.serving.rest import check_json
from modelward.serving.versions import named_version
from modelward.validation import parse_json, validate_request

__all__ = ["DEFAULT_TOP_K", "ExplainMetrics", "add_routes"]

DEFAULT_TOP_K = 5
_QUERY = frozenset({"top_k", "version"})
_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


class ExplainMetrics:
    """The explain route's own series, in the server's registry."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.seconds = Histogram(
            "modelward_explain_seconds",
            "Time to answer POST /models/{name}/explain (explainer build included on the first).",
            ["model", "version"],
            buckets=_BUCKETS,
            registry=registry,
        )
        self.builds = Counter(
            "modelward_explainer_builds_total",
            "SHAP explainers built, per version (one per version unless evicted).",
            ["model", "version"],
            registry=registry,
        )

    def built(self, model: str, version: str) -> None:
        self.builds.labels(model, version).inc()


def _top_k(value: str | None) -> int:
    if value is None or value == "":
        return DEFAULT_TOP_K
    if not value.isdigit():
        raise ValueError(f"top_k must be a whole number of 0 or more, got {value!r}")
    return int(value)


def add_routes(
    app: FastAPI,
    registry: Registry,
    metrics: ServingMetrics,
    dependencies: dict[Policy, Any],
    *,
    max_rows: int = 100,
) -> None:
    from modelward.explain.cache import ExplainerCache

    manager: ModelManager = app.state.manager
    series = ExplainMetrics(metrics.registry)
    cache = ExplainerCache(on_build=series.built)
    app.state.explainers = cache
    # One thread of its own: explanations queue behind each other instead of taking the shared
    # thread pool's threads (and a scikit-learn OpenMP team per thread) from the rest of the server.
    worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="modelward-explain")

    async def explain(request: Request, name: str) -> Response:
        state = request.state
        state.endpoint, state.model = "explain", name if name in manager.slots else ""
        path = request.url.path
        params = request.query_params
        unknown = sorted(set(params) - _QUERY)
        if unknown:
            detail = f"unknown query parameter(s) {', '.join(unknown)} (known: {', '.join(sorted(_QUERY))})"
            return problem_response(422, "invalid query", detail, kind="invalid-query", instance=path)
        try:
            top_k = _top_k(params.get("top_k"))
        except ValueError as exc:
            return problem_response(422, "invalid query", str(exc), kind="invalid-query", instance=path)
        check_json(request.headers.get("content-type"))
        if name not in manager.slots:
            raise ModelNotServed(name, manager.names)
        version = params.get("version") or None
        if version is None:
            routing = manager.routing(name)
            served = routing.primary
        else:
            routing, served = await named_version(manager, name, version)
        state.version = served.version
        if served.provisional:  # started from the compiled cache: SHAP needs the native model, loading now
            raise ModelLoading(name, failure=manager.settle_failures.get(name))
        payload = parse_json(await request.body())
        batch = validate_request(payload, served.model.schema, max_rows=max_rows, key_field=routing.spec.key)
        frame = batch.to_frame()
        started = time.perf_counter()
        try:
            explanation = await asyncio.get_running_loop().run_in_executor(
                worker, lambda: cache.get(served.model).explain(frame)
            )
        except SchemaError as exc:  # inputs SHAP's explainers cannot take (lists, tensors)
            return problem_response(501, "not explainable", str(exc), kind="not-explainable", instance=path)
        except MissingDependency as exc:
            return problem_response(
                501,
                "explanations not installed",
                str(exc),
                kind="missing-dependency",
                instance=path,
                extra={"extra": exc.extra},
            )
        series.seconds.labels(name, served.version).observe(time.perf_counter() - started)
        return json_response(explanation.to_dict(top_k))

    app.add_api_route(
        "/models/{name}/explain",
        explain,
        methods=["POST"],
        summary="SHAP explanations of rows: contributions per input feature, base value, output",
        description=(
            "The body of POST /models/{name}/predict (any of its forms), up to "
            "MODELWARD_EXPLAIN_MAX_ROWS rows. Query: top_k (default 5), version (a loaded version)."
        ),
        dependencies=[dependencies["predict"]],
        tags=["explain"],
        openapi_extra={AUTH_KEY: "predict"},
    )
