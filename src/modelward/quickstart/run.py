"""``modelward quickstart``: the whole loop on the embedded default, narrated step by step.

Generate churn data, train and register v1, set its promotion policy, serve it in the background,
send traffic and labels, change the world (drifted customers whose behaviour v1 gets wrong), see the
server detect the drift and the drop in AUC, retrain v2 on fresh data and the labelled export,
validate it, canary it, and let the server's controller promote it; write the drift report and the
model card, verify the audit chain. Every step is reported to a :class:`Reporter` with its figures
and appended to the audit chain (action ``quickstart``).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from modelward.errors import ConfigError, ModelNotFound, ModelwardError
from modelward.quickstart import outputs, scenario, steps
from modelward.quickstart.server import QuickServer, check_port, server_env, start_server
from modelward.quickstart.traffic import TrafficClient, wait_for

if TYPE_CHECKING:
    from modelward.config import Settings

__all__ = ["AUC_FLOOR", "STEPS", "Options", "Reporter", "Summary", "run"]

AUC_FLOOR = 0.65
CANARY_STEPS = (25.0, 50.0, 100.0)
DETECT_TIMEOUT = 90.0
STEPS = {
    "data": "generate the churn data",
    "v1": "train and register v1",
    "policy": "set the promotion policy",
    "serve": "serve in the background",
    "traffic": "send traffic",
    "labels": "post labels",
    "drift": "inject drift",
    "drift_detected": "drift detected",
    "performance_drop": "performance drop detected",
    "retrain": "retrain: v2 registered",
    "gates": "gates",
    "canary": "canary",
    "promoted": "v2 promoted",
    "reports": "drift report and model card",
    "audit": "audit chain verified",
    "server": "server",
}


class Reporter(Protocol):
    def start(self, key: str, title: str) -> None: ...

    def done(self, key: str, text: str, figures: dict[str, Any]) -> None: ...

    def update(self, key: str, text: str) -> None: ...

    def fail(self, key: str, text: str) -> None: ...


@dataclass(frozen=True)
class Options:
    name: str = "churn"
    size: str = "full"
    host: str = "127.0.0.1"
    port: int = 8000
    keep_serving: bool = False


@dataclass
class Summary:
    model: str
    size: str
    steps: dict[str, dict[str, Any]] = field(default_factory=dict)
    versions: dict[str, str] = field(default_factory=dict)
    paths: dict[str, str] = field(default_factory=dict)
    urls: dict[str, str] = field(default_factory=dict)
    seconds: float = 0.0

    def checks(self) -> dict[str, bool]:
        """What the quickstart set out to show, each true once seen."""
        done = {key for key, step in self.steps.items() if step.get("ok")}
        return {
            "drift_detected": "drift_detected" in done,
            "performance_drop_detected": "performance_drop" in done,
            "v2_registered": "retrain" in done,
            "gates_passed": "gates" in done,
            "canary_steps": len(self.steps.get("canary", {}).get("steps", [])) > 0,
            "v2_promoted": "promoted" in done,
            "audit_verified": "audit" in done,
        }

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "size": self.size,
            "seconds": round(self.seconds, 1),
            "checks": self.checks(),
            "versions": self.versions,
            "steps": self.steps,
            "paths": self.paths,
            "urls": self.urls,
        }


class _Run:
    def __init__(self, settings: Settings, options: Options, reporter: Reporter) -> None:
        if options.size not in scenario.SIZES:
            raise ConfigError(f"--size {options.size!r}: use one of {', '.join(scenario.SIZES)}")
        self.cfg = settings
        self.opt = options
        self.size = scenario.SIZES[options.size]
        self.report = reporter
        self.name = options.name
        self.summary = Summary(options.name, options.size)
        self.folder = Path(settings.home) / "quickstart" / options.name
        self.server: QuickServer | None = None
        self.client: TrafficClient | None = None
        self.current: str | None = None

    # -- bookkeeping ------------------------------------------------------------------------------
    def begin(self, key: str) -> float:
        self.current = key
        self.report.start(key, STEPS[key])
        return time.monotonic()

    def finish(self, key: str, started: float, text: str, **figures: Any) -> None:
        figures["seconds"] = round(time.monotonic() - started, 2)
        self.summary.steps[key] = {"title": STEPS[key], "ok": True, "text": text, **figures}
        self.current = None
        self.report.done(key, text, figures)
        import modelward

        with modelward.open_registry(self.cfg) as registry:
            registry.audit.append(
                "quickstart", self.name, {"step": key, "text": text, **figures}, actor=self.cfg.resolved_actor
            )

    # -- the scenario -----------------------------------------------------------------------------
    def check_home(self) -> None:
        import modelward

        with modelward.open_registry(self.cfg) as registry:
            try:
                info = registry.model(self.name)
            except ModelNotFound:
                return
        raise ConfigError(
            f"this home ({self.cfg.home}) already has a model '{self.name}' (latest version "
            f"{info.latest_version}): pass --name with another name, or point MODELWARD_HOME at a new folder"
        )

    def run(self) -> Summary:
        began = time.monotonic()
        port = check_port(self.opt.host, self.opt.port)
        self.check_home()
        (self.folder / "data").mkdir(parents=True, exist_ok=True)
        try:
            self.scenario(port)
        except BaseException as exc:
            if self.current is not None:
                self.report.fail(self.current, str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
            if self.server is not None:
                self.server.stop()  # even with --keep-serving: its log stays in the folder
            raise
        finally:
            if self.client is not None:
                self.client.close()
        if self.server is not None:
            t = self.begin("server")
            if self.opt.keep_serving:
                self.finish("server", t, f"still serving at {self.server.url}", kept=True)
            else:
                self.server.stop()
                self.finish("server", t, "stopped", kept=False)
        self.summary.seconds = time.monotonic() - began
        return self.summary

    def scenario(self, port: int) -> None:
        import numpy as np
        from sklearn.metrics import roc_auc_score

        import modelward

        size, name = self.size, self.name
        t = self.begin("data")
        gen = scenario.generator()
        before = scenario.before_change(gen, size.train, seed=0)
        train, test = before.iloc[: size.train * 3 // 4], before.iloc[size.train * 3 // 4 :]
        clean = scenario.before_change(gen, size.clean, seed=1)
        drifted = scenario.after_change(gen, size.drifted, seed=2)
        fresh = scenario.after_change(gen, size.fresh, seed=3)
        holdout = scenario.after_change(gen, size.holdout, seed=4)
        data = self.folder / "data"
        train.to_parquet(data / "train-v1.parquet", index=False)
        holdout.to_parquet(data / "holdout.parquet", index=False)
        fresh.to_parquet(data / "fresh.parquet", index=False)  # what the retraining command adds
        rows = sum(len(f) for f in (before, clean, drifted, fresh, holdout))
        self.finish(
            "data", t, f"{rows:,} customers, churn rate {before[scenario.TARGET].mean():.1%}", rows=rows
        )

        t = self.begin("v1")
        model = scenario.fit_model(train)
        auc = float(roc_auc_score(test[scenario.TARGET], model.predict_proba(test[scenario.FEATURES])[:, 1]))
        v1 = modelward.register(
            model,
            name,
            train_data=data / "train-v1.parquet",
            target=scenario.TARGET,
            metrics={"test_auc": auc},
            params={"model": "logistic_regression"},
            description="churn logistic regression (quickstart)",
            settings=self.cfg,
        ).version
        modelward.promote(name, v1, reason="quickstart: first model", settings=self.cfg)
        self.summary.versions["v1"] = str(v1)
        self.finish(
            "v1", t, f"{name}:{v1} champion, test AUC {auc:.3f}", version=str(v1), test_auc=round(auc, 4)
        )

        t = self.begin("policy")
        outputs.set_policy(
            self.cfg,
            self.name,
            data / "holdout.parquet",
            self.folder,
            auc_floor=AUC_FLOOR,
            steps=CANARY_STEPS,
            step_seconds=size.step_seconds,
            min_requests=20,
            min_labels=min(100, size.clean // 2),
        )
        self.finish(
            "policy",
            t,
            f"retrain on drift or live AUC < {AUC_FLOOR}; gates: holdout AUC >= {AUC_FLOOR}, no "
            "regression; new versions canaried",
            auc_min=AUC_FLOOR,
            rollout="canary " + " -> ".join(f"{s:g}%" for s in CANARY_STEPS),
        )

        t = self.begin("serve")
        env = server_env(self.folder, floor=AUC_FLOOR, min_labels=min(100, size.clean // 2))
        self.server = start_server(
            name, host=self.opt.host, port=port, folder=self.folder, env=env, keep=self.opt.keep_serving
        )
        self.client = client = TrafficClient(self.server.url, name)
        self.summary.urls = {"api": self.server.url, "docs": self.server.url + "/docs"}
        if client.http.get("/ui").status_code == 200:  # the dashboard, where this version has one
            self.summary.urls["ui"] = self.server.url + "/ui"
        self.finish(
            "serve",
            t,
            f"{self.server.url} (pid {self.server.proc.pid})",
            url=self.server.url,
            pid=self.server.proc.pid,
        )

        t = self.begin("traffic")
        sent = client.predict(scenario.records(clean))
        self.finish(
            "traffic",
            t,
            f"{len(sent.request_ids):,} requests answered by v{v1}",
            requests=len(sent.request_ids),
        )

        t = self.begin("labels")
        y = clean[scenario.TARGET].to_numpy()
        client.label(sent.request_ids, y.tolist())
        live = float(roc_auc_score(y, np.asarray(sent.scores)))
        self.finish(
            "labels", t, f"{len(y):,} labels, live AUC {live:.3f}", labels=len(y), live_auc=round(live, 4)
        )

        t = self.begin("drift")
        drift_since = time.time()
        shifted = client.predict(scenario.records(drifted))
        y = drifted[scenario.TARGET].to_numpy()
        client.label(shifted.request_ids, y.tolist())
        wrong = float(roc_auc_score(y, np.asarray(shifted.scores)))
        self.finish(
            "drift",
            t,
            f"{len(y):,} shifted customers with labels, AUC of v{v1} on them {wrong:.3f}",
            requests=len(y),
            auc_on_drifted=round(wrong, 4),
        )

        for key, rule in (("drift_detected", "quickstart-drift"), ("performance_drop", "quickstart-auc")):
            t = self.begin(key)
            alert = self.await_alert(rule)
            value = alert.get("value")
            self.finish(key, t, str(alert["message"]), rule=rule, value=value, subject=alert.get("subject"))

        # The server's controller starts the retraining run on its own (the policy's `retrain:`
        # triggers), and its command registers v2.
        t = self.begin("retrain")
        run = steps.await_retrain(self.cfg, name, timeout=DETECT_TIMEOUT + 120)
        if run.status != "succeeded":
            raise ModelwardError(
                f"the retraining run {run.id} of {name} {run.status} (exit {run.exit_code}): "
                f"{(run.output or '').strip()[-500:]}"
            )
        job = json.loads((run.output or "").strip().splitlines()[-1])
        v2 = str(job["version"])
        self.summary.versions["v2"] = v2
        if run.detail.get("export"):
            self.summary.paths["export"] = str(run.detail["export"])
        self.finish(
            "retrain",
            t,
            f"triggered by {run.trigger}: {name}:{v2} from {job['exported_rows']:,} exported + "
            f"{len(fresh):,} fresh rows, test AUC {job['test_auc']:.3f}",
            version=v2,
            run=run.id,
            trigger=run.trigger,
            reason=run.reason,
            exported_rows=job["exported_rows"],
            train_rows=job["train_rows"],
            test_auc=job["test_auc"],
            run_seconds=round(run.duration or 0.0, 2),
        )

        # The server's controller takes v2 up on its own (the policy's `rollout: canary`): the gates,
        # then the canary.
        t = self.begin("gates")
        rollout = steps.await_rollout_gates(self.cfg, name, v2, timeout=DETECT_TIMEOUT)
        gates = {g["name"]: g["verdict"] for g in rollout.detail.get("validation", {}).get("gates", [])}
        if rollout.status != "canary":
            raise ModelwardError(f"the controller did not canary {name}:{v2}: {rollout.reason}")
        shown = ", ".join(f"{gate} {verdict}" for gate, verdict in gates.items())
        self.finish("gates", t, f"{name}:{v2} passed: {shown}", passed=True, gates=gates)

        t = self.begin("canary")

        def drive() -> None:
            batch = scenario.after_change(
                gen, size.canary_batch, seed=100 + int(time.time() * 1000) % 100_000
            )
            answered = client.predict(scenario.records(batch))
            client.label(answered.request_ids, batch[scenario.TARGET].tolist())

        def on_step(percent: float) -> None:
            self.report.update("canary", f"{percent:g}% of traffic on v{v2}")

        watch = steps.await_promotion(
            self.cfg, name, v2, drive=drive, on_step=on_step, timeout=120 + 10 * size.step_seconds
        )
        if watch.state != "promoted":
            raise ModelwardError(f"the canary of {name}:{v2} was rolled back: {watch.reason}")
        self.finish("canary", t, "steps " + " -> ".join(f"{s:g}%" for s in watch.steps), steps=watch.steps)
        t = self.begin("promoted")
        served = wait_for(
            lambda: client.predict(scenario.records(holdout.head(20))).versions,
            lambda v: set(v) == {v2},
            timeout=30,
            what=f"the server answering with v{v2}",
        )
        self.finish(
            "promoted",
            t,
            f"{name}:{v2} is champion and answers every request",
            version=v2,
            reason=watch.reason,
            served=dict(served),
        )

        t = self.begin("reports")
        self.summary.paths.update(
            outputs.write_reports(self.cfg, name, str(v1), v2, time.time() - drift_since + 5, self.folder)
        )
        names = ", ".join(Path(self.summary.paths[k]).name for k in ("drift_report", "model_card"))
        self.finish("reports", t, f"{names} in {self.folder}")

        t = self.begin("audit")
        events = outputs.verify_audit(self.cfg)
        self.finish("audit", t, f"{events} events, chain and pins OK", events=events, ok=True)

    def await_alert(self, rule: str) -> dict[str, Any]:
        """The server's alert of ``rule`` once it fires (its monitor judges the window every second)."""
        client = self.client
        if client is None:
            raise ModelwardError("the quickstart's server is not running")
        found = wait_for(lambda: client.firing(rule), bool, timeout=DETECT_TIMEOUT, what=f"the alert {rule}")
        return found or {}


def run(settings: Settings, options: Options, reporter: Reporter) -> Summary:
    """Run the quickstart; raises a :class:`~modelward.errors.ModelwardError` naming the step that failed."""
    return _Run(settings, options, reporter).run()
