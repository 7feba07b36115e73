"""The versions a deployment spec's targets point at now, and refusing specs that name nothing.

A target is a version (``"3"``) or an alias (``"@champion"``). Servers resolve aliases when they load
a spec, so a spec naming a version or alias that does not exist would leave an arm with nothing to
serve: the CLI and the admin API check every target here before storing a spec.
"""

from __future__ import annotations

from modelward.errors import LifecycleError
from modelward.registry.registry import Registry
from modelward.routing.spec import DeploymentSpec

__all__ = ["check_targets", "resolve_target", "resolve_targets"]


def resolve_target(registry: Registry, model: str, target: str) -> str:
    """The version ``target`` names now; :class:`~modelward.errors.NotFound` if it names nothing."""
    if target.startswith("@"):
        return registry.resolve(f"{model}{target}").version
    return registry.version(model, target).version


def resolve_targets(registry: Registry, spec: DeploymentSpec) -> dict[str, str]:
    """Every target of ``spec`` (arms, shadow, a canary's baseline) -> the version it resolves to."""
    targets = [a.target for a in spec.arms]
    if spec.canary is not None:
        targets += [spec.canary.baseline, spec.canary.version]
    if spec.shadow is not None:
        targets.append(spec.shadow)
    return {t: resolve_target(registry, spec.model, t) for t in dict.fromkeys(targets)}


def check_targets(registry: Registry, spec: DeploymentSpec) -> dict[str, str]:
    """:func:`resolve_targets`, refusing archived versions on live arms, shadow or canary, and a
    canary of the version its baseline already serves."""
    resolved = resolve_targets(registry, spec)
    plan = spec.canary
    if plan is not None and plan.state == "running" and resolved[plan.baseline] == resolved[plan.version]:
        raise LifecycleError(
            f"version {resolved[plan.version]} already is {plan.baseline}: canary another version"
        )
    live = {a.target for a in spec.arms if a.weight > 0}
    if spec.shadow is not None:
        live.add(spec.shadow)
    if spec.canary is not None and spec.canary.state == "running":
        live.add(spec.canary.version)
    for target in sorted(live):
        info = registry.version(spec.model, resolved[target])
        if info.archived:
            raise LifecycleError(f"{info.ref} ({target}) is archived; unarchive it before sending it traffic")
    return resolved
