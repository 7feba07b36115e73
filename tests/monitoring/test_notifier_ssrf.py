"""The webhook SSRF guard: private, loopback, link-local, multicast, reserved and unspecified targets
are refused unless allowed, names are resolved once and the checked address is the one connected
to, redirects are re-checked hop by hop, and credentials and other schemes are refused."""

from __future__ import annotations

from collections.abc import Sequence

import pytest
from tests.control.webhook_receiver import running_receiver

from modelward.errors import ModelwardError
from modelward.monitoring.notifiers import Notification, UnsafeWebhookTarget, WebhookNotifier
from modelward.monitoring.webhook_guard import WebhookGuard, classify_address

NOTE = Notification("fire", "latency", "churn", "latency_p95", "warning", "churn: p95 900 ms", 1.7e9)


@pytest.mark.parametrize(
    ("url", "kind"),
    [
        ("http://169.254.169.254/latest/meta-data/iam/security-credentials/", "link-local"),
        ("http://127.0.0.1:9/hook", "loopback"),
        ("http://10.1.2.3/hook", "private"),
        ("http://192.168.0.10/hook", "private"),
        ("http://100.64.0.1/hook", "private"),  # carrier-grade NAT: not global
        ("http://[::1]:8080/hook", "loopback"),
        ("http://[fe80::1]/hook", "link-local"),
        ("http://[fd00::5]/hook", "private"),
        ("http://[::ffff:127.0.0.1]/hook", "loopback"),
        ("http://0.0.0.0/hook", "unspecified"),
        ("http://224.0.0.1/hook", "multicast"),
        ("http://240.0.0.1/hook", "reserved"),
    ],
)
def test_literal_non_public_targets_are_refused_when_configured(url: str, kind: str) -> None:
    with pytest.raises(UnsafeWebhookTarget, match=kind) as caught:
        WebhookNotifier(url)
    assert isinstance(caught.value, ModelwardError) and isinstance(caught.value, PermissionError)
    assert "/hook" not in str(caught.value) and "credentials" not in str(caught.value)  # no path leaks


def test_the_metadata_endpoint_stays_refused_with_allow_private() -> None:
    with pytest.raises(UnsafeWebhookTarget, match="link-local"):
        WebhookNotifier("http://169.254.169.254/latest/meta-data", allow_private=True)
    for url in ("http://10.1.2.3/hook", "http://127.0.0.1/hook", "http://[::1]/hook"):
        WebhookNotifier(url, allow_private=True)  # allowed by the broad switch
    WebhookNotifier("http://169.254.169.254/x", allowed_hosts=["169.254.169.254"])  # explicit: allowed
    WebhookNotifier("http://10.20.3.4/x", allowed_hosts=["10.20.0.0/16"])
    with pytest.raises(UnsafeWebhookTarget):
        WebhookNotifier("http://10.21.3.4/x", allowed_hosts=["10.20.0.0/16"])


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("ftp://example.com/hook", "only http and https"),
        ("file:///etc/passwd", "only http and https"),
        ("gopher://example.com:70/_", "only http and https"),
        ("http://user:secret@example.com/hook", "credentials"),
        ("http:///hook", "no host"),
    ],
)
def test_other_schemes_and_credentials_are_refused(url: str, reason: str) -> None:
    with pytest.raises(UnsafeWebhookTarget, match=reason) as caught:
        WebhookNotifier(url)
    assert "secret" not in str(caught.value)


def test_a_hostname_resolving_to_loopback_is_refused_at_check_and_at_send_time() -> None:
    with running_receiver() as receiver:
        notifier = WebhookNotifier(f"http://localhost:{receiver.port}/hook")  # no DNS in the constructor
        with pytest.raises(UnsafeWebhookTarget, match=r"localhost resolves to .* loopback"):
            notifier.check()
        delivery = notifier.send(NOTE)
        assert not delivery.delivered and delivery.detail.startswith("refused:")
        assert receiver.posts == []  # never connected
        allowed = WebhookNotifier(f"http://localhost:{receiver.port}/hook", allowed_hosts=["localhost"])
        assert allowed.send(NOTE).delivered
        assert len(receiver.posts) == 1


