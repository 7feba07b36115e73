"""The versions a deployment spec's targets point at now, and refusing specs that name nothing or
serve a version against itself.

A target is a version (``"3"``) or an alias (``"@champion"``). Servers resolve aliases when they load
a spec, so a spec naming a version or alias that does not exist would leave an arm with nothing to
serve: the CLI and the admin API check every target here before storing a spec.

Two names can resolve to one version (``@champion`` and ``@challenger`` after the challenger was
promoted): an A/B test whose arms both serve version 2 measures nothing, a shadow of the version
already serving mirrors it against itself, a canary of its baseline's version compares it with
itself. Such a spec is refused (:class:`~modelward.errors.SameVersionTargets`) unless the caller
allows it (an A/A test is a legitimate check of an experiment's set-up), and then each overlap is
a warning to show.
"""

from __future__ import annotations

from collections.abc import Mapping

from modelward.errors import LifecycleError, SameVersionTargets
from modelward.registry.registry import Registry
from modelward.routing.spec import DeploymentSpec

__all__ = ["check_targets", "resolve_target", "resolve_targets", "same_version_problems"]


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


def same_version_problems(spec: DeploymentSpec, resolved: Mapping[str, str]) -> list[str]:
    """Where ``spec`` serves a version against itself, given what its targets resolve to (one
    sentence each, empty when nothing does): two live arms on one version, a running canary of its
    baseline's version, a shadow of a version a live arm serves."""
    shadow = _shadow_problem(spec, resolved)
    return _arm_problems(spec, resolved) + ([shadow] if shadow else [])


def _arm_problems(spec: DeploymentSpec, resolved: Mapping[str, str]) -> list[str]:
    plan = spec.canary
    if plan is not None:
        # A canary's arms are its plan's: the plan says it better than the arms would.
        version = resolved[plan.version]
        if plan.state in ("running", "paused") and resolved[plan.baseline] == version:
            return [
                f"a canary of version {version}, which its baseline {plan.baseline} already serves: "
                "canary another version"
            ]
        return []
    arms_of: dict[str, list[str]] = {}
    for arm in spec.arms:
        if arm.weight > 0:
            arms_of.setdefault(resolved[arm.target], []).append(f"{arm.name} ({arm.target})")
    return [
        f"arms {' and '.join(names)} both resolve to version {version}: "
        f"the split would compare version {version} with itself"
        for version, names in arms_of.items()
        if len(names) > 1
    ]


def _shadow_problem(spec: DeploymentSpec, resolved: Mapping[str, str]) -> str | None:
    if spec.shadow is None:
        return None
    version = resolved[spec.shadow]
    for arm in spec.arms:
        if arm.weight > 0 and resolved[arm.target] == version:
            return (
                f"the shadow {spec.shadow} is version {version}, which arm {arm.name} ({arm.target}) "
                f"already serves: it would mirror version {version} against itself"
            )
    return None


def check_targets(
    registry: Registry, spec: DeploymentSpec, *, allow_same_version: bool = False
) -> dict[str, str]:
    """:func:`resolve_targets`, refusing archived versions on live arms, shadow or canary, and,
    unless ``allow_same_version``, a spec that serves a version against itself
    (:func:`same_version_problems`; :class:`~modelward.errors.SameVersionTargets`)."""
    resolved = resolve_targets(registry, spec)
    live = {a.target for a in spec.arms if a.weight > 0}
    if spec.shadow is not None:
        live.add(spec.shadow)
    if spec.canary is not None and spec.canary.state in ("running", "paused"):
        live.add(spec.canary.version)
    for target in sorted(live):
        info = registry.version(spec.model, resolved[target])
        if info.archived:
            raise LifecycleError(f"{info.ref} ({target}) is archived; unarchive it before sending it traffic")
    problems = [] if allow_same_version else same_version_problems(spec, resolved)
    if problems:
        raise SameVersionTargets(problems, shadow=_shadow_problem(spec, resolved) is not None)
    return resolved
