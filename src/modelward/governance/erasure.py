"""The right to erasure: a person's logged predictions (inputs and outputs) and labels removed.

Rows are found by request id, or by the value of a logged input (``customer_id=123``), which the
database looks up in the inputs' JSON itself (SQLite ``json_extract``, PostgreSQL ``->>``), a
chunk of rows at a time. The prediction rows, the feedback rows of their request ids and the audit
event go in one transaction: erased and audited, or neither. The event records counts, the
SHA-256 of the key's field name, the actor and the reason, never an erased value or request id,
so the chain keeps no trace of the person and :meth:`AuditLog.verify` still passes.

Aggregates that keep no personal value stay: live profiles (binned counts per minute), metrics.
Erasing twice erases nothing the second time, which is not an error.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import String, and_, cast, delete, func, or_, select
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import Connection

from modelward.errors import ConfigError
from modelward.governance.audit import AuditLog
from modelward.store.store import Store
from modelward.store.tables import deployment_history, feedback, predictions

__all__ = ["ACTION", "Eraser", "Erasure", "parse_key"]

ACTION = "forget"
_CHUNK = 500


def parse_key(text: str) -> tuple[str, str]:
    """``"customer_id=123"`` -> ``("customer_id", "123")``; ConfigError for anything else."""
    field, sep, value = text.partition("=")
    field = field.strip()
    if not sep or not field or not value.strip():
        raise ConfigError(f"invalid key {text!r}: expected FIELD=VALUE, such as customer_id=123")
    return field, value.strip()


def _texts(value: str) -> list[str]:
    """The texts a logged value equal to ``value`` may have: JSON numbers come back as the database
    writes them (``123`` logged as a float reads ``123.0``), so a number matches in both forms."""
    out = [value]
    try:
        number = float(value)
    except ValueError:
        return out
    if math.isfinite(number):
        if number.is_integer():
            out += [str(int(number)), repr(number)]
        else:
            out.append(repr(number))
    return list(dict.fromkeys(out))


def key_hash(field: str) -> str:
    """What the audit keeps of a key: the SHA-256 of its field name."""
    return hashlib.sha256(field.encode("utf-8")).hexdigest()


@dataclass(frozen=True, slots=True)
class Erasure:
    """What one erasure removed (``predictions``, ``feedback`` rows; ``requests``: distinct request
    ids found or given) and the audit event that records it."""

    predictions: int
    feedback: int
    requests: int
    audit_seq: int | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "predictions": self.predictions,
            "feedback": self.feedback,
            "requests": self.requests,
            "audit_seq": self.audit_seq,
        }


class Eraser:
    """Find and erase a person's rows in ``store``, audited as ``actor``."""

    def __init__(self, store: Store, *, actor: str, chunk_size: int = _CHUNK) -> None:
        if chunk_size < 1:
            raise ConfigError("chunk_size must be at least 1")
        self.store = store
        self.actor = actor
        self.chunk_size = chunk_size

    def _key_match(self, conn: Connection, field: str, value: str) -> Any:
        """Rows whose logged input ``field`` is ``value``, or whose routing key is, when the
        model's deployment was keyed on ``field`` (a key that is not a feature is logged there)."""
        texts = _texts(value)
        keyed = sorted(
            {
                m
                for m, spec in conn.execute(select(deployment_history.c.model, deployment_history.c.spec))
                if json.loads(spec).get("key") == field
            }
        )
        logged: Any
        if conn.dialect.name == "postgresql":
            logged = cast(predictions.c.inputs, JSONB).op("->>")(field)
        else:  # SQLite: a quoted member name takes any field name, dots and spaces included
            path = '$."' + field.replace("\\", "\\\\").replace('"', '\\"') + '"'
            logged = cast(func.json_extract(predictions.c.inputs, path), String)
        match = logged.in_(texts)
        if keyed:
            match = or_(match, and_(predictions.c.model.in_(keyed), predictions.c.routing_key.in_(texts)))
        return match

    def _found(
        self, conn: Connection, key: tuple[str, str], model: str | None
    ) -> Iterator[list[tuple[int, str]]]:
        """(id, request id) of the rows whose logged input ``key[0]`` equals ``key[1]``, in chunks."""
        match = self._key_match(conn, *key)
        where = [match] if model is None else [predictions.c.model == model, match]
        after = 0
        while True:
            rows = conn.execute(
                select(predictions.c.id, predictions.c.request_id)
                .where(and_(*where, predictions.c.id > after))
                .order_by(predictions.c.id)
                .limit(self.chunk_size)
            ).all()
            if not rows:
                return
            yield [(int(r.id), str(r.request_id)) for r in rows]
            if len(rows) < self.chunk_size:
                return
            after = int(rows[-1].id)

    def _request_ids(
        self, conn: Connection, request_ids: Sequence[str], key: tuple[str, str] | None, model: str | None
    ) -> list[str]:
        ids = list(dict.fromkeys(request_ids))
        if key is not None:
            seen = set(ids)
            for chunk in self._found(conn, key, model):
                for _, rid in chunk:
                    if rid not in seen:
                        seen.add(rid)
                        ids.append(rid)
        return ids

    def _chunks(self, ids: list[str]) -> Iterator[list[str]]:
        for start in range(0, len(ids), self.chunk_size):
            yield ids[start : start + self.chunk_size]

    def _prediction_filter(self, chunk: list[str], model: str | None) -> Any:
        match = predictions.c.request_id.in_(chunk)
        return match if model is None else and_(match, predictions.c.model == model)

    def _feedback_filter(self, chunk: list[str], model: str | None) -> Any:
        match = feedback.c.request_id.in_(chunk)
        if model is None:
            return match
        return and_(match, or_(feedback.c.model == model, feedback.c.model.is_(None)))

    def preview(
        self, *, request_ids: Sequence[str] = (), key: tuple[str, str] | None = None, model: str | None = None
    ) -> Erasure:
        """What :meth:`forget` would erase now (nothing is changed or audited)."""
        _check(request_ids, key)
        with self.store.read() as conn:
            ids = self._request_ids(conn, request_ids, key, model)
            n_pred = n_feedback = 0
            for chunk in self._chunks(ids):
                n_pred += int(
                    conn.execute(
                        select(func.count()).where(self._prediction_filter(chunk, model))
                    ).scalar_one()
                )
                n_feedback += int(
                    conn.execute(select(func.count()).where(self._feedback_filter(chunk, model))).scalar_one()
                )
        return Erasure(n_pred, n_feedback, len(ids), None)

    def forget(
        self,
        *,
        request_ids: Sequence[str] = (),
        key: tuple[str, str] | None = None,
        model: str | None = None,
        reason: str | None = None,
    ) -> Erasure:
        """Erase the prediction and feedback rows of ``request_ids`` and of the requests whose
        logged input ``key`` (field, value) matches (of ``model`` only, if given); audited."""
        _check(request_ids, key)
        with self.store.write() as conn:
            ids = self._request_ids(conn, request_ids, key, model)
            n_pred = n_feedback = 0
            for chunk in self._chunks(ids):
                n_pred += conn.execute(
                    delete(predictions).where(self._prediction_filter(chunk, model))
                ).rowcount
                n_feedback += conn.execute(
                    delete(feedback).where(self._feedback_filter(chunk, model))
                ).rowcount
            payload: dict[str, Any] = {
                "by": "key" if key is not None else "request_id",
                "requests": len(ids),
                "predictions": n_pred,
                "feedback": n_feedback,
                "reason": reason,
            }
            if request_ids:
                payload["request_ids_given"] = len(set(request_ids))
            if key is not None:
                payload["key_field_sha256"] = key_hash(key[0])
            if model is not None:
                payload["model"] = model
            event = AuditLog(self.store).append(
                ACTION, model or "predictions", payload, actor=self.actor, conn=conn
            )
        return Erasure(n_pred, n_feedback, len(ids), event.seq)


def _check(request_ids: Sequence[str], key: tuple[str, str] | None) -> None:
    if not request_ids and key is None:
        raise ConfigError("name what to erase: one or more request ids, or a key FIELD=VALUE")
    for rid in request_ids:
        if not isinstance(rid, str) or not 0 < len(rid) <= 128:
            raise ConfigError(f"a request id is 1 to 128 characters, got {rid!r}")
