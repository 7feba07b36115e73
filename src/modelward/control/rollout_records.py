"""The rollout of each new version, one row of ``modelward_rollouts`` per (model, version).

The controller that takes a version up inserts its row (:meth:`Rollouts.claim`): the primary key
makes that happen once, whatever the number of controllers on the store. Each later step is a
conditional update from the status the writer read (:meth:`Rollouts.move`), so a controller whose
lease lapsed mid-tick never overwrites a newer outcome.

Statuses: ``validating`` (claimed, the gates run), ``rejected`` (a gate failed: no traffic),
``canary`` (the canary runs), ``promoted``, ``rolled_back``, ``failed`` (the gates could not run,
the canary could not start, or it was replaced by hand).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Literal

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError

from modelward.store.store import Store
from modelward.store.tables import rollouts

__all__ = ["ACTIVE", "FINAL", "Rollout", "RolloutStatus", "Rollouts"]

RolloutStatus = Literal["validating", "rejected", "canary", "promoted", "rolled_back", "failed"]
ACTIVE: tuple[str, ...] = ("validating", "canary")
FINAL: tuple[str, ...] = ("rejected", "promoted", "rolled_back", "failed")


@dataclass(frozen=True, slots=True)
class Rollout:
    """One version's rollout: where it stands, why, and who took it up."""

    model: str
    version: str
    status: str
    detail: dict[str, Any]
    created_at: float
    updated_at: float
    holder: str

    @property
    def reason(self) -> str | None:
        value = self.detail.get("reason")
        return None if value is None else str(value)

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "version": self.version,
            "status": self.status,
            "reason": self.reason,
            "detail": self.detail,
            "created_at": self.created_at,
            "updated_at": self.updated_at,
            "holder": self.holder,
        }


def _row(r: Any) -> Rollout:
    detail = json.loads(r.detail) if r.detail else {}
    return Rollout(r.model, r.version, r.status, detail, float(r.created_at), float(r.updated_at), r.holder)


class Rollouts:
    """Read and write the rollouts table of ``store`` (open and migrated)."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def claim(self, model: str, version: str, *, holder: str, now: float, detail: dict[str, Any]) -> bool:
        """Insert ``model:version``'s row as ``validating``; False when another controller has."""
        values = {
            "model": model,
            "version": str(version),
            "status": "validating",
            "detail": json.dumps(detail, sort_keys=True),
            "created_at": now,
            "updated_at": now,
            "holder": holder,
        }
        try:
            with self.store.write() as conn:
                conn.execute(rollouts.insert().values(**values))
        except IntegrityError:
            return False
        return True

    def move(
        self,
        model: str,
        version: str,
        *,
        expected: str,
        status: RolloutStatus,
        detail: dict[str, Any],
        now: float,
    ) -> bool:
        """Set the status (and merge ``detail``) if it is still ``expected``; False when it moved on."""
        with self.store.write() as conn:
            row = conn.execute(
                select(rollouts).where(rollouts.c.model == model, rollouts.c.version == str(version))
            ).first()
            if row is None or row.status != expected:
                return False
            merged = {**(json.loads(row.detail) if row.detail else {}), **detail}
            done = conn.execute(
                update(rollouts)
                .where(
                    rollouts.c.model == model,
                    rollouts.c.version == str(version),
                    rollouts.c.status == expected,
                )
                .values(status=status, detail=json.dumps(merged, sort_keys=True), updated_at=now)
            ).rowcount
        return bool(done)

    def get(self, model: str, version: str) -> Rollout | None:
        with self.store.read() as conn:
            row = conn.execute(
                select(rollouts).where(rollouts.c.model == model, rollouts.c.version == str(version))
            ).first()
        return None if row is None else _row(row)

    def of_model(self, model: str) -> list[Rollout]:
        """``model``'s rollouts, the newest first."""
        with self.store.read() as conn:
            rows = conn.execute(
                select(rollouts).where(rollouts.c.model == model).order_by(rollouts.c.created_at.desc())
            ).all()
        return [_row(r) for r in rows]

    def active(self) -> list[Rollout]:
        """Every rollout still under way (validating or in its canary)."""
        with self.store.read() as conn:
            rows = conn.execute(select(rollouts).where(rollouts.c.status.in_(ACTIVE))).all()
        return [_row(r) for r in rows]
