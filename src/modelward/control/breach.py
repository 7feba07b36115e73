"""Rollback on live performance: the controller task that watches each champion's live metric against
its policy's floor (``live:``, :class:`~modelward.governance.rollout_policy.LivePolicy`) and, when
``on_breach: rollback``, moves the champion alias back to the previous champion once the breach has
lasted ``sustain`` (docs/loop.md, "Rollback on live performance").

The floor is judged by the alert rules' :class:`~modelward.monitoring.alert_rules.PerformanceRule`
on the figures the monitor reads (:func:`~modelward.feedback.performance.performance_report`), over
the labelled predictions of the champion's version made in the last ``window`` and since it took
the alias (a version just put back starts afresh). Its signal goes to the alert center as rule
``live_floor``: the alert fires (and is notified) as soon as the metric is below the floor, whatever
``on_breach`` says; the alert's state in the store dates the breach, so the ``sustain`` clock
survives a change of controller, and a check that finds the metric within its floor starts it again.

With ``on_breach: rollback`` and a breach older than ``sustain``, the task calls the registry's
rollback (the one ``modelward rollback`` runs): the alias goes back to the version that held it
before, the ``rollback`` and ``live_rollback`` events go to the audit chain, a ``live_rollback``
alert is sent and ``modelward_live_rollbacks_total`` counts it. A breach is acted on once: its
``live_rollback`` audit event names the breach's start, the alias is read again just before the
move, and the version put back is judged from the moment it took the alias. Without a previous
champion nothing moves, and a ``live_rollback_impossible`` alert says why.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

from modelward.control.monitor import _snapshots
from modelward.control.rollout import champion_of, policies_with
from modelward.errors import LifecycleError
from modelward.governance.rollout_policy import LivePolicy
from modelward.monitoring.alert_rules import AlertInputs
from modelward.monitoring.alerts import AlertCenter
from modelward.registry.registry import DEFAULT_ALIAS, Registry

__all__ = ["RULE", "BreachTask"]

log = logging.getLogger("modelward.controller")

RULE = "live_floor"
"""The alert rule name of a policy's live floor."""


def _epoch(ts: str) -> float:
    return datetime.strptime(ts, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC).timestamp()


