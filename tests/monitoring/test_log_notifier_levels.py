"""The log notifier's levels: an alert that fires is a WARNING (critical: ERROR); one that closes
(resolved, or superseded by a newer version's) is good news, logged at INFO."""

from __future__ import annotations

import logging

import pytest

from modelward.monitoring.notifiers import LogNotifier, Notification


def note(kind: str, severity: str = "warning") -> Notification:
    return Notification(kind, "latency", "churn", "latency_p95", severity, "churn:1: p95 900 ms", 1000.0)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("kind", "severity", "level"),
    [
        ("fire", "warning", logging.WARNING),
        ("repeat", "warning", logging.WARNING),
        ("fire", "critical", logging.ERROR),
        ("event", "critical", logging.ERROR),
        ("resolve", "warning", logging.INFO),
        ("resolve", "critical", logging.INFO),
        ("supersede", "critical", logging.INFO),
    ],
)
def test_closing_an_alert_is_logged_at_info(
    kind: str, severity: str, level: int, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.DEBUG, logger="modelward.alerts"):
        assert LogNotifier().send(note(kind, severity)).delivered
    (record,) = caplog.records
    assert record.levelno == level, record.getMessage()
