"""Retraining runs in the store (``modelward_retrain_runs``): claim one, finish it, read the history.

A run is claimed by inserting its row with ``running`` set to the model's name; the column is
unique, so a second claim while one is in progress fails on every backend and across replicas (the
insert is the guard, not a read before it). The cool-down is checked in the same write transaction,
serialised per model (``BEGIN IMMEDIATE`` on SQLite, an advisory lock on PostgreSQL), so two
controllers that see the same incident start one run between them. Finishing sets ``running`` back
to NULL with the outcome.

Statuses: ``queued`` (claimed for the controller to run: ``modelward retrain --no-wait``),
``running``, ``succeeded``, ``failed``, ``timed_out`` (the action overran its timeout, or its
holder vanished and the run was found stale).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError

from modelward.errors import LifecycleError
from modelward.store.store import Store
from modelward.store.tables import retrain_runs

__all__ = ["OUTPUT_TAIL", "RetrainRun", "RetrainRuns", "in_progress_error"]

OUTPUT_TAIL = 16_384
"""Characters of an action's output kept in its row (the end: where the error usually is)."""

IN_PROGRESS = ("queued", "running")


def in_progress_error(model: str, run_id: int | None) -> LifecycleError:
    """The refusal of a run while another of the same model is queued or running."""
    which = f" (run {run_id})" if run_id is not None else ""
    return LifecycleError(f"a retraining run of {model} is already in progress{which}")


@dataclass(frozen=True, slots=True)
class RetrainRun:
    id: int
    model: str
    trigger: str
    reason: str
    figures: dict[str, Any]
    status: str
    holder: str
    started_at: float
    finished_at: float | None
    exit_code: int | None
    output: str | None
    detail: dict[str, Any]

    @property
    def duration(self) -> float | None:
        return None if self.finished_at is None else self.finished_at - self.started_at

    @property
    def in_progress(self) -> bool:
        return self.status in IN_PROGRESS

    def to_dict(self, *, output: bool = True) -> dict[str, Any]:
        out = {
            "id": self.id,
            "model": self.model,
            "trigger": self.trigger,
            "reason": self.reason,
            "figures": self.figures,
            "status": self.status,
            "holder": self.holder,
            "started_at": self.started_at,
            "finished_at": self.finished_at,
            "duration": self.duration,
            "exit_code": self.exit_code,
            "detail": self.detail,
        }
        if output:
            out["output"] = self.output
        return out


def _json(value: Mapping[str, Any] | None) -> str:
    return json.dumps(dict(value or {}), sort_keys=True, default=str, allow_nan=False)


def _run(row: Any) -> RetrainRun:
    return RetrainRun(
        id=int(row["id"]),
        model=str(row["model"]),
        trigger=str(row["trigger"]),
        reason=str(row["reason"]),
        figures=json.loads(row["figures"] or "{}"),
        status=str(row["status"]),
        holder=str(row["holder"]),
        started_at=float(row["started_at"]),
        finished_at=None if row["finished_at"] is None else float(row["finished_at"]),
        exit_code=None if row["exit_code"] is None else int(row["exit_code"]),
        output=row["output"],
        detail=json.loads(row["detail"] or "{}"),
    )


class RetrainRuns:
    """The runs of every model in ``store``."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def claim(
        self,
        model: str,
        trigger: str,
        reason: str,
        figures: Mapping[str, Any],
        *,
        holder: str,
        now: float,
        cooldown: float = 0.0,
        status: str = "running",
    ) -> RetrainRun | None:
        """Insert a run in progress; None when one is already in progress for ``model``, or (when
        ``cooldown`` > 0) one started less than ``cooldown`` seconds before ``now``."""
        values = {
            "model": model,
            "trigger": trigger,
            "reason": reason,
            "figures": _json(figures),
            "status": status,
            "holder": holder,
            "started_at": now,
            "running": model,
        }
        try:
            with self.store.write() as conn:
                self.store.lock(conn, f"modelward.retrain.{model}")
                if cooldown > 0:
                    last = conn.execute(
                        select(func.max(retrain_runs.c.started_at)).where(retrain_runs.c.model == model)
                    ).scalar()
                    if last is not None and now - float(last) < cooldown:
                        return None
                ident = conn.execute(
                    retrain_runs.insert().values(**values).returning(retrain_runs.c.id)
                ).scalar_one()
        except IntegrityError:  # the unique ``running`` column: a run of this model is in progress
            return None
        return self.get(int(ident))

    def start(self, run_id: int, *, holder: str) -> bool:
        """Move a queued run to running under ``holder``; False when it is no longer queued."""
        with self.store.write() as conn:
            done = conn.execute(
                update(retrain_runs)
                .where(retrain_runs.c.id == run_id, retrain_runs.c.status == "queued")
                .values(status="running", holder=holder)
            )
        return bool(done.rowcount)

    def finish(
        self,
        run_id: int,
        status: str,
        *,
        now: float,
        exit_code: int | None = None,
        output: str | None = None,
        detail: Mapping[str, Any] | None = None,
    ) -> RetrainRun:
        """Record the outcome and free the model for its next run."""
        tail = None if output is None else output[-OUTPUT_TAIL:]
        with self.store.write() as conn:
            conn.execute(
                update(retrain_runs)
                .where(retrain_runs.c.id == run_id)
                .values(
                    status=status,
                    finished_at=now,
                    exit_code=exit_code,
                    output=tail,
                    detail=_json(detail),
                    running=None,
                )
            )
        found = self.get(run_id)
        if found is None:  # pragma: no cover - rows are never deleted
            raise LookupError(f"retrain run {run_id} vanished")
        return found

    def get(self, run_id: int) -> RetrainRun | None:
        with self.store.read() as conn:
            row = conn.execute(select(retrain_runs).where(retrain_runs.c.id == run_id)).mappings().first()
        return None if row is None else _run(row)

    def history(self, model: str | None = None, *, limit: int | None = 50) -> list[RetrainRun]:
        """Runs, newest first."""
        query = select(retrain_runs).order_by(retrain_runs.c.started_at.desc(), retrain_runs.c.id.desc())
        if model is not None:
            query = query.where(retrain_runs.c.model == model)
        if limit is not None:
            query = query.limit(limit)
        with self.store.read() as conn:
            return [_run(row) for row in conn.execute(query).mappings()]

    def in_progress(self, model: str | None = None) -> list[RetrainRun]:
        query = select(retrain_runs).where(retrain_runs.c.running.is_not(None))
        if model is not None:
            query = query.where(retrain_runs.c.model == model)
        with self.store.read() as conn:
            return [_run(row) for row in conn.execute(query.order_by(retrain_runs.c.id)).mappings()]

    def last_started(self, model: str, trigger: str | None = None) -> float | None:
        query = select(func.max(retrain_runs.c.started_at)).where(retrain_runs.c.model == model)
        if trigger is not None:
            query = query.where(retrain_runs.c.trigger == trigger)
        with self.store.read() as conn:
            last = conn.execute(query).scalar()
        return None if last is None else float(last)
