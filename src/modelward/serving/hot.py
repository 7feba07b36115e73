"""One-record REST predictions of a turn of the event loop, answered together.

Under load, the event loop reads many requests at once (one per connection that has data). The
:class:`~modelward.serving.lane.FastLane` queues each body of one record here; at the end of the
turn (``call_soon``) :meth:`HotPath.flush` validates the records of a model together
(:func:`modelward.validation.records_columns`: one type check and one array per field), gives
them request ids, routes them to their arms, and hands each arm's rows to its version's batcher as
one submission. When the call returns, each request gets its own response, rendered from one
conversion of the batch's outputs. Per request, what is left is parsing its body and writing its
response; everything else costs per turn.

The answers are the ones the general path gives (same body bytes, headers, metrics, log rows): a
record that the joint check does not take (it is left out alone: its neighbours are answered all
the same), a model with shadow traffic or a per-row routing key, and a request whose call failed
(run again alone, so that one bad record fails only its own request) take the general path, which
validates and predicts each request alone.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import TYPE_CHECKING, Any

import numpy as np

from modelward.runtime.batcher import Outputs, Overloaded
from modelward.serving.middleware import access_line, new_request_id, new_request_ids
from modelward.serving.models import Routing, Served
from modelward.serving.predict import Tag, plain_labels
from modelward.serving.render import (
    body_head,
    header_block,
    one_row_bodies,
    prediction_headers,
    prediction_rows,
)
from modelward.validation import records_columns

if TYPE_CHECKING:
    from prometheus_client import Gauge

    from modelward.serving.lane import FastLane, Reply
    from modelward.serving.tracing import RequestTrace

__all__ = ["HotPath"]

access_log = logging.getLogger("modelward.access")
log = logging.getLogger("modelward.serving")

# (payload, record, request id or None, routing key or None, reply, started, trace or None)
_Item = tuple[dict[str, Any], dict[str, Any], str | None, str | None, "Reply", float, "RequestTrace | None"]
# When the turn's routing was resolved and its records validated (time.time_ns()), when traced.
_Marks = tuple[int, int] | None
# Requests with consent and without it are queued apart: each submission's log rows share one.
_Queues = dict[str, list[_Item]]


class HotPath:
    def __init__(self, lane: FastLane) -> None:
        self.lane = lane
        self._queues: _Queues = {}  # with consent
        self._private: _Queues = {}  # without

    def add(
        self,
        name: str,
        path: str,
        payload: dict[str, Any],
        record: dict[str, Any],
        request_id: str | None,
        key: str | None,
        reply: Reply,
        started: float,
        consent: bool = True,
        trace: RequestTrace | None = None,
    ) -> None:
        """Queue one request; it is answered after this turn of the event loop."""
        queues = self._queues if consent else self._private
        queue = queues.get(name)
        if queue is None:
            queue = queues[name] = []
        if not queue:
            asyncio.get_running_loop().call_soon(self.flush, name, path, consent)
        queue.append((payload, record, request_id, key, reply, started, trace))

    def flush(self, name: str, path: str, consent: bool = True) -> None:
        queues = self._queues if consent else self._private
        items = queues.get(name)
        if not items:
            return
        queues[name] = []
        try:
            self._flush(name, path, items, consent)
        except Exception as exc:  # a bug: still, no request of the turn is left without an answer
            log.exception("answering a turn's requests for %s failed", name)
            for _, _, rid, _, reply, started, trace in items:  # answered ones ignore a second reply
                self.lane.fail_one(name, path, rid or new_request_id(), reply, started, exc, trace)

    def _flush(self, name: str, path: str, items: list[_Item], consent: bool) -> None:
        lane = self.lane
        try:
            routing = lane.manager.routing(name)
        except Exception as exc:  # loading, or no longer served: every request gets the problem
            for _, _, rid, _, reply, started, trace in items:
                lane.fail_one(name, path, rid or new_request_id(), reply, started, exc, trace)
            return
        routed = time.time_ns() if lane.tracing is not None else 0
        taken = None
        if routing.shadow is None and routing.spec.key is None:
            taken = records_columns([it[1] for it in items], routing.primary.model.schema)
        if taken is None:
            for payload, _, rid, key, reply, started, trace in items:
                lane.general(name, path, payload, rid, key, reply, started, consent=consent, trace=trace)
            return
        marks: _Marks = (routed, time.time_ns()) if routed else None
        columns, odd = taken
        if odd:  # each on its own: a bad record gets its own problem, its neighbours their answers
            for i in odd:
                payload, _, rid, key, reply, started, trace = items[i]
                lane.general(name, path, payload, rid, key, reply, started, consent=consent, trace=trace)
            left = set(odd)
            items = [it for i, it in enumerate(items) if i not in left]
            if not items:
                return
        ids: list[str] = [it[2] for it in items]  # type: ignore[misc]  # filled below
        missing = sum(1 for i in ids if i is None)
        if missing:
            fresh = iter(new_request_ids(missing))
            ids = [i if i is not None else next(fresh) for i in ids]
        if len(routing.arms) == 1:
            self._submit(name, path, routing, next(iter(routing.arms)), items, columns, ids, consent, marks)
            return
        arms = [routing.assign(it[3]) for it in items]
        for arm in dict.fromkeys(arms):
            rows = [i for i, a in enumerate(arms) if a == arm]
            if len(rows) == len(items):
                self._submit(name, path, routing, arm, items, columns, ids, consent, marks)
                break
            index = np.asarray(rows)
            part = {field: column[index] for field, column in columns.items()}
            chosen = [items[i] for i in rows]
            self._submit(name, path, routing, arm, chosen, part, [ids[i] for i in rows], consent, marks)

    def _submit(
        self,
        name: str,
        path: str,
        routing: Routing,
        arm: str,
        items: list[_Item],
        columns: dict[str, np.ndarray],
        ids: list[str],
        consent: bool,
        marks: _Marks = None,
    ) -> None:
        served = routing.arms[arm]
        batcher = served.batcher
        # At most one call's rows per submission (one row each with batching off): the batcher sheds
        # and orders submissions, so each keeps to what one predict call may take.
        size = batcher.call_rows if batcher.enabled else 1
        if len(items) > size:
            for start in range(0, len(items), size):
                part = {field: column[start : start + size] for field, column in columns.items()}
                self._submit(
                    name,
                    path,
                    routing,
                    arm,
                    items[start : start + size],
                    part,
                    ids[start : start + size],
                    consent,
                    marks,
                )
            return
        keys: list[str | None] | None = [it[3] for it in items]
        if keys is not None and all(k is None for k in keys):
            keys = None
        started = [it[5] for it in items]
        tag = Tag(served, arm, ids, keys, started, consent=consent)
        group = _Group(self.lane, name, path, served, arm, items, ids, tag, marks)
        group.gauge.inc(len(items))
        try:
            batcher.submit(columns, len(items), group.done, tag, requests=len(items), started=min(started))
        except Exception as exc:  # shed at once (Overloaded)
            group.done(None, 0.0, exc)


class _Group:
    """The requests of one turn that went to one arm: one submission, one answer each."""

    __slots__ = ("arm", "gauge", "ids", "items", "lane", "marks", "name", "path", "served", "tag")

    def __init__(
        self,
        lane: FastLane,
        name: str,
        path: str,
        served: Served,
        arm: str,
        items: list[_Item],
        ids: list[str],
        tag: Tag,
        marks: _Marks = None,
    ) -> None:
        self.lane = lane
        self.marks = marks
        self.name = name
        self.path = path
        self.served = served
        self.arm = arm
        self.items = items
        self.ids = ids
        self.tag = tag
        self.gauge: Gauge = lane.metrics.in_flight_gauge(name)

    def done(self, out: Outputs | None, seconds: float, exc: BaseException | None) -> None:
        items, lane = self.items, self.lane
        self.gauge.dec(len(items))
        if out is None:
            for (payload, _, rid, key, reply, started, trace), given in zip(items, self.ids, strict=True):
                if isinstance(exc, Overloaded) or exc is None:
                    lane.fail_one(
                        self.name, self.path, given, reply, started, exc or RuntimeError("no outputs"), trace
                    )
                else:  # run alone, on the same arm: one bad record fails only its own request
                    lane.general(
                        self.name,
                        self.path,
                        payload,
                        rid or given,
                        key,
                        reply,
                        started,
                        self.arm,
                        consent=self.tag.consent,
                        trace=trace,
                    )
            return
        try:
            self._answer(out)
        except Exception as err:  # a value the encoder refuses: the server's fault, 500 problems
            for (_, _, _, _, reply, started, trace), rid in zip(items, self.ids, strict=True):
                lane.fail_one(self.name, self.path, rid, reply, started, err, trace)

    def _answer(self, out: Outputs) -> None:
        predicted = time.time_ns() if self.marks is not None else 0
        labels, proba = out
        served, name, arm, items, ids = self.served, self.name, self.arm, self.items, self.ids
        version = served.version
        classes = served.model.class_values if proba is not None else ()
        rows = prediction_rows(ids, plain_labels(labels), proba, classes, served.model.named_probability)
        bodies = one_row_bodies(body_head(name, version, served.alias, arm), rows)
        common = header_block(prediction_headers(version, arm, None)) + b"x-request-id: "
        logger = self.lane.predictor.logger
        if logger is not None:  # counted before the answers go out (a crash may follow)
            logger.announce(len(items))
            self.tag.announced = True
        for item, rid, body in zip(items, ids, bodies, strict=True):
            item[4](200, common + rid.encode() + b"\r\n", body)
        now = time.perf_counter()
        elapsed = [now - it[5] for it in items]
        self.lane.tally(name, version, 200, elapsed, [1] * len(items))
        if access_log.isEnabledFor(logging.INFO):
            for rid, seconds in zip(ids, elapsed, strict=True):
                access_log.info(access_line(rid, "POST", self.path, 200, seconds, name, version))
        if self.marks is not None:
            self._traced(self.marks, predicted)

    def _traced(self, marks: tuple[int, int], predicted: int) -> None:
        """The traced requests of this call: their phases share the turn's marks, and their
        ``predict`` phase names the call's size (requests and rows answered together)."""
        routed, validated = marks
        version, arm = self.served.version, self.arm
        batch = {"modelward.rows": 1, "modelward.batch.requests": len(self.items)}
        for item, rid in zip(self.items, self.ids, strict=True):
            trace = item[6]
            if trace is not None:
                trace.mark("route", routed)
                trace.mark("validate", validated)
                trace.mark("predict", predicted, batch)
                trace.finish(200, version=version, arm=arm, request_id=rid)
