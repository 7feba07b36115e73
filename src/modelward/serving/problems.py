"""RFC 9457 problem details: every error the server returns is ``application/problem+json``.

Besides the standard members (type, title, status, detail, instance) a problem carries ``error``
(the detail again, which Open Inference Protocol clients read) and, for invalid input, ``errors``:
one entry per bad field and row. HTTP status mapping for modelward's errors lives here only.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, cast

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

from modelward.errors import (  # the serving errors are importable here as before
    BodyTooLarge,
    ModelFailed,
    ModelLoading,
    ModelNotServed,
    ModelwardError,
    NotFound,
    Overloaded,
    RequestFault,
    RequestInvalid,
    VersionNotServed,
)
from modelward.serving.wire import PROBLEM_JSON, problem_body

__all__ = [
    "PROBLEM_JSON",
    "REQUEST_STATUS",
    "BodyTooLarge",
    "ModelFailed",
    "ModelLoading",
    "ModelNotServed",
    "Problem",
    "VersionNotServed",
    "install_problem_handlers",
    "internal_problem",
    "json_response",
    "problem_body",
    "problem_for",
    "problem_response",
]

log = logging.getLogger("modelward.serving")

# What is wrong with a request, as the validators say it, and the status that answers it.
REQUEST_STATUS: dict[RequestFault, int] = {
    "invalid": 422,
    "malformed": 400,
    "too-large": 413,
    "media-type": 415,
}


def json_response(value: Any, status: int = 200, headers: Mapping[str, str] | None = None) -> Response:
    return Response(
        orjson.dumps(value, option=orjson.OPT_SERIALIZE_NUMPY),
        status_code=status,
        media_type="application/json",
        headers=dict(headers or {}),
    )


def problem_response(
    status: int,
    title: str,
    detail: str,
    *,
    kind: str | None = None,
    instance: str | None = None,
    errors: Sequence[Mapping[str, Any]] | None = None,
    headers: Mapping[str, str] | None = None,
    extra: Mapping[str, Any] | None = None,
) -> Response:
    body = problem_body(status, title, detail, kind=kind, instance=instance, errors=errors, extra=extra)
    return Response(body, status_code=status, media_type=PROBLEM_JSON, headers=dict(headers or {}))


@dataclass(frozen=True, slots=True)
class Problem:
    status: int
    body: bytes
    headers: dict[str, str]


def problem_for(exc: BaseException, *, path: str, request_id: str | None = None) -> Problem | None:
    """The problem+json answer to one of modelward's own errors, or None for anything else (the
    framework's HTTP errors, bugs). The FastAPI handlers and the raw fast path share it."""

    def make(status: int, title: str, detail: str, *, kind: str | None = None, **kw: Any) -> Problem:
        headers = kw.pop("headers", None) or {}
        return Problem(status, problem_body(status, title, detail, kind=kind, instance=path, **kw), headers)

    if isinstance(exc, RequestInvalid):
        # The validator caps its list with a "... and N more" entry; count from its total instead.
        shown = [p for p in exc.field_problems if not p.message.startswith("... and ")][:5]
        more = exc.total - len(shown)
        return make(
            REQUEST_STATUS[exc.kind],
            exc.title,
            "; ".join(p.message for p in shown) + (f" (and {more} more)" if more > 0 else ""),
            kind="invalid-request" if exc.kind != "too-large" else "too-large",
            errors=[p.to_dict() for p in exc.field_problems],
        )
    if isinstance(exc, VersionNotServed):
        # 404, not 409: nothing the client can change in its request makes this server answer for
        # the version; the type tells a registered version (deploy it) from a wrong one.
        found = exc.registered is not False
        return make(
            404,
            "version not loaded" if found else "version not found",
            str(exc),
            kind="version-not-loaded" if found else "version-not-found",
            extra={"model": exc.name, "version": exc.version, "loaded_versions": list(exc.loaded)},
        )
    if isinstance(exc, ModelNotServed):
        return make(404, "model not found", str(exc), kind="model-not-found")
    if isinstance(exc, ModelLoading) and exc.failure is not None:
        return make(503, "model failed to load", str(exc), kind="model-unavailable")
    if isinstance(exc, ModelLoading):
        return make(
            503,
            "model loading",
            str(exc),
            kind="model-loading",
            headers={"Retry-After": str(exc.retry_after)},
        )
    if isinstance(exc, Overloaded):
        return make(
            503, "overloaded", str(exc), kind="overloaded", headers={"Retry-After": str(exc.retry_after)}
        )
    if isinstance(exc, BodyTooLarge):
        return make(413, "request too large", str(exc), kind="too-large")
    if isinstance(exc, ModelFailed):
        log.error("%s (request %s)", exc, request_id, exc_info=exc.__cause__ or exc)
        return make(500, "model failed", f"{exc}; request id {request_id}", kind="model-failed")
    if isinstance(exc, ModelwardError):
        status = 404 if isinstance(exc, NotFound) else 400 if isinstance(exc, ValueError) else 500
        if status == 500:
            log.error("error serving %s: %s", path, exc)
        return make(status, "request failed", str(exc))
    return None


