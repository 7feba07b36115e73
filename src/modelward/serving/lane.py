"""The REST prediction as plain calls and callbacks: no task, future or ASGI message per request.

``POST /models/{name}/predict`` for a served model is answered here by :class:`FastLane`, which the
server's HTTP protocol (:mod:`modelward.serving.protocol`) calls from its parser callbacks and which
answers through a ``reply(status, head, body)`` callback (``head``: the response's own header lines).
The ASGI fast path (:mod:`modelward.serving.fastpath`, for other ASGI servers and in-process clients)
adapts the same lane to ``receive``/``send``, so both give the same answers.

Two ways through, same answers:

- a body of one record (``{"features": {...}}``, optionally ``request_id`` and ``key``) joins the
  turn's other such requests for that model (:mod:`modelward.serving.hot`): validated together,
  predicted in one call, answered one by one;
- anything else (several records, columns, per-row routing keys, shadow traffic, every invalid
  body) is validated alone by :func:`modelward.validation.validate_request` and predicted through
  :meth:`modelward.serving.predict.Predictor.submit`.

Both do everything the FastAPI route does (same validation, routing, problem+json errors, auth
policy, request id, metrics and access log line) through the same code; a test sends every request
of the bad-input table through the server and through the FastAPI route.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterable
from typing import Any

from modelward.monitoring.metrics import ServingMetrics
from modelward.runtime.batcher import Overloaded, Pending
from modelward.serving.auth import bearer_matches, policy_tokens
from modelward.serving.hot import HotPath
from modelward.serving.middleware import access_line, new_request_id, safe_request_id
from modelward.serving.models import ModelManager
from modelward.serving.predict import Outcome, Predictor
from modelward.serving.problems import PROBLEM_JSON, internal_problem, problem_body, problem_for
from modelward.serving.render import header_block, prediction_body, prediction_headers
from modelward.serving.rest import check_json
from modelward.serving.tracing import RequestTrace, Tracing
from modelward.validation import ConsentRule, parse_json, validate_request

__all__ = ["FastLane", "Reply", "header_block"]

access_log = logging.getLogger("modelward.access")

PREFIX, SUFFIX = "/models/", "/predict"
Headers = list[tuple[bytes, bytes]]
# reply(status, head, body): the response, once. ``head`` is modelward's own header lines, each
# ending in CRLF, without Content-Length (the server adds it, and its own Date).
Reply = Callable[[int, bytes, bytes], None]

_PROBLEM = (b"content-type", PROBLEM_JSON.encode())
_CLOSE = (b"connection", b"close")
# Members a one-record body may have to take the hot path.
_HOT_MEMBERS = frozenset({"features", "request_id", "key"})


class _Request:
    """One request between its arrival and its answer (the predictor's ``done`` callback)."""

    __slots__ = ("arm", "lane", "name", "path", "reply", "request_id", "rows", "started", "trace", "version")

    def __init__(
        self,
        lane: FastLane,
        name: str,
        path: str,
        reply: Reply,
        request_id: str,
        started: float,
        trace: RequestTrace | None = None,
    ) -> None:
        self.lane = lane
        self.name = name
        self.path = path
        self.reply = reply
        self.request_id = request_id
        self.started = started
        self.trace = trace
        self.version: str | None = None
        self.arm: str | None = None
        self.rows: int | None = None

    def done(self, outcome: Outcome | None, exc: BaseException | None) -> None:
        if outcome is None:
            self.lane.fail(self, exc or RuntimeError("no outcome"))
            return
        try:
            body = prediction_body(outcome)
        except Exception as err:  # a value the encoder refuses is the server's fault: 500 problem
            self.lane.fail(self, err)
            return
        version, ids = outcome.version, outcome.request_ids
        if version is not None:
            self.version = version
        request_id = ids[0] if len(ids) == 1 else self.request_id
        self.arm = outcome.arm
        if self.trace is not None:
            self.trace.mark("predict", attributes={"modelward.rows": len(ids)})
        self.lane.answer(self, 200, prediction_headers(version, outcome.arm, request_id), body)


class FastLane:
    """:meth:`match` says whether a path is a REST prediction for a served model; :meth:`accept`
    answers a request whose body has arrived; :meth:`refuse` answers one that cannot be read
    (body too large)."""

    def __init__(
        self,
        *,
        manager: ModelManager,
        predictor: Predictor,
        max_rows: int,
        max_body_bytes: int,
        predict_token: str | None,
        admin_token: str | None,
        metrics: ServingMetrics,
        on_shed: Callable[[str], None] | None = None,
        hot: bool = True,
        consent: ConsentRule | None = None,
        tracing: Tracing | None = None,
    ) -> None:
        self.manager = manager
        self.predictor = predictor
        self.max_rows = max_rows
        self.max_body_bytes = max_body_bytes
        self.tokens = policy_tokens("predict", admin_token=admin_token, predict_token=predict_token)
        self.metrics = metrics
        self.on_shed = on_shed
        self.hot = HotPath(self) if hot else None
        self.consent = consent or ConsentRule()
        self.tracing = tracing
        # Answered requests of this turn of the event loop, counted at once when it ends (a
        # client's next request, a scrape included, is read in a later turn).
        self._answered: list[tuple[str, str, str, int, list[float], list[int] | None]] = []

    def match(self, path: str) -> str | None:
        """The served model a ``/models/{name}/predict`` path is for, else None."""
        if path.startswith(PREFIX) and path.endswith(SUFFIX):
            name = path[len(PREFIX) : -len(SUFFIX)]
            if name in self.manager.slots:
                return name
        return None

    def accept(
        self,
        name: str,
        path: str,
        headers: Iterable[tuple[bytes, bytes]],
        body: bytes,
        reply: Reply,
        started: float,
    ) -> Pending | None:
        """Validate, route and queue the request; ``reply`` is called once with the answer (maybe
        before this returns). Returns a handle to cancel the prediction if the client goes away."""
        given = ctype = auth = key = said = None
        tracing = self.tracing
        trace = None if tracing is None else tracing.start(name, path, headers, started)
        rule = self.consent
        consent_key = rule.header_key
        for k, v in headers:  # the first of each, as the ASGI path reads them
            if k == b"content-type":
                ctype = ctype if ctype is not None else v
            elif k == b"x-request-id":
                given = given if given is not None else v
            elif k == b"authorization":
                auth = auth if auth is not None else v
            elif k == b"x-routing-key":
                key = key if key is not None else v
            elif k == consent_key:
                said = said if said is not None else v
        header_id = safe_request_id(given.decode("latin-1")) if given is not None else None
        try:
            if self.tokens and not bearer_matches(auth, self.tokens):
                request = _Request(self, name, path, reply, header_id or new_request_id(), started, trace)
                body = problem_body(401, "unauthorized", "prediction token missing or wrong", instance=path)
                headers = [
                    _PROBLEM,
                    (b"www-authenticate", b"Bearer"),
                    (b"x-request-id", request.request_id.encode()),
                ]
                self.answer(request, 401, headers, body)
                return None
            refusal = self.manager.routing(name).refusal(started)  # overloaded: refused before parsing
            if refusal is not None:
                raise refusal
            if ctype is not None and ctype != b"application/json":
                check_json(ctype.decode("latin-1"))
            payload = parse_json(body)
            # Consent costs one lookup in the body when the request does not carry it.
            if said is None and (type(payload) is not dict or rule.field not in payload):
                consent = rule.default
            else:
                consent = rule.take(said, payload)
        except Exception as exc:
            self.fail(_Request(self, name, path, reply, header_id or new_request_id(), started, trace), exc)
            return None
        if trace is not None:
            trace.mark("parse")
        header_key = key.decode("latin-1") if key is not None else None
        hot = self.hot
        if hot is not None and type(payload) is dict and payload.keys() <= _HOT_MEMBERS:
            record = payload.get("features")
            body_id = payload.get("request_id")
            body_key = payload.get("key")
            if (
                type(record) is dict
                and (body_id is None or (type(body_id) is str and safe_request_id(body_id) is not None))
                and (body_key is None or type(body_key) in (str, int))
            ):
                routing_key = str(body_key) if body_key is not None else header_key
                hot.add(
                    name,
                    path,
                    payload,
                    record,
                    body_id or header_id,
                    routing_key,
                    reply,
                    started,
                    consent,
                    trace,
                )
                return None
        return self.general(
            name, path, payload, header_id, header_key, reply, started, consent=consent, trace=trace
        )

    def general(
        self,
        name: str,
        path: str,
        payload: Any,
        header_id: str | None,
        header_key: str | None,
        reply: Reply,
        started: float,
        arm: str | None = None,
        consent: bool = True,
        trace: RequestTrace | None = None,
    ) -> Pending | None:
        """A parsed body (its consent member taken out), validated alone and predicted through the
        predictor (on ``arm`` if given)."""
        request = _Request(self, name, path, reply, header_id or new_request_id(), started, trace)
        try:
            routing = self.manager.routing(name)
            request.version = routing.primary.version
            if trace is not None:
                trace.mark("route")
            batch = validate_request(
                payload, routing.primary.model.schema, max_rows=self.max_rows, key_field=routing.spec.key
            )
            request.rows = batch.n_rows
            if trace is not None:
                trace.mark("validate")
            routing_key = batch.key if batch.key is not None else header_key
            if arm is not None and arm not in routing.arms:
                arm = None  # the deployment changed meanwhile: routed afresh
            return self.predictor.submit(
                name,
                batch,
                header_id=request.request_id,
                routing_key=routing_key,
                routing=routing,
                done=request.done,
                arm=arm,
                started=started,
                consent=consent,
            )
        except Exception as exc:
            self.fail(request, exc)
            return None

    def refuse(
        self,
        name: str,
        path: str,
        headers: Iterable[tuple[bytes, bytes]],
        exc: Exception,
        reply: Reply,
        started: float,
    ) -> None:
        """Answer a request whose body is not read (too large): a problem, and the connection closes."""
        headers = list(headers)
        given = next((v for k, v in headers if k == b"x-request-id"), None)
        request_id = (
            safe_request_id(given.decode("latin-1")) if given is not None else None
        ) or new_request_id()
        tracing = self.tracing
        trace = None if tracing is None else tracing.start(name, path, headers, started)
        self.fail(_Request(self, name, path, reply, request_id, started, trace), exc)

    def fail(self, request: _Request, exc: BaseException) -> None:
        """Answer ``exc`` as problem+json (a bug too: the client gets a 500 problem, the log a traceback)."""
        if isinstance(exc, Overloaded) and self.on_shed is not None:
            self.on_shed(request.name)
        problem = problem_for(exc, path=request.path, request_id=request.request_id)
        problem = problem or internal_problem(exc, path=request.path, request_id=request.request_id)
        headers: Headers = [_PROBLEM]
        headers += [(k.lower().encode(), v.encode()) for k, v in problem.headers.items()]
        if problem.status == 413:
            headers.append(_CLOSE)
        headers.append((b"x-request-id", request.request_id.encode()))
        self.answer(request, problem.status, headers, problem.body)

    def fail_one(
        self,
        name: str,
        path: str,
        request_id: str,
        reply: Reply,
        started: float,
        exc: BaseException,
        trace: RequestTrace | None = None,
    ) -> None:
        self.fail(_Request(self, name, path, reply, request_id, started, trace), exc)

    def answer(self, request: _Request, status: int, headers: Headers, body: bytes) -> None:
        request.reply(status, header_block(headers), body)
        elapsed = time.perf_counter() - request.started
        self.tally(
            request.name, request.version or "", status, [elapsed], [request.rows] if request.rows else None
        )
        if access_log.isEnabledFor(logging.INFO):
            line = access_line(
                request.request_id, "POST", request.path, status, elapsed, request.name, request.version
            )
            access_log.info(line)
        trace = request.trace
        if trace is not None:
            trace.finish(status, version=request.version, arm=request.arm, request_id=request.request_id)

    def tally(
        self, name: str, version: str, status: int, seconds: list[float], rows: list[int] | None
    ) -> None:
        """Count answered requests (their latencies, their rows) when this turn of the loop ends."""
        answered = self._answered
        answered.append((name, version, "predict", status, seconds, rows))
        if len(answered) == 1:
            try:
                asyncio.get_running_loop().call_soon(self._tally)
            except RuntimeError:  # no loop (a direct call): count now
                self._tally()

    def _tally(self) -> None:
        answered, self._answered = self._answered, []
        try:
            self.metrics.observe_requests(answered)
        except Exception:  # metrics must never fail a request
            access_log.exception("recording request metrics failed")
