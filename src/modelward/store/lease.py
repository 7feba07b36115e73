"""A named lease in the store: at most one holder acts at a time (e.g. the canary controller).

A holder must renew before ``ttl`` seconds pass; when it stops renewing (it crashed, lost the
database), another candidate takes the lease once it has expired. Acquiring is one write transaction
(``BEGIN IMMEDIATE`` on SQLite, an advisory lock on PostgreSQL), so two candidates never both win.
Clocks of the candidates should agree within a fraction of ``ttl``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from sqlalchemy import delete, select

from modelward.store.store import Store
from modelward.store.tables import leases

__all__ = ["Lease", "LeaseInfo"]


@dataclass(frozen=True, slots=True)
class LeaseInfo:
    name: str
    holder: str
    acquired_at: float
    expires_at: float


class Lease:
    """``Lease(store, "controller", holder="host:pid", ttl=15).acquire()`` is True while we hold it."""

    def __init__(self, store: Store, name: str, *, holder: str, ttl: float = 15.0) -> None:
        if not ttl > 0:
            raise ValueError("a lease needs a positive ttl")
        self.store = store
        self.name = name
        self.holder = holder
        self.ttl = ttl

    def acquire(self, now: float | None = None) -> bool:
        """Take or renew the lease; False while another holder's lease is still valid."""
        now = time.time() if now is None else now
        with self.store.write() as conn:
            self.store.lock(conn, f"modelward.lease.{self.name}")
            row = conn.execute(select(leases).where(leases.c.name == self.name)).first()
            if row is None:
                conn.execute(
                    leases.insert().values(
                        name=self.name, holder=self.holder, acquired_at=now, expires_at=now + self.ttl
                    )
                )
                return True
            if row.holder != self.holder and float(row.expires_at) > now:
                return False
            acquired = float(row.acquired_at) if row.holder == self.holder else now
            conn.execute(
                leases.update()
                .where(leases.c.name == self.name)
                .values(holder=self.holder, acquired_at=acquired, expires_at=now + self.ttl)
            )
            return True

    def release(self) -> None:
        """Give the lease up now (only if we hold it), so another candidate need not wait for expiry."""
        with self.store.write() as conn:
            self.store.lock(conn, f"modelward.lease.{self.name}")
            conn.execute(delete(leases).where(leases.c.name == self.name, leases.c.holder == self.holder))

    def info(self) -> LeaseInfo | None:
        with self.store.read() as conn:
            row = conn.execute(select(leases).where(leases.c.name == self.name)).first()
        if row is None:
            return None
        return LeaseInfo(row.name, row.holder, float(row.acquired_at), float(row.expires_at))
