"""The audit timeline: the newest events (filtered by subject, action or actor) and the chain's
verification. Verifying walks the whole chain, so its result is kept for the chain's head: a page
verifies again only when an event was appended since (or every ``recheck`` seconds, which catches an
edit of an old event)."""

from __future__ import annotations

import threading
import time
from typing import Any

from modelward.governance.audit import AuditLog, AuditVerification

__all__ = ["AuditView"]

LIMIT = 200


class AuditView:
    def __init__(self, audit: AuditLog, *, recheck: float = 300.0) -> None:
        self.audit = audit
        self.recheck = recheck
        self._verified: tuple[tuple[int, str], float, AuditVerification] | None = None
        self._lock = threading.Lock()

    def verification(self) -> AuditVerification:
        head = self.audit.head()
        now = time.monotonic()
        with self._lock:
            kept = self._verified
        if kept is not None and kept[0] == head and now - kept[1] < self.recheck:
            return kept[2]
        result = self.audit.verify()
        with self._lock:
            self._verified = (head, now, result)
        return result

    def page(
        self, *, subject: str | None = None, action: str | None = None, actor: str | None = None
    ) -> dict[str, Any]:
        # An actor filter reads further back: it is applied after the query (the chain has no index on it).
        limit = LIMIT * 10 if actor else LIMIT
        events = self.audit.events(subject=subject, action=action, newest_first=True, limit=limit)
        if actor:
            events = [e for e in events if e.actor == actor][:LIMIT]
        return {"events": events, "verification": self.verification(), "limit": LIMIT}
