"""Labels for users who never kept request ids: find the prediction each label is about by a logged field.

A label row carries a key (``customer_id``), a time (when its outcome was known) and a label. It is
matched to the prediction of the model whose logged value of that field equals the key, nearest in
time within ``window`` before the label's time: the prediction the outcome followed. The value of a
field in a logged row is its input of that name; a row without one (the field was the deployment's
routing key, ``modelward deploy --key customer_id``, which the log keeps as ``routing_key`` rather
than as an input) has its routing key instead, when some revision of the model's deployment was
keyed on that field.

Nothing is guessed. A label is *unmatched* when no prediction with its key lies in its window, and
*ambiguous* when two or more requests with its key share the nearest time (one request's several
rows count once), or when two label rows land on the same request with different labels. Both are
left out and reported with their row numbers; shadow traffic and failed predictions never match.

Keys are compared as text: numbers in their shortest form (``123``, ``123.0`` and ``"123"`` are the
same key), text as it is. The log is read once over the span the labels need, in time order, keeping
only rows whose key is among the labels'.
"""

from __future__ import annotations

import bisect
import json
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import orjson
from sqlalchemy import Connection, and_, func, or_, select

from modelward.feedback.ingest import FeedbackItem, Label, same_label
from modelward.routing.spec import SHADOW_ARM
from modelward.store import Store
from modelward.store.tables import deployment_history, predictions

__all__ = ["JoinResult", "KeyedLabel", "Unjoined", "join_labels", "key_text"]

_PAGE = 10_000


def key_text(value: Any) -> str | None:
    """A join key as text (None for a missing one): integral numbers without a fraction, other numbers
    as Python prints them, booleans as JSON writes them, text unchanged."""
    if hasattr(value, "item") and not isinstance(value, str):
        value = value.item()  # NumPy scalars
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return None
        return str(int(value)) if value.is_integer() else repr(value)
    return str(value)


@dataclass(frozen=True, slots=True)
class KeyedLabel:
    """One label row: its number in the file (1-based), its key, its time (UNIX seconds) and label."""

    row: int
    key: str
    ts: float
    label: Label


@dataclass(frozen=True, slots=True)
class Unjoined:
    """A label row left out, and why; ``request_ids`` are the candidates of an ambiguous one."""

    row: int
    key: str
    ts: float
    reason: str
    request_ids: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "row": self.row,
            "key": self.key,
            "ts": self.ts,
            "reason": self.reason,
            "request_ids": list(self.request_ids),
        }


@dataclass(frozen=True, slots=True)
class JoinResult:
    """What :func:`join_labels` found: ``items`` to record, and the rows it could not place."""

    model: str
    field: str
    window: float
    rows: int
    items: tuple[FeedbackItem, ...]
    unmatched: tuple[Unjoined, ...]
    ambiguous: tuple[Unjoined, ...]
    logged: int  # prediction rows of the model in the labels' span
    keyed: int  # of those, rows that carry the field (as an input or as the routing key)
    routing_key: bool  # the routing key stands in for the field (the deployment was keyed on it)

    @property
    def matched(self) -> int:
        return len(self.items)

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "join_on": self.field,
            "window_seconds": self.window,
            "rows": self.rows,
            "matched": self.matched,
            "unmatched": len(self.unmatched),
            "ambiguous": len(self.ambiguous),
            "unmatched_rows": [u.to_dict() for u in self.unmatched],
            "ambiguous_rows": [a.to_dict() for a in self.ambiguous],
        }


def _keyed_on(conn: Connection, model: str, field: str) -> bool:
    """Whether some revision of ``model``'s deployment routed on ``field``."""
    query = select(deployment_history.c.spec).where(deployment_history.c.model == model)
    return any(json.loads(spec).get("key") == field for (spec,) in conn.execute(query))


