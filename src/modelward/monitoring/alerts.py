"""The alert center: signals in, alert state in the store, notifications out, history kept.

Each alert is one row of ``modelward_alerts`` (its fingerprint is the rule, model, subject and the
version the signal is about: a new version under an active alert is a new incident), and
every change and every notification attempt is a row of ``modelward_alert_events``. The state lives
in the store, not in the process, so several replicas evaluating the same rules agree:
:meth:`AlertCenter.apply` reads and updates the rows in one write transaction under the
``modelward.alerts`` lock (an advisory lock on PostgreSQL; SQLite writers are serialised already),
and *claims* a notification there (``last_notified_at``) before sending it after the commit. The
replica that commits first sends; the others find the claim and stay silent.

The life of an alert:

* **fire**: a signal starts firing (no row, or a resolved one): one notification.
* **repeat**: while it keeps firing nothing is sent, until ``cooldown`` seconds (default one hour)
  have passed since the last notification; then one "still firing" notification, and the cool-down
  starts again.
* **resolve**: flapping is damped by time: the first clear evaluation only marks the alert as
  clearing (``resolved_at`` holds the clear-since time while ``state`` is still ``firing``); it
  resolves, with one RESOLVED notification, on a later clear evaluation at least ``resolve_after``
  seconds (default 300) after the first, with no firing evaluation in between (one resets the
  clock). So a resolve always needs two clear evaluations in a row and the quiet time; time rather
  than a count of evaluations, because with several replicas a count would depend on how many of
  them evaluate. ``resolve_after=0`` resolves on the first clear evaluation. A signal that cannot
  tell (too few labels, no traffic) changes nothing.
* **supersede**: with ``apply(..., supersede=True)`` the signals are the whole judgment of their
  rule, model and subject (the monitor judges the champion, and for traffic rules each version that
  answered clients); a firing alert of the same rule, model and subject for a version no signal
  speaks about is closed (state ``superseded``) with one SUPERSEDED notification naming the
  versions now judged. A cannot-tell signal counts as judging its version: after a promotion the
  old version's alert closes even while the new one has too few labels to tell. The old version's
  condition is not known to have cleared, so this is not a resolve; should it be judged again (a
  rollback), a firing condition opens a new incident.
* **event**: :meth:`AlertCenter.event` records and sends a one-shot alert (a canary rolled back);
  the row is resolved at once, so it shows in the history but not among the active alerts. The
  same event (fingerprint and message) again within the cool-down is not sent twice.

Delivery is at most once per claim: a failed delivery is logged and kept in the history as an
undelivered ``notify`` event with the reason; the next attempt for a still-firing alert is the
cool-down's repeat. Notifier errors never reach the caller.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any, Literal

from sqlalchemy import Connection, insert, select, update

from modelward.errors import ConfigError, StoreError
from modelward.monitoring.alert_records import AlertEvent, AlertRecord, Transition, alert_record
from modelward.monitoring.alert_rules import AlertInputs, AlertRule, RuleSet, Severity, Signal, fingerprint
from modelward.monitoring.notifiers import Delivery, Notification, NotificationKind, Notifier
from modelward.store.store import Store
from modelward.store.tables import alert_events, alerts

__all__ = ["AlertCenter", "AlertEvent", "AlertRecord", "Transition"]

log = logging.getLogger("modelward.alerts")

LOCK = "modelward.alerts"
DEFAULT_COOLDOWN = 3600.0
DEFAULT_RESOLVE_AFTER = 300.0


def _judged(signals: list[Signal]) -> dict[tuple[str, str | None, str], tuple[set[str], list[str]]]:
    """Per rule, model and subject: the fingerprints and versions the signals judged (signals
    without a version are about no version, and supersede nothing)."""
    out: dict[tuple[str, str | None, str], tuple[set[str], list[str]]] = {}
    for s in signals:
        if s.version is not None:
            fingerprints, versions = out.setdefault((s.rule, s.model, s.subject), (set(), []))
            fingerprints.add(s.fingerprint)
            if s.version not in versions:
                versions.append(s.version)
    return out


class AlertCenter:
    """Alert state, de-duplication, cool-down, resolves and history (see the module docstring).

    ``AlertCenter(store, notifiers)`` only stores its arguments; the store must be open and migrated.
    ``clock`` gives the time when a call does not pass ``now`` (tests drive it).
    """

    def __init__(
        self,
        store: Store,
        notifiers: Sequence[Notifier],
        *,
        cooldown: float = DEFAULT_COOLDOWN,
        resolve_after: float = DEFAULT_RESOLVE_AFTER,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if cooldown < 0 or resolve_after < 0:
            raise ConfigError("cooldown and resolve_after must be >= 0 seconds")
        self.store = store
        self.notifiers = tuple(notifiers)
        self.cooldown = float(cooldown)
        self.resolve_after = float(resolve_after)
        self.clock = clock

    # -- evaluating ------------------------------------------------------------------------------

    def evaluate(
        self, rules: RuleSet | Sequence[AlertRule], inputs: AlertInputs, *, now: float | None = None
    ) -> list[Transition]:
        """Evaluate ``rules`` on one model's ``inputs`` and :meth:`apply` the signals."""
        ruleset = rules if isinstance(rules, RuleSet) else RuleSet(tuple(rules))
        return self.apply(ruleset.evaluate(inputs), now=now)

    def apply(
        self, signals: Iterable[Signal], *, now: float | None = None, supersede: bool = False
    ) -> list[Transition]:
        """Update the alerts the signals speak about; send what changed; return what was sent.

        ``supersede``: the signals are everything their rules judged of their models (see the
        module docstring); firing alerts of other versions of the same rule, model and subject
        are closed as superseded."""
        moment = self.clock() if now is None else now
        signals = list(signals)
        pending = [s for s in signals if s.firing is not None]
        judged = _judged(signals) if supersede else {}
        if not pending and not judged:
            return []
        claimed: list[Notification] = []
        with self.store.write() as conn:
            self.store.lock(conn, LOCK)
            for key, (fingerprints, versions) in judged.items():
                claimed.extend(self._supersede(conn, key, fingerprints, versions, moment))
            for signal in pending:
                notification = self._step(conn, signal, moment)
                if notification is not None:
                    claimed.append(notification)
        return self._deliver_all(claimed)

    def _supersede(
        self,
        conn: Connection,
        key: tuple[str, str | None, str],
        fingerprints: set[str],
        versions: list[str],
        now: float,
    ) -> list[Notification]:
        rule, model, subject = key
        c = alerts.c
        query = select(alerts).where(
            c.rule == rule,
            c.model == model if model is not None else c.model.is_(None),
            c.subject == subject,
            c.state == "firing",
            c.fingerprint.not_in(fingerprints),
        )
        out = []
        for row in conn.execute(query.order_by(c.first_fired_at, c.fingerprint)).all():
            now_judged = ", ".join(f"{model}:{v}" if model else v for v in versions)
            message = f"superseded by {now_judged}; was: {row.message}"
            conn.execute(
                update(alerts)
                .where(c.fingerprint == row.fingerprint)
                .values(state="superseded", resolved_at=now, last_notified_at=now, message=message)
            )
            self._history(conn, row.fingerprint, "supersede", now, message)
            out.append(
                Notification(
                    "supersede",
                    rule,
                    model,
                    subject,
                    row.severity,
                    message,
                    now,
                    row.fingerprint,
                    row.value,
                    row.first_fired_at,
                )
            )
        return out

    def _step(self, conn: Connection, s: Signal, now: float) -> Notification | None:
        fp = s.fingerprint
        row = conn.execute(select(alerts).where(alerts.c.fingerprint == fp)).first()
        current = None if row is None else alert_record(row)
        if s.firing:
            if current is None or current.state != "firing":
                values = {
                    "rule": s.rule,
                    "model": s.model,
                    "subject": s.subject,
                    "severity": s.severity,
                    "state": "firing",
                    "message": s.message,
                    "value": s.value,
                    "first_fired_at": now,
                    "last_fired_at": now,
                    "resolved_at": None,
                    "last_notified_at": now,
                }
                if current is None:
                    conn.execute(insert(alerts).values(fingerprint=fp, **values))
                else:
                    conn.execute(update(alerts).where(alerts.c.fingerprint == fp).values(**values))
                self._history(conn, fp, "fire", now, s.message)
                return self._notification("fire", s, now, first_fired_at=now)
            due = current.last_notified_at is None or now - current.last_notified_at >= self.cooldown
            changes: dict[str, Any] = {
                "last_fired_at": now,
                "message": s.message,
                "value": s.value,
                "severity": s.severity,
                "resolved_at": None,
            }
            if due:
                changes["last_notified_at"] = now
            conn.execute(update(alerts).where(alerts.c.fingerprint == fp).values(**changes))
            if not due:
                return None
            self._history(conn, fp, "repeat", now, s.message)
            return self._notification("repeat", s, now, first_fired_at=current.first_fired_at)
        # The condition is clear.
        if current is None or current.state != "firing":
            return None
        if current.resolved_at is None and self.resolve_after > 0:
            # The first clear evaluation: start the quiet time.
            conn.execute(update(alerts).where(alerts.c.fingerprint == fp).values(resolved_at=now))
            return None
        if current.resolved_at is not None and now - current.resolved_at < self.resolve_after:
            return None
        conn.execute(
            update(alerts)
            .where(alerts.c.fingerprint == fp)
            .values(state="resolved", resolved_at=now, last_notified_at=now, message=s.message, value=s.value)
        )
        self._history(conn, fp, "resolve", now, s.message)
        return self._notification("resolve", s, now, first_fired_at=current.first_fired_at)

    @staticmethod
    def _notification(
        kind: NotificationKind, s: Signal, now: float, *, first_fired_at: float
    ) -> Notification:
        return Notification(
            kind,
            s.rule,
            s.model,
            s.subject,
            s.severity,
            s.message,
            now,
            s.fingerprint,
            s.value,
            first_fired_at,
            s.version,
        )

    @staticmethod
    def _history(conn: Connection, fp: str, kind: str, now: float, message: str) -> None:
        conn.execute(insert(alert_events).values(fingerprint=fp, kind=kind, ts=now, message=message))

    # -- one-shot events -------------------------------------------------------------------------

    def event(
        self,
        rule: str,
        model: str | None,
        subject: str,
        message: str,
        *,
        severity: Severity = "critical",
        value: float | None = None,
        now: float | None = None,
    ) -> Transition | None:
        """Record and send a one-shot alert (e.g. a canary rolled back); None when the same event was
        already sent within the cool-down (a retry, or another replica)."""
        moment = self.clock() if now is None else now
        fp = fingerprint(rule, model, subject)
        with self.store.write() as conn:
            self.store.lock(conn, LOCK)
            row = conn.execute(select(alerts).where(alerts.c.fingerprint == fp)).first()
            if (
                row is not None
                and row.message == message
                and row.last_notified_at is not None
                and moment - row.last_notified_at < self.cooldown
            ):
                return None
            values = {
                "rule": rule,
                "model": model,
                "subject": subject,
                "severity": severity,
                "state": "resolved",
                "message": message,
                "value": value,
                "first_fired_at": moment,
                "last_fired_at": moment,
                "resolved_at": moment,
                "last_notified_at": moment,
            }
            if row is None:
                conn.execute(insert(alerts).values(fingerprint=fp, **values))
            else:
                conn.execute(update(alerts).where(alerts.c.fingerprint == fp).values(**values))
            self._history(conn, fp, "fire", moment, message)
        notification = Notification(
            "event", rule, model, subject, severity, message, moment, fp, value, moment
        )
        return self._deliver_all([notification])[0]

    # -- delivering ------------------------------------------------------------------------------

    def _deliver_all(self, notifications: list[Notification]) -> list[Transition]:
        transitions = [
            Transition(n, tuple(self._send(notifier, n) for notifier in self.notifiers))
            for n in notifications
        ]
        rows = [
            {
                "fingerprint": t.notification.fingerprint,
                "kind": "notify",
                "ts": t.notification.ts,
                "message": t.notification.title,
                "notifier": d.notifier,
                "delivered": d.delivered,
                "detail": d.detail[:2000],
            }
            for t in transitions
            for d in t.deliveries
        ]
        if rows:
            try:
                with self.store.write() as conn:
                    conn.execute(insert(alert_events), rows)
            except StoreError as exc:
                log.warning(
                    "could not record %d notification attempt(s) in the alert history: %s", len(rows), exc
                )
        return transitions

    @staticmethod
    def _send(notifier: Notifier, n: Notification) -> Delivery:
        try:
            name = notifier.name
        except Exception:  # a broken notifier must not stop the others
            name = type(notifier).__name__
        try:
            delivery = notifier.send(n)
        except Exception as exc:  # the contract says send does not raise; do not trust it with the loop
            delivery = Delivery(name, False, f"{type(exc).__name__}: {exc}")
        if not delivery.delivered:
            log.warning(
                "alert notification %r via %s not delivered: %s", n.title, delivery.notifier, delivery.detail
            )
        return delivery

    # -- reading ---------------------------------------------------------------------------------

    def get(
        self, rule: str, model: str | None, subject: str, version: str | None = None
    ) -> AlertRecord | None:
        fp = fingerprint(rule, model, subject, version)
        with self.store.read() as conn:
            row = conn.execute(select(alerts).where(alerts.c.fingerprint == fp)).first()
        return None if row is None else alert_record(row)

    def active(self, model: str | None = None) -> list[AlertRecord]:
        """Alerts firing now (clearing ones included), the earliest first."""
        query = select(alerts).where(alerts.c.state == "firing")
        if model is not None:
            query = query.where(alerts.c.model == model)
        with self.store.read() as conn:
            rows = conn.execute(query.order_by(alerts.c.first_fired_at, alerts.c.fingerprint)).all()
        return [alert_record(r) for r in rows]

    def history(
        self,
        limit: int = 100,
        model: str | None = None,
        *,
        kinds: Sequence[Literal["fire", "repeat", "resolve", "supersede", "notify"]] = (),
    ) -> list[AlertEvent]:
        """The newest ``limit`` history rows (optionally of one model, or of some kinds), newest first."""
        if limit < 1:
            raise ConfigError("limit must be at least 1")
        query = select(
            alert_events, alerts.c.rule, alerts.c.model, alerts.c.subject, alerts.c.severity
        ).select_from(alert_events.outerjoin(alerts, alerts.c.fingerprint == alert_events.c.fingerprint))
        if model is not None:
            query = query.where(alerts.c.model == model)
        if kinds:
            query = query.where(alert_events.c.kind.in_(list(kinds)))
        with self.store.read() as conn:
            rows = conn.execute(query.order_by(alert_events.c.id.desc()).limit(limit)).all()
        return [
            AlertEvent(
                int(r.id),
                r.fingerprint,
                r.kind,
                r.ts,
                r.message,
                r.notifier,
                None if r.delivered is None else bool(r.delivered),
                r.detail,
                r.rule,
                r.model,
                r.subject,
                r.severity,
            )
            for r in rows
        ]
