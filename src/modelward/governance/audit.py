"""A tamper-evident audit trail: an append-only hash chain in the modelward store.

Each event is ``{seq, ts, actor, action, subject, payload, prev_hash, hash}`` with
``hash = sha256(prev_hash + canonical_json({seq, ts, actor, action, subject, payload}))`` and
``prev_hash`` the hash of the event before it (64 zeros for the first). Editing, deleting or
reordering any event breaks the chain at that event; :meth:`AuditLog.verify` names the first bad seq.

A chain cannot tell on its own that its newest events were cut off. For that, keep the head
(``modelward audit head``) somewhere else and pass it back as an anchor to :meth:`AuditLog.verify`.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, select

from modelward.errors import AuditChainBroken
from modelward.store import Store, audit_events

__all__ = [
    "GENESIS_HASH",
    "AuditEvent",
    "AuditLog",
    "AuditVerification",
    "canonical_json",
    "event_hash",
    "utc_timestamp",
]

GENESIS_HASH = "0" * 64
_LOCK = "modelward.audit"


def canonical_json(value: Any) -> str:
    """Sorted keys, no whitespace, UTF-8 kept, NaN refused: one text for one value."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def event_hash(
    prev_hash: str, seq: int, ts: str, actor: str, action: str, subject: str, payload: Mapping[str, Any]
) -> str:
    body = canonical_json(
        {"seq": seq, "ts": ts, "actor": actor, "action": action, "subject": subject, "payload": payload}
    )
    return hashlib.sha256((prev_hash + body).encode("utf-8")).hexdigest()


def utc_timestamp() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass(frozen=True, slots=True)
class AuditEvent:
    seq: int
    ts: str
    actor: str
    action: str
    subject: str
    payload: dict[str, Any]
    prev_hash: str
    hash: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "seq": self.seq,
            "ts": self.ts,
            "actor": self.actor,
            "action": self.action,
            "subject": self.subject,
            "payload": self.payload,
            "prev_hash": self.prev_hash,
            "hash": self.hash,
        }


@dataclass(frozen=True, slots=True)
class AuditVerification:
    """The outcome of :meth:`AuditLog.verify`; ``bad_seq`` is the first event that fails."""

    ok: bool
    events: int
    head_seq: int
    head_hash: str
    bad_seq: int | None = None
    reason: str | None = None
    checked_anchor: bool = field(default=False)

    def raise_for_status(self) -> None:
        if not self.ok:
            raise AuditChainBroken(self.bad_seq if self.bad_seq is not None else 0, self.reason or "")

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "events": self.events,
            "head_seq": self.head_seq,
            "head_hash": self.head_hash,
            "bad_seq": self.bad_seq,
            "reason": self.reason,
            "checked_anchor": self.checked_anchor,
        }