def internal_problem(exc: BaseException, *, path: str, request_id: str | None) -> Problem:
    # A bug or a model that raised: the client gets problem+json, the log gets the traceback.
    log.error("error serving %s (request %s)", path, request_id, exc_info=exc)
    detail = f"the server failed to answer this request (request id {request_id}); see the server log"
    return Problem(500, problem_body(500, "internal error", detail, instance=path), {})


def _respond(problem: Problem) -> Response:
    return Response(
        problem.body, status_code=problem.status, media_type=PROBLEM_JSON, headers=problem.headers
    )


def install_problem_handlers(app: FastAPI) -> None:
    """Map every error to problem+json; a client's mistake is never a 500."""

    async def own(request: Request, exc: Exception) -> Response:
        if isinstance(exc, Overloaded):
            on_shed = getattr(request.app.state, "on_shed", None)
            if callable(on_shed):
                on_shed(exc.name.split(":")[0])
        request_id = getattr(request.state, "request_id", None)
        problem = problem_for(exc, path=request.url.path, request_id=request_id)
        return _respond(problem or internal_problem(exc, path=request.url.path, request_id=request_id))

    async def http_error(request: Request, exc: Exception) -> Response:
        exc = cast(StarletteHTTPException, exc)
        title = _TITLES.get(exc.status_code, "error")
        detail = exc.detail if isinstance(exc.detail, str) else title
        if exc.status_code == 404 and detail == "Not Found":
            detail = f"no route {request.method} {request.url.path}; see /docs"
        if exc.status_code == 405:
            detail = f"{request.method} is not allowed on {request.url.path}"
        return problem_response(
            exc.status_code, title, detail, instance=request.url.path, headers=getattr(exc, "headers", None)
        )

    async def validation_error(request: Request, exc: Exception) -> Response:
        exc = cast(RequestValidationError, exc)
        errors = [
            {"message": str(e.get("msg")), "field": ".".join(str(p) for p in e.get("loc", ()))}
            for e in exc.errors()
        ]
        detail = "; ".join(f"{e['field']}: {e['message']}" for e in errors[:5])
        return problem_response(422, "invalid request", detail, instance=request.url.path, errors=errors)

    async def internal_error(request: Request, exc: Exception) -> Response:
        request_id = getattr(request.state, "request_id", None)
        return _respond(internal_problem(exc, path=request.url.path, request_id=request_id))

    app.add_exception_handler(Exception, internal_error)
    for kind in (ModelFailed, RequestInvalid, ModelNotServed, ModelLoading, Overloaded, BodyTooLarge):
        app.add_exception_handler(kind, own)
    app.add_exception_handler(StarletteHTTPException, http_error)
    app.add_exception_handler(RequestValidationError, validation_error)
    app.add_exception_handler(ModelwardError, own)


_TITLES = {
    400: "bad request",
    401: "unauthorized",
    403: "forbidden",
    404: "not found",
    405: "method not allowed",
    406: "not acceptable",
    413: "request too large",
    415: "unsupported media type",
    422: "invalid request",
    500: "internal error",
    503: "service unavailable",
}
