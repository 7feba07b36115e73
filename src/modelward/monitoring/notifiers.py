"""Notifiers: where alert notifications go. The log, and webhooks with a Slack-compatible payload.

The contract (:class:`Notifier`, checked by one test suite over every implementation): ``name`` is
stable and holds no secret (it is written to the alert history); ``send`` delivers one
:class:`Notification` and answers a :class:`Delivery`; it never raises for a failed delivery (an
unreachable receiver, an HTTP error, a refused target), because a broken receiver must never break
the monitor loop that found the problem. The alert center still guards each call.

The webhook payload has ``text`` (shown by every receiver, and Slack's notification fallback),
``blocks`` (Slack's layout) and ``attachments`` (a coloured side bar with fields, rendered by Slack
and by Mattermost, which ignores ``blocks``). A resolve says RESOLVED and is green; a supersede
(the alert of a version the rule no longer judges, closed) says SUPERSEDED and is grey.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal, Protocol, TypeAlias, runtime_checkable

from modelward.errors import (
    DeliveryFailed,  # importable here as before
)
from modelward.monitoring.webhook_guard import (
    Resolver,
    UnsafeWebhookTarget,
    WebhookGuard,
    safe_location,
    system_resolver,
)

__all__ = [
    "Delivery",
    "DeliveryFailed",
    "LogNotifier",
    "Notification",
    "NotificationKind",
    "Notifier",
    "UnsafeWebhookTarget",
    "WebhookNotifier",
    "slack_payload",
]

NotificationKind: TypeAlias = Literal["fire", "repeat", "resolve", "supersede", "event", "test"]
_HEADLINES = {
    "fire": "FIRING",
    "repeat": "STILL FIRING",
    "resolve": "RESOLVED",
    "supersede": "SUPERSEDED",
    "event": "EVENT",
    "test": "TEST",
}
_COLOURS = {"critical": "#d32f2f", "warning": "#f9a825", "info": "#1976d2"}
_RESOLVED_COLOUR = "#2e7d32"
_SUPERSEDED_COLOUR = "#757575"
_REDIRECTS = (301, 302, 303, 307, 308)


@dataclass(frozen=True, slots=True)
class Notification:
    """One message about one alert: it started firing, is still firing, resolved, was superseded (a
    version the rule no longer judges), or a one-shot event. ``version``: the model version the
    alert is about, when known."""

    kind: NotificationKind
    rule: str
    model: str | None
    subject: str
    severity: str
    message: str
    ts: float
    fingerprint: str = ""
    value: float | None = None
    first_fired_at: float | None = None
    version: str | None = None

    @property
    def resolved(self) -> bool:
        """The incident is closed: resolved, or superseded by a newer version's."""
        return self.kind in ("resolve", "supersede")

    @property
    def title(self) -> str:
        where = f" on {self.model}" if self.model else ""
        return f"[{_HEADLINES[self.kind]}] {self.severity}: {self.rule}{where}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "resolved": self.resolved,
            "rule": self.rule,
            "model": self.model,
            "version": self.version,
            "subject": self.subject,
            "severity": self.severity,
            "message": self.message,
            "value": self.value,
            "ts": self.ts,
            "first_fired_at": self.first_fired_at,
            "fingerprint": self.fingerprint,
        }


@dataclass(frozen=True, slots=True)
class Delivery:
    """What became of one notification at one notifier; ``detail`` says why when not delivered."""

    notifier: str
    delivered: bool
    detail: str = ""


@runtime_checkable
class Notifier(Protocol):
    """Delivers notifications; see the module docstring for the contract."""

    @property
    def name(self) -> str: ...

    def send(self, notification: Notification) -> Delivery: ...


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def slack_payload(n: Notification) -> dict[str, Any]:
    """The JSON body posted to webhooks (Slack incoming webhooks, Mattermost, and compatible ones)."""
    headline = f"{n.title}: {n.message}"
    fields = [("Model", n.model or "-"), ("Subject", n.subject), ("Severity", n.severity)]
    if n.version is not None:
        fields.insert(1, ("Version", n.version))
    if n.value is not None:
        fields.append(("Value", f"{n.value:.6g}"))
    if n.first_fired_at is not None and n.kind in ("repeat", "resolve", "supersede"):
        fields.append(("Firing since", _iso(n.first_fired_at)))
    return {
        "text": headline,
        "blocks": [
            {"type": "section", "text": {"type": "mrkdwn", "text": f"*{n.title}*\n{n.message}"}},
            {"type": "context", "elements": [{"type": "mrkdwn", "text": f"modelward · {_iso(n.ts)}"}]},
        ],
        "attachments": [
            {
                "fallback": headline,
                "color": _SUPERSEDED_COLOUR
                if n.kind == "supersede"
                else _RESOLVED_COLOUR
                if n.resolved
                else _COLOURS.get(n.severity, "#757575"),
                "title": n.title,
                "text": n.message,
                "fields": [{"title": t, "value": v, "short": True} for t, v in fields],
                "footer": "modelward",
                "ts": int(n.ts),
            }
        ],
        "modelward": n.to_dict(),
    }


