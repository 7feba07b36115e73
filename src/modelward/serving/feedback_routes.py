"""``POST /feedback`` (ground-truth labels) and ``GET /models/{name}/performance`` (live performance).

Both use the policy ``predict``: whoever may ask for predictions may report their outcomes and
read how well they did.

``POST /feedback`` takes one item ``{"request_id": "r1", "label": "yes"}`` (or ``"value": 1.5``)
or a bulk ``{"items": [...], "overwrite": false}`` of at most 10,000 items (more: 413), plus an
optional ``"source"`` (up to 64 characters, stored with the labels). It answers, after the commit:

- 200 with the counts (received, inserted, unchanged, overwritten, orphans);
- 409 problem+json naming each conflicting request id with its stored and sent label, when a label
  differs from the stored one and ``overwrite`` is not true. The other items of the request *were*
  written (the counts are in the problem's ``result``): resending the whole request with
  ``overwrite: true`` replaces the conflicting labels, resending it as it is changes nothing;
- 422 problem+json naming every bad item by its index (nothing written).

``GET /models/{name}/performance?window=1d&version=&arm=`` answers the performance report
(``modelward.feedback.PerformanceReport.to_dict()``) of the window ending now; ``since`` and
``until`` (UNIX seconds) give an explicit window instead.
"""

from __future__ import annotations

import time
from typing import Any

from fastapi import FastAPI, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from modelward.errors import ConfigError, StoreError
from modelward.feedback.calibrate import VersionFacts, version_facts
from modelward.feedback.ingest import MAX_SOURCE_LENGTH, FeedbackInvalid, FeedbackResult, FeedbackStore
from modelward.feedback.performance import live_performance, parse_window
from modelward.monitoring.metrics import ServingMetrics
from modelward.registry import Registry
from modelward.serving.auth import AUTH_KEY, Policy
from modelward.serving.problems import json_response, problem_response
from modelward.serving.rest import check_json
from modelward.validation import parse_json

__all__ = ["MAX_FEEDBACK_ITEMS", "add_routes"]

MAX_FEEDBACK_ITEMS = 10_000
_FACTS_TTL = 60.0  # seconds: a recalibration shows in the performance answer within a minute
_BULK_KEYS = frozenset({"items", "overwrite", "source"})
_OPTIONS = frozenset({"overwrite", "source"})
_QUERY = frozenset({"window", "version", "arm", "since", "until"})


class _Facts:
    """Version facts (registration record + calibration) cached for a minute: reading a record
    downloads an artifact, and performance dashboards poll."""

    def __init__(self, registry: Registry) -> None:
        self.registry = registry
        self._cache: dict[tuple[str, str], tuple[float, VersionFacts | None]] = {}

    def get(self, name: str, version: str) -> VersionFacts | None:
        now = time.monotonic()
        hit = self._cache.get((name, version))
        if hit is not None and now - hit[0] < _FACTS_TTL:
            return hit[1]
        facts = version_facts(self.registry, name, version)
        self._cache[(name, version)] = (now, facts)
        return facts


_LABEL: dict[str, Any] = {
    "description": "a class label (text, number or boolean)",
    "anyOf": [{"type": "string", "minLength": 1, "maxLength": 1000}, {"type": "number"}, {"type": "boolean"}],
}
_ITEM: dict[str, Any] = {
    "type": "object",
    "properties": {
        "request_id": {"type": "string", "minLength": 1, "maxLength": 128},
        "label": _LABEL,
        "value": {"type": "number", "description": "a regression target, instead of label"},
    },
    "required": ["request_id"],
    "additionalProperties": False,
}
_OPTIONS_SCHEMA: dict[str, Any] = {
    "overwrite": {"type": "boolean", "default": False},
    "source": {"type": "string", "minLength": 1, "maxLength": 64},
}
# For the OpenAPI document (and the clients and fuzzers that read it): the route checks by hand.
FEEDBACK_BODY: dict[str, Any] = {
    "required": True,
    "content": {
        "application/json": {
            "schema": {
                "anyOf": [
                    {
                        "title": "FeedbackItem",
                        **_ITEM,
                        "properties": {**_ITEM["properties"], **_OPTIONS_SCHEMA},
                    },
                    {
                        "title": "FeedbackBulk",
                        "type": "object",
                        "properties": {
                            "items": {"type": "array", "items": _ITEM, "minItems": 1, "maxItems": 10_000},
                            **_OPTIONS_SCHEMA,
                        },
                        "required": ["items"],
                        "additionalProperties": False,
                    },
                ]
            }
        }
    },
}


def _invalid(request: Request, detail: str, errors: list[dict[str, Any]] | None = None) -> Response:
    return problem_response(
        422, "invalid feedback", detail, kind="invalid-feedback", instance=request.url.path, errors=errors
    )


def _split_body(body: object) -> tuple[list[Any], dict[str, Any]] | str:
    """(items, options) from a single or bulk body, or what is wrong with it."""
    if not isinstance(body, dict):
        return 'the body must be a JSON object: one item or {"items": [...]}'
    if "items" in body:
        unknown = sorted(set(body) - _BULK_KEYS)
        if unknown:
            return f"unknown member(s) {', '.join(unknown)} in a bulk body (use items, overwrite, source)"
        items = body["items"]
        if not isinstance(items, list):
            return 'items must be a list of {"request_id": ..., "label": ...} objects'
        return items, {k: body[k] for k in _OPTIONS if k in body}
    options = {k: body[k] for k in _OPTIONS if k in body}
    return [{k: v for k, v in body.items() if k not in _OPTIONS}], options


