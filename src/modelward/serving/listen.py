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
"""

from __future__ import annotations

import socket
from typing import Any

__all__ = ["WorkerSocket", "reuse_port_supported", "worker_socket"]


def reuse_port_supported() -> bool:
    return hasattr(socket, "SO_REUSEPORT")


def _bound(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
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
        plain = _bound(host, port)
        sock = cls(plain.family, plain.type, plain.proto, fileno=plain.detach())
        sock.set_inheritable(True)
        return sock

    def __reduce__(self) -> tuple[Any, tuple[str, int]]:
        host, port = self.getsockname()[:2]
        return worker_socket, (host, port)

    def __reduce_ex__(self, protocol: object) -> tuple[Any, tuple[str, int]]:
        return self.__reduce__()
