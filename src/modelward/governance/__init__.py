"""Governance: the tamper-evident audit trail (fairness, model cards and PII come later)."""

from __future__ import annotations

from modelward.governance.audit import (
    GENESIS_HASH,
    AuditEvent,
    AuditLog,
    AuditVerification,
    canonical_json,
    event_hash,
)

__all__ = ["GENESIS_HASH", "AuditEvent", "AuditLog", "AuditVerification", "canonical_json", "event_hash"]