class AuditLog:
    """Append and read the audit chain kept in a :class:`~modelward.store.Store`."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def append(
        self,
        action: str,
        subject: str,
        payload: Mapping[str, Any] | None = None,
        *,
        actor: str,
        conn: Connection | None = None,
    ) -> AuditEvent:
        """Append one event. With ``conn`` (a write transaction) it commits with the caller's change."""
        if conn is not None:
            return self._append(conn, action, subject, dict(payload or {}), actor)
        with self.store.write() as own:
            return self._append(own, action, subject, dict(payload or {}), actor)

    def _append(
        self, conn: Connection, action: str, subject: str, payload: dict[str, Any], actor: str
    ) -> AuditEvent:
        # Round-trip the payload so the stored text and the hashed value are the same value.
        payload = json.loads(canonical_json(payload))
        self.store.lock(conn, _LOCK)
        last = conn.execute(
            select(audit_events.c.seq, audit_events.c.hash).order_by(audit_events.c.seq.desc()).limit(1)
        ).first()
        seq = 1 if last is None else int(last.seq) + 1
        prev = GENESIS_HASH if last is None else str(last.hash)
        ts = utc_timestamp()
        digest = event_hash(prev, seq, ts, actor, action, subject, payload)
        conn.execute(
            audit_events.insert().values(
                seq=seq,
                ts=ts,
                actor=actor,
                action=action,
                subject=subject,
                payload=canonical_json(payload),
                prev_hash=prev,
                hash=digest,
            )
        )
        return AuditEvent(seq, ts, actor, action, subject, payload, prev, digest)

    def events(
        self,
        *,
        subject: str | None = None,
        action: str | None = None,
        since_seq: int | None = None,
        limit: int | None = None,
        newest_first: bool = False,
    ) -> list[AuditEvent]:
        query = select(audit_events)
        if subject is not None:
            # A model's subject is its name; its versions are "name:version".
            query = query.where(
                (audit_events.c.subject == subject) | audit_events.c.subject.startswith(subject + ":")
            )
        if action is not None:
            query = query.where(audit_events.c.action == action)
        if since_seq is not None:
            query = query.where(audit_events.c.seq > since_seq)
        query = query.order_by(audit_events.c.seq.desc() if newest_first else audit_events.c.seq)
        if limit is not None:
            query = query.limit(limit)
        with self.store.read() as conn:
            return [self._event(dict(row._mapping)) for row in conn.execute(query)]

    def head(self) -> tuple[int, str]:
        """The newest (seq, hash), or (0, GENESIS_HASH) for an empty chain."""
        with self.store.read() as conn:
            row = conn.execute(
                select(audit_events.c.seq, audit_events.c.hash).order_by(audit_events.c.seq.desc()).limit(1)
            ).first()
        return (0, GENESIS_HASH) if row is None else (int(row.seq), str(row.hash))

    def verify(self, anchor: tuple[int, str] | None = None) -> AuditVerification:
        """Walk the chain from seq 1; report the first event that is edited, missing or out of place.

        ``anchor`` is a (seq, hash) recorded earlier: the chain must still hold that event, which
        detects events cut off the end after the anchor was taken.
        """
        expected_seq = 1
        prev = GENESIS_HASH
        count = 0
        anchor_seen = False
        for row in self._iter_rows():
            seq = int(row["seq"])
            bad = self._check(row, expected_seq, prev)
            if bad is not None:
                return AuditVerification(False, count, expected_seq - 1, prev, bad[0], bad[1])
            if anchor is not None and seq == anchor[0]:
                if row["hash"] != anchor[1]:
                    reason = "hash differs from the anchor recorded for this seq"
                    return AuditVerification(False, count, seq - 1, prev, seq, reason)
                anchor_seen = True
            prev = str(row["hash"])
            expected_seq = seq + 1
            count += 1
        if anchor is not None and not anchor_seen:
            reason = f"the chain ends at seq {expected_seq - 1}: events up to the anchor were removed"
            return AuditVerification(False, count, expected_seq - 1, prev, expected_seq, reason, True)
        return AuditVerification(True, count, expected_seq - 1, prev, checked_anchor=anchor is not None)

    @staticmethod
    def _check(row: Mapping[str, Any], expected_seq: int, prev: str) -> tuple[int, str] | None:
        seq = int(row["seq"])
        if seq != expected_seq:
            return expected_seq, f"event {expected_seq} is missing (next stored event is {seq})"
        if row["prev_hash"] != prev:
            return seq, "prev_hash does not match the hash of the event before it"
        try:
            payload = json.loads(row["payload"])
        except (TypeError, ValueError):
            return seq, "payload is not valid JSON"
        digest = event_hash(prev, seq, row["ts"], row["actor"], row["action"], row["subject"], payload)
        if digest != row["hash"]:
            return seq, "contents do not match the event's hash (edited)"
        return None

    def _iter_rows(self) -> Iterator[Mapping[str, Any]]:
        with self.store.read() as conn:
            result = conn.execution_options(yield_per=2000).execute(
                select(audit_events).order_by(audit_events.c.seq)
            )
            for row in result:
                yield dict(row._mapping)

    @staticmethod
    def _event(row: Mapping[str, Any]) -> AuditEvent:
        return AuditEvent(
            seq=int(row["seq"]),
            ts=str(row["ts"]),
            actor=str(row["actor"]),
            action=str(row["action"]),
            subject=str(row["subject"]),
            payload=json.loads(row["payload"]),
            prev_hash=str(row["prev_hash"]),
            hash=str(row["hash"]),
        )
