"""One contract, every notifier: a safe name, a Delivery from send, the message delivered, resolves
that say so, and failures answered rather than raised."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace

import pytest
from tests.control.webhook_receiver import Receiver, running_receiver

from modelward.monitoring.notifiers import (
    LogNotifier,
    Notification,
    Notifier,
    WebhookNotifier,
    slack_payload,
)

FIRE = Notification(
    "fire", "dataset_drift", "churn", "dataset", "warning", "churn:1: dataset drift: 5 of 9 features", 1.7e9,
    fingerprint="f" * 64, value=0.55, first_fired_at=1.7e9,
)  # fmt: skip
RESOLVE = Notification(
    "resolve", "dataset_drift", "churn", "dataset", "warning", "churn:1: no dataset drift", 1.7e9 + 600,
    fingerprint="f" * 64, value=0.1, first_fired_at=1.7e9,
)  # fmt: skip


@dataclass
class Subject:
    """A notifier, what it delivered so far (as text), and a broken twin (None: cannot break)."""

    notifier: Notifier
    received: Callable[[], list[str]]
    broken: Notifier | None
    secret: str = ""


class _Keep(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


def _refuse(record: logging.LogRecord) -> bool:
    raise RuntimeError("the log pipeline is down")


@pytest.fixture(params=["log", "webhook"])
def subject(request: pytest.FixtureRequest) -> Iterator[Subject]:
    if request.param == "log":
        keep = _Keep()
        logger = logging.getLogger("modelward.alerts.contract")
        broken_logger = logging.getLogger("modelward.alerts.contract.broken")
        logger.addHandler(keep)
        logger.setLevel(logging.DEBUG)  # resolves are INFO; the test's root logger passes WARNING up only
        broken_logger.addFilter(_refuse)
        try:
            yield Subject(
                LogNotifier("modelward.alerts.contract"),
                lambda: keep.lines,
                LogNotifier("modelward.alerts.contract.broken", name="broken-log"),
            )
        finally:
            logger.removeHandler(keep)
            logger.setLevel(logging.NOTSET)
            broken_logger.removeFilter(_refuse)
        return
    with running_receiver() as receiver:
        secret = "/services/T000/B000/SECRETTOKEN"
        receiver.redirect(secret, "/hook", status=307)  # a secret path that forwards to the hook
        url = f"http://127.0.0.1:{receiver.port}{secret}"
        yield Subject(
            WebhookNotifier(url, allowed_hosts=["127.0.0.1"]),
            receiver.texts,
            WebhookNotifier(f"http://127.0.0.1:{receiver.port}/fail", allowed_hosts=["127.0.0.1"]),
            secret="SECRETTOKEN",
        )


def test_notifiers_satisfy_the_protocol(subject: Subject) -> None:
    assert isinstance(subject.notifier, Notifier)


def test_a_notifier_has_a_stable_name_without_secrets(subject: Subject) -> None:
    name = subject.notifier.name
    assert name and name == subject.notifier.name
    if subject.secret:
        assert subject.secret not in name and subject.secret not in repr(subject.notifier)


def test_send_delivers_the_message(subject: Subject) -> None:
    delivery = subject.notifier.send(FIRE)
    assert delivery.delivered, delivery.detail
    assert delivery.notifier == subject.notifier.name
    (line,) = subject.received()
    assert "FIRING" in line and "dataset drift: 5 of 9 features" in line and "churn" in line


def test_a_resolve_says_resolved(subject: Subject) -> None:
    assert subject.notifier.send(RESOLVE).delivered
    (line,) = subject.received()
    assert "RESOLVED" in line and "no dataset drift" in line


def test_a_failing_destination_is_answered_not_raised(subject: Subject) -> None:
    assert subject.broken is not None
    delivery = subject.broken.send(FIRE)
    assert delivery.delivered is False
    assert delivery.detail
    assert delivery.notifier == subject.broken.name


def test_the_webhook_payload_renders_in_slack_and_mattermost() -> None:
    fire, resolve = slack_payload(FIRE), slack_payload(RESOLVE)
    assert fire["text"].startswith("[FIRING] warning: dataset_drift on churn: ")
    assert fire["blocks"][0]["type"] == "section" and "*[FIRING]" in fire["blocks"][0]["text"]["text"]
    (attachment,) = fire["attachments"]
    assert attachment["color"] == "#f9a825" and attachment["fallback"] == fire["text"]
    assert {f["title"] for f in attachment["fields"]} == {"Model", "Subject", "Severity", "Value"}
    assert resolve["text"].startswith("[RESOLVED]")
    assert resolve["attachments"][0]["color"] == "#2e7d32"
    assert "Firing since" in {f["title"] for f in resolve["attachments"][0]["fields"]}
    assert resolve["modelward"]["resolved"] is True and resolve["modelward"]["fingerprint"] == "f" * 64


def test_a_superseded_alert_closes_its_incident_and_names_the_version() -> None:
    fire = slack_payload(replace(FIRE, version="1"))
    assert ("Version", "1") in {(f["title"], f["value"]) for f in fire["attachments"][0]["fields"]}
    assert fire["modelward"]["version"] == "1"
    superseded = replace(
        RESOLVE, kind="supersede", message="superseded by churn:2; was: churn:1: dataset drift"
    )
    payload = slack_payload(superseded)
    assert payload["text"].startswith("[SUPERSEDED] warning: dataset_drift on churn: superseded by churn:2")
    assert payload["attachments"][0]["color"] == "#757575"
    assert "Firing since" in {f["title"] for f in payload["attachments"][0]["fields"]}
    assert payload["modelward"]["kind"] == "supersede" and payload["modelward"]["resolved"] is True


def test_the_receiver_sees_json_with_the_original_host() -> None:
    with running_receiver() as receiver:
        notifier = WebhookNotifier(receiver.url, allowed_hosts=["127.0.0.1"])
        assert notifier.send(FIRE).delivered
        (headers,) = receiver.headers
        assert headers["content-type"] == "application/json"
        assert headers["host"] == f"127.0.0.1:{receiver.port}"
        assert receiver.posts[0]["modelward"]["rule"] == "dataset_drift"


def test_an_http_error_and_an_unreachable_receiver_are_failed_deliveries() -> None:
    receiver = Receiver()  # bound, never started: connections are refused once it is closed
    port = receiver.port
    receiver.server.server_close()
    dead = WebhookNotifier(f"http://127.0.0.1:{port}/hook", allowed_hosts=["127.0.0.1"], timeout=2)
    delivery = dead.send(FIRE)
    assert not delivery.delivered and "ConnectError" in delivery.detail
    with running_receiver() as live:
        failing = WebhookNotifier(f"http://127.0.0.1:{live.port}/fail", allowed_hosts=["127.0.0.1"])
        delivery = failing.send(FIRE)
        assert not delivery.delivered and delivery.detail.startswith("HTTP 500") and "boom" in delivery.detail
