"""A listening socket of its own for every worker process (``SO_REUSEPORT``), balanced by the kernel.

With one socket shared by all workers (uvicorn's way), a worker that wakes up for a new connection
accepts every connection waiting, so the 32 keep-alive connections of a client that connects all at
once can land 26 on one worker and 6 on the other; they stay there for their whole life, and one
worker is saturated while the other idles (measured: two workers gave 1.35x to 1.8x one worker
from run to run, by how the connections happened to fall). With ``SO_REUSEPORT`` every worker
listens on a socket of its own on the same port and the kernel spreads new connections over them by
a hash of their addresses.

uvicorn's supervisor hands the same list of sockets to every worker it starts (pickled into the
spawned process). :class:`WorkerSocket` is the parent's placeholder in that list: bound to the
port with ``SO_REUSEPORT`` (which reserves the port, and resolves port 0) but never listening, and
pickled as "bind a new socket to this address", so each worker unpickles a listening socket of its
own; a restarted worker gets a new one the same way.

A worker listens once its start-up is done: until one has, connections are refused rather than
queued (there is no shared queue). Platforms without ``SO_REUSEPORT`` keep uvicorn's shared socket.

Before anything starts, :func:`bind_listeners` checks that the address can be had: sockets bound the
way uvicorn binds them (``SO_REUSEADDR``, so connections of a stopped server in TIME_WAIT do not
count), without ``SO_REUSEPORT``, so that a port held by another modelward's workers is refused
too rather than shared. The parent's placeholder binds with ``SO_REUSEPORT`` alone: a socket
without ``SO_REUSEADDR`` makes the port read as taken even while no worker listens yet, and the
workers' own sockets (``SO_REUSEPORT``) still bind beside it.
"""

from __future__ import annotations

import errno
import ipaddress
import socket
from typing import Any

from modelward.errors import ConfigError

__all__ = ["WorkerSocket", "bind_listeners", "is_loopback", "reuse_port_supported", "worker_socket"]


def is_loopback(host: str) -> bool:
    """Whether ``host`` names this machine only (a bind that needs no admin token)."""
    if host in {"localhost", "ip6-localhost"}:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def reuse_port_supported() -> bool:
    return hasattr(socket, "SO_REUSEPORT")


def bind_listeners(host: str, port: int) -> list[socket.socket]:
    """Sockets bound to every address ``host`` names, as uvicorn would bind them, not listening yet
    (uvicorn listens on them); a :class:`ConfigError` of one line when the address cannot be had."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise ConfigError(
            f"cannot bind {host}: the name does not resolve to an address of this machine "
            f"({exc.strerror}); pick one with --host"
        ) from exc
    sockets: list[socket.socket] = []
    try:
        for family, kind, proto, _, address in dict.fromkeys(infos):
            try:
                sock = socket.socket(family, kind, proto)
            except OSError:  # an address family this machine lacks (IPv6 turned off)
                continue
            sockets.append(sock)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if family == socket.AF_INET6:  # as asyncio does: "::" is not also every IPv4 address
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            if port == 0 and len(sockets) > 1:  # one port for every address of the name
                address = (address[0], sockets[0].getsockname()[1], *address[2:])
            sock.bind(address)
    except OSError as exc:
        for sock in sockets:
            sock.close()
        raise ConfigError(_bind_problem(host, port, exc)) from exc
    if not sockets:
        raise ConfigError(f"cannot bind {host}: this machine has no network of its address family")
    for sock in sockets:
        sock.set_inheritable(True)
    return sockets


def _bind_problem(host: str, port: int, exc: OSError) -> str:
    if exc.errno == errno.EADDRINUSE:
        return f"port {port} is in use (by another process); pick one with --port"
    if exc.errno == errno.EADDRNOTAVAIL:
        return (
            f"cannot bind {host}: it is not an address of this machine; pick one with --host "
            "(127.0.0.1 for this machine only, 0.0.0.0 for every interface)"
        )
    if exc.errno == errno.EACCES:
        return f"port {port} needs privileges this user lacks (ports below 1024 do); pick one with --port"
    return f"cannot listen on {host}:{port}: {exc.strerror or exc}"


def _bound(host: str, port: int, *, reuse_address: bool = True) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        if reuse_address:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind((host, port))
    except BaseException:
        sock.close()
        raise
    sock.set_inheritable(True)
    return sock


def worker_socket(host: str, port: int) -> socket.socket:
    """What a worker unpickles: a socket of its own, bound to the shared address (uvicorn listens)."""
    return _bound(host, port)


class WorkerSocket(socket.socket):
    """The parent's socket: holds the port, never listens, and unpickles as a new worker socket."""

    @classmethod
    def bind_to(cls, host: str, port: int) -> WorkerSocket:
        plain = _bound(host, port, reuse_address=False)
        sock = cls(plain.family, plain.type, plain.proto, fileno=plain.detach())
        sock.set_inheritable(True)
        return sock

    def __reduce__(self) -> tuple[Any, tuple[str, int]]:
        host, port = self.getsockname()[:2]
        return worker_socket, (host, port)

    def __reduce_ex__(self, protocol: object) -> tuple[Any, tuple[str, int]]:
        return self.__reduce__()
