"""The records of the alert center (:mod:`modelward.monitoring.alerts`): an alert's state, a row of
its history, and a notified change with its deliveries."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from modelward.monitoring.notifiers import Delivery, Notification, NotificationKind

__all__ = ["AlertEvent", "AlertRecord", "Transition", "alert_record"]


@dataclass(frozen=True, slots=True)
class AlertRecord:
    """The current state of one alert."""

    fingerprint: str
    rule: str
    model: str | None
    subject: str
    severity: str
    state: str
    message: str
    value: float | None
    first_fired_at: float
    last_fired_at: float
    resolved_at: float | None
    last_notified_at: float | None

    @property
    def clear_since(self) -> float | None:
        """While firing: since when the condition has been clear (a resolve is pending), or None."""
        return self.resolved_at if self.state == "firing" else None

    def to_dict(self) -> dict[str, Any]:
        return {
            "fingerprint": self.fingerprint,
            "rule": self.rule,
            "model": self.model,
            "subject": self.subject,
            "severity": self.severity,
            "state": self.state,
            "message": self.message,
            "value": self.value,
            "first_fired_at": self.first_fired_at,
            "last_fired_at": self.last_fired_at,
            "resolved_at": None if self.state == "firing" else self.resolved_at,
            "clear_since": self.clear_since,
            "last_notified_at": self.last_notified_at,
        }


@dataclass(frozen=True, slots=True)
class AlertEvent:
    """One row of the history: a fire, repeat or resolve, or one notification attempt."""

    id: int
    fingerprint: str
    kind: str
    ts: float
    message: str
    notifier: str | None
    delivered: bool | None
    detail: str | None
    rule: str | None
    model: str | None
    subject: str | None
    severity: str | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "fingerprint": self.fingerprint,
            "kind": self.kind,
            "ts": self.ts,
            "rule": self.rule,
            "model": self.model,
            "subject": self.subject,
            "severity": self.severity,
            "message": self.message,
            "notifier": self.notifier,
            "delivered": self.delivered,
            "detail": self.detail,
        }


@dataclass(frozen=True, slots=True)
class Transition:
    """A change this evaluation made that was notified (fire, repeat, resolve, event), with the
    outcome at each notifier."""

    notification: Notification
    deliveries: tuple[Delivery, ...]

    @property
    def kind(self) -> NotificationKind:
        return self.notification.kind

    @property
    def delivered(self) -> bool:
        return any(d.delivered for d in self.deliveries)


def alert_record(row: Any) -> AlertRecord:
    """An :class:`AlertRecord` from a row of ``modelward_alerts``."""
    return AlertRecord(
        row.fingerprint,
        row.rule,
        row.model,
        row.subject,
        row.severity,
        row.state,
        row.message,
        row.value,
        row.first_fired_at,
        row.last_fired_at,
        row.resolved_at,
        row.last_notified_at,
    )