def _logged(
    store: Store, model: str, since: float, until: float
) -> Iterator[tuple[str, float, str, str | None]]:
    """(request id, ts, inputs JSON, routing key) of the model's served rows in ``[since, until]``, in
    time order, a page at a time (keyset on ts and id, which the model/ts index serves)."""
    p = predictions
    base = select(p.c.id, p.c.request_id, p.c.ts, p.c.inputs, p.c.routing_key).where(
        p.c.model == model,
        p.c.ts >= since,
        p.c.ts <= until,
        p.c.error.is_(None),
        func.coalesce(p.c.arm, "primary") != SHADOW_ARM,
    )
    after: tuple[float, int] | None = None
    while True:
        query = base
        if after is not None:
            query = query.where(or_(p.c.ts > after[0], and_(p.c.ts == after[0], p.c.id > after[1])))
        with store.read() as conn:
            rows = conn.execute(query.order_by(p.c.ts, p.c.id).limit(_PAGE)).all()
        for r in rows:
            yield str(r.request_id), float(r.ts), str(r.inputs), r.routing_key
        if len(rows) < _PAGE:
            return
        after = (float(rows[-1].ts), int(rows[-1].id))


def join_labels(
    store: Store, model: str, field: str, labels: Sequence[KeyedLabel], *, window: float
) -> JoinResult:
    """Match each label to the request of ``model`` whose logged ``field`` equals its key, nearest in
    time within ``window`` seconds before the label's time (see the module docstring)."""
    if not labels:
        return JoinResult(model, field, window, 0, (), (), (), 0, 0, False)
    keys = {label.key for label in labels}
    with store.read() as conn:
        use_routing_key = _keyed_on(conn, model, field)
    # key -> [(ts, request id)] in time order
    seen: dict[str, list[tuple[float, str]]] = {}
    logged = keyed = 0
    since = min(label.ts for label in labels) - window
    until = max(label.ts for label in labels)
    for request_id, ts, inputs, routing_key in _logged(store, model, since, until):
        logged += 1
        value = orjson.loads(inputs).get(field)
        key = key_text(value) if value is not None else routing_key if use_routing_key else None
        if key is None:
            continue
        keyed += 1
        if key in keys:
            seen.setdefault(key, []).append((ts, request_id))

    found: dict[int, str] = {}  # row -> request id
    unmatched: list[Unjoined] = []
    ambiguous: list[Unjoined] = []
    for label in labels:
        times = seen.get(label.key, [])
        end = bisect.bisect_right(times, (label.ts, "\uffff"))
        if end == 0 or times[end - 1][0] < label.ts - window:
            unmatched.append(Unjoined(label.row, label.key, label.ts, "no prediction in the window"))
            continue
        nearest = times[end - 1][0]
        start = bisect.bisect_left(times, (nearest, ""))
        ids = tuple(dict.fromkeys(rid for _, rid in times[start:end]))
        if len(ids) > 1:
            reason = f"{len(ids)} predictions at the same nearest time"
            ambiguous.append(Unjoined(label.row, label.key, label.ts, reason, ids))
        else:
            found[label.row] = ids[0]

    # Two label rows on one request: fine when they agree, not ours to choose when they differ.
    by_request: dict[str, list[KeyedLabel]] = {}
    for label in labels:
        if label.row in found:
            by_request.setdefault(found[label.row], []).append(label)
    items: list[FeedbackItem] = []
    for request_id, rows in by_request.items():
        if all(same_label(r.label, rows[0].label) for r in rows):
            items.extend(FeedbackItem(request_id, r.label) for r in rows)
            continue
        others = ", ".join(str(r.row) for r in rows)
        for r in rows:
            reason = f"rows {others} match the same request with different labels"
            ambiguous.append(Unjoined(r.row, r.key, r.ts, reason, (request_id,)))
    ambiguous.sort(key=lambda u: u.row)
    return JoinResult(
        model,
        field,
        window,
        len(labels),
        tuple(items),
        tuple(unmatched),
        tuple(ambiguous),
        logged,
        keyed,
        use_routing_key,
    )
