"""RFC 9457 problem details: every error the server returns is ``application/problem+json``.

Besides the standard members (type, title, status, detail, instance) a problem carries ``error``
(the detail again, which Open Inference Protocol clients read) and, for invalid input, ``errors``:
one entry per bad field and row. HTTP status mapping for modelward's errors lives here only.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any, cast

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

from modelward.errors import ModelwardError, NotFound
from modelward.runtime.batcher import Overloaded
from modelward.validation import RequestInvalid

__all__ = [
    "PROBLEM_JSON",
    "BodyTooLarge",
    "ModelFailed",
    "ModelLoading",
    "ModelNotServed",
    "install_problem_handlers",
    "json_response",
    "problem_response",
]

log = logging.getLogger("modelward.serving")

PROBLEM_JSON = "application/problem+json"
_TYPE_BASE = "https://modelward.dev/problems/"


class ModelNotServed(NotFound):
    def __init__(self, name: str, served: Sequence[str]) -> None:
        self.name = name
        self.served = tuple(served)
        hint = f" (served: {', '.join(self.served)})" if self.served else " (no models are served)"
        super().__init__(f"model '{name}' is not served here{hint}")


class ModelLoading(ModelwardError, RuntimeError):
    def __init__(self, name: str, retry_after: int = 2) -> None:
        self.name = name
        self.retry_after = retry_after
        super().__init__(f"model '{name}' is still loading; retry in {retry_after} s")


class ModelFailed(ModelwardError, RuntimeError):
    """The model raised while predicting: a server-side failure (500), counted per version."""

    def __init__(self, name: str, version: str, exc: BaseException) -> None:
        self.name = name
        self.version = version
        message = f"{type(exc).__name__}: {exc}"
        super().__init__(f"model '{name}' version {version} failed on this request ({message[:200]})")


class BodyTooLarge(ModelwardError, ValueError):
    def __init__(self, limit: int) -> None:
        self.limit = limit
        super().__init__(f"the request body is larger than the limit of {limit} bytes")


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
    body: dict[str, Any] = {
        "type": _TYPE_BASE + kind if kind else "about:blank",
        "title": title,
        "status": status,
        "detail": detail,
        "error": detail,
    }
    if instance:
        body["instance"] = instance
    if errors:
        body["errors"] = list(errors)
    if extra:
        body.update(extra)
    return Response(
        orjson.dumps(body), status_code=status, media_type=PROBLEM_JSON, headers=dict(headers or {})
    )


def install_problem_handlers(app: FastAPI) -> None:
    """Map every error to problem+json; a client's mistake is never a 500."""

    async def request_invalid(request: Request, exc: Exception) -> Response:
        exc = cast(RequestInvalid, exc)  # registered for this type only
        # The validator caps its list with a "... and N more" entry; count from its total instead.
        shown = [p for p in exc.field_problems if not p.message.startswith("... and ")][:5]
        more = exc.total - len(shown)
        return problem_response(
            exc.status,
            exc.title,
            "; ".join(p.message for p in shown) + (f" (and {more} more)" if more > 0 else ""),
            kind="invalid-request" if exc.status != 413 else "too-large",
            instance=request.url.path,
            errors=[p.to_dict() for p in exc.field_problems],
        )

    async def not_served(request: Request, exc: Exception) -> Response:
        return problem_response(
            404, "model not found", str(exc), kind="model-not-found", instance=request.url.path
        )

    async def loading(request: Request, exc: Exception) -> Response:
        retry = exc.retry_after if isinstance(exc, ModelLoading) else 2
        return problem_response(
            503,
            "model loading",
            str(exc),
            kind="model-loading",
            instance=request.url.path,
            headers={"Retry-After": str(retry)},
        )

    async def overloaded(request: Request, exc: Exception) -> Response:
        exc = cast(Overloaded, exc)
        on_shed = getattr(request.app.state, "on_shed", None)
        if callable(on_shed):
            on_shed(exc.name.split(":")[0])
        return problem_response(
            503,
            "overloaded",
            str(exc),
            kind="overloaded",
            instance=request.url.path,
            headers={"Retry-After": str(exc.retry_after)},
        )

    async def too_large(request: Request, exc: Exception) -> Response:
        return problem_response(
            413, "request too large", str(exc), kind="too-large", instance=request.url.path
        )

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

    async def modelward_error(request: Request, exc: Exception) -> Response:
        status = 404 if isinstance(exc, NotFound) else 400 if isinstance(exc, ValueError) else 500
        if status == 500:
            log.error("error serving %s: %s", request.url.path, exc)
        return problem_response(status, "request failed", str(exc), instance=request.url.path)

    async def model_failed(request: Request, exc: Exception) -> Response:
        request_id = getattr(request.state, "request_id", None)
        log.error("%s (request %s)", exc, request_id, exc_info=exc.__cause__ or exc)
        return problem_response(
            500,
            "model failed",
            f"{exc}; request id {request_id}",
            kind="model-failed",
            instance=request.url.path,
        )

    async def internal_error(request: Request, exc: Exception) -> Response:
        # A bug or a model that raised: the client gets problem+json, the log gets the traceback.
        request_id = getattr(request.state, "request_id", None)
        log.error("error serving %s (request %s)", request.url.path, request_id, exc_info=exc)
        detail = f"the server failed to answer this request (request id {request_id}); see the server log"
        return problem_response(500, "internal error", detail, instance=request.url.path)

    app.add_exception_handler(Exception, internal_error)
    app.add_exception_handler(ModelFailed, model_failed)
    app.add_exception_handler(RequestInvalid, request_invalid)
    app.add_exception_handler(ModelNotServed, not_served)
    app.add_exception_handler(ModelLoading, loading)
    app.add_exception_handler(Overloaded, overloaded)
    app.add_exception_handler(BodyTooLarge, too_large)
    app.add_exception_handler(StarletteHTTPException, http_error)
    app.add_exception_handler(RequestValidationError, validation_error)
    app.add_exception_handler(ModelwardError, modelward_error)


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
