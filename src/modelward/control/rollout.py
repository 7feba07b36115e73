"""Automatic rollout: the controller task that takes each new version of a served model through its
gates and, if they pass, into a canary (docs/loop.md, "Automatic rollout").

For every model whose stored policy has ``rollout:``
(:class:`~modelward.governance.rollout_policy.RolloutPolicy`) and which has a champion, the newest
version above the champion that is not archived and has no rollout yet is taken up, once no canary
of the model runs:

1. claim: its row in ``modelward_rollouts`` (``validating``); the primary key lets one controller
   claim it, however many share the store;
2. validate: :func:`~modelward.governance.gates.validate` against the champion under the model's
   policy (its holdout); a failing gate makes it ``rejected``: it never receives traffic;
3. canary: the policy's canary, stored as the deployment (``rollout_canary`` in the audit chain);
   the canary task advances it, and promotes it through the gates or rolls it back, as it does for
   every canary;
4. follow: the row becomes ``promoted`` (the version holds the champion alias) or ``rolled_back``
   (the canary's plan says so), or ``failed`` when the canary was replaced by hand.

Each step is audited (``rollout_*`` actions on ``model:version``), notified through the alert
center (rules ``rollout_rejected``, ``rollout_started``, ...) and counted in
``modelward_rollouts_total``. The task does its work only when the audit chain or a policy changed
since its last look: a registration, a deployment write and an alias move all append to the chain.
"""

from __future__ import annotations

import logging
import time
from dataclasses import replace
from typing import Any

from sqlalchemy import func, select

from modelward.control.canary_task import AlertSink
from modelward.control.rollout_records import Rollout, Rollouts
from modelward.errors import ConfigError, ModelNotFound, SameVersionTargets
from modelward.governance.policy import GatePolicy, parse_policy
from modelward.registry.registry import DEFAULT_ALIAS, Registry
from modelward.store.tables import model_policies

REGISTRATION_GRACE_SECONDS = 600.0
"""How long a version without pins may still be in the middle of its registration."""

__all__ = ["RolloutTask", "champion_of", "policies_with"]

log = logging.getLogger("modelward.controller")


def _number(version: str) -> int:
    return int(version) if version.isdigit() else -1


def policies_with(registry: Registry, section: str) -> list[tuple[str, GatePolicy]]:
    """Each model whose stored policy sets ``section`` (``rollout``, ``live``), with its policy. A
    policy that no longer parses is logged and skipped (``modelward policy set`` checks it)."""
    with registry.store.read() as conn:
        rows = conn.execute(select(model_policies.c.model, model_policies.c.body)).all()
    out = []
    for model, body in rows:
        try:
            policy = parse_policy(body, source=f"the stored policy of {model}")
        except Exception as exc:
            log.warning("%s", exc)
            continue
        if getattr(policy, section) is not None:
            out.append((str(model), policy))
    return sorted(out, key=lambda pair: pair[0])


def champion_of(registry: Registry, model: str) -> str | None:
    """The version holding ``model``'s champion alias; None without one, or for a policy stored for a
    model not registered (yet, or any more)."""
    try:
        return registry.model(model).aliases.get(DEFAULT_ALIAS)
    except ModelNotFound:
        return None


