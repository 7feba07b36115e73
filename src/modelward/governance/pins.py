"""What the audit chain vouches for: each version's artifact pins and its load policy.

The sha256 pins of a version's files live in the store (``modelward_artifact_files``), where anyone
who can write the store can rewrite them. The chain is what makes them trustworthy: the version's
``register`` event records ``artifacts_sha256``, the digest of its pins (:func:`pins_digest`, which
covers the registration record and so its load policy), and the load policy itself
(``allow_pickle``, ``trusted_types``). Loading a version and ``modelward audit verify`` check the
store's pins against that event (:func:`check_version`, :func:`verify_pins`).

Every ``register`` event modelward has written carries these fields. A version whose event lacks the
digest, whose pins have no ``register`` event, or that has several, is not vouched for: verify
reports it and loading refuses it (register it again through modelward).
"""

from __future__ import annotations

import hashlib
import json
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, select

from modelward.governance.audit import canonical_json, event_hash
from modelward.store import Store, artifact_files, audit_events

__all__ = [
    "REGISTER_ACTION",
    "LoadPolicy",
    "PinProblem",
    "PinsVerification",
    "check_version",
    "pins_digest",
    "verify_pins",
]

REGISTER_ACTION = "register"


def pins_digest(sha256_by_path: Mapping[str, str]) -> str:
    """The digest a ``register`` event records: sha256 of the canonical JSON ``{path: sha256}``."""
    return hashlib.sha256(canonical_json(dict(sha256_by_path)).encode("utf-8")).hexdigest()


@dataclass(frozen=True, slots=True)
class LoadPolicy:
    """How a version may be loaded, as its ``register`` event (seq) recorded it."""

    seq: int
    allow_pickle: bool
    trusted_types: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class PinProblem:
    subject: str  # "name:version"
    reason: str

    def to_dict(self) -> dict[str, str]:
        return {"subject": self.subject, "reason": self.reason}


@dataclass(frozen=True, slots=True)
class PinsVerification:
    """The outcome of :func:`verify_pins`: every pinned or registered version checked."""

    versions: int
    problems: tuple[PinProblem, ...]

    @property
    def ok(self) -> bool:
        return not self.problems

    def to_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "versions": self.versions, "problems": [p.to_dict() for p in self.problems]}


def _judge(
    stored: Mapping[str, str], registers: Sequence[Mapping[str, Any]]
) -> tuple[list[str], LoadPolicy | None]:
    """Problems of one version's stored pins against its ``register`` events (rows, by seq)."""
    if not registers:
        if stored:
            return ["it has sha256 pins in the store but no register event in the audit chain"], None
        return [], None
    problems: list[str] = []
    if len(registers) > 1:
        seqs = ", ".join(str(r["seq"]) for r in registers)
        problems.append(f"the audit chain holds {len(registers)} register events for it (seq {seqs})")
    row = registers[0]
    seq = int(row["seq"])
    try:
        payload = json.loads(row["payload"])
    except (TypeError, ValueError):
        return [*problems, f"its register event (seq {seq}) is not valid JSON"], None
    digest = event_hash(
        str(row["prev_hash"]), seq, row["ts"], row["actor"], row["action"], row["subject"], payload
    )
    if digest != row["hash"]:
        return [*problems, f"its register event (seq {seq}) was edited: it no longer matches its hash"], None
    recorded = payload.get("artifacts_sha256") if isinstance(payload, dict) else None
    if not isinstance(recorded, str):
        problems.append(
            f"its register event (seq {seq}) records no pins, so the audit chain does not vouch for its "
            "artifacts; register the model again through modelward"
        )
        return problems, None
    if not stored:
        problems.append(
            f"its sha256 pins were removed from the store (register event seq {seq} recorded them)"
        )
    elif pins_digest(stored) != recorded:
        problems.append(
            "its sha256 pins in the store differ from the ones the audit chain recorded in its register "
            f"event (seq {seq}): the store was edited after registration"
        )
    policy = LoadPolicy(
        seq=seq,
        allow_pickle=payload.get("allow_pickle") is True,
        trusted_types=tuple(str(t) for t in payload.get("trusted_types") or ()),
    )
    return problems, policy


def check_version(conn: Connection, name: str, version: str) -> tuple[list[str], LoadPolicy | None]:
    """Check one version's stored pins against its ``register`` event, for a load.

    Besides the digest, the event's own hash and its link to the next event are checked (the full
    walk of the chain is ``modelward audit verify``): an edited event is refused here too. Returns
    the problems (empty when the chain vouches for the pins) and the recorded load policy.
    """
    subject = f"{name}:{version}"
    stored = {
        str(r.path): str(r.sha256)
        for r in conn.execute(
            select(artifact_files.c.path, artifact_files.c.sha256).where(
                (artifact_files.c.model == name) & (artifact_files.c.version == str(version))
            )
        )
    }
    registers = [
        dict(r._mapping)
        for r in conn.execute(
            select(audit_events)
            .where((audit_events.c.subject == subject) & (audit_events.c.action == REGISTER_ACTION))
            .order_by(audit_events.c.seq)
        )
    ]
    problems, policy = _judge(stored, registers)
    if registers and policy is not None:
        seq = int(registers[0]["seq"])
        following = conn.execute(
            select(audit_events.c.prev_hash).where(audit_events.c.seq == seq + 1)
        ).scalar_one_or_none()
        if following is not None and following != registers[0]["hash"]:
            problems.append(f"its register event (seq {seq}) was edited: the next event does not link to it")
    return problems, policy


def verify_pins(store: Store) -> PinsVerification:
    """Check every version's stored pins against its ``register`` event; see the module docstring."""
    stored: dict[str, dict[str, str]] = defaultdict(dict)
    registers: dict[str, list[dict[str, Any]]] = defaultdict(list)
    with store.read() as conn:
        files = artifact_files.c
        for r in conn.execute(select(files.model, files.version, files.path, files.sha256)):
            stored[f"{r.model}:{r.version}"][str(r.path)] = str(r.sha256)
        for row in conn.execute(
            select(audit_events).where(audit_events.c.action == REGISTER_ACTION).order_by(audit_events.c.seq)
        ):
            registers[str(row.subject)].append(dict(row._mapping))
    problems: list[PinProblem] = []
    subjects = sorted(set(stored) | set(registers))
    for subject in subjects:
        found, _ = _judge(stored.get(subject, {}), registers.get(subject, []))
        problems.extend(PinProblem(subject, reason) for reason in found)
    return PinsVerification(versions=len(subjects), problems=tuple(problems))
