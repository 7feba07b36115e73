"""The REST prediction route as raw ASGI, in front of FastAPI.

``POST /models/{name}/predict`` for a served model is answered here, without FastAPI's routing,
dependency injection and request objects, which cost more than validating and predicting a row.
It does everything the route does (same validation, routing, problem+json errors, auth policy,
body limit, request id, metrics and access log line) through the same code
(:func:`modelward.serving.rest.predict_rest`, :func:`modelward.serving.problems.problem_for`);
a test sends every request of the bad-input table through both. The FastAPI route stays: it
documents the typed request in /docs and answers when the fast path is off.
"""

from __future__ import annotations

import hmac
import logging
import time
from collections.abc import Callable
from typing import Any

import orjson
from starlette.types import Receive, Scope, Send

from modelward.runtime.batcher import Overloaded
from modelward.serving.middleware import access_line, new_request_id, safe_request_id
from modelward.serving.models import ModelManager
from modelward.serving.predict import Predictor
from modelward.serving.problems import PROBLEM_JSON, BodyTooLarge, internal_problem, problem_body, problem_for
from modelward.serving.rest import check_json, predict_rest

__all__ = ["FastPredict"]

access_log = logging.getLogger("modelward.access")

_PREFIX, _SUFFIX = "/models/", "/predict"
_JSON = (b"content-type", b"application/json")


class _Disconnected(Exception):
    """The client went away before sending its whole body: nothing to answer."""


class _State:
    __slots__ = ("rows", "version")

    def __init__(self) -> None:
        self.version: str | None = None
        self.rows: int | None = None


class FastPredict:
    """:meth:`match` says whether a request is a REST prediction for a served model;
    :meth:`handle` answers it. :class:`~modelward.serving.app.ModelwardApp` calls both before
    anything of FastAPI's runs."""

    def __init__(
        self,
        *,
        manager: ModelManager,
        predictor: Predictor,
        max_rows: int,
        max_body_bytes: int,
        predict_token: str | None,
        admin_token: str | None,
        on_response: Callable[[dict[str, Any], int, float], None] | None,
        on_shed: Callable[[str], None] | None = None,
    ) -> None:
        self.manager = manager
        self.predictor = predictor
        self.max_rows = max_rows
        self.max_body_bytes = max_body_bytes
        self.tokens = [t.encode() for t in (predict_token, admin_token) if t] if predict_token else []
        self.on_response = on_response
        self.on_shed = on_shed

    def match(self, scope: Scope) -> str | None:
        """The served model a ``POST /models/{name}/predict`` request is for, else None."""
        if scope["type"] == "http" and scope["method"] == "POST":
            path: str = scope["path"]
            if path.startswith(_PREFIX) and path.endswith(_SUFFIX):
                name = path[len(_PREFIX) : -len(_SUFFIX)]
                if name in self.manager.slots:
                    return name
        return None

    async def handle(self, name: str, scope: Scope, receive: Receive, send: Send) -> None:
        started = time.perf_counter()
        path: str = scope["path"]
        headers: dict[bytes, bytes] = {}
        for key, value in scope["headers"]:
            headers.setdefault(key, value)
        given = headers.get(b"x-request-id")
        request_id = safe_request_id(given.decode("latin-1")) if given is not None else None
        request_id = request_id or new_request_id()
        state = _State()
        status = 500
        try:
            status, body, out = await self._answer(name, path, headers, receive, request_id, state)
        except _Disconnected:
            return
        except Exception as exc:  # bugs included: the client gets problem+json, the log a traceback
            if isinstance(exc, Overloaded) and self.on_shed is not None:
                self.on_shed(name)
            problem = problem_for(exc, path=path, request_id=request_id)
            problem = problem or internal_problem(exc, path=path, request_id=request_id)
            status, body = problem.status, problem.body
            out = [(b"content-type", PROBLEM_JSON.encode())]
            out += [(k.lower().encode(), v.encode()) for k, v in problem.headers.items()]
            if status == 413:
                out.append((b"connection", b"close"))
        out.append((b"content-length", str(len(body)).encode()))
        if not any(k == b"x-request-id" for k, _ in out):
            out.append((b"x-request-id", request_id.encode()))
        await send({"type": "http.response.start", "status": status, "headers": out})
        await send({"type": "http.response.body", "body": body})
        elapsed = time.perf_counter() - started
        if self.on_response is not None:
            info = {"endpoint": "predict", "model": name, "version": state.version, "rows": state.rows}
            try:
                self.on_response(info, status, elapsed)
            except Exception:  # metrics must never fail a request
                access_log.exception("recording request metrics failed")
        if access_log.isEnabledFor(logging.INFO):
            access_log.info(access_line(request_id, "POST", path, status, elapsed, name, state.version))

    async def _answer(
        self,
        name: str,
        path: str,
        headers: dict[bytes, bytes],
        receive: Receive,
        request_id: str,
        state: _State,
    ) -> tuple[int, bytes, list[tuple[bytes, bytes]]]:
        declared = headers.get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_body_bytes:
            raise BodyTooLarge(self.max_body_bytes)
        if self.tokens:
            auth = headers.get(b"authorization", b"")
            token = auth[7:].strip() if auth[:7].lower() == b"bearer " else b""
            if not any(hmac.compare_digest(token, t) for t in self.tokens):
                detail = "prediction token missing or wrong"
                body = problem_body(401, "unauthorized", detail, instance=path)
                return 401, body, [(b"content-type", PROBLEM_JSON.encode()), (b"www-authenticate", b"Bearer")]
        ctype = headers.get(b"content-type")
        check_json(ctype.decode("latin-1") if ctype is not None else None)
        body = await self._body(receive)
        key = headers.get(b"x-routing-key")
        result = await predict_rest(
            self.manager,
            self.predictor,
            name,
            body,
            max_rows=self.max_rows,
            request_id=request_id,
            routing_key=key.decode("latin-1") if key is not None else None,
            state=state,
        )
        if result.version is not None:
            state.version = result.version
        out = [_JSON]
        out += [(k.lower().encode(), v.encode()) for k, v in result.headers.items()]
        return 200, orjson.dumps(result.body, option=orjson.OPT_SERIALIZE_NUMPY), out

    async def _body(self, receive: Receive) -> bytes:
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                raise _Disconnected
            chunk = message.get("body", b"")
            if chunk:
                size += len(chunk)
                if size > self.max_body_bytes:
                    raise BodyTooLarge(self.max_body_bytes)
                chunks.append(chunk)
            if not message.get("more_body", False):
                return chunks[0] if len(chunks) == 1 else b"".join(chunks)
