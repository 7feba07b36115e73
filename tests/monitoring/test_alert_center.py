"""The alert center on a real store (SQLite and PostgreSQL): one notification when a condition starts,
silence while it lasts until the cool-down, one resolve after it has been clear long enough,
replicas that agree, one-shot events and the history."""

from __future__ import annotations

import threading

import pytest

from modelward.errors import ConfigError
from modelward.monitoring.alert_rules import Signal
from modelward.monitoring.alerts import AlertCenter
from modelward.monitoring.notifiers import Delivery, Notification
from modelward.store import Store


class Recorder:
    """A notifier that keeps what it is sent (thread-safe: replicas share it in some tests)."""

    def __init__(self, name: str = "recorder") -> None:
        self._name = name
        self.sent: list[Notification] = []
        self._lock = threading.Lock()

    @property
    def name(self) -> str:
        return self._name

    def send(self, notification: Notification) -> Delivery:
        with self._lock:
            self.sent.append(notification)
        return Delivery(self.name, True, "kept")

    def kinds(self) -> list[str]:
        return [n.kind for n in self.sent]


class Raising:
    name = "raising"

    def send(self, notification: Notification) -> Delivery:
        raise RuntimeError("receiver exploded")


def _signal(firing: bool | None, value: float = 0.6, rule: str = "dataset_drift") -> Signal:
    message = "churn:1: dataset drift" if firing else "churn:1: no dataset drift"
    return Signal(rule, "churn", "dataset", "warning", firing, value, message)


def test_a_condition_notifies_once_while_it_keeps_firing(store: Store) -> None:
    rec = Recorder()
    center = AlertCenter(store, [rec], cooldown=3600, resolve_after=300)
    sent = [center.apply([_signal(True)], now=1000 + 60 * i) for i in range(10)]
    assert [len(s) for s in sent] == [1] + [0] * 9
    assert rec.kinds() == ["fire"]
    (alert,) = center.active()
    assert alert.state == "firing" and alert.first_fired_at == 1000 and alert.last_fired_at == 1540
    assert alert.last_notified_at == 1000
    assert [e.kind for e in center.history()] == ["notify", "fire"]  # no row per evaluation


def test_the_cool_down_re_notifies_after_the_period(store: Store) -> None:
    rec = Recorder()
    center = AlertCenter(store, [rec], cooldown=3600)
    center.apply([_signal(True)], now=0)
    center.apply([_signal(True)], now=3599)
    assert rec.kinds() == ["fire"]
    (repeat,) = center.apply([_signal(True, value=0.7)], now=3600)
    assert repeat.kind == "repeat" and repeat.notification.first_fired_at == 0
    center.apply([_signal(True)], now=7000)
    center.apply([_signal(True)], now=7200)
    assert rec.kinds() == ["fire", "repeat", "repeat"]
    assert "STILL FIRING" in rec.sent[1].title


def test_resolve_is_damped_and_sent_once(store: Store) -> None:
    rec = Recorder()
    center = AlertCenter(store, [rec], resolve_after=300)
    center.apply([_signal(True)], now=0)
    assert center.apply([_signal(False)], now=60) == []  # first clear evaluation: clearing
    (clearing,) = center.active()
    assert clearing.clear_since == 60
    center.apply([_signal(True)], now=120)  # flaps back: the quiet time starts over
    assert center.active()[0].clear_since is None
    center.apply([_signal(False)], now=180)
    assert center.apply([_signal(False)], now=400) == []  # 220 s clear: not yet
    center.apply([_signal(None)], now=420)  # cannot tell: changes nothing
    (resolved,) = center.apply([_signal(False)], now=480)
    assert resolved.kind == "resolve" and resolved.notification.resolved
    assert center.active() == []
    for t in range(540, 900, 60):
        assert center.apply([_signal(False)], now=t) == []
    assert rec.kinds() == ["fire", "resolve"]
    assert "RESOLVED" in rec.sent[-1].title
    record = center.get("dataset_drift", "churn", "dataset")
    assert record is not None and record.state == "resolved" and record.resolved_at == 480
    # It fires again later: a new alert, notified again.
    center.apply([_signal(True)], now=1000)
    assert rec.kinds() == ["fire", "resolve", "fire"]


def test_resolve_after_zero_resolves_on_the_first_clear_evaluation(store: Store) -> None:
    rec = Recorder()
    center = AlertCenter(store, [rec], resolve_after=0)
    center.apply([_signal(True)], now=0)
    center.apply([_signal(False)], now=10)
    assert rec.kinds() == ["fire", "resolve"]


def test_signals_that_cannot_tell_never_create_or_resolve_alerts(store: Store) -> None:
    rec = Recorder()
    center = AlertCenter(store, [rec], resolve_after=0)
    assert center.apply([_signal(None)], now=0) == []
    assert center.get("dataset_drift", "churn", "dataset") is None
    center.apply([_signal(True)], now=1)
    center.apply([_signal(None)], now=2)
    assert len(center.active()) == 1


