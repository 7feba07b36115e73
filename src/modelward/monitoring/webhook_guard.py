"""The SSRF guard of outgoing webhooks: which URLs modelward may post to, and at which address.

A webhook URL comes from a configuration file, and a server that posts wherever it is told can be
made to reach what only it can reach: the cloud metadata endpoint (169.254.169.254), a database on
the pod network, an admin port on loopback. The guard therefore:

* accepts only ``http`` and ``https`` URLs, without credentials (``user:pass@``) and with a host;
* resolves the host once and classifies every address it resolves to; the target is refused when
  any of them is loopback, private (RFC 1918, unique-local, carrier-grade NAT and other non-global
  ranges), link-local (169.254.0.0/16, fe80::/10), multicast, reserved or unspecified, unless allowed;
* hands back the checked address so that the caller connects to it, not to the name (a second DNS
  lookup could answer differently: DNS rebinding). IPv4-mapped IPv6 addresses are judged as IPv4.

What is allowed:

* ``allowed_hosts`` entries are host names (exact, case-insensitive), IP addresses or networks in
  CIDR form (``10.20.0.0/16``). A host named there, or an address inside one of its networks, is
  allowed whatever its class: the way to reach an internal receiver such as Alertmanager or an
  in-cluster relay, or the metadata range if you really mean it.
* ``allow_private=True`` allows loopback and private (non-global) addresses, but never link-local,
  multicast, reserved or unspecified ones: the metadata endpoint stays refused by the broad switch.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeAlias

from modelward.errors import (
    UnsafeWebhookTarget,  # importable here as before
)

if TYPE_CHECKING:
    import httpx

__all__ = [
    "Resolver",
    "Target",
    "UnsafeWebhookTarget",
    "WebhookGuard",
    "classify_address",
    "safe_location",
    "system_resolver",
]

IPAddress: TypeAlias = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork: TypeAlias = ipaddress.IPv4Network | ipaddress.IPv6Network
Resolver: TypeAlias = Callable[[str, int], Sequence[str]]

# Classes the broad ``allow_private`` switch opens; the others need an explicit allowed_hosts entry.
_PRIVATE_CLASSES = frozenset({"loopback", "private"})


def safe_location(url: httpx.URL | str) -> str:
    """``scheme://host:port`` of a URL: enough to say where, without the path (webhook paths are
    secrets, e.g. Slack's) or credentials."""
    import httpx  # here, not above: reading alerts from the store needs no HTTP client

    u = url if isinstance(url, httpx.URL) else httpx.URL(url)
    host = f"[{u.host}]" if ":" in u.host else u.host
    port = f":{u.port}" if u.port is not None else ""
    return f"{u.scheme}://{host}{port}"


def classify_address(ip: IPAddress) -> str | None:
    """The reason ``ip`` is not a public unicast address, or None when it is one."""
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    if ip.is_unspecified:
        return "unspecified"
    if ip.is_loopback:
        return "loopback"
    if ip.is_link_local:
        return "link-local"
    if ip.is_multicast:
        return "multicast"
    if ip.is_reserved:
        return "reserved"
    if ip.is_private or not ip.is_global:
        return "private"
    return None


