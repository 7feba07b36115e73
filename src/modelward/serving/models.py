"""The models a server holds, and how they change while it runs.

Each served name has a slot holding the current :class:`Served` model. A swap replaces the slot's
reference in one assignment: a request that already took the old one finishes on it, the next takes
the new one. A new version is loaded and warmed beside the old one first; if either fails, the old
one keeps serving and the failure is logged and counted.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

from starlette.concurrency import run_in_threadpool

from modelward.monitoring.metrics import ServingMetrics
from modelward.registry import DEFAULT_ALIAS, Registry, VersionInfo, parse_ref
from modelward.runtime import LoadedModel, load_version
from modelward.schema import FeatureSchema
from modelward.serving.problems import ModelLoading, ModelNotServed

__all__ = ["ModelManager", "ModelSlot", "Refresh", "Served"]

log = logging.getLogger("modelward.serving")


@dataclass(frozen=True, slots=True)
class Served:
    model: LoadedModel
    alias: str | None
    loaded_at: float

    @property
    def version(self) -> str:
        return self.model.version


@dataclass(frozen=True, slots=True)
class Refresh:
    """What a refresh did: swapped in ``version``, kept the current one, or failed with ``error``."""

    changed: bool
    version: str | None
    error: str | None = None


@dataclass(slots=True)
class ModelSlot:
    name: str
    ref: str  # what to resolve: "churn" (champion, else latest) or "churn@challenger"
    schema: FeatureSchema  # from the signature at start-up, for the API docs
    current: Served | None = None
    failed_version: str | None = None  # last version that failed to load, not retried until it changes
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)


class ModelManager:
    """Loads the served models, hands them to requests, and follows alias moves."""

    def __init__(self, registry: Registry, refs: Sequence[str], metrics: ServingMetrics) -> None:
        self.registry = registry
        self.metrics = metrics
        self.slots: dict[str, ModelSlot] = {}
        for ref in refs:
            parsed = parse_ref(ref)
            if parsed.name in self.slots:
                raise ValueError(f"model '{parsed.name}' is listed twice")
            info = registry.resolve(parsed)
            self.slots[parsed.name] = ModelSlot(parsed.name, str(parsed), registry.signature(info))

    @property
    def names(self) -> list[str]:
        return list(self.slots)

    def get(self, name: str) -> Served:
        slot = self.slots.get(name)
        if slot is None:
            raise ModelNotServed(name, self.names)
        if slot.current is None:
            raise ModelLoading(name)
        return slot.current

    @property
    def ready(self) -> bool:
        return all(slot.current is not None for slot in self.slots.values())

    def _alias_of(self, slot: ModelSlot, info: VersionInfo) -> str | None:
        parsed = parse_ref(slot.ref)
        if parsed.alias is not None:
            return parsed.alias
        if parsed.version is not None:
            return None
        return DEFAULT_ALIAS if DEFAULT_ALIAS in info.aliases else None

    def _load_and_warm(self, info: VersionInfo) -> LoadedModel:
        started = time.perf_counter()
        model = load_version(self.registry, info)
        model.warm()
        self.metrics.observe_load(info.name, time.perf_counter() - started)
        return model

    async def load_all(self) -> None:
        await asyncio.gather(*(self.refresh(name) for name in self.slots))

    async def refresh(self, name: str, *, force: bool = False) -> Refresh:
        """Load the version the slot's reference points at now, if it changed. ``force`` retries a
        version that failed to load before (polling does not, until the alias moves again)."""
        slot = self.slots[name]
        async with slot.lock:
            info = await run_in_threadpool(self.registry.resolve, slot.ref)
            current = slot.current
            if current is not None and current.version == info.version:
                return Refresh(False, current.version)
            if info.version == slot.failed_version and not force:
                return Refresh(
                    False, current.version if current else None, "this version failed to load before"
                )
            try:
                model = await run_in_threadpool(self._load_and_warm, info)
            except Exception as exc:  # any failure keeps the old version serving
                slot.failed_version = info.version
                self.metrics.reload_failed(name)
                serving = f"still serving version {current.version}" if current else "nothing is served"
                log.error("loading %s failed, %s: %s", info.ref, serving, exc)
                if current is None:
                    self.metrics.set_ready(name, False)
                return Refresh(
                    False, current.version if current else None, f"loading {info.ref} failed: {exc}"
                )
            alias = self._alias_of(slot, info)
            slot.current = Served(model, alias, time.time())
            slot.failed_version = None
            self.metrics.set_model(
                model=name,
                version=info.version,
                alias=alias,
                previous_version=current.version if current else None,
                previous_alias=current.alias if current else None,
            )
            self.metrics.set_ready(name, True)
            if current is None:
                log.info("serving %s (%s)", info.ref, model.runtime)
            else:
                log.info("switched %s from version %s to %s", name, current.version, info.version)
            return Refresh(True, info.version)

    async def watch(self, interval: float) -> None:
        """Poll the registry every ``interval`` seconds and swap in moved aliases."""
        while True:
            await asyncio.sleep(interval)
            for name in self.names:
                try:
                    await self.refresh(name)
                except Exception as exc:  # the registry may be briefly unreachable; try again next tick
                    log.warning("checking %s for a new version failed: %s", name, exc)