def _counts(result: FeedbackResult) -> dict[str, Any]:
    out = result.to_dict()
    out.pop("conflicting")
    return out


def add_routes(
    app: FastAPI, registry: Registry, metrics: ServingMetrics, dependencies: dict[Policy, Any]
) -> None:
    labels = FeedbackStore(registry.store)
    facts = _Facts(registry)

    async def post_feedback(request: Request) -> Response:
        request.state.endpoint, request.state.model = "feedback", ""
        check_json(request.headers.get("content-type"))
        body = parse_json(await request.body())
        split = _split_body(body)
        if isinstance(split, str):
            return _invalid(request, split)
        items, options = split
        if len(items) > MAX_FEEDBACK_ITEMS:
            detail = f"{len(items)} items is more than the limit of {MAX_FEEDBACK_ITEMS} per request"
            detail += ": send them in parts"
            return problem_response(
                413, "request too large", detail, kind="too-large", instance=request.url.path
            )
        if not items:
            return _invalid(request, "items is empty")
        overwrite = options.get("overwrite", False)
        source = options.get("source", "http")
        if not isinstance(overwrite, bool):
            return _invalid(request, "overwrite must be true or false")
        if not isinstance(source, str) or not 0 < len(source) <= MAX_SOURCE_LENGTH:
            return _invalid(request, f"source must be a string of 1 to {MAX_SOURCE_LENGTH} characters")
        try:
            result = await run_in_threadpool(labels.record, items, overwrite=overwrite, source=source)
        except FeedbackInvalid as exc:
            errors = [
                {**p.to_dict(), "field": f"items[{p.index}].{p.field}" if p.field else f"items[{p.index}]"}
                for p in exc.problems
            ]
            return _invalid(request, str(exc), errors)
        except StoreError as exc:
            return problem_response(
                503, "store unavailable", str(exc), instance=request.url.path, headers={"Retry-After": "2"}
            )
        if result.conflicts:
            ids = ", ".join(c.request_id for c in result.conflicts[:5])
            more = len(result.conflicts) - 5
            detail = (
                f"{len(result.conflicts)} label(s) differ from the stored ones and were not written ({ids}"
                + (f" and {more} more" if more > 0 else "")
                + "); the other items were; send overwrite: true to replace them"
            )
            return problem_response(
                409,
                "feedback conflict",
                detail,
                kind="feedback-conflict",
                instance=request.url.path,
                extra={"conflicts": [c.to_dict() for c in result.conflicts], "result": _counts(result)},
            )
        return json_response(_counts(result))

    async def get_performance(request: Request, name: str) -> Response:
        request.state.endpoint, request.state.model = "performance", ""
        params = request.query_params
        unknown = sorted(set(params) - _QUERY)
        if unknown:
            detail = f"unknown query parameter(s) {', '.join(unknown)} (known: {', '.join(sorted(_QUERY))})"
            return problem_response(
                400, "invalid query", detail, kind="invalid-query", instance=request.url.path
            )
        try:
            since, until = _bounds(params.get("window"), params.get("since"), params.get("until"))
        except ConfigError as exc:
            return problem_response(
                400, "invalid query", str(exc), kind="invalid-query", instance=request.url.path
            )

        def report() -> dict[str, Any]:
            registry.model(name)  # ModelNotFound: 404
            return live_performance(
                registry.store,
                name,
                since=since,
                until=until,
                version=params.get("version") or None,
                arm=params.get("arm") or None,
                facts=lambda v: facts.get(name, v),
            ).to_dict()

        return json_response(await run_in_threadpool(report))

    app.add_api_route(
        "/feedback",
        post_feedback,
        methods=["POST"],
        summary="Ground-truth labels for served predictions, by request id (one item or a bulk of items)",
        dependencies=[dependencies["predict"]],
        tags=["feedback"],
        openapi_extra={AUTH_KEY: "predict", "requestBody": FEEDBACK_BODY},
    )
    app.add_api_route(
        "/models/{name}/performance",
        get_performance,
        methods=["GET", "HEAD"],
        summary="Live performance from labels, beside label-free estimates, per version and arm",
        dependencies=[dependencies["predict"]],
        tags=["feedback"],
        openapi_extra={AUTH_KEY: "predict"},
    )


def _bounds(window: str | None, since: str | None, until: str | None) -> tuple[float | None, float | None]:
    def number(text: str, what: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise ConfigError(f"{what}={text!r} is not a number of UNIX seconds") from None
        if value != value or value in (float("inf"), float("-inf")):
            raise ConfigError(f"{what} must be finite")
        return value

    end = number(until, "until") if until else None
    if since:
        if window:
            raise ConfigError("give window or since, not both")
        start = number(since, "since")
    else:
        start = (end if end is not None else time.time()) - parse_window(window or "1d")
    if end is not None and end <= start:
        raise ConfigError("until must be later than since")
    return start, end
