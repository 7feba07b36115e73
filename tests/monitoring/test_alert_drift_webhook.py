"""Drift injected into live traffic reaches a real webhook receiver as ONE alert, however many
requests and evaluations follow, and ONE resolve message once the traffic is normal again.

Live profiles are written to the store by a LiveProfiler (two writers, as two workers would), read
back as live drift reports, and evaluated after every request through the alert center."""

from __future__ import annotations

import numpy as np
import pandas as pd
from tests.control.webhook_receiver import running_receiver

from modelward.drift import build_profile
from modelward.monitoring.alert_rules import AlertInputs, DatasetDriftRule, RuleSet
from modelward.monitoring.alerts import AlertCenter
from modelward.monitoring.live_drift import live_report
from modelward.monitoring.live_profiles import LiveProfiler
from modelward.monitoring.notifiers import WebhookNotifier
from modelward.store import Store

FEATURES = ("tenure", "balance", "salary")


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def _rows(rng: np.random.Generator, n: int, shift: float) -> dict[str, np.ndarray]:
    return {name: rng.normal(shift, 1.0, n) for name in FEATURES}


def test_injected_drift_sends_one_alert_and_one_resolve(store: Store) -> None:
    rng = np.random.default_rng(7)
    reference = build_profile(pd.DataFrame(_rows(rng, 5_000, 0.0)))
    clock = Clock(1_800_000_000.0)
    writers = [LiveProfiler(store, writer=f"host:{i}", clock=clock, bucket_seconds=60) for i in (1, 2)]
    rules = RuleSet((DatasetDriftRule(),))
    with running_receiver() as receiver:
        hook = WebhookNotifier(receiver.url, allowed_hosts=["127.0.0.1"])
        center = AlertCenter(store, [hook], cooldown=3600, resolve_after=120, clock=clock)
        evaluations = 0
        timeline: list[tuple[float, int]] = []

        def serve(minutes: int, shift: float) -> None:
            nonlocal evaluations
            for _ in range(minutes):
                for request in range(4):  # four requests of 50 rows a minute, evaluated after each
                    clock.now += 15
                    writers[request % 2].observe("churn", "1", None, reference, _rows(rng, 50, shift))
                    for w in writers:
                        w.flush()
                    live = live_report(store, "churn", "1", 300, reference=reference, now=clock.now)
                    center.evaluate(rules, AlertInputs("churn", "1", drift=live.report))
                    evaluations += 1
                    timeline.append((clock.now, len(receiver.posts)))

        serve(10, 0.0)
        assert receiver.posts == []
        start_drift = clock.now
        serve(10, 1.0)  # one standard deviation on every feature
        (alert,) = receiver.texts()
        assert alert.startswith("[FIRING] warning: dataset_drift on churn: churn:1: dataset drift: 3 of 3")
        first_alert = next(t for t, n in timeline if n > 0)
        assert first_alert - start_drift <= 180  # noticed within a few minutes of a 5-minute window
        stop_drift = clock.now
        serve(15, 0.0)
        alert_again, resolve = receiver.texts()
        assert alert_again == alert
        assert resolve.startswith("[RESOLVED] warning: dataset_drift on churn: churn:1: no dataset drift")
        resolved_at = next(t for t, n in timeline if n == 2)
        assert resolved_at - stop_drift >= 120  # the resolve waited for the quiet time
        assert evaluations == 140
        assert center.active() == []
        sent = [e for e in center.history(limit=100) if e.kind == "notify"]
        assert len(sent) == 2 and all(e.delivered for e in sent)
        assert receiver.posts[0]["attachments"][0]["color"] != receiver.posts[-1]["attachments"][0]["color"]
