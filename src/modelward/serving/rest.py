"""REST routes: ``POST /models/{name}/predict`` (typed per model in the docs), ``POST
/models/{name}/versions/{v}/predict`` (one loaded version, outside the deployment's split), model
listing."""

from __future__ import annotations

import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI, Request
from pydantic import BaseModel, ConfigDict, Field, create_model
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from modelward.schema import FeatureSchema
from modelward.serving.auth import AUTH_KEY, Policy
from modelward.serving.models import ModelManager
from modelward.serving.predict import Predictor
from modelward.serving.problems import ModelNotServed, json_response, problem_for
from modelward.serving.render import prediction_body, prediction_headers
from modelward.serving.tracing import RequestTrace, Tracing
from modelward.serving.versions import loaded_versions, named_version
from modelward.validation import ConsentRule, FieldProblem, RequestInvalid, parse_json, validate_request

__all__ = [
    "PredictResult",
    "add_rest_routes",
    "check_json",
    "predict_rest",
    "request_models",
    "traced",
]

_PY_TYPES: dict[str, Any] = {
    "long": int,
    "integer": int,
    "double": float,
    "float": float,
    "boolean": bool,
    "string": str,
    "binary": str,
    "datetime": str,
    "array": list[Any],  # or its JSON text
    "object": dict[str, Any],
    "tensor": list[Any],
}


def _camel(name: str) -> str:
    return "".join(part.capitalize() for part in re.split(r"[^A-Za-z0-9]+", name) if part) or "Model"


def request_models(
    name: str, schema: FeatureSchema, consent_field: str = "consent"
) -> tuple[type[BaseModel], type[BaseModel]]:
    """Pydantic models of a model's request and response, for the OpenAPI document only: requests are
    validated by :mod:`modelward.validation`, which names every bad field and row."""
    base = _camel(name)
    record_fields: dict[str, Any] = {}
    column_fields: dict[str, Any] = {}
    for i, f in enumerate(schema.fields):
        py = _PY_TYPES.get(f.type, str)
        if f.required:
            record_fields[f"f{i}"] = (py, Field(alias=f.name))
            column_fields[f"f{i}"] = (list[py], Field(alias=f.name))  # type: ignore[valid-type]
        else:
            record_fields[f"f{i}"] = (py | None, Field(default=None, alias=f.name))
            column_fields[f"f{i}"] = (list[py | None], Field(default=None, alias=f.name))  # type: ignore[valid-type]
    strict = ConfigDict(extra="forbid")
    record = create_model(f"{base}Features", __config__=strict, **record_fields)
    columns = create_model(f"{base}Columns", __config__=strict, **column_fields)
    split = create_model(
        f"{base}DataframeSplit",
        __config__=strict,
        columns=(list[str] | None, Field(default=None, description="default: the signature's order")),
        data=(list[list[Any]], Field(description="rows of values in the order of columns")),
        index=(list[Any] | None, Field(default=None, description="ignored")),
    )
    row = record | list[Any]  # a record, or its values in the signature's order
    forms = ("features", "instances", "inputs", "dataframe_split", "dataframe_records")
    request = create_model(
        f"{base}PredictRequest",
        __config__=ConfigDict(
            extra="forbid",
            json_schema_extra={
                "description": f"Give exactly one of {', '.join(forms)}.",
                "oneOf": [{"required": [form]} for form in forms],
            },
        ),
        features=(
            row | None,
            Field(default=None, description="one record, or its values in the signature's order"),
        ),
        instances=(list[row] | None, Field(default=None, description="several records")),  # type: ignore[valid-type]
        inputs=(
            columns | list[row] | None,  # type: ignore[valid-type]
            Field(default=None, description="columns of equal length (or records, as MLflow takes them)"),
        ),
        dataframe_split=(split | None, Field(default=None, description="MLflow: pandas split orient")),
        dataframe_records=(list[record] | None, Field(default=None, description="MLflow: records")),  # type: ignore[valid-type]
        params=(dict[str, Any] | None, Field(default=None, description="accepted and ignored")),
        key=(str | int | None, Field(default=None, description="routing key (or the X-Routing-Key header)")),
        request_id=(str | None, Field(default=None, description="id of a single-row request")),
        request_ids=(list[str] | None, Field(default=None, description="one id per row")),
        consent_=(
            bool | None,
            Field(
                default=None,
                alias=consent_field,
                description="whether the inputs may be kept (or a header); never a feature",
            ),
        ),
    )
    row = create_model(
        f"{base}Prediction",
        request_id=(str, ...),
        prediction=(Any, ...),
        probabilities=(
            dict[str, float] | None,
            Field(default=None, description="per class, classifiers only"),
        ),
        arm=(str | None, Field(default=None, description="only when the request's rows were split")),
        version=(str | None, Field(default=None, description="only when the request's rows were split")),
    )
    response = create_model(
        f"{base}PredictResponse",
        model=(str, ...),
        version=(str | None, Field(description="the version that answered (null: rows were split)")),
        alias=(str | None, None),
        arm=(str | None, Field(default=None, description="the deployment arm that answered")),
        predictions=(list[row], ...),  # type: ignore[valid-type]
    )
    return request, response


