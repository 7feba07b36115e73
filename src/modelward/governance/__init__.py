"""Governance: the tamper-evident audit trail and the reports, policies and notes kept with versions."""

from __future__ import annotations

from modelward.governance.audit import (
    GENESIS_HASH,
    AuditEvent,
    AuditLog,
    AuditVerification,
    canonical_json,
    event_hash,
)
from modelward.governance.reports import StoredPolicy, StoredReport, VersionNotes, VersionReports

__all__ = [
    "GENESIS_HASH",
    "AuditEvent",
    "AuditLog",
    "AuditVerification",
    "StoredPolicy",
    "StoredReport",
    "VersionNotes",
    "VersionReports",
    "canonical_json",
    "event_hash",
]