class RolloutTask:
    """Takes new versions through gates and canary (see the module docstring)."""

    name = "rollout"

    def __init__(
        self,
        registry: Registry,
        *,
        alert: AlertSink | None = None,
        actor: str = "controller",
        holder: str = "controller",
        metrics: Any = None,
    ) -> None:
        self.registry = registry
        self.alert = alert
        self.actor = actor
        self.holder = holder
        self.metrics = metrics  # a RolloutMetrics
        self.rollouts = Rollouts(registry.store)
        self._seen: tuple[Any, ...] | None = None

    def _state(self) -> tuple[Any, ...]:
        with self.registry.store.read() as conn:
            stamp = conn.execute(select(func.max(model_policies.c.updated_at))).scalar()
        return (self.registry.audit.head()[0], stamp)

    def run(self, now: float) -> list[dict[str, Any]]:
        state = self._state()
        if state == self._seen:
            return []
        out: list[dict[str, Any]] = []
        for row in self.rollouts.active():
            if row.status == "canary":
                out.extend(self._guarded(row.model, lambda r=row: self._follow(r, now)))
        for model, policy in policies_with(self.registry, "rollout"):
            out.extend(self._guarded(model, lambda m=model, p=policy: self._take_up(m, p, now)))
        failed = any("error" in o for o in out)
        if not failed:  # a failure is tried again at the next tick, not at the next change
            self._seen = state
        return out

    def _guarded(self, model: str, step: Any) -> list[dict[str, Any]]:
        try:
            done = step()
        except Exception as exc:  # one model's trouble spares the others
            log.exception("rollout %s: failed", model)
            return [{"model": model, "error": f"{type(exc).__name__}: {exc}"}]
        return [] if done is None else [done]

    # -- taking a version up ---------------------------------------------------------------------

    def candidate(self, model: str) -> str | None:
        """The version a rollout would take up now, or None (no champion, nothing new, a canary runs)."""
        champion = champion_of(self.registry, model)
        if champion is None:
            return None
        newer = [
            v.version
            for v in self.registry.versions(model)
            if not v.archived and _number(v.version) > _number(champion)
        ]
        if not newer:
            return None
        newest = max(newer, key=_number)
        if self.rollouts.get(model, newest) is not None:
            return None
        dep = self.registry.deployments.get(model)
        if dep is not None and dep.spec.canary is not None and dep.spec.canary.state == "running":
            return None  # one canary at a time: the version waits for the running one to end
        return newest

    def _registering(self, model: str, version: str) -> bool:
        """MLflow lists a version as soon as registration creates it, and registration pins its files
        (with its register event) moments later: a version without pins here that is that young is
        still being registered, and is taken up after its register event, not rejected as unpinned.
        Wall-clock time on purpose: the version's creation time is MLflow's."""
        if self.registry.manifest(model, version):
            return False
        created = self.registry.version(model, version).created_at
        return created is not None and time.time() - created.timestamp() < REGISTRATION_GRACE_SECONDS

    def _take_up(self, model: str, policy: GatePolicy, now: float) -> dict[str, Any] | None:
        version = self.candidate(model)
        if version is None or self._registering(model, version):
            return None
        if not self.rollouts.claim(model, version, holder=self.holder, now=now, detail={}):
            return None  # another controller took it up
        ref = f"{model}:{version}"
        self._audit("rollout_claimed", ref, {"policy": policy.to_dict()["rollout"]})
        refusal = self.registry.promotion_refusal(model, version)
        if refusal is not None:
            return self._end(model, version, "validating", "rejected", refusal, now, {})
        from modelward.governance.gates import validate

        try:
            validation = validate(self.registry, ref, against=DEFAULT_ALIAS, policy=policy, actor=self.actor)
        except Exception as exc:
            why = f"the gates could not be evaluated: {type(exc).__name__}: {exc}"
            return self._end(model, version, "validating", "failed", why, now, {})
        summary = {"validation": validation.summary()}
        if not validation.passed:
            gates = "; ".join(f"{g.name}: {g.reason or g.describe()}" for g in validation.failing)
            why = f"{ref} failed {len(validation.failing)} gate(s): {gates}; it receives no traffic"
            return self._end(model, version, "validating", "rejected", why, now, summary)
        return self._start(model, version, policy, now, summary)

    def _start(
        self, model: str, version: str, policy: GatePolicy, now: float, summary: dict[str, Any]
    ) -> dict[str, Any]:
        from modelward.control.targets import check_targets

        if policy.rollout is None:  # pragma: no cover - only models with a rollout come here
            raise ConfigError(f"{model} has no rollout policy")
        deployments = self.registry.deployments
        current = deployments.get(model)
        try:
            spec = policy.rollout.spec(model, version, current.spec if current else None)
            # The first step starts on the controller's clock, as the canary task's steps do.
            spec = spec.with_canary(replace(spec.canary, step_started_at=now))
            try:
                check_targets(self.registry, spec)
            except SameVersionTargets as exc:
                if not exc.shadow:
                    raise
                # The shadow mirrors the version now canaried (e.g. @challenger): it would copy onto itself.
                spec = replace(spec, shadow=None)
                check_targets(self.registry, spec)
            why = f"{model}:{version} passed its gates; canary {spec.describe()}"
            stored = deployments.put(
                spec,
                reason=why,
                expected_revision=current.revision if current else 0,
                action="rollout_canary",
                actor=self.actor,
                extra={"version": version, **summary},
            )
        except Exception as exc:  # a stale revision (StaleDeployment), an archived baseline, ...
            why = f"the canary could not start: {type(exc).__name__}: {exc}"
            return self._end(model, version, "validating", "failed", why, now, summary)
        detail = {**summary, "reason": why, "revision": stored.revision}
        if not self.rollouts.move(
            model, version, expected="validating", status="canary", detail=detail, now=now
        ):
            return {"model": model, "version": version, "status": "lost"}
        self._notify("rollout_started", model, version, why, "info")
        self._count(model, "started")
        return {"model": model, "version": version, "status": "canary", "reason": why}

    # -- following the canary --------------------------------------------------------------------

    def _follow(self, row: Rollout, now: float) -> dict[str, Any] | None:
        model, version = row.model, row.version
        dep = self.registry.deployments.get(model)
        plan = dep.spec.canary if dep is not None else None
        if plan is not None and plan.version == version:
            if plan.state == "running":
                return None
            if plan.state == "rolled_back":
                why = f"the canary was rolled back at {plan.percent:g}%: {plan.reason or 'no reason given'}"
                return self._end(model, version, "canary", "rolled_back", why, now, {})
        if self.registry.model(model).aliases.get(DEFAULT_ALIAS) == version:
            why = f"{model}:{version} passed every canary step and its gates: it is the champion"
            return self._end(model, version, "canary", "promoted", why, now, {})
        why = "the canary was replaced by another deployment before it ended"
        return self._end(model, version, "canary", "failed", why, now, {})

    # -- recording -------------------------------------------------------------------------------

    def _end(
        self,
        model: str,
        version: str,
        expected: str,
        status: Any,
        why: str,
        now: float,
        detail: dict[str, Any],
    ) -> dict[str, Any]:
        moved = self.rollouts.move(
            model, version, expected=expected, status=status, detail={**detail, "reason": why}, now=now
        )
        if not moved:
            return {"model": model, "version": version, "status": "lost"}
        self._audit(f"rollout_{status}", f"{model}:{version}", {**detail, "reason": why})
        severity = {"promoted": "info", "rejected": "warning"}.get(status, "critical")
        self._notify(f"rollout_{status}", model, version, why, severity)
        self._count(model, status)
        log.info("rollout %s:%s: %s (%s)", model, version, status, why)
        return {"model": model, "version": version, "status": status, "reason": why}

    def _audit(self, action: str, subject: str, payload: dict[str, Any]) -> None:
        self.registry.audit.append(action, subject, payload, actor=self.actor)

    def _notify(self, rule: str, model: str, version: str, message: str, severity: str) -> None:
        if self.alert is None:
            return
        try:
            self.alert(rule, model, f"{model}:{version}", message, severity=severity)
        except Exception:
            log.exception("rollout %s:%s: the notification could not be sent", model, version)

    def _count(self, model: str, outcome: str) -> None:
        if self.metrics is not None:
            self.metrics.rollout(model, outcome)