class LogNotifier:
    """Writes notifications to the ``modelward.alerts`` logger: critical firing alerts and events at
    ERROR, other firing alerts, reminders and events at WARNING, and an alert that closes (resolved,
    or superseded by a newer version's) at INFO: good news, shown by the server's default INFO level."""

    def __init__(self, logger: str = "modelward.alerts", *, name: str = "log") -> None:
        self.logger = logger
        self._name = name

    @property
    def name(self) -> str:
        return self._name

    def send(self, notification: Notification) -> Delivery:
        critical = notification.severity == "critical" and notification.kind in ("fire", "repeat", "event")
        level = logging.INFO if notification.resolved else logging.ERROR if critical else logging.WARNING
        try:
            logging.getLogger(self.logger).log(level, "%s: %s", notification.title, notification.message)
        except Exception as exc:  # a raising filter or handler: report it, never raise it
            return Delivery(self.name, False, f"{type(exc).__name__}: {exc}")
        return Delivery(self.name, True, f"logged to {self.logger}")


class WebhookNotifier:
    """Posts :func:`slack_payload` to ``url`` through the SSRF guard (``modelward.monitoring.webhook_guard``).

    The constructor refuses what it can tell without DNS (scheme, credentials, a literal private
    address) with :class:`UnsafeWebhookTarget`; :meth:`check` also resolves the name. At send time
    the name is resolved and checked once per hop and the request goes to the checked address;
    redirects are followed by hand, at most ``max_redirects``, each target checked again. A refusal
    at send time is a failed :class:`Delivery`, never an exception. Proxies from the environment
    are ignored: a proxy would resolve the name itself, out of the guard's sight.
    """

    def __init__(
        self,
        url: str,
        *,
        allow_private: bool = False,
        allowed_hosts: Sequence[str] = (),
        timeout: float = 5.0,
        name: str | None = None,
        max_redirects: int = 3,
        resolver: Resolver = system_resolver,
    ) -> None:
        self.url = url
        self.allow_private = allow_private
        self.allowed_hosts = tuple(allowed_hosts)
        self.timeout = timeout
        self.max_redirects = max_redirects
        self.guard = WebhookGuard(
            allow_private=allow_private, allowed_hosts=self.allowed_hosts, resolver=resolver
        )
        parsed = self.guard.check_static(url)
        self._name = name or f"webhook:{safe_location(parsed).split('://', 1)[1]}"

    @property
    def name(self) -> str:
        return self._name

    def __repr__(self) -> str:  # never the full URL: its path is often the secret
        return f"WebhookNotifier({self.name!r})"

    def check(self) -> None:
        """Resolve and check the URL now; :class:`UnsafeWebhookTarget` when refused."""
        self.guard.resolve(self.url)

    def send(self, notification: Notification) -> Delivery:
        import httpx  # here, not above: reading alerts from the store needs no HTTP client

        try:
            return self._post(slack_payload(notification))
        except UnsafeWebhookTarget as exc:
            return Delivery(self.name, False, f"refused: {exc}")
        except httpx.HTTPError as exc:
            return Delivery(self.name, False, f"{type(exc).__name__}: {exc or 'no detail'}")
        except OSError as exc:
            return Delivery(self.name, False, f"{type(exc).__name__}: {exc}")

    def _post(self, payload: dict[str, Any]) -> Delivery:
        import httpx

        url: httpx.URL = httpx.URL(self.url)
        with httpx.Client(timeout=self.timeout, follow_redirects=False, trust_env=False) as client:
            for hop in range(self.max_redirects + 1):
                target = self.guard.resolve(url)
                response = client.post(
                    target.request_url(),
                    json=payload,
                    headers={"Host": target.host_header, "User-Agent": "modelward-alerts"},
                    extensions=target.extensions(),
                )
                if response.status_code in _REDIRECTS and "location" in response.headers:
                    if hop == self.max_redirects:
                        return Delivery(self.name, False, f"more than {self.max_redirects} redirects")
                    # Relative to the URL as the receiver knows it (the name, not our pinned address).
                    url = target.url.join(response.headers["location"])
                    continue
                where = safe_location(target.url)
                if 200 <= response.status_code < 300:
                    return Delivery(self.name, True, f"HTTP {response.status_code} from {where}")
                body = response.text[:200].strip()
                return Delivery(self.name, False, f"HTTP {response.status_code} from {where}: {body}")
        return Delivery(self.name, False, "unreachable")  # pragma: no cover - the loop always returns
