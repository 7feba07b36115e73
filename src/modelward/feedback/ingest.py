"""Ground truth: labels for served predictions, stored once per request id.

A label arrives as a request id and a class label or a number (``POST /feedback``,
``modelward feedback import``, or :meth:`FeedbackStore.record`). It is idempotent by request id:

- a request id seen for the first time is stored (``inserted``);
- the same label again is a no-op (``unchanged``); labels are the same when they are equal numbers
  (``1`` and ``1.0``) or have the same text (``"1"`` and ``1``, as performance matches classes);
- a different label for a stored request id is a *conflict*: it is not written and is reported with
  the stored and the sent label, unless ``overwrite`` is asked (``overwritten``). In a bulk call the
  conflicting items are left out and the rest is written: one bad label must not hold back ten
  thousand good ones, and the caller learns exactly which ids to look at. Within one call, the first
  label of a repeated request id counts (the last one with ``overwrite``).

A label whose request id has no logged prediction yet is kept as an *orphan* and counted: its
prediction may still be in the log writer's queue, or come from a server that logs elsewhere.
Orphans need no later fix-up: performance joins labels to predictions by request id when it is
queried, so an orphan counts as soon as its prediction is logged.

Concurrency: every call is one transaction, committed before it returns (acknowledged means
committed). Rows are written with ``INSERT ... ON CONFLICT DO NOTHING RETURNING request_id``, so
writers racing on the same request ids never fail: one insert wins, the others see its row and
compare. On SQLite writers are serialised by ``BEGIN IMMEDIATE``; on PostgreSQL the losing insert
waits for the winner's commit and then does nothing.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, cast

from sqlalchemy import Connection, func, select, update

from modelward.errors import FeedbackInvalid, ItemProblem  # importable here as before
from modelward.routing.spec import SHADOW_ARM
from modelward.store import Store
from modelward.store.tables import feedback, predictions
from modelward.validation import is_text

__all__ = [
    "MAX_ID_LENGTH",
    "MAX_LABEL_LENGTH",
    "Conflict",
    "FeedbackInvalid",
    "FeedbackItem",
    "FeedbackResult",
    "FeedbackStore",
    "ItemProblem",
    "Label",
    "label_problem",
    "parse_items",
    "same_label",
]

Label = str | int | float | bool
MAX_ID_LENGTH = 128
MAX_LABEL_LENGTH = 1_000
MAX_SOURCE_LENGTH = 64
_CHUNK = 500  # rows per statement: well under SQLite's limit of bound parameters
_MEMBERS = frozenset({"request_id", "label", "value"})
_NOT_TEXT = "is not Unicode text (it has a lone UTF-16 surrogate)"


@dataclass(frozen=True, slots=True)
class FeedbackItem:
    """A request id and its label: a class label (text, number or boolean) or a regression value."""

    request_id: str
    label: Label


@dataclass(frozen=True, slots=True)
class Conflict:
    """A label that differs from the one stored for its request id; it was not written."""

    request_id: str
    stored: Label
    sent: Label

    def to_dict(self) -> dict[str, Any]:
        return {"request_id": self.request_id, "stored": self.stored, "sent": self.sent}


@dataclass(frozen=True, slots=True)
class FeedbackResult:
    """What one :meth:`FeedbackStore.record` call did; every count is of items sent."""

    received: int = 0
    inserted: int = 0
    unchanged: int = 0
    overwritten: int = 0
    orphans: int = 0  # stored or unchanged items whose request id has no logged prediction yet
    conflicts: tuple[Conflict, ...] = field(default=())

    @property
    def written(self) -> int:
        return self.inserted + self.overwritten

    def __add__(self, other: FeedbackResult) -> FeedbackResult:
        return FeedbackResult(
            self.received + other.received,
            self.inserted + other.inserted,
            self.unchanged + other.unchanged,
            self.overwritten + other.overwritten,
            self.orphans + other.orphans,
            self.conflicts + other.conflicts,
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "received": self.received,
            "inserted": self.inserted,
            "unchanged": self.unchanged,
            "overwritten": self.overwritten,
            "conflicts": len(self.conflicts),
            "orphans": self.orphans,
            "conflicting": [c.to_dict() for c in self.conflicts],
        }


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def same_label(a: object, b: object) -> bool:
    """Equal numbers, or the same text: what performance could not tell apart either."""
    if _is_number(a) and _is_number(b):
        return float(cast(float, a)) == float(cast(float, b))
    return str(a) == str(b)


def label_problem(value: object, member: str = "label") -> str | None:
    """Why ``value`` cannot be a label (``member`` names it in the message), or None."""
    if value is None:
        return f"{member} is null"
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        try:
            float(value)
        except OverflowError:
            return f"{member} is too large a number"
        return None
    if isinstance(value, float):
        return None if math.isfinite(value) else f"{member} must be a finite number, got {value}"
    if isinstance(value, str):
        if not value:
            return f"{member} is an empty string"
        if len(value) > MAX_LABEL_LENGTH:
            return f"{member} is longer than {MAX_LABEL_LENGTH} characters"
        return None if is_text(value) else f"{member} {_NOT_TEXT}"
    kind = type(value).__name__
    return f"{member} must be a class label (text, number or boolean) or a number, not {kind}"


def _id_problem(value: object) -> str | None:
    if not isinstance(value, str):
        return f"request_id must be a string, not {type(value).__name__}"
    if not value.strip():
        return "request_id is empty"
    if len(value) > MAX_ID_LENGTH:
        return f"request_id is longer than {MAX_ID_LENGTH} characters"
    return None if is_text(value) else f"request_id {_NOT_TEXT}"


def _parse_one(index: int, raw: object, problems: list[ItemProblem]) -> FeedbackItem | None:
    if isinstance(raw, FeedbackItem):
        rid, label, member = raw.request_id, raw.label, "label"
    elif isinstance(raw, Mapping):
        for key in sorted(str(k) for k in raw.keys() - _MEMBERS):
            problems.append(
                ItemProblem(index, key, f"unknown member '{key}' (use request_id and label or value)")
            )
        if "label" in raw and "value" in raw:
            problems.append(ItemProblem(index, "value", "give either label or value, not both"))
            return None
        if "label" not in raw and "value" not in raw:
            problems.append(ItemProblem(index, "label", "label (or value) is missing"))
            return None
        if "request_id" not in raw:
            problems.append(ItemProblem(index, "request_id", "request_id is missing"))
            return None
        member = "label" if "label" in raw else "value"
        rid, label = raw["request_id"], raw[member]
        if member == "value" and not _is_number(label) and label is not None:
            problems.append(
                ItemProblem(index, "value", f"value must be a number, not {type(label).__name__}")
            )
            return None
    else:
        problems.append(
            ItemProblem(index, None, f"must be an object with request_id and label, not {type(raw).__name__}")
        )
        return None
    bad_id, bad_label = _id_problem(rid), label_problem(label, member)
    if bad_id:
        problems.append(ItemProblem(index, "request_id", bad_id))
    if bad_label:
        problems.append(ItemProblem(index, member, bad_label))
    if bad_id or bad_label:
        return None
    return FeedbackItem(rid, label)


def parse_items(raw: Iterable[object]) -> list[FeedbackItem]:
    """Check items (``FeedbackItem`` or ``{"request_id": ..., "label": ...}`` / ``{..., "value": 1.5}``);
    FeedbackInvalid names every bad one by its index."""
    problems: list[ItemProblem] = []
    items = [_parse_one(i, r, problems) for i, r in enumerate(raw)]
    if problems:
        raise FeedbackInvalid(problems)
    return [i for i in items if i is not None]


def _chunks(values: Sequence[Any]) -> Iterable[Sequence[Any]]:
    for start in range(0, len(values), _CHUNK):
        yield values[start : start + _CHUNK]


def _encode(label: Label) -> tuple[str, float | None]:
    return json.dumps(label, ensure_ascii=False), float(label) if _is_number(label) else None


class FeedbackStore:
    """Labels in the store's ``modelward_feedback`` table. ``FeedbackStore(store)`` keeps the (open) store."""

    def __init__(self, store: Store, *, clock: Callable[[], float] = time.time) -> None:
        self.store = store
        self.clock = clock

    def record(
        self,
        items: Iterable[FeedbackItem | Mapping[str, Any]],
        *,
        overwrite: bool = False,
        source: str | None = None,
    ) -> FeedbackResult:
        """Store labels; see the module docstring for idempotency, conflicts and orphans.

        Raises FeedbackInvalid (nothing written) when any item is malformed. The result is committed
        when this returns.
        """
        parsed = parse_items(items)
        if source is not None and len(source) > MAX_SOURCE_LENGTH:
            raise FeedbackInvalid(
                [ItemProblem(-1, "source", f"source is longer than {MAX_SOURCE_LENGTH} characters")]
            )
        if source is not None and not is_text(source):
            raise FeedbackInvalid([ItemProblem(-1, "source", f"source {_NOT_TEXT}")])
        chosen: dict[str, FeedbackItem] = {}
        repeats: list[FeedbackItem] = []
        for item in parsed:
            if item.request_id not in chosen:
                chosen[item.request_id] = item
            elif overwrite:
                repeats.append(chosen[item.request_id])
                chosen[item.request_id] = item
            else:
                repeats.append(item)
        if not chosen:
            return FeedbackResult()
        with self.store.write() as conn:
            counts, final = self._write(conn, list(chosen.values()), overwrite, source)
        conflicts = list(counts.pop("conflicts"))
        unchanged = int(counts["unchanged"])
        for item in repeats:  # later copies of an id within this call
            stored = final.get(item.request_id)
            if stored is None or same_label(stored, item.label) or overwrite:
                unchanged += 1
            else:
                conflicts.append(Conflict(item.request_id, stored, item.label))
        return FeedbackResult(
            received=len(parsed),
            inserted=int(counts["inserted"]),
            unchanged=unchanged,
            overwritten=int(counts["overwritten"]),
            orphans=int(counts["orphans"]),
            conflicts=tuple(conflicts),
        )

    def _write(
        self, conn: Connection, items: list[FeedbackItem], overwrite: bool, source: str | None
    ) -> tuple[dict[str, Any], dict[str, Label]]:
        now = self.clock()
        ids = [i.request_id for i in items]
        models = _models_of(conn, ids)
        rows = []
        for item in items:
            text, value = _encode(item.label)
            rows.append(
                {
                    "request_id": item.request_id,
                    "label": text,
                    "value": value,
                    "model": models.get(item.request_id),
                    "ts": now,
                    "updated_at": now,
                    "source": source,
                }
            )
        # One cached statement, executed for many rows (SQLAlchemy batches them as multi-row VALUES).
        stmt = (
            _dialect_insert(conn)(feedback)
            .on_conflict_do_nothing(index_elements=["request_id"])
            .returning(feedback.c.request_id)
        )
        inserted = {str(r[0]) for r in conn.execute(stmt, rows)}
        existing = _stored(conn, [i for i in ids if i not in inserted])
        final: dict[str, Label] = {}
        conflicts: list[Conflict] = []
        unchanged = overwritten = orphans = 0
        for item, row in zip(items, rows, strict=True):
            rid = item.request_id
            accepted = True
            if rid in inserted:
                final[rid] = item.label
            elif same_label(existing[rid], item.label):
                final[rid] = existing[rid]
                unchanged += 1
            elif overwrite:
                conn.execute(
                    update(feedback)
                    .where(feedback.c.request_id == rid)
                    .values(
                        label=row["label"],
                        value=row["value"],
                        updated_at=now,
                        source=source,
                        model=row["model"],
                    )
                )
                final[rid] = item.label
                overwritten += 1
            else:
                final[rid] = existing[rid]
                conflicts.append(Conflict(rid, existing[rid], item.label))
                accepted = False
            if accepted and rid not in models:
                orphans += 1
        counts = {
            "inserted": len(inserted),
            "unchanged": unchanged,
            "overwritten": overwritten,
            "orphans": orphans,
            "conflicts": conflicts,
        }
        return counts, final

    # -- queries ---------------------------------------------------------------------------------

    def get(self, request_ids: Sequence[str]) -> dict[str, Label]:
        """The stored labels of ``request_ids`` (ids without one are absent)."""
        with self.store.read() as conn:
            return _stored(conn, list(request_ids))

    def count(self) -> int:
        with self.store.read() as conn:
            return int(conn.execute(select(func.count()).select_from(feedback)).scalar_one())

    def count_orphans(self) -> int:
        """Labels whose request id has no logged prediction (shadow traffic aside) right now."""
        p = predictions
        served = (
            select(p.c.id)
            .where(p.c.request_id == feedback.c.request_id, func.coalesce(p.c.arm, "primary") != SHADOW_ARM)
            .exists()
        )
        with self.store.read() as conn:
            return int(conn.execute(select(func.count()).select_from(feedback).where(~served)).scalar_one())


def _dialect_insert(conn: Connection) -> Any:
    if conn.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        return pg_insert
    from sqlalchemy.dialects.sqlite import insert as sqlite_insert

    return sqlite_insert


def _stored(conn: Connection, ids: list[str]) -> dict[str, Label]:
    out: dict[str, Label] = {}
    for chunk in _chunks(ids):
        query = select(feedback.c.request_id, feedback.c.label).where(feedback.c.request_id.in_(list(chunk)))
        for rid, text in conn.execute(query):
            out[str(rid)] = cast(Label, json.loads(text))
    return out


def _models_of(conn: Connection, ids: list[str]) -> dict[str, str]:
    """The model of each id's latest logged prediction that reached a client (not shadow traffic)."""
    out: dict[str, str] = {}
    p = predictions
    for chunk in _chunks(ids):
        query = (
            select(p.c.request_id, p.c.model)
            .where(p.c.request_id.in_(list(chunk)), func.coalesce(p.c.arm, "primary") != SHADOW_ARM)
            .order_by(p.c.id)
        )
        for rid, model in conn.execute(query):
            out[str(rid)] = str(model)
    return out
