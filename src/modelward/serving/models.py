"""The models a server holds, how their traffic is split, and how both change while it runs.

Each served name has a slot holding an immutable :class:`Routing`: the deployment spec in force, its
split policy, and the loaded version behind each live arm (and the shadow). A change (an alias
move, a new deployment revision, a canary step) builds a new Routing beside the old one, loading and
warming only the versions not already loaded, and swaps it in with one assignment: a request that
already took the old routing finishes on it, the next takes the new one. If a version fails to load,
the old routing keeps serving and the failure is logged and counted.

A slot whose reference names an alias or a version (``churn@challenger``, ``churn:2``) serves just
that; a bare name (``churn``) follows the model's stored deployment, or else its champion (or latest
version).
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from starlette.concurrency import run_in_threadpool

from modelward.monitoring.metrics import ServingMetrics
from modelward.registry import DEFAULT_ALIAS, Registry, VersionInfo, parse_ref
from modelward.routing import Arm, DeploymentSpec, SplitPolicy
from modelward.runtime import LoadedModel, load_version
from modelward.runtime.batcher import Batcher, Columns, OnBatch, Outputs, Overloaded, Pending
from modelward.runtime.predictor import ArrayPredictor, model_digest, prepare
from modelward.runtime.quickstart import start_from_cache
from modelward.schema import FeatureSchema
from modelward.serving.problems import ModelLoading, ModelNotServed

__all__ = ["BatchSettings", "ModelManager", "ModelSlot", "Refresh", "Routing", "Served"]

log = logging.getLogger("modelward.serving")

PRIMARY_ARM = "primary"


@dataclass(frozen=True, slots=True)
class BatchSettings:
    enabled: bool = True
    max_rows: int = 256
    budget: float = 1.0  # seconds a request may wait for the model before it is shed
    compile: bool = True
    cache_dir: Path | None = None


@dataclass(frozen=True, slots=True, eq=False)
class Served:
    """One loaded version: its model, how it runs (predictor) and its batcher."""

    model: LoadedModel
    alias: str | None
    loaded_at: float
    predictor: ArrayPredictor
    batcher: Batcher
    # Started from the compiled cache (runtime.quickstart): its native model is not loaded yet and the
    # compiled model was not checked against it in this process; ModelManager.settle replaces it.
    provisional: bool = False

    @property
    def version(self) -> str:
        return self.model.version

    @property
    def runtime(self) -> str:
        return self.predictor.runtime


@dataclass(frozen=True, slots=True, eq=False)
class Routing:
    """Which loaded version serves which request, for one model; immutable."""

    spec: DeploymentSpec
    revision: int | None  # the stored deployment's revision; None when following the reference
    policy: SplitPolicy
    arms: Mapping[str, Served]  # live arms (weight > 0) by name
    shadow: Served | None
    signature: tuple[object, ...]  # what it was built from: unchanged signature, nothing to do
    rng: random.Random = field(default_factory=random.Random)

    @property
    def primary_arm(self) -> str:
        name = self.spec.primary.name
        return name if name in self.arms else next(iter(self.arms))

    @property
    def primary(self) -> Served:
        return self.arms[self.primary_arm]

    def assign(self, key: str | None) -> str:
        """The arm for a routing key (sticky), or a weighted random arm when there is none."""
        if len(self.arms) == 1:
            return next(iter(self.arms))
        return self.policy.assign(key, rng=self.rng).name

    def refusal(self, started: float) -> Overloaded | None:
        """Whether to refuse a new request before parsing its body (cheap, under overload): the
        :class:`Overloaded` when every arm's batcher is busy and would refuse a one-row request
        that arrived at ``started``, counted as shed by that batcher; else None (the request is
        checked again, for its rows and its arm, when it is submitted). An idle batcher (a
        compiled model between two turns of the event loop) costs one look."""
        refusal = None
        for served in self.arms.values():
            batcher = served.batcher
            if not batcher.busy:
                return None
            refusal = batcher.admission(1, started)
            if refusal is None:
                return None
        if refusal is not None:
            batcher.stats.shed += 1
        return refusal

    def served_versions(self) -> list[Served]:
        out = {id(s): s for s in self.arms.values()}
        if self.shadow is not None:
            out[id(self.shadow)] = self.shadow
        return list(out.values())

    @property
    def provisional(self) -> bool:
        return any(s.provisional for s in self.served_versions())

    def loaded(self, version: str) -> Served | None:
        """The loaded ``version`` (a live arm's, else the shadow's), or None. An arm at weight 0 is
        not loaded (DeploymentSpec.targets)."""
        for s in self.served_versions():
            if s.version == version:
                return s
        return None


@dataclass(frozen=True, slots=True)
class Refresh:
    """What a refresh did: swapped in a new routing, kept the current one, or failed with ``error``."""

    changed: bool
    version: str | None  # the primary arm's version
    error: str | None = None
    revision: int | None = None


@dataclass(slots=True)
class ModelSlot:
    name: str
    ref: str  # what to resolve without a deployment: "churn" (champion, else latest), "churn@challenger"
    pinned: bool  # the reference names an alias or a version: deployments do not apply
    schema: FeatureSchema  # from the signature at start-up, for the API docs
    routing: Routing | None = None
    failed: tuple[object, ...] | None = None  # signature that failed to load, not retried until it changes
    error: str | None = None  # why nothing is served: the first load failed (the reason, for /ready)
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    @property
    def current(self) -> Served | None:
        return self.routing.primary if self.routing is not None else None


@dataclass(frozen=True, slots=True)
class _Plan:
    spec: DeploymentSpec
    revision: int | None
    versions: dict[str, VersionInfo]  # target -> the version it names now
    default_alias: str | None  # the implicit champion of a bare reference

    @property
    def signature(self) -> tuple[object, ...]:
        resolved = tuple(sorted((t, v.version) for t, v in self.versions.items()))
        return (self.revision, repr(self.spec.to_dict()), resolved)


class ModelManager:
    """Loads the served models, hands routings to requests, and follows alias and deployment moves."""

    def __init__(
        self,
        registry: Registry,
        refs: Sequence[str],
        metrics: ServingMetrics,
        *,
        batching: BatchSettings | None = None,
    ) -> None:
        self.registry = registry
        self.metrics = metrics
        self.batching = batching or BatchSettings()
        self.slots: dict[str, ModelSlot] = {}
        self.on_batch: OnBatch | None = None  # what each model call answered, for recording (the server's)
        self.settle_failures: dict[str, str] = {}  # a provisional version whose full load failed: why
        self._executor = ThreadPoolExecutor(2, thread_name_prefix="modelward-model")
        for ref in refs:
            parsed = parse_ref(ref)
            if parsed.name in self.slots:
                raise ValueError(f"model '{parsed.name}' is listed twice")
            info = registry.resolve(parsed)
            pinned = parsed.alias is not None or parsed.version is not None
            self.slots[parsed.name] = ModelSlot(parsed.name, str(parsed), pinned, registry.signature(info))

    @property
    def names(self) -> list[str]:
        return list(self.slots)

    def routing(self, name: str) -> Routing:
        slot = self.slots.get(name)
        if slot is None:
            raise ModelNotServed(name, self.names)
        if slot.routing is None:
            raise ModelLoading(name, failure=slot.error)
        return slot.routing

    def get(self, name: str) -> Served:
        """The primary arm's version: what describes the model (docs, metadata)."""
        return self.routing(name).primary

    @property
    def ready(self) -> bool:
        """Every model has loaded or failed to, and one at least serves: a model that cannot load is
        unready on its own (with its reason) and does not take its siblings out of service."""
        slots = self.slots.values()
        settled = all(slot.routing is not None or slot.error is not None for slot in slots)
        return settled and any(slot.routing is not None for slot in slots)

    # -- planning: which spec, which versions ---------------------------------------------------

    def _plan(self, slot: ModelSlot) -> _Plan:
        reg = self.registry
        deployment = None if slot.pinned else reg.deployments.get(slot.name)
        if deployment is None:
            parsed = parse_ref(slot.ref)
            info = reg.resolve(parsed)
            if parsed.alias is not None:
                spec, alias = DeploymentSpec.single(slot.name, "@" + parsed.alias), None
            else:
                spec = DeploymentSpec.single(slot.name, info.version)
                implicit = parsed.version is None and DEFAULT_ALIAS in info.aliases
                alias = DEFAULT_ALIAS if implicit else None
            return _Plan(spec, None, {spec.arms[0].target: info}, alias)
        spec = deployment.spec
        versions = {}
        for target in spec.targets():
            ref = f"{slot.name}@{target[1:]}" if target.startswith("@") else f"{slot.name}:{target}"
            versions[target] = reg.resolve(ref)
        return _Plan(spec, deployment.revision, versions, None)

    # -- loading ----------------------------------------------------------------------------------

    def _load_and_warm(
        self, info: VersionInfo, alias: str | None, *, quick: bool = False, adopt: Batcher | None = None
    ) -> Served:
        """Load, check and warm a version; ``quick``: from the compiled cache when it can (provisional);
        ``adopt``: the batcher of the version as it started from the cache, which goes on (its queue,
        its statistics) with the predictor loaded now."""
        started = time.perf_counter()
        b = self.batching
        predictor: ArrayPredictor | None = None
        if quick and b.compile and b.cache_dir is not None:
            predictor = start_from_cache(self.registry, info, b.cache_dir)
        provisional = predictor is not None
        if predictor is None:
            model = load_version(self.registry, info)
            model.warm()
            digest = model_digest(self.registry.manifest(info.name, info.version))
            predictor = prepare(model, compile=b.compile, cache_dir=b.cache_dir, digest=digest)
        else:
            model = predictor.model
            model.warm()
        if adopt is not None:
            adopt.predict = predictor.predict  # read at each call: the running one finishes as it began
            self.metrics.observe_load(info.name, time.perf_counter() - started)
            return Served(model, alias, time.time(), predictor, adopt, provisional)
        batcher = Batcher(
            f"{info.name}:{info.version}",
            predictor.predict,
            enabled=b.enabled,
            max_rows=b.max_rows,
            budget=b.budget,
            executor=self._executor,
            on_batch=self._on_batch,
        )
        self.metrics.observe_load(info.name, time.perf_counter() - started)
        return Served(model, alias, time.time(), predictor, batcher, provisional)

    def _on_batch(self, items: list[Pending], columns: Columns, out: Outputs, seconds: float) -> None:
        if self.on_batch is not None:  # looked up per call: the server sets it after loading began
            self.on_batch(items, columns, out, seconds)

    def _compatible(self, name: str, served: list[Served]) -> None:
        first = served[0].model
        for other in served[1:]:
            m = other.model
            if m.schema.to_dict() != first.schema.to_dict():
                raise ValueError(
                    f"{name}:{m.version} takes other inputs than {name}:{first.version}; every arm of a "
                    "deployment must accept the same request"
                )
            if m.is_classifier != first.is_classifier or (
                m.is_classifier and [str(c) for c in m.class_values] != [str(c) for c in first.class_values]
            ):
                raise ValueError(
                    f"{name}:{m.version} predicts other classes than {name}:{first.version}; every arm "
                    "of a deployment must have the same outputs"
                )

    async def load_all(self, *, quick: bool = False) -> None:
        """Load every model; ``quick``: start from the compiled cache where it can (then :meth:`settle`)."""
        await asyncio.gather(*(self.refresh(name, quick=quick) for name in self.slots))

    async def settle(self) -> None:
        """Replace every version started from the compiled cache by its full load: the native model
        loaded and the compiled one checked against it again (or the native one served, if they no
        longer agree). A version whose full load fails keeps serving as it started, and says so."""
        for name, slot in self.slots.items():
            if slot.routing is not None and slot.routing.provisional:
                result = await self.refresh(name, settle=True)
                if result.error is not None:
                    self.settle_failures[name] = result.error
                    log.error("%s keeps serving its compiled model unchecked: %s", name, result.error)

    async def refresh(
        self, name: str, *, force: bool = False, quick: bool = False, settle: bool = False
    ) -> Refresh:
        """Build the routing the registry and the stored deployment call for now, if it changed.
        ``force`` retries a routing that failed to load before (polling does not, until it changes);
        ``quick`` starts versions from the compiled cache; ``settle`` loads fully the versions that
        were, even if nothing else changed."""
        slot = self.slots[name]
        async with slot.lock:
            current = slot.routing
            now_version = current.primary.version if current else None
            try:
                plan = await run_in_threadpool(self._plan, slot)
            except Exception as exc:  # an alias removed, the registry unreachable: keep serving
                log.error("resolving what %s should serve failed: %s", name, exc)
                return Refresh(False, now_version, f"resolving {name} failed: {exc}")
            unsettled = settle and current is not None and current.provisional
            if current is not None and current.signature == plan.signature and not unsettled:
                return Refresh(False, now_version, revision=current.revision)
            if plan.signature == slot.failed and not force:
                return Refresh(False, now_version, "this routing failed to load before")
            try:
                routing = await self._build(slot, plan, current, quick=quick)
            except Exception as exc:  # any failure keeps the old routing serving
                slot.failed = plan.signature
                self.metrics.reload_failed(name)
                serving = f"still serving version {now_version}" if current else "nothing is served"
                what, reason = (exc.what, exc.reason) if isinstance(exc, _LoadFailed) else (name, str(exc))
                log.error("loading %s failed, %s: %s", what, serving, reason)
                if current is None:
                    slot.error = reason
                    self.metrics.set_ready(name, False)
                return Refresh(False, now_version, f"loading {what} failed: {reason}")
            slot.routing = routing
            slot.failed = slot.error = None
            self._publish(name, current, routing)
            version = routing.primary.version
            if current is None:
                log.info("serving %s: %s (%s)", name, routing.spec.describe(), routing.primary.runtime)
            elif unsettled:
                log.info("%s: loaded its native model and checked the compiled one against it", name)
            elif len(routing.arms) == len(current.arms) == 1 and routing.shadow is None:
                if version == now_version and current.shadow is None:  # a new revision, the same model
                    log.debug(
                        "%s: still version %s (deployment revision %s)", name, version, routing.revision
                    )
                else:
                    log.info("switched %s from version %s to %s", name, now_version, version)
            else:
                log.info("switched %s to %s", name, _summary(routing))
            return Refresh(True, version, revision=routing.revision)

    async def _build(
        self, slot: ModelSlot, plan: _Plan, current: Routing | None, *, quick: bool = False
    ) -> Routing:
        served = current.served_versions() if current is not None else []
        loaded = {s.version: s for s in served if not s.provisional or quick}
        started = {s.version: s.batcher for s in served if s.provisional and not quick}
        by_target: dict[str, Served] = {}
        for target, info in plan.versions.items():
            alias = target[1:] if target.startswith("@") else plan.default_alias
            have = loaded.get(info.version)
            if have is None or have.alias != alias:
                if have is not None:  # same version under another alias: share the loaded model
                    have = Served(
                        have.model, alias, have.loaded_at, have.predictor, have.batcher, have.provisional
                    )
                else:
                    try:
                        have = await run_in_threadpool(
                            self._load_and_warm, info, alias, quick=quick, adopt=started.get(info.version)
                        )
                    except Exception as exc:
                        raise _LoadFailed(info.ref, str(exc)) from exc
                loaded[info.version] = have
            by_target[target] = have
        spec = plan.spec
        arms = {a.name: by_target[a.target] for a in spec.arms if a.weight > 0}
        shadow = by_target[spec.shadow] if spec.shadow is not None else None
        self._compatible(slot.name, [*arms.values(), *([shadow] if shadow else [])])
        live = tuple(a for a in spec.arms if a.weight > 0) or tuple(spec.arms)
        policy = SplitPolicy(tuple(Arm(a.name, a.target, a.weight) for a in live), spec.salt)
        return Routing(spec, plan.revision, policy, arms, shadow, plan.signature)

    def _publish(self, name: str, old: Routing | None, new: Routing) -> None:
        before = {(s.version, s.alias or "") for s in old.arms.values()} if old else set()
        after = {(s.version, s.alias or "") for s in new.arms.values()}
        for version, alias in before - after:
            self.metrics.unset_model(model=name, version=version, alias=alias)
        for version, alias in after:
            self.metrics.set_model(model=name, version=version, alias=alias or None)
        self.metrics.set_ready(name, True)

    async def watch(self, interval: float) -> None:
        """Every ``interval`` seconds, swap in moved aliases and changed deployments."""
        while True:
            await asyncio.sleep(interval)
            for name in self.names:
                try:
                    await self.refresh(name)
                except Exception as exc:  # the registry may be briefly unreachable; try again next tick
                    log.warning("checking %s for changes failed: %s", name, exc)

    def close(self) -> None:
        for slot in self.slots.values():
            if slot.routing is not None:
                for served in slot.routing.served_versions():
                    served.batcher.close()
        self._executor.shutdown(wait=False)


class _LoadFailed(Exception):
    def __init__(self, what: str, reason: str) -> None:
        self.what, self.reason = what, reason
        super().__init__(f"loading {what} failed: {reason}")


def _summary(routing: Routing) -> str:
    arms = ", ".join(f"{n}=v{s.version}" for n, s in routing.arms.items())
    shadow = f", shadow=v{routing.shadow.version}" if routing.shadow else ""
    rev = f" (deployment revision {routing.revision})" if routing.revision is not None else ""
    return f"{routing.spec.strategy} {arms}{shadow}{rev}"
