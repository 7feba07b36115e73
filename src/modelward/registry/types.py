"""What the registry returns: plain frozen records, independent of MLflow's entity classes."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

__all__ = ["ModelInfo", "VersionInfo"]

TAG_PREFIX = "modelward."


def ms_to_datetime(ms: int | None) -> datetime | None:
    return None if ms is None else datetime.fromtimestamp(ms / 1000, tz=UTC)


@dataclass(frozen=True, slots=True)
class VersionInfo:
    name: str
    version: str
    aliases: tuple[str, ...]
    created_at: datetime | None
    run_id: str | None
    source: str
    description: str
    tags: dict[str, str] = field(default_factory=dict)

    @property
    def ref(self) -> str:
        return f"{self.name}:{self.version}"

    @property
    def archived(self) -> bool:
        return self.tags.get(TAG_PREFIX + "archived") == "true"

    @property
    def flavor(self) -> str | None:
        return self.tags.get(TAG_PREFIX + "flavor")

    @property
    def task(self) -> str | None:
        return self.tags.get(TAG_PREFIX + "task")

    @property
    def model_class(self) -> str | None:
        return self.tags.get(TAG_PREFIX + "model_class")

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "version": self.version,
            "aliases": list(self.aliases),
            "created_at": self.created_at.isoformat() if self.created_at else None,
            "run_id": self.run_id,
            "source": self.source,
            "description": self.description,
            "archived": self.archived,
            "flavor": self.flavor,
            "task": self.task,
            "model_class": self.model_class,
            "tags": dict(self.tags),
        }


@dataclass(frozen=True, slots=True)
class ModelInfo:
    name: str
    description: str
    aliases: dict[str, str]
    latest_version: str | None
    created_at: datetime | None
    updated_at: datetime | None
    tags: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "description": self.description,
            "aliases": dict(self.aliases),
            "latest_version": self.latest_version,
            "created_at": self.created_at.isoformat() if self.created_at else None,
            "updated_at": self.updated_at.isoformat() if self.updated_at else None,
            "tags": dict(self.tags),
        }
