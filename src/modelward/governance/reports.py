"""Governance results kept with a version, a model's promotion policy, and a version's notes.

One table each (``modelward_version_reports``, ``modelward_model_policies``,
``modelward_version_notes``). A report is any JSON object a governance module produces for a version
(``kind``: ``fairness``, ``validation``, ``card``, ``importance``, ``pii``, ...); each module owns the
shape of its kind, this module only keeps them and returns the newest. Reports are append-only, so a
version's history of checks survives a re-run.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, insert, select, update

from modelward.store import Store, model_policies, version_notes, version_reports

__all__ = ["StoredPolicy", "StoredReport", "VersionNotes", "VersionReports"]


@dataclass(frozen=True, slots=True)
class StoredReport:
    id: int
    model: str
    version: str
    kind: str
    created_at: float
    actor: str
    body: dict[str, Any]


@dataclass(frozen=True, slots=True)
class StoredPolicy:
    model: str
    body: str  # the YAML as the user wrote it
    updated_at: float
    actor: str


@dataclass(frozen=True, slots=True)
class VersionNotes:
    model: str
    version: str
    intended_use: str | None
    limitations: str | None
    updated_at: float
    actor: str


class VersionReports:
    """Reports, policies and notes in modelward's store (the store is opened and migrated by the caller)."""

    def __init__(self, store: Store) -> None:
        self._store = store

    # reports ---------------------------------------------------------------------------------------
    def save(self, model: str, version: str, kind: str, body: dict[str, Any], *, actor: str) -> StoredReport:
        now = time.time()
        text = json.dumps(body, sort_keys=True, allow_nan=False, default=str)
        with self._store.write() as conn:
            ident = conn.execute(
                insert(version_reports)
                .values(model=model, version=str(version), kind=kind, created_at=now, actor=actor, body=text)
                .returning(version_reports.c.id)
            ).scalar_one()
        return StoredReport(int(ident), model, str(version), kind, now, actor, json.loads(text))

    def latest(self, model: str, version: str, kind: str) -> StoredReport | None:
        query = (
            select(version_reports)
            .where(
                version_reports.c.model == model,
                version_reports.c.version == str(version),
                version_reports.c.kind == kind,
            )
            .order_by(version_reports.c.id.desc())
            .limit(1)
        )
        with self._store.read() as conn:
            row = conn.execute(query).mappings().first()
        return None if row is None else _report(row)

    def history(self, model: str, version: str | None = None, kind: str | None = None) -> list[StoredReport]:
        """Every report of a model (or one version, or one kind), oldest first."""
        query = select(version_reports).where(version_reports.c.model == model)
        if version is not None:
            query = query.where(version_reports.c.version == str(version))
        if kind is not None:
            query = query.where(version_reports.c.kind == kind)
        with self._store.read() as conn:
            rows = conn.execute(query.order_by(version_reports.c.id)).mappings().all()
        return [_report(row) for row in rows]

    # policies --------------------------------------------------------------------------------------
    def set_policy(self, model: str, body: str, *, actor: str) -> StoredPolicy:
        now = time.time()
        with self._store.write() as conn:
            query = select(model_policies.c.model).where(model_policies.c.model == model)
            found = conn.execute(query).first()
            values = {"body": body, "updated_at": now, "actor": actor}
            if found is None:
                conn.execute(insert(model_policies).values(model=model, **values))
            else:
                conn.execute(update(model_policies).where(model_policies.c.model == model).values(**values))
        return StoredPolicy(model, body, now, actor)

    def policy(self, model: str) -> StoredPolicy | None:
        with self._store.read() as conn:
            query = select(model_policies).where(model_policies.c.model == model)
            row = conn.execute(query).mappings().first()
        if row is None:
            return None
        return StoredPolicy(row["model"], row["body"], row["updated_at"], row["actor"])

    def delete_policy(self, model: str) -> bool:
        with self._store.write() as conn:
            return bool(conn.execute(delete(model_policies).where(model_policies.c.model == model)).rowcount)

    # notes -----------------------------------------------------------------------------------------
    def set_notes(
        self,
        model: str,
        version: str,
        *,
        actor: str,
        intended_use: str | None = None,
        limitations: str | None = None,
    ) -> VersionNotes:
        """Set what is given (None keeps the stored text)."""
        now = time.time()
        key = (version_notes.c.model == model) & (version_notes.c.version == str(version))
        with self._store.write() as conn:
            row = conn.execute(select(version_notes).where(key)).mappings().first()
            use = intended_use if intended_use is not None else (row["intended_use"] if row else None)
            limits = limitations if limitations is not None else (row["limitations"] if row else None)
            values = {"intended_use": use, "limitations": limits, "updated_at": now, "actor": actor}
            if row is None:
                conn.execute(insert(version_notes).values(model=model, version=str(version), **values))
            else:
                conn.execute(update(version_notes).where(key).values(**values))
        return VersionNotes(model, str(version), use, limits, now, actor)

    def notes(self, model: str, version: str) -> VersionNotes | None:
        key = (version_notes.c.model == model) & (version_notes.c.version == str(version))
        with self._store.read() as conn:
            row = conn.execute(select(version_notes).where(key)).mappings().first()
        if row is None:
            return None
        return VersionNotes(
            row["model"],
            row["version"],
            row["intended_use"],
            row["limitations"],
            row["updated_at"],
            row["actor"],
        )


def _report(row: Any) -> StoredReport:
    return StoredReport(
        int(row["id"]),
        row["model"],
        row["version"],
        row["kind"],
        float(row["created_at"]),
        row["actor"],
        json.loads(row["body"]),
    )
