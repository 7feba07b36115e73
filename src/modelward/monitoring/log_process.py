"""The prediction log's writer process: encodes and inserts the rows a server's writer thread hands it.

A server answers requests on one event loop thread, and every Python thread of the process shares
one interpreter lock with it. Turning thousands of rows a second into JSON and binding them into
INSERT statements is Python work that would hold that lock; here it runs in a process of its own,
on another core, and the server's writer thread only pickles each batch (NumPy arrays, a memory copy)
and waits for the answer with the lock released.

The two talk over the child's standard input and output: frames of an 8-byte big-endian length and
a pickle. The first frame is the store's settings; then each request is a list of log items with the
writer's checkpoint (:class:`~modelward.monitoring.log_marks.Checkpoint`, or None) and each answer
``(encoded, bad, repaired, error)``: the rows written, the rows that could not be stored (left out,
each alone), the rows stored repaired, and the reason the transaction failed (None when it
committed). The child writes exactly what a writer thread would
(:func:`modelward.monitoring.log_insert.write_items`), ignores SIGINT and SIGTERM (the server decides
when logging stops: it closes the pipe after its last batch) and exits when its input ends, which
also happens when the server dies: a batch being written is finished first. It holds the writer's
mark open until it exits, so that the mark is settled only once no batch of its writer can still
commit.
"""

from __future__ import annotations

import contextlib
import pickle
import signal
import struct
import subprocess
import sys
from typing import IO, Any

__all__ = ["WriterProcess", "main", "reason_of"]

_HEADER = struct.Struct("!Q")
_MODULE = "modelward.monitoring.log_process"


def send(stream: IO[bytes], obj: Any) -> None:
    data = pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)
    stream.write(_HEADER.pack(len(data)))
    stream.write(data)
    stream.flush()


def receive(stream: IO[bytes]) -> Any:
    """The next frame's object; raises EOFError when the stream ends (cleanly or mid-frame)."""
    header = stream.read(_HEADER.size)
    if len(header) < _HEADER.size:
        raise EOFError("the stream ended")
    (size,) = _HEADER.unpack(header)
    data = stream.read(size)
    if len(data) < size:
        raise EOFError("the stream ended inside a frame")
    return pickle.loads(data)  # noqa: S301 - our own process, over a pipe only the two of us hold


class WriterProcess:
    """The server side of one writer process: started at construction, one batch at a time."""

    def __init__(
        self, url: str, *, busy_timeout_ms: int, power_safe: bool, hold: tuple[int, ...] = ()
    ) -> None:
        """``hold``: descriptors the child keeps open until it exits (the writer's mark, whose lock
        then says that a batch of this writer may still be committed)."""
        self._proc = subprocess.Popen(  # this interpreter, a fixed module
            [sys.executable, "-m", _MODULE],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            pass_fds=hold,
        )
        stdin, stdout = self._proc.stdin, self._proc.stdout
        if stdin is None or stdout is None:  # pragma: no cover - both are PIPE above
            raise OSError("the writer process has no pipes")
        self._in, self._out = stdin, stdout
        send(self._in, {"url": url, "busy_timeout_ms": busy_timeout_ms, "power_safe": power_safe})

    @property
    def pid(self) -> int:
        return self._proc.pid

    def alive(self) -> bool:
        return self._proc.poll() is None

    def write(self, items: list[Any], checkpoint: Any = None) -> tuple[int, int, int, str | None]:
        """Send ``items`` (and the writer's checkpoint, written in the same transaction), wait for the
        child to write them; raises OSError or EOFError when the child is gone (nothing of this
        batch can be known to be written)."""
        send(self._in, (items, checkpoint))
        encoded, bad, repaired, error = receive(self._out)
        return int(encoded), int(bad), int(repaired), error

    def close(self, timeout: float = 5.0) -> int | None:
        """End the child's input and wait for it to exit (killed after ``timeout``); its exit code."""
        with contextlib.suppress(OSError):
            self._in.close()
        try:
            code = self._proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            code = self._proc.wait()
        with contextlib.suppress(OSError):
            self._out.close()
        return code

    def describe_exit(self) -> str:
        code = self._proc.poll()
        if code is None:
            return "the writer process stopped answering"
        if code < 0:
            return f"the writer process was killed by signal {-code}"
        return f"the writer process exited with code {code}"


def main() -> int:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    stdin, stdout = sys.stdin.buffer, sys.stdout.buffer
    sys.stdout = sys.stderr  # the protocol owns standard output; stray prints go to the server's log

    from modelward.monitoring.log_insert import write_items
    from modelward.store.store import Store

    try:
        config = receive(stdin)
    except EOFError:
        return 0
    store = Store(
        config["url"], busy_timeout_ms=int(config["busy_timeout_ms"]), power_safe=bool(config["power_safe"])
    ).open()
    try:
        while True:
            try:
                items, checkpoint = receive(stdin)
            except EOFError:
                return 0
            encoded, bad, repaired, error = write_items(store, items, checkpoint)
            reason = None if error is None else reason_of(error)
            send(stdout, (encoded, bad, repaired, reason))
            if isinstance(error, SystemExit | KeyboardInterrupt):
                raise error
    finally:
        store.close()


def reason_of(exc: BaseException) -> str:
    """One line saying why a write failed: the exception's type and the first line of its message."""
    text = str(getattr(exc, "orig", None) or exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}"


if __name__ == "__main__":
    sys.exit(main())