def check_json(content_type: str | None) -> None:
    ctype = (content_type or "application/json").split(";")[0].strip().lower()
    if ctype not in {"application/json", "text/json", ""} and not ctype.endswith("+json"):
        raise RequestInvalid(
            [FieldProblem(f"send JSON (Content-Type: application/json), not {ctype}")],
            kind="media-type",
            title="unsupported media type",
        )


@dataclass(slots=True)
class PredictResult:
    body: bytes
    headers: list[tuple[bytes, bytes]]
    version: str | None
    rows: int
    arm: str | None = None


async def predict_rest(
    manager: ModelManager,
    predictor: Predictor,
    name: str,
    body: bytes,
    *,
    max_rows: int,
    request_id: str | None,
    routing_key: str | None,
    state: Any = None,
    version: str | None = None,
    consent: ConsentRule | None = None,
    consent_header: str | None = None,
    trace: RequestTrace | None = None,
) -> PredictResult:
    """The REST prediction, shared by the FastAPI routes and the raw ASGI fast path: raises the
    errors that serving/problems.py maps to problem+json. ``state`` (if given) learns the version
    and row count as soon as they are known, for the metrics of a request that fails later.
    ``version`` is a loaded version the client named: it answers outside the deployment's split."""
    if version is None:
        routing, named = manager.routing(name), None
    else:
        routing, named = await named_version(manager, name, version)
    served = named or routing.primary
    if state is not None:
        state.version = served.version
    if trace is not None:
        trace.mark("route")
    payload = parse_json(body)
    given = (consent or ConsentRule()).take(consent_header, payload)
    if trace is not None:
        trace.mark("parse")
    batch = validate_request(payload, served.model.schema, max_rows=max_rows, key_field=routing.spec.key)
    if state is not None:
        state.rows = batch.n_rows
    if trace is not None:
        trace.mark("validate")
    key = batch.key if batch.key is not None else routing_key
    outcome = await predictor.predict(
        name,
        batch,
        header_id=request_id,
        routing_key=key,
        endpoint="predict",
        routing=routing,
        direct=named,
        consent=given,
    )
    ids = outcome.request_ids
    if trace is not None:
        trace.mark("predict", attributes={"modelward.rows": batch.n_rows})
    headers = prediction_headers(outcome.version, outcome.arm, ids[0] if len(ids) == 1 else None)
    return PredictResult(prediction_body(outcome), headers, outcome.version, batch.n_rows, outcome.arm)


async def traced(
    tracing: Tracing | None,
    request: Request,
    name: str,
    route: str,
    answer: Callable[[RequestTrace | None], Awaitable[Response]],
) -> Response:
    """``answer(trace)`` for a FastAPI route, in the request's server span when it is sampled
    (``trace`` is None otherwise): the span ends with the status the client gets, a refusal's too.
    The version, arm and request id are read from ``request.state`` and the answer's headers."""
    if tracing is None:
        return await answer(None)
    path = request.url.path
    trace = tracing.start(name, path, request.headers.raw, time.perf_counter(), route=route)
    if trace is None:
        return await answer(None)
    state = request.state
    try:
        response = await answer(trace)
    except Exception as exc:
        rid = getattr(state, "request_id", None)
        problem = problem_for(exc, path=path, request_id=rid)
        status = problem.status if problem is not None else getattr(exc, "status_code", 500)
        trace.finish(status, version=getattr(state, "version", None), request_id=rid)
        raise
    arm = response.headers.get("x-model-arm") or None
    trace.finish(
        response.status_code,
        version=getattr(state, "version", None),
        arm=arm,
        request_id=getattr(state, "request_id", None),
    )
    return response


