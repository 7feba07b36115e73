"""Retraining: the controller's task that watches each model's triggers, and the runs it starts.

:class:`Retrainer` claims a run (one per model in progress, across replicas: the store's unique
``running`` column; automatic triggers also wait out the cool-down since the model's last run,
failed or not), makes a fresh labelled export of the model's logged traffic, runs the policy's
action (a command, or a webhook to Airflow, Prefect or anything else), and records the outcome and
duration. Each start and each outcome is appended to the audit chain (``retrain_trigger``,
``retrain_finish``), sent through the alert notifiers (rules ``retrain_triggered`` and
``retrain_finished``) and counted in Prometheus
(:class:`~modelward.monitoring.retrain_metrics.RetrainMetrics`).

:class:`RetrainTask` is what the controller runs each tick (under its lease): it starts the runs
queued by ``modelward retrain --no-wait`` or the admin route, marks as timed out the runs whose
holder vanished, and, every ``interval`` seconds, judges the triggers of every model whose policy
has a ``retrain`` section (:mod:`modelward.control.retrain_triggers`). Actions run in a thread of
their own, so a tick never waits for a training job; :meth:`RetrainTask.join` waits for them.

The clock is an argument (``run(now)``): a run's ``started_at`` is that moment and its duration is
measured, so tests drive triggers and cool-downs without sleeping.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from modelward.control.retrain_actions import ActionOutcome, RunFacts, call_webhook, run_command
from modelward.control.retrain_runs import RetrainRun, RetrainRuns, in_progress_error
from modelward.control.retrain_triggers import Firing, judge_triggers
from modelward.errors import ConfigError
from modelward.governance.policy import parse_policy
from modelward.governance.reports import VersionReports
from modelward.governance.retrain_policy import RetrainPolicy
from modelward.registry.registry import Registry

if TYPE_CHECKING:
    from modelward.config import Settings
    from modelward.drift import DatasetProfile

__all__ = ["RETRAIN_ACTIONS", "RetrainTask", "Retrainer", "settings_env"]

log = logging.getLogger("modelward.retrain")

RETRAIN_ACTIONS = ("retrain_trigger", "retrain_finish")
"""Audit actions of retraining runs."""

DEFAULT_TIMEOUT = 7200.0  # a run's timeout when its model's policy is gone
STALE_GRACE = 300.0  # seconds past its timeout before a run whose holder went silent is closed


def settings_env(settings: Settings) -> dict[str, str]:
    """The settings a retraining command needs to reach the same registry and store."""
    tracking = settings.resolved_tracking_uri
    return {
        "MODELWARD_HOME": str(settings.home),
        "MODELWARD_DATABASE_URL": settings.resolved_database_url,
        "MODELWARD_TRACKING_URI": tracking,
        "MLFLOW_TRACKING_URI": tracking,
    }


def _file_part(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name)[:100] or "model"


class Retrainer:
    """Claims, runs and records retraining runs; shared by the controller's task, the CLI and the
    admin route. ``env`` holds the settings a command receives (:func:`settings_env`); exports are
    written under ``export_dir``; ``alert`` is an AlertCenter's ``event`` (or None); ``metrics`` a
    :class:`~modelward.monitoring.retrain_metrics.RetrainMetrics` (or None)."""

    def __init__(
        self,
        registry: Registry,
        *,
        env: Mapping[str, str],
        export_dir: Path,
        alert: Any = None,
        metrics: Any = None,
        actor: str = "controller",
    ) -> None:
        self.registry = registry
        self.runs = RetrainRuns(registry.store)
        self.env = dict(env)
        self.export_dir = Path(export_dir)
        self.alert = alert
        self.metrics = metrics
        self.actor = actor

    @classmethod
    def from_settings(
        cls, registry: Registry, settings: Settings, *, alert: Any = None, metrics: Any = None, actor: str
    ) -> Retrainer:
        env = settings_env(settings)
        return cls(
            registry, env=env, export_dir=settings.home / "retrain", alert=alert, metrics=metrics, actor=actor
        )

    # -- policies ------------------------------------------------------------------------------------

    def policies(self) -> dict[str, tuple[RetrainPolicy, float]]:
        """Every stored policy with a ``retrain`` section: model -> (policy, when it was set)."""
        from sqlalchemy import select

        from modelward.store.tables import model_policies

        with self.registry.store.read() as conn:
            rows = conn.execute(select(model_policies)).mappings().all()
        out: dict[str, tuple[RetrainPolicy, float]] = {}
        for row in rows:
            try:
                policy = parse_policy(row["body"], source=f"the stored policy of {row['model']}")
            except ConfigError as exc:  # stored policies were validated; a newer schema may differ
                log.warning("retrain: %s", exc)
                continue
            if policy.retrain is not None:
                out[str(row["model"])] = (policy.retrain, float(row["updated_at"]))
        return out

    def policy(self, model: str) -> RetrainPolicy:
        """``model``'s retraining policy; ConfigError when it has none."""
        stored = VersionReports(self.registry.store).policy(model)
        policy = None if stored is None else parse_policy(stored.body, source=f"the stored policy of {model}")
        if policy is None or policy.retrain is None:
            raise ConfigError(
                f"{model} has no retraining action: add a `retrain:` section with a command or a webhook "
                "to its policy (`modelward policy set`, docs/loop.md)"
            )
        return policy.retrain

    # -- runs ----------------------------------------------------------------------------------------

    def claim(
        self, model: str, firing: Firing, now: float, *, cooldown: float = 0.0, queued: bool = False
    ) -> RetrainRun | None:
        """Claim a run for ``firing``; None when one is in progress or the cool-down holds."""
        run = self.runs.claim(
            model,
            firing.trigger,
            firing.reason,
            firing.figures,
            holder=self.actor,
            now=now,
            cooldown=cooldown,
            status="queued" if queued else "running",
        )
        if run is None:
            return None
        payload = {"run_id": run.id, "status": run.status, **firing.to_dict()}
        self.registry.audit.append("retrain_trigger", model, payload, actor=self.actor)
        self._notify(
            "retrain_triggered",
            run,
            f"retraining {model} (run {run.id}, {firing.trigger}): {firing.reason}",
            "warning",
        )
        return run

    def request(
        self, model: str, reason: str, *, now: float | None = None, queued: bool = False
    ) -> RetrainRun:
        """A manual run (no cool-down, the same in-progress guard); LifecycleError when one is queued
        or running."""
        self.policy(model)  # an action must exist before a run is recorded
        moment = time.time() if now is None else now
        run = self.claim(model, Firing("manual", reason, {"actor": self.actor}), moment, queued=queued)
        if run is None:
            current = self.runs.in_progress(model)
            raise in_progress_error(model, current[0].id if current else None)
        return run

    def execute(self, run: RetrainRun, policy: RetrainPolicy | None = None) -> RetrainRun:
        """Export, run the action, record the outcome. Never raises for the action's failure."""
        began = time.perf_counter()
        if self.metrics is not None:
            self.metrics.started(run.model, run.trigger)
        try:
            chosen = policy if policy is not None else self.policy(run.model)
            export, rows, problem = self._export(run, chosen)
            facts = RunFacts(run.model, run.id, run.trigger, run.reason, run.figures, export, rows)
            if chosen.command is not None:
                outcome = run_command(chosen, facts, self.env)
            elif chosen.webhook is not None:
                outcome = call_webhook(chosen.webhook, facts)
            else:  # pragma: no cover - the policy validator requires an action
                raise ConfigError("the retraining policy has no action")
            detail = {**outcome.detail, "export": export, "export_rows": rows, "action": chosen.action}
            if problem is not None:
                detail["export_error"] = problem
            outcome = ActionOutcome(outcome.status, outcome.exit_code, outcome.output, detail)
        except Exception as exc:  # a policy gone bad, a store hiccup: the run fails, on the record
            log.exception("retrain %s run %s failed", run.model, run.id)
            outcome = ActionOutcome("failed", None, None, {"error": f"{type(exc).__name__}: {exc}"})
        return self._finish(run, outcome, time.perf_counter() - began)

    def _export(self, run: RetrainRun, policy: RetrainPolicy) -> tuple[str | None, int, str | None]:
        from modelward.monitoring.prediction_query import export

        path = self.export_dir / f"{_file_part(run.model)}-run{run.id}.parquet"
        since = None if policy.export_since is None else run.started_at - policy.export_since
        try:
            self.export_dir.mkdir(parents=True, exist_ok=True)
            rows = export(self.registry.store, run.model, path, fmt="parquet", since=since, labeled=True)
        except Exception as exc:
            log.warning("retrain %s run %s: the labelled export failed: %s", run.model, run.id, exc)
            return None, 0, f"{type(exc).__name__}: {exc}"
        return (str(path) if rows else None), rows, None

    def _finish(self, run: RetrainRun, outcome: ActionOutcome, took: float) -> RetrainRun:
        done = self.runs.finish(
            run.id,
            outcome.status,
            now=run.started_at + took,
            exit_code=outcome.exit_code,
            output=outcome.output,
            detail=outcome.detail,
        )
        if self.metrics is not None:
            self.metrics.finished(run.model, run.trigger, outcome.status, took)
        payload = {
            "run_id": run.id,
            "trigger": run.trigger,
            "status": outcome.status,
            "duration": round(took, 3),
            "exit_code": outcome.exit_code,
            "detail": outcome.detail,
        }
        self.registry.audit.append("retrain_finish", run.model, payload, actor=self.actor)
        why = outcome.detail.get("error")
        message = f"retraining {run.model} (run {run.id}) {outcome.status} after {took:.1f} s" + (
            f": {why}" if why else ""
        )
        self._notify(
            "retrain_finished", done, message, "info" if outcome.status == "succeeded" else "critical"
        )
        return done

    def close_stale(self, run: RetrainRun, now: float, why: str) -> RetrainRun:
        """Close a run whose holder went silent past its timeout, so the model can retrain again."""
        return self._finish(
            run, ActionOutcome("timed_out", None, None, {"error": why}), max(0.0, now - run.started_at)
        )

    def _notify(self, rule: str, run: RetrainRun, message: str, severity: str) -> None:
        if self.alert is None:
            return
        try:
            self.alert(rule, run.model, f"{run.model}:retrain-{run.id}", message, severity=severity)
        except Exception:
            log.exception("retrain %s: the notification could not be sent", run.model)