def test_two_replicas_on_one_store_send_one_notification(store_url: str) -> None:
    stores = [Store(store_url).open() for _ in range(2)]
    try:
        stores[0].migrate()
        rec = Recorder()
        centers = [AlertCenter(s, [rec], cooldown=3600, resolve_after=60) for s in stores]
        barrier = threading.Barrier(2)

        def evaluate(center: AlertCenter, firing: bool, now: float) -> None:
            barrier.wait()
            center.apply([_signal(firing)], now=now)

        for firing, now in [(True, 0.0), (True, 30.0), (False, 60.0), (False, 130.0), (False, 200.0)]:
            threads = [threading.Thread(target=evaluate, args=(c, firing, now)) for c in centers]
            for t in threads:
                t.start()
            for t in threads:
                t.join(30)
        assert rec.kinds() == ["fire", "resolve"]
        history = centers[1].history()
        assert sorted(e.kind for e in history) == ["fire", "notify", "notify", "resolve"]
    finally:
        for s in stores:
            s.close()


def test_a_one_shot_event_is_sent_once_and_kept_in_history(store: Store) -> None:
    rec = Recorder()
    center = AlertCenter(store, [rec], cooldown=3600)
    message = "canary churn:3 rolled back at 10%: error rate 12% > 5%"
    sent = center.event("canary_rollback", "churn", "churn:3", message, value=0.12, now=100)
    assert sent is not None and sent.kind == "event" and sent.delivered
    assert center.event("canary_rollback", "churn", "churn:3", message, now=150) is None  # a retry
    assert rec.kinds() == ["event"]
    assert rec.sent[0].severity == "critical" and rec.sent[0].value == 0.12
    assert center.active() == []  # a one-shot is not an ongoing condition
    kinds = [(e.kind, e.rule, e.model) for e in center.history(model="churn")]
    assert kinds == [("notify", "canary_rollback", "churn"), ("fire", "canary_rollback", "churn")]
    other = center.event("canary_rollback", "churn", "churn:3", "rolled back again: latency", now=200)
    assert other is not None and len(rec.sent) == 2


def test_failed_deliveries_never_reach_the_caller_and_are_recorded(store: Store) -> None:
    rec = Recorder()
    center = AlertCenter(store, [Raising(), rec])
    (t,) = center.apply([_signal(True)], now=0)
    assert t.delivered  # one of the two notifiers got it
    notify = {e.notifier: e for e in center.history() if e.kind == "notify"}
    assert notify["raising"].delivered is False
    assert "RuntimeError: receiver exploded" in (notify["raising"].detail or "")
    assert notify["recorder"].delivered is True


def test_history_filters_by_model_and_limits(store: Store) -> None:
    center = AlertCenter(store, [Recorder()], resolve_after=0)
    center.apply([_signal(True)], now=0)
    center.apply([Signal("latency", "other", "latency_p95", "warning", True, 900.0, "other: slow")], now=1)
    center.apply([_signal(False)], now=2)
    assert {e.model for e in center.history()} == {"churn", "other"}
    assert [e.kind for e in center.history(model="churn")] == ["notify", "resolve", "notify", "fire"]
    assert len(center.history(limit=2)) == 2
    assert [a.model for a in center.active()] == ["other"]
    assert center.active(model="churn") == []
    assert center.history(kinds=["resolve"])[0].ts == 2
    with pytest.raises(ConfigError):
        center.history(limit=0)
    assert center.active()[0].to_dict()["state"] == "firing"


def _versioned(version: str, firing: bool | None, rule: str = "feature_drift") -> Signal:
    text = "feature 'age' drifted" if firing else "feature 'age' does not drift"
    return Signal(rule, "churn", "feature:age", "warning", firing, 0.3, f"churn:{version}: {text}", version)


def test_another_version_is_another_incident_and_supersedes_the_old_one(store: Store) -> None:
    rec = Recorder()
    center = AlertCenter(store, [rec], resolve_after=0)
    center.apply([_versioned("1", True)], now=0, supersede=True)
    assert center.get("feature_drift", "churn", "feature:age", "1") is not None
    assert center.get("feature_drift", "churn", "feature:age") is None  # the version is in the identity
    # Without ``supersede`` the signals are not the whole judgment: version 1's alert stays.
    center.apply([_versioned("2", None)], now=10)
    assert rec.kinds() == ["fire"] and len(center.active()) == 1
    # Version 2 judged, even one that cannot tell yet: version 1's alert is closed, not resolved.
    (closed,) = center.apply([_versioned("2", None)], now=20, supersede=True)
    assert closed.kind == "supersede" and closed.notification.resolved
    assert closed.notification.message == "superseded by churn:2; was: churn:1: feature 'age' drifted"
    assert closed.notification.first_fired_at == 0
    assert center.active() == []
    old = center.get("feature_drift", "churn", "feature:age", "1")
    assert old is not None and old.state == "superseded" and old.resolved_at == 20
    (fired,) = center.apply([_versioned("2", True)], now=30, supersede=True)
    assert fired.kind == "fire" and fired.notification.version == "2"
    # Judged again (a rollback) and still drifting: a new incident of version 1, and version 2's closes.
    again = center.apply([_versioned("1", True)], now=40, supersede=True)
    assert sorted(t.kind for t in again) == ["fire", "supersede"]
    assert rec.kinds() == ["fire", "supersede", "fire", "supersede", "fire"]
    assert [e.kind for e in center.history(kinds=["supersede"])] == ["supersede", "supersede"]
