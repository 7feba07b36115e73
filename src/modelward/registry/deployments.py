"""Deployments in the store: each model's current :class:`~modelward.routing.DeploymentSpec`,
versioned (every revision kept) and audited in the same transaction.

Servers poll :meth:`Deployments.revisions` (one small query) and reload a model's routing when its
revision changes, as they do for alias moves. A write can be conditional on the revision the writer
read (``expected_revision``): the canary controller uses that so that a concurrent manual change is
never overwritten by a stale step.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, replace
from typing import Any

from sqlalchemy import Connection, delete, func, select

from modelward.errors import (
    StaleDeployment,  # importable here as before
)
from modelward.governance.audit import AuditLog
from modelward.routing.spec import DeploymentSpec
from modelward.store.store import Store
from modelward.store.tables import deployment_history, deployments

__all__ = ["Deployment", "Deployments", "StaleDeployment"]


@dataclass(frozen=True, slots=True)
class Deployment:
    """One stored revision of a model's spec."""

    spec: DeploymentSpec
    revision: int
    updated_at: float
    actor: str
    reason: str | None = None

    @property
    def model(self) -> str:
        return self.spec.model

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "revision": self.revision,
            "updated_at": self.updated_at,
            "actor": self.actor,
            "reason": self.reason,
            "spec": self.spec.to_dict(),
            "summary": self.spec.describe(),
        }


def _spec(text: str, model: str) -> DeploymentSpec:
    return DeploymentSpec.from_dict(json.loads(text), model=model)


class Deployments:
    """Read and write deployment specs; ``actor`` is recorded in the history and the audit chain."""

    def __init__(self, store: Store, audit: AuditLog | None = None, *, actor: str = "unknown") -> None:
        self.store = store
        self.audit = audit or AuditLog(store)
        self.actor = actor

    def get(self, model: str) -> Deployment | None:
        with self.store.read() as conn:
            row = conn.execute(select(deployments).where(deployments.c.model == model)).first()
            if row is None:
                return None
            reason = conn.execute(
                select(deployment_history.c.reason).where(
                    deployment_history.c.model == model, deployment_history.c.revision == row.revision
                )
            ).scalar()
        return Deployment(_spec(row.spec, model), int(row.revision), float(row.updated_at), row.actor, reason)

    def revisions(self) -> dict[str, int]:
        """Every model's current revision: what servers poll."""
        with self.store.read() as conn:
            return {
                r.model: int(r.revision)
                for r in conn.execute(select(deployments.c.model, deployments.c.revision))
            }

    def all(self) -> list[Deployment]:
        with self.store.read() as conn:
            rows = conn.execute(select(deployments).order_by(deployments.c.model)).all()
        return [
            Deployment(_spec(r.spec, r.model), int(r.revision), float(r.updated_at), r.actor) for r in rows
        ]

    def history(self, model: str) -> list[Deployment]:
        query = (
            select(deployment_history)
            .where(deployment_history.c.model == model)
            .order_by(deployment_history.c.revision)
        )
        with self.store.read() as conn:
            rows = conn.execute(query).all()
        return [
            Deployment(_spec(r.spec, model), int(r.revision), float(r.ts), r.actor, r.reason) for r in rows
        ]

    def put(
        self,
        spec: DeploymentSpec,
        *,
        reason: str | None = None,
        expected_revision: int | None = None,
        action: str = "deploy",
        actor: str | None = None,
        conn: Connection | None = None,
        extra: dict[str, Any] | None = None,
    ) -> Deployment:
        """Store ``spec`` as the model's next revision, with an audit event (``action``) in the same
        transaction. ``expected_revision`` (0: no deployment yet) makes it conditional:
        :class:`StaleDeployment` if the stored revision differs. A running canary's step clock starts
        at the time of writing when it is not set."""
        if conn is not None:
            return self._put(conn, spec, reason, expected_revision, action, actor or self.actor, extra)
        with self.store.write() as own:
            return self._put(own, spec, reason, expected_revision, action, actor or self.actor, extra)

    def _put(
        self,
        conn: Connection,
        spec: DeploymentSpec,
        reason: str | None,
        expected: int | None,
        action: str,
        actor: str,
        extra: dict[str, Any] | None,
    ) -> Deployment:
        now = time.time()
        if spec.canary is not None and spec.canary.step_started_at is None:
            spec = spec.with_canary(replace(spec.canary, step_started_at=now))
        self.store.lock(conn, f"modelward.deployment.{spec.model}")
        found = conn.execute(select(deployments.c.revision).where(deployments.c.model == spec.model)).scalar()
        current = int(found) if found is not None else 0
        if expected is not None and expected != current:
            raise StaleDeployment(spec.model, expected, current)
        # Revisions keep counting after a removal: history keeps every earlier one.
        last = conn.execute(
            select(func.max(deployment_history.c.revision)).where(deployment_history.c.model == spec.model)
        ).scalar()
        revision = max(current, int(last or 0)) + 1
        text = json.dumps(spec.to_dict(), sort_keys=True)
        values = {"revision": revision, "spec": text, "updated_at": now, "actor": actor}
        if found is None:
            conn.execute(deployments.insert().values(model=spec.model, **values))
        else:
            conn.execute(deployments.update().where(deployments.c.model == spec.model).values(**values))
        conn.execute(
            deployment_history.insert().values(
                model=spec.model, revision=revision, spec=text, ts=now, actor=actor, reason=reason
            )
        )
        payload = {"revision": revision, "spec": spec.to_dict(), "reason": reason, **(extra or {})}
        self.audit.append(action, spec.model, payload, actor=actor, conn=conn)
        return Deployment(spec, revision, now, actor, reason)

    def remove(self, model: str, *, reason: str | None = None) -> bool:
        """Forget the model's deployment (servers go back to serving their reference); history stays."""
        with self.store.write() as conn:
            self.store.lock(conn, f"modelward.deployment.{model}")
            gone = conn.execute(delete(deployments).where(deployments.c.model == model)).rowcount
            if gone:
                self.audit.append("undeploy", model, {"reason": reason}, actor=self.actor, conn=conn)
        return bool(gone)