class RetrainTask:
    """The controller's retraining task (see the module docstring). ``models``: only these (None:
    every model with a retraining policy); triggers are judged every ``interval`` seconds;
    ``background=False`` runs actions inside ``run`` (for scripts that want the outcome at once)."""

    name = "retrain"

    def __init__(
        self,
        retrainer: Retrainer,
        *,
        models: Sequence[str] | None = None,
        interval: float = 60.0,
        background: bool = True,
    ) -> None:
        self.retrainer = retrainer
        self.models = None if models is None else frozenset(models)
        self.interval = float(interval)
        self.background = background
        self._threads: dict[int, threading.Thread] = {}
        self._lock = threading.Lock()
        self._last_judged: float | None = None
        self._references: dict[tuple[str, str], DatasetProfile] = {}

    def run(self, now: float) -> dict[str, Any]:
        policies = {
            m: p for m, p in self.retrainer.policies().items() if self.models is None or m in self.models
        }
        out: dict[str, Any] = {"started": [], "closed": [], "held": {}, "problems": {}}
        self._housekeeping(policies, now, out)
        if self._last_judged is not None and now - self._last_judged < self.interval:
            return out
        self._last_judged = now
        runs = self.retrainer.runs
        for model, (policy, set_at) in sorted(policies.items()):
            problems: dict[str, str] = {}
            firing = judge_triggers(
                self.retrainer.registry,
                model,
                policy,
                now,
                policy_set_at=set_at,
                last_scheduled=runs.last_started(model, "schedule"),
                references=self._references,
                problems=problems,
            )
            if problems:
                out["problems"][model] = problems
            if firing is None:
                continue
            run = self.retrainer.claim(model, firing, now, cooldown=policy.cooldown)
            if run is None:  # in progress, or cooling down since the last run: one incident, one run
                out["held"][model] = firing.trigger
                continue
            out["started"].append({"model": model, "run_id": run.id, **firing.to_dict()})
            self._start(run, policy)
        return out

    def _housekeeping(
        self, policies: Mapping[str, tuple[RetrainPolicy, float]], now: float, out: dict[str, Any]
    ) -> None:
        retrainer = self.retrainer
        for run in retrainer.runs.in_progress():
            with self._lock:
                mine = run.id in self._threads
            known = policies.get(run.model)
            if run.status == "queued" and known is not None:
                if retrainer.runs.start(run.id, holder=retrainer.actor):
                    out["started"].append({"model": run.model, "run_id": run.id, "trigger": run.trigger})
                    self._start(run, known[0])
                continue
            timeout = known[0].timeout if known is not None else DEFAULT_TIMEOUT
            if not mine and now - run.started_at > timeout + STALE_GRACE:
                why = f"{run.status} for {now - run.started_at:.0f} s (holder {run.holder} went silent)"
                retrainer.close_stale(run, now, why)
                out["closed"].append(run.id)

    def _start(self, run: RetrainRun, policy: RetrainPolicy) -> None:
        if not self.background:
            self.retrainer.execute(run, policy)
            return
        thread = threading.Thread(
            target=self._execute, args=(run, policy), name=f"modelward-retrain-{run.id}", daemon=True
        )
        with self._lock:
            self._threads[run.id] = thread
        thread.start()

    def _execute(self, run: RetrainRun, policy: RetrainPolicy) -> None:
        try:
            self.retrainer.execute(run, policy)
        finally:
            with self._lock:
                self._threads.pop(run.id, None)

    def join(self, timeout: float | None = None) -> bool:
        """Wait for the runs this task started; True when none is left running."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            with self._lock:
                threads = list(self._threads.values())
            if not threads:
                return True
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                return False
            threads[0].join(left)