def system_resolver(host: str, port: int) -> Sequence[str]:
    """Every address ``host`` resolves to for a TCP connection (the system resolver)."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [str(info[4][0]) for info in infos]


@dataclass(frozen=True, slots=True)
class Target:
    """A checked URL and the address to connect to for it."""

    url: httpx.URL
    address: str

    @property
    def host_header(self) -> str:
        default = {"http": 80, "https": 443}[self.url.scheme]
        host = f"[{self.url.host}]" if ":" in self.url.host else self.url.host
        return host if self.url.port in (None, default) else f"{host}:{self.url.port}"

    def request_url(self) -> httpx.URL:
        """The URL with the checked address in place of the host name (connect there, no lookup)."""
        return self.url.copy_with(host=self.address)

    def extensions(self) -> dict[str, Any]:
        # TLS still checks the certificate against the name, and SNI carries the name.
        return {"sni_hostname": self.url.host} if self.url.scheme == "https" else {}


class WebhookGuard:
    """Checks webhook URLs against the rules in the module docstring."""

    def __init__(
        self,
        *,
        allow_private: bool = False,
        allowed_hosts: Sequence[str] = (),
        resolver: Resolver = system_resolver,
    ) -> None:
        self.allow_private = allow_private
        self.allowed_hosts = tuple(allowed_hosts)
        self.resolver = resolver
        names: set[str] = set()
        networks: list[IPNetwork] = []
        for entry in self.allowed_hosts:
            text = str(entry).strip().lower().rstrip(".")
            if not text:
                raise UnsafeWebhookTarget(repr(entry), "an empty allowed_hosts entry")
            try:
                networks.append(ipaddress.ip_network(text.strip("[]"), strict=False))
            except ValueError:
                names.add(text)
        self._names = frozenset(names)
        self._networks = tuple(networks)

    def _allowed_address(self, ip: IPAddress) -> bool:
        plain = ip.ipv4_mapped if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped else ip
        return any(plain in net or ip in net for net in self._networks)

    def _verdict(self, ip: IPAddress) -> str | None:
        """Why ``ip`` is refused, or None when it may be used."""
        kind = classify_address(ip)
        if kind is None or self._allowed_address(ip):
            return None
        if kind in _PRIVATE_CLASSES and self.allow_private:
            return None
        hint = "allow_private or allowed_hosts" if kind in _PRIVATE_CLASSES else "an allowed_hosts entry"
        return f"{ip} is a {kind} address (allow it with {hint})"

    def check_static(self, url: str | httpx.URL) -> httpx.URL:
        """The checks that need no DNS: scheme, credentials, host, and a literal IP host's class."""
        import httpx

        shown = str(url) if isinstance(url, httpx.URL) else url
        try:
            parsed = url if isinstance(url, httpx.URL) else httpx.URL(url)
        except (httpx.InvalidURL, TypeError, ValueError) as exc:
            raise UnsafeWebhookTarget(repr(shown), f"not a valid URL ({exc})") from exc
        if parsed.scheme not in ("http", "https"):
            raise UnsafeWebhookTarget(
                f"{parsed.scheme or '(no scheme)'}:...", "only http and https URLs are allowed"
            )
        where = safe_location(parsed) if parsed.host else repr(parsed.scheme + "://")
        if parsed.userinfo:
            raise UnsafeWebhookTarget(where, "URLs with credentials (user:password@) are refused")
        if not parsed.host:
            raise UnsafeWebhookTarget(where, "the URL has no host")
        literal = _literal_ip(parsed.host)
        if literal is not None and parsed.host.lower() not in self._names:
            reason = self._verdict(literal)
            if reason is not None:
                raise UnsafeWebhookTarget(where, reason)
        return parsed

    def resolve(self, url: str | httpx.URL) -> Target:
        """Check ``url`` fully and choose the address to connect to; :class:`UnsafeWebhookTarget`
        when it is refused or cannot be resolved."""
        parsed = self.check_static(url)
        where = safe_location(parsed)
        port = parsed.port or (443 if parsed.scheme == "https" else 80)
        literal = _literal_ip(parsed.host)
        if literal is not None:
            return Target(parsed, str(literal))
        try:
            found = [ipaddress.ip_address(a.split("%", 1)[0]) for a in self.resolver(parsed.host, port)]
        except (OSError, UnicodeError, ValueError) as exc:
            raise UnsafeWebhookTarget(where, f"cannot resolve {parsed.host}: {exc}") from exc
        if not found:
            raise UnsafeWebhookTarget(where, f"{parsed.host} resolves to no address")
        if parsed.host.lower().rstrip(".") in self._names:
            return Target(parsed, str(found[0]))
        # Every address must pass: a name answering one public and one private address is refused.
        for ip in found:
            reason = self._verdict(ip)
            if reason is not None:
                raise UnsafeWebhookTarget(where, f"{parsed.host} resolves to {reason}")
        return Target(parsed, str(found[0]))


def _literal_ip(host: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return None
