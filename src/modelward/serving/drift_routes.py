"""``GET /models/{name}/drift?window=1h&version=&arm=``: live drift of a model, from the live profiles.

Answers :meth:`modelward.monitoring.live_drift.LiveDriftReport.to_dict` for the window ending now,
merged over every worker and replica that wrote live profiles to the store. The version defaults to
the one the champion alias points at, else the newest with live data. An empty window answers 200 with
``"status": "no_traffic"`` and ``"drift": null`` (no rows is no evidence of drift); an unknown model
or version is a 404 problem, a bad window or query parameter a 422 problem. Policy ``predict``.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from typing import Any

from fastapi import FastAPI, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from modelward.drift.profile import DatasetProfile
from modelward.errors import ConfigError, NotFound
from modelward.monitoring.live_drift import (
    default_version,
    live_report,
    load_reference,
    parse_window,
)
from modelward.monitoring.metrics import ServingMetrics
from modelward.registry import Registry
from modelward.serving.auth import AUTH_KEY, Policy
from modelward.serving.problems import json_response, problem_response

__all__ = ["add_routes"]

_QUERY = frozenset({"window", "version", "arm"})
_CACHED_REFERENCES = 32


def add_routes(
    app: FastAPI, registry: Registry, metrics: ServingMetrics, dependencies: dict[Policy, Any]
) -> None:
    # A version's reference is pinned by sha256 and never changes: download and check it once.
    # With it, the inputs it leaves out (lists, objects, tensors: no bins), said in every answer.
    references: OrderedDict[tuple[str, str], tuple[DatasetProfile, list[str]]] = OrderedDict()

    def reference(name: str, version: str) -> tuple[DatasetProfile, list[str]]:
        key = (name, version)
        found = references.get(key)
        if found is None:
            profile = load_reference(registry, name, version)
            schema = registry.signature(registry.version(name, version))
            left_out = [n for n in schema.nested_names() if n not in profile.features]
            found = references[key] = (profile, left_out)
            while len(references) > _CACHED_REFERENCES:
                references.popitem(last=False)
        return found

    async def get_drift(request: Request, name: str) -> Response:
        params = request.query_params
        unknown = sorted(set(params) - _QUERY)
        if unknown:
            detail = f"unknown query parameter(s) {', '.join(unknown)} (known: {', '.join(sorted(_QUERY))})"
            return problem_response(
                422, "invalid query", detail, kind="invalid-query", instance=request.url.path
            )
        try:
            seconds = parse_window(params.get("window") or "1h")
        except ConfigError as exc:
            return problem_response(
                422, "invalid window", str(exc), kind="invalid-query", instance=request.url.path
            )
        version, arm = params.get("version") or None, params.get("arm") or None

        def answer() -> dict[str, Any]:
            now = time.time()
            registry.model(name)  # ModelNotFound: a 404 problem
            chosen = version
            if chosen is None:
                try:
                    chosen = default_version(registry, name, since=now - seconds, until=now)
                except ConfigError:  # no champion and no live data: nothing to report on
                    return {"model": name, "version": None, "arm": arm, "status": "no_traffic", "drift": None}
            profile, left_out = reference(name, chosen)
            body = live_report(registry, name, chosen, seconds, reference=profile, arm=arm, now=now).to_dict()
            if left_out:
                body["not_profiled"] = {
                    "features": left_out,
                    "reason": "lists, objects and tensors have no bins",
                }
            return body

        try:
            body = await run_in_threadpool(answer)
        except NotFound as exc:
            return problem_response(
                404, "not found", str(exc), kind="model-not-found", instance=request.url.path
            )
        return json_response(body)

    app.add_api_route(
        "/models/{name}/drift",
        get_drift,
        methods=["GET", "HEAD"],
        summary="Live data and prediction drift of a model over a window, against its reference profile",
        dependencies=[dependencies["predict"]],
        tags=["drift"],
        openapi_extra={AUTH_KEY: "predict"},
    )