class BreachTask:
    """Judges each champion's live floor every ``interval`` seconds; rolls back on a sustained breach
    when its policy says so (see the module docstring)."""

    name = "live_breach"

    def __init__(
        self,
        registry: Registry,
        center: AlertCenter,
        *,
        interval: float = 60.0,
        actor: str = "controller",
        metrics: Any = None,
        max_rows: int = 50_000,
    ) -> None:
        self.registry = registry
        self.center = center
        self.interval = float(interval)
        self.actor = actor
        self.metrics = metrics  # a RolloutMetrics
        self.max_rows = max_rows
        self._last_run: float | None = None
        # When this controller last saw each (model, version) within its floor: the alert's state keeps
        # its first fire through a flap shorter than the alert center's resolve_after, the sustain
        # clock does not.
        self._clear: dict[tuple[str, str], float] = {}

    def run(self, now: float) -> list[dict[str, Any]] | None:
        if self._last_run is not None and now - self._last_run < self.interval:
            return None
        self._last_run = now
        out = []
        for model, policy in policies_with(self.registry, "live"):
            if policy.live is None:  # pragma: no cover - policies_with keeps those with `live:`
                continue
            try:
                found = self.check(model, policy.live, now)
            except Exception as exc:
                log.exception("live floor of %s: could not be judged", model)
                found = {"model": model, "error": f"{type(exc).__name__}: {exc}"}
            if found is not None:
                out.append(found)
        return out

    def _since_alias(self, model: str, version: str) -> float | None:
        """When ``version`` last took the champion alias (None: not through modelward)."""
        moves = [e for e in self.registry.alias_history(model, DEFAULT_ALIAS) if e["version"] == version]
        return _epoch(moves[-1]["ts"]) if moves else None

    def check(self, model: str, live: LivePolicy, now: float) -> dict[str, Any] | None:
        """Judge ``model``'s champion once at ``now`` and act on a sustained breach."""
        from modelward.feedback.performance import performance_report

        champion = champion_of(self.registry, model)
        if champion is None:
            return None
        since = now - live.window_seconds
        took = self._since_alias(model, champion)
        if took is not None:
            since = max(since, took)
        report = performance_report(self.registry, model, since=since, until=now, max_rows=self.max_rows)
        performance, _ = _snapshots(report, champion)
        rule = live.rule(RULE)
        signals = rule.evaluate(AlertInputs(model, champion, performance=performance))
        self.center.apply(signals, now=now, supersede=True)
        (signal,) = signals
        record = self.center.get(RULE, model, signal.subject, champion)
        firing = record is not None and record.state == "firing" and record.clear_since is None
        if self.metrics is not None:
            self.metrics.breach(model, champion, firing)
        out: dict[str, Any] = {
            "model": model,
            "version": champion,
            "breach": firing,
            "value": signal.value,
            "labels": None if performance is None else performance.labels,
            "message": signal.message,
        }
        key = (model, champion)
        if signal.firing is False:
            self._clear[key] = now  # the metric is back within its floor: a later breach starts afresh
        if not firing or record is None or live.on_breach != "rollback":
            return out
        lasted = now - max(record.first_fired_at, self._clear.get(key, record.first_fired_at))
        if lasted < live.sustain_seconds:
            return {**out, "action": "wait", "sustained": lasted}
        return {**out, **self._roll_back(model, champion, live, record.first_fired_at, signal.message, now)}

    def _acted(self, model: str, version: str, started: float) -> bool:
        """Whether this breach (``version``'s, since ``started``) was acted on already, by any controller."""
        subject = f"{model}:{version}"
        for action in ("live_rollback", "live_rollback_impossible"):
            events = self.registry.audit.events(subject=subject, action=action, newest_first=True, limit=20)
            if any(e.subject == subject and e.payload.get("breach_since") == started for e in events):
                return True
        return False

    def _roll_back(
        self, model: str, version: str, live: LivePolicy, started: float, message: str, now: float
    ) -> dict[str, Any]:
        if self._acted(model, version, started):
            return {"action": "done"}
        if self.registry.model(model).aliases.get(DEFAULT_ALIAS) != version:
            return {"action": "moved"}  # someone moved the alias meanwhile: this breach is over
        figures = {
            "metric": live.metric,
            "floor": live.min if live.min is not None else live.max,
            "window": live.window,
            "sustain": live.sustain,
            "breach_since": started,
            "judged": message,
        }
        reason = f"live performance: {message} since {datetime.fromtimestamp(started, UTC):%H:%M:%S} UTC"
        subject = f"{model}:{version}"
        try:
            back = self.registry.rollback(model, DEFAULT_ALIAS, reason=reason)
        except LifecycleError as exc:
            text = f"{subject} breaches its live floor but is not rolled back: {exc}"
            self.registry.audit.append(
                "live_rollback_impossible", subject, {**figures, "reason": str(exc)}, actor=self.actor
            )
            self._notify("live_rollback_impossible", model, subject, text, now)
            return {"action": "impossible", "reason": str(exc)}
        payload = {**figures, "from": version, "to": back.version, "reason": reason}
        self.registry.audit.append("live_rollback", subject, payload, actor=self.actor)
        text = f"{model} rolled back from {version} to {back.version}: {message}"
        self._notify("live_rollback", model, subject, text, now)
        if self.metrics is not None:
            self.metrics.live_rollback(model)
        log.warning("%s", text)
        return {"action": "rollback", "to": back.version}

    def _notify(self, rule: str, model: str, subject: str, text: str, now: float) -> None:
        try:
            self.center.event(rule, model, subject, text, severity="critical", now=now)
        except Exception:
            log.exception("live floor of %s: the notification could not be sent", model)
