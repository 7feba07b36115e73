"""Open Inference Protocol v2 routes (``/v2/...``), as KServe and Triton define them.

``/v2/models/{name}/...`` follows the model's deployment (its arms, sticky by ``X-Routing-Key``);
``/v2/models/{name}/versions/{v}/...`` addresses one loaded version (a live arm's or the shadow's)
outside the split: see :mod:`modelward.serving.versions` and docs/serving.md.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from starlette.responses import Response

from modelward import __version__
from modelward.serving.auth import AUTH_KEY, Policy
from modelward.serving.models import ModelManager, Routing, Served
from modelward.serving.oip import INFER_REQUEST, encode_response, parse_infer_request, tensor_metadata
from modelward.serving.predict import Predictor
from modelward.serving.problems import json_response
from modelward.serving.rest import traced
from modelward.serving.tracing import RequestTrace, Tracing
from modelward.serving.versions import loaded_versions, named_version
from modelward.validation import ConsentRule, validate_columns

__all__ = ["add_v2_routes"]


def add_v2_routes(
    app: FastAPI,
    manager: ModelManager,
    predictor: Predictor,
    *,
    max_rows: int,
    dependencies: dict[Policy, Any],
    consent: ConsentRule | None = None,
    tracing: Tracing | None = None,
) -> None:
    """The ``/v2`` routes; ``tracing`` traces their inference requests as the REST route's are
    (:func:`modelward.serving.rest.traced`)."""
    rule = consent or ConsentRule()  # the header, or the member of the request's parameters

    async def target(name: str, version: str | None) -> tuple[Routing, Served | None]:
        """The routing, and the loaded version the client named (None: the deployment routes)."""
        if version is None:
            return manager.routing(name), None
        return await named_version(manager, name, version)

    async def server_metadata() -> Response:
        return json_response(
            {"name": "modelward", "version": __version__, "extensions": ["binary_tensor_data"]}
        )

    async def live() -> Response:
        return json_response({"live": True})

    async def ready(request: Request) -> Response:
        ok = manager.ready and not request.app.state.draining
        return json_response({"ready": ok}, 200 if ok else 503)

    async def model_metadata(name: str, version: str | None = None) -> Response:
        routing, named = await target(name, version)
        model = (named or routing.primary).model
        body = {
            "name": name,
            "versions": [named.version] if named is not None else loaded_versions(routing),
            "platform": f"modelward/{model.runtime}",
            **tensor_metadata(model.schema, class_values=model.class_values if model.is_classifier else None),
        }
        return json_response(body)

    async def model_ready(name: str, version: str | None = None) -> Response:
        # Ready: 200. Not ready is a problem, as every error here: 404 for a model or version not
        # served, 503 (Retry-After) while the model loads.
        await target(name, version)
        return json_response({"name": name, "ready": True})

    async def infer(request: Request, name: str, version: str | None = None) -> Response:
        route = "/v2/models/{name}/infer" if version is None else "/v2/models/{name}/versions/{version}/infer"
        return await traced(
            tracing, request, name, route, lambda trace: answer(request, name, version, trace)
        )

    async def answer(
        request: Request, name: str, version: str | None, trace: RequestTrace | None
    ) -> Response:
        request.state.endpoint, request.state.model = "v2_infer", name if name in manager.slots else ""
        routing, named = await target(name, version)
        served = named or routing.primary
        request.state.version = served.version
        if trace is not None:
            trace.mark("route")
        parsed = parse_infer_request(
            await request.body(), request.headers.get("inference-header-content-length")
        )
        given = rule.take(request.headers.get(rule.header), parsed.parameters)
        if trace is not None:
            trace.mark("parse")
        batch = validate_columns(parsed.columns, served.model.schema, max_rows=max_rows)
        request.state.rows = batch.n_rows
        if trace is not None:
            trace.mark("validate")
        outcome = await predictor.predict(
            name,
            batch,
            header_id=parsed.id or request.state.request_id,
            routing_key=request.headers.get("x-routing-key"),
            endpoint="v2_infer",
            routing=routing,
            direct=named,
            consent=given,
        )
        request.state.version = outcome.served.version
        if trace is not None:
            trace.mark("predict", attributes={"modelward.rows": batch.n_rows})
        body, header_length = encode_response(
            model=name,
            version=outcome.served.version,
            request_id=parsed.id,
            labels=outcome.labels,
            probabilities=outcome.probabilities,
            requested=parsed.outputs,
            binary_outputs=parsed.binary_outputs,
        )
        headers = {"X-Model-Version": outcome.served.version, "X-Model-Arm": outcome.arm or ""}
        if header_length is not None:
            headers["Inference-Header-Content-Length"] = str(header_length)
            return Response(body, media_type="application/octet-stream", headers=headers)
        return Response(body, media_type="application/json", headers=headers)

    public, predict = dependencies["public"], dependencies["predict"]
    infer_body = {"required": True, "content": {"application/json": {"schema": INFER_REQUEST}}}
    routes: list[tuple[str, Any, str, Policy]] = [
        ("", server_metadata, "GET", "public"),
        ("/health/live", live, "GET", "public"),
        ("/health/ready", ready, "GET", "public"),
        ("/models/{name}", model_metadata, "GET", "predict"),
        ("/models/{name}/versions/{version}", model_metadata, "GET", "predict"),
        ("/models/{name}/ready", model_ready, "GET", "public"),
        ("/models/{name}/versions/{version}/ready", model_ready, "GET", "public"),
        ("/models/{name}/infer", infer, "POST", "predict"),
        ("/models/{name}/versions/{version}/infer", infer, "POST", "predict"),
    ]
    for path, endpoint, method, policy in routes:
        app.add_api_route(
            "/v2" + path,
            endpoint,
            methods=[method, "HEAD"] if method == "GET" else [method],
            dependencies=[public if policy == "public" else predict],
            openapi_extra={AUTH_KEY: policy, **({"requestBody": infer_body} if endpoint is infer else {})},
            tags=["open inference protocol"],
            name=f"v2{path.replace('/', '_').replace('{', '').replace('}', '')}_{method.lower()}",
        )