def add_rest_routes(
    app: FastAPI,
    manager: ModelManager,
    predictor: Predictor,
    *,
    max_rows: int,
    dependencies: dict[Policy, Any],
    consent: ConsentRule | None = None,
    tracing: Tracing | None = None,
) -> None:
    rule = consent or ConsentRule()
    # Routes go straight onto the app: this FastAPI keeps included routers as opaque entries, and the
    # route-policy check must see every route.

    async def predict(request: Request, name: str, version: str | None = None) -> Response:
        route = "/models/{name}/predict" if version is None else "/models/{name}/versions/{version}/predict"
        return await traced(
            tracing, request, name, route, lambda trace: answer(request, name, version, trace)
        )

    async def answer(
        request: Request, name: str, version: str | None, trace: RequestTrace | None
    ) -> Response:
        state = request.state
        # Label metrics with served names only: a client's made-up name must not grow the label set.
        state.endpoint, state.model = "predict", name if name in manager.slots else ""
        check_json(request.headers.get("content-type"))
        if name not in manager.slots:
            raise ModelNotServed(name, manager.names)
        result = await predict_rest(
            manager,
            predictor,
            name,
            await request.body(),
            max_rows=max_rows,
            request_id=state.request_id,
            routing_key=request.headers.get("x-routing-key"),
            state=state,
            version=version,
            consent=rule,
            consent_header=request.headers.get(rule.header),
            trace=trace,
        )
        if result.version is not None:
            state.version = result.version
        response = Response(result.body)
        response.raw_headers[:0] = result.headers
        return response

    def endpoint_for(model_name: str) -> Any:
        # A closure, not a default argument: FastAPI would expose a default as a query parameter.
        async def endpoint(request: Request) -> Response:
            return await predict(request, model_name)

        return endpoint

    for name, slot in manager.slots.items():
        request_model, response_model = request_models(name, slot.schema, rule.field)
        endpoint = endpoint_for(name)

        app.add_api_route(
            f"/models/{name}/predict",
            endpoint,
            methods=["POST"],
            name=f"predict_{name}",
            summary=f"Predict with {name}",
            description=f"Score one record, several records or columns with the served version of {name}.",
            tags=["predict"],
            dependencies=[dependencies["predict"]],
            responses={200: {"model": response_model}},
            openapi_extra={
                AUTH_KEY: "predict",
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/json": {
                            "schema": {"$ref": f"#/components/schemas/{request_model.__name__}"}
                        }
                    },
                },
                "x-modelward-request-model": request_model.__name__,
            },
        )
        app.state.openapi_models = [*getattr(app.state, "openapi_models", []), request_model]

    async def predict_unknown(request: Request, name: str) -> Response:
        return await predict(request, name)

    app.add_api_route(
        "/models/{name}/predict",
        predict_unknown,
        methods=["POST"],
        include_in_schema=False,
        dependencies=[dependencies["predict"]],
        openapi_extra={AUTH_KEY: "predict"},
    )

    async def predict_version(request: Request, name: str, version: str) -> Response:
        return await predict(request, name, version)

    app.add_api_route(
        "/models/{name}/versions/{version}/predict",
        predict_version,
        methods=["POST"],
        name="predict_version",
        summary="Predict with one loaded version",
        description=(
            "The body and answer of POST /models/{name}/predict, answered by the version named "
            "(a live arm's or the shadow's) outside the deployment's split: logged "
            "under the arm 'direct'. 404 when this server has not loaded that version."
        ),
        tags=["predict"],
        dependencies=[dependencies["predict"]],
        openapi_extra={AUTH_KEY: "predict"},
    )

    async def list_models() -> Response:
        return json_response([_describe(manager, n) for n in manager.names])

    async def show_model(name: str) -> Response:
        described = _describe(manager, name)
        versions = await run_in_threadpool(manager.registry.versions, name)
        routing = manager.slots[name].routing
        loaded = set(loaded_versions(routing)) if routing is not None else set()
        described["versions"] = [
            {
                "version": v.version,
                "aliases": list(v.aliases),
                "archived": v.archived,
                "description": v.description,
                "loaded": v.version in loaded,  # answers /models/{name}/versions/{v}/predict
            }
            for v in versions
        ]
        return json_response(described)

    app.add_api_route(
        "/models",
        list_models,
        methods=["GET", "HEAD"],
        tags=["models"],
        summary="Served models",
        dependencies=[dependencies["predict"]],
        openapi_extra={AUTH_KEY: "predict"},
    )
    app.add_api_route(
        "/models/{name}",
        show_model,
        methods=["GET", "HEAD"],
        tags=["models"],
        summary="A served model: version, aliases, schema",
        dependencies=[dependencies["predict"]],
        openapi_extra={AUTH_KEY: "predict"},
    )


def _batching(served: Any) -> dict[str, Any]:
    b = served.batcher
    st = b.stats
    return {
        "enabled": b.enabled,
        "max_rows": b.max_rows,
        "budget_ms": round(b.budget * 1000, 3),
        "calls": st.calls,
        "requests": st.requests,
        "rows": st.rows,
        "largest_batch": st.largest,
        "mean_batch": round(st.requests / st.calls, 3) if st.calls else None,
        "shed": st.shed,
        "retried_alone": st.retried,
    }


def _describe(manager: ModelManager, name: str) -> dict[str, Any]:
    slot = manager.slots.get(name)
    if slot is None:
        raise ModelNotServed(name, manager.names)
    routing = slot.routing
    current = slot.current
    schema = current.model.schema if current is not None else slot.schema
    out: dict[str, Any] = {
        "name": name,
        "ready": current is not None,
        "version": current.version if current else None,
        "alias": current.alias if current else None,
        "runtime": current.runtime if current else None,
        "task": current.model.task if current else None,
        "classes": current.model.class_values if current and current.model.is_classifier else None,
        "schema": schema.to_dict(),
    }
    if routing is not None:
        shares = routing.policy.shares()
        out["deployment"] = {
            "strategy": routing.spec.strategy,
            "revision": routing.revision,
            "key": routing.spec.key,
            "summary": routing.spec.describe(),
            "arms": [
                {
                    "name": arm,
                    "version": served.version,
                    "alias": served.alias,
                    "share": shares.get(arm, 0.0),
                    "runtime": served.predictor.describe(),
                    "batching": _batching(served),
                }
                for arm, served in routing.arms.items()
            ],
            "shadow": (
                {"version": routing.shadow.version, "rate": routing.spec.shadow_rate}
                if routing.shadow is not None
                else None
            ),
        }
    return out