def test_every_resolved_address_must_pass() -> None:
    def mixed(host: str, port: int) -> Sequence[str]:
        return ["93.184.216.34", "10.0.0.7"]

    guard = WebhookGuard(resolver=mixed)
    with pytest.raises(UnsafeWebhookTarget, match=r"10\.0\.0\.7 is a private address"):
        guard.resolve("https://hooks.example.com/x")
    public = WebhookGuard(resolver=lambda h, p: ["93.184.216.34"]).resolve("https://hooks.example.com:8443/x")
    assert public.address == "93.184.216.34"
    assert str(public.request_url()) == "https://93.184.216.34:8443/x"
    assert public.host_header == "hooks.example.com:8443"
    assert public.extensions() == {"sni_hostname": "hooks.example.com"}  # TLS still checks the name


def test_the_request_goes_to_the_checked_address_not_to_a_second_lookup() -> None:
    lookups: list[str] = []

    def once(host: str, port: int) -> Sequence[str]:
        lookups.append(host)
        return ["127.0.0.1"]

    with running_receiver() as receiver:
        # "alerts.invalid" cannot resolve through the system: only the checked address is used.
        notifier = WebhookNotifier(
            f"http://alerts.invalid:{receiver.port}/hook", allowed_hosts=["127.0.0.0/8"], resolver=once
        )
        assert notifier.send(NOTE).delivered
        assert lookups == ["alerts.invalid"]
        assert receiver.headers[0]["host"] == f"alerts.invalid:{receiver.port}"


@pytest.mark.parametrize(
    "location",
    [
        "http://169.254.169.254/latest/meta-data/",
        "http://10.0.0.1/internal",
        "http://[::1]:22/",
        "file:///etc/passwd",
        "http://admin:pw@example.com/",
    ],
)
def test_a_redirect_to_a_refused_target_is_refused(location: str) -> None:
    with running_receiver() as receiver:
        url = receiver.redirect("/moved", location)
        notifier = WebhookNotifier(url, allowed_hosts=["127.0.0.1"])
        delivery = notifier.send(NOTE)
        assert not delivery.delivered and delivery.detail.startswith("refused:"), delivery.detail
        assert receiver.paths == ["/moved"]  # the first hop only
        assert "meta-data" not in delivery.detail and "pw" not in delivery.detail


def test_allowed_redirects_are_followed_by_hand_and_bounded() -> None:
    with running_receiver() as receiver:
        url = receiver.redirect("/old", "/hook", status=308)
        notifier = WebhookNotifier(url, allowed_hosts=["127.0.0.1"])
        assert notifier.send(NOTE).delivered
        assert receiver.paths == ["/old", "/hook"] and len(receiver.posts) == 1
        loop = receiver.redirect("/loop", "/loop")
        delivery = WebhookNotifier(loop, allowed_hosts=["127.0.0.1"], max_redirects=3).send(NOTE)
        assert not delivery.delivered and "more than 3 redirects" in delivery.detail
        assert receiver.paths.count("/loop") == 4


def test_proxies_from_the_environment_are_not_used(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:9")
    monkeypatch.setenv("ALL_PROXY", "http://127.0.0.1:9")
    with running_receiver() as receiver:
        assert WebhookNotifier(receiver.url, allowed_hosts=["127.0.0.1"]).send(NOTE).delivered


def test_address_classes() -> None:
    import ipaddress

    assert classify_address(ipaddress.ip_address("8.8.8.8")) is None
    assert classify_address(ipaddress.ip_address("2606:4700:4700::1111")) is None
    assert classify_address(ipaddress.ip_address("::ffff:10.0.0.1")) == "private"
    assert classify_address(ipaddress.ip_address("ff02::1")) == "multicast"
