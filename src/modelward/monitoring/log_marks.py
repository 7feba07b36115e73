"""What a crash costs the prediction log, counted: writer marks and the store's ``log_writers`` rows.

While a server lives, ``produced == written + dropped + queued`` exactly. A server killed outright
(SIGKILL, the out-of-memory killer) loses what it held in memory: rows answered but not yet handed to
the logger (post-processing runs every 20 ms), rows queued for the writer (it takes a batch at least
every 100 ms), and with the writer thread the batch being inserted (a writer process finishes the
batch it holds). To count that loss, each logger keeps a *mark*: a 128-byte file under
``<home>/log-writers``, memory-mapped, holding its counters. Every change is a store into mapped
memory (no system call, about 0.15 us of CPU); the kernel keeps those pages when the process dies,
so the mark holds the counters as they were at the instant of the kill. The logger holds an exclusive
``flock`` on its mark, and so does its writer process, which inherits the descriptor: a mark that can
be locked belongs to processes that are all gone.

The counters:

- ``announced``: rows answered, counted before their answers are written (the server calls
  :meth:`~modelward.monitoring.prediction_log.PredictionLogger.announce`); ``withdrawn``: announced
  rows post-processing gave up (its queue was full), which never reach the logger;
- ``produced``, ``sampled_out``, ``dropped``, ``written``: the logger's own counts.

The store keeps one row per writer (:data:`~modelward.store.tables.log_writers`). Its ``written``
grows in the very transaction that inserts each batch, so it is exact even for a batch a writer
process committed after its server died. A logger that closes marks its row ``closed`` and removes
its mark. The next logger started with the same home (a restarted server) settles every mark it can
lock (:func:`settle_dead`)::

    lost = max(announced - withdrawn, produced + sampled_out) - sampled_out - dropped - written_in_store

records it in the writer's row (``state = crashed``, ``lost``), counts it (``on_lost``: the metric
``modelward_prediction_log_lost_total``) and removes the mark. docs/prediction-log.md states what
this counts and when it can count more or less than was lost.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import logging
import mmap
import os
import socket
import struct
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.engine import make_url

from modelward.store.store import Store
from modelward.store.tables import log_writers

__all__ = [
    "ANNOUNCED_AT",
    "Checkpoint",
    "Ledger",
    "Mark",
    "MarkCounts",
    "PendingLoss",
    "close_writer",
    "lost_rows",
    "pack_announced",
    "pending_losses",
    "settle_dead",
    "store_key",
]

log = logging.getLogger("modelward.prediction_log")

_MAGIC = b"MWLOGMK1"
_HEAD = struct.Struct("<8sQd32s16s")  # magic, pid, started_at, writer id, store key
_ANNOUNCED = struct.Struct("<qq")  # announced, withdrawn: written by the request path
_COUNTS = struct.Struct("<qqqqq")  # produced, sampled_out, dropped, written, closed: by the logger
ANNOUNCED_AT = _HEAD.size
pack_announced = _ANNOUNCED.pack_into  # (mark.map, ANNOUNCED_AT, announced, withdrawn): the hot path's
_COUNTS_AT = ANNOUNCED_AT + _ANNOUNCED.size
SIZE = 128
_SUFFIX = ".mark"


def store_key(url: str) -> str:
    """16 hex digits naming a database (its URL without password): a mark is settled only against
    the store its writer wrote to."""
    try:
        text = make_url(url).render_as_string(hide_password=True)
    except Exception:
        text = url
    return hashlib.sha256(text.encode()).hexdigest()[:16]


@dataclass(frozen=True, slots=True)
class MarkCounts:
    writer: str
    pid: int
    started_at: float
    store_key: str
    announced: int
    withdrawn: int
    produced: int
    sampled_out: int
    dropped: int
    written: int
    closed: bool


def lost_rows(counts: MarkCounts, written_in_store: int) -> int:
    """Rows the mark's writer answered (or was handed) and neither wrote, dropped nor sampled out.
    ``announced - withdrawn`` counts from before post-processing; ``produced + sampled_out`` from
    the logger's submit, for rows handed to it without an announcement (library use)."""
    submitted = max(counts.announced - counts.withdrawn, counts.produced + counts.sampled_out)
    return max(0, submitted - counts.sampled_out - counts.dropped - written_in_store)


class Mark:
    """This process's mark: created (locked, then renamed into place, so that no other process ever
    sees it unlocked), updated in place, removed when the logger closes."""

    def __init__(self, directory: Path, writer: str, key: str) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.path = directory / f"{writer}{_SUFFIX}"
        self.writer = writer
        self.pid = os.getpid()
        self.started_at = time.time()
        temporary = directory / f".{writer}.tmp"
        fd = os.open(temporary, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            os.ftruncate(fd, SIZE)
            self.map = mmap.mmap(fd, SIZE)
            _HEAD.pack_into(
                self.map, 0, _MAGIC, self.pid, self.started_at, writer.encode(), key.encode()[:16]
            )
            os.rename(temporary, self.path)
        except BaseException:
            os.close(fd)
            with contextlib.suppress(OSError):
                temporary.unlink()
            raise
        self.fd = fd

    def counts(
        self, produced: int, sampled_out: int, dropped: int, written: int, closed: bool = False
    ) -> None:
        _COUNTS.pack_into(self.map, _COUNTS_AT, produced, sampled_out, dropped, written, int(closed))

    def remove(self) -> None:
        """Delete the mark (its writer's row says how it ended), then let go of it."""
        with contextlib.suppress(OSError):
            self.path.unlink()
        self.release()

    def release(self) -> None:
        """Let go of the mark, leaving it for the next logger to settle."""
        with contextlib.suppress(Exception):
            self.map.close()
        with contextlib.suppress(OSError):
            os.close(self.fd)


def _read(fd: int) -> MarkCounts | None:
    data = os.pread(fd, SIZE, 0)
    if len(data) < SIZE:
        return None
    magic, pid, started_at, writer, key = _HEAD.unpack_from(data, 0)
    if magic != _MAGIC:
        return None
    announced, withdrawn = _ANNOUNCED.unpack_from(data, ANNOUNCED_AT)
    produced, sampled_out, dropped, written, closed = _COUNTS.unpack_from(data, _COUNTS_AT)
    return MarkCounts(
        writer.rstrip(b"\0").decode(),
        pid,
        started_at,
        key.rstrip(b"\0").decode(),
        announced,
        withdrawn,
        produced,
        sampled_out,
        dropped,
        written,
        bool(closed),
    )


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """What the transaction inserting a batch also writes into its writer's row: the batch's rows
    written, repaired and rejected (added), and the writer's other counts as they were (set)."""

    writer: str
    host: str
    pid: int
    started_at: float
    announced: int
    produced: int
    dropped: int
    sampled_out: int

    def apply(self, conn: Any, written: int, repaired: int, rejected: int) -> None:
        now = time.time()
        c = log_writers.c
        done = conn.execute(
            update(log_writers)
            .where(c.writer == self.writer)
            .values(
                written=c.written + written,
                repaired=c.repaired + repaired,
                rejected=c.rejected + rejected,
                announced=self.announced,
                produced=self.produced,
                dropped=self.dropped,
                sampled_out=self.sampled_out,
                updated_at=now,
            )
        )
        if done.rowcount == 0:
            conn.execute(
                insert(log_writers).values(
                    writer=self.writer,
                    host=self.host[:255],
                    pid=self.pid,
                    started_at=self.started_at,
                    updated_at=now,
                    state="running",
                    announced=self.announced,
                    produced=self.produced,
                    written=written,
                    dropped=self.dropped,
                    sampled_out=self.sampled_out,
                    repaired=repaired,
                    rejected=rejected,
                )
            )


def _end(conn: Any, writer: str, exists: bool, identity: dict[str, Any], values: dict[str, Any]) -> None:
    """Write how ``writer`` ended into its row (made, with ``identity``, when no batch ever did)."""
    if exists:
        conn.execute(update(log_writers).where(log_writers.c.writer == writer).values(**values))
    else:
        conn.execute(insert(log_writers).values(writer=writer, repaired=0, rejected=0, **identity, **values))


def _final_counts(
    state: str, lost: int, announced: int, produced: int, dropped: int, sampled: int
) -> dict[str, Any]:
    now = time.time()
    return {
        "state": state,
        "lost": lost,
        "announced": announced,
        "produced": produced,
        "dropped": dropped,
        "sampled_out": sampled,
        "updated_at": now,
        "ended_at": now,
    }


def close_writer(store: Store, checkpoint: Checkpoint, written: int) -> None:
    """Record that ``checkpoint``'s writer closed its log, with its final counts (``written``: its
    own count, which the row already holds unless no batch was ever written)."""
    c, cp = log_writers.c, checkpoint
    with store.write() as conn:
        exists = conn.execute(select(c.written).where(c.writer == cp.writer)).first() is not None
        identity = {"host": cp.host[:255], "pid": cp.pid, "started_at": cp.started_at, "written": written}
        values = _final_counts("closed", 0, cp.announced, cp.produced, cp.dropped, cp.sampled_out)
        _end(conn, cp.writer, exists, identity, values)


def _settle(store: Store, counts: MarkCounts) -> tuple[int, str] | None:
    """Record how the mark's writer ended; None when another process already did."""
    c = log_writers.c
    with store.write() as conn:
        store.lock(conn, "modelward.log_writers")
        row = conn.execute(select(c.state, c.written).where(c.writer == counts.writer)).first()
        if row is not None and row.state != "running":
            return None
        lost = lost_rows(counts, int(row.written) if row is not None else 0)
        state = "closed" if counts.closed and lost == 0 else "crashed"
        values = _final_counts(
            state, lost, counts.announced, counts.produced, counts.dropped, counts.sampled_out
        )
        identity = {
            "host": socket.gethostname()[:255],  # its mark is on this machine's disk
            "pid": counts.pid,
            "started_at": counts.started_at,
            "written": 0,
        }
        _end(conn, counts.writer, row is not None, identity, values)
    return lost, state


def _dead_marks(directory: Path, own: str | None) -> tuple[list[tuple[Path, int]], int]:
    """Marks nobody holds, each opened and locked (the caller closes the descriptors), and how many
    marks live processes hold."""
    found: list[tuple[Path, int]] = []
    held = 0
    if not directory.is_dir():
        return found, held
    for path in sorted(directory.iterdir()):
        name = path.name
        if path.stem == own or not (name.endswith(_SUFFIX) or name.endswith(".tmp")):
            continue
        try:
            fd = os.open(path, os.O_RDWR)
        except OSError:
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:  # held: its writer (or that writer's process) is alive
            os.close(fd)
            held += name.endswith(_SUFFIX)
            continue
        if name.endswith(".tmp"):  # its maker died while making it: no row was ever counted in it
            with contextlib.suppress(OSError):
                path.unlink()
            os.close(fd)
            continue
        found.append((path, fd))
    return found, held


def settle_dead(
    store: Store,
    directory: Path,
    *,
    own: str | None = None,
    on_lost: Callable[[int], None] | None = None,
) -> tuple[int, int]:
    """Settle every mark under ``directory`` whose writer is gone: record its loss in the store, count
    it (``on_lost``), remove the mark. Returns (marks settled, marks still held by live processes)."""
    key = store_key(store.url)
    settled = 0
    dead, held = _dead_marks(directory, own)
    for path, fd in dead:
        try:
            counts = _read(fd)
            if counts is None:  # not a mark (or torn): nothing can be read from it
                path.unlink(missing_ok=True)
                continue
            if counts.store_key != key:  # another database's writer: that store settles it
                continue
            outcome = _settle(store, counts)
            path.unlink(missing_ok=True)
            settled += 1
            if outcome is None:
                continue
            lost, state = outcome
            if lost:
                log.warning(
                    "prediction log: the server process %d (writer %s) ended without closing its log; "
                    "%d answered predictions it held were not written (counted as lost)",
                    counts.pid,
                    counts.writer,
                    lost,
                )
                if on_lost is not None:
                    with contextlib.suppress(Exception):
                        on_lost(lost)
            elif state == "crashed":
                log.info("prediction log: writer %s ended without closing; nothing lost", counts.writer)
        finally:
            os.close(fd)
    return settled, held


@dataclass(frozen=True, slots=True)
class PendingLoss:
    writer: str
    pid: int
    lost: int


def pending_losses(store: Store, directory: Path) -> list[PendingLoss]:
    """Marks of writers that are gone but not yet settled, with the loss settling would record:
    what ``modelward predictions stats`` shows before a server has started again. Reads only."""
    key = store_key(store.url)
    out: list[PendingLoss] = []
    c = log_writers.c
    for _, fd in _dead_marks(directory, None)[0]:
        try:
            counts = _read(fd)
            if counts is None or counts.store_key != key:
                continue
            with store.read() as conn:
                row = conn.execute(select(c.state, c.written).where(c.writer == counts.writer)).first()
            if row is not None and row.state != "running":
                continue
            out.append(
                PendingLoss(counts.writer, counts.pid, lost_rows(counts, int(row.written) if row else 0))
            )
        finally:
            os.close(fd)
    return out


# How often a ledger looks for marks of dead writers to settle: often while a predecessor's writer
# process may still be finishing its last batch (it holds the mark until it exits), then rarely.
_SETTLE_SOON, _SETTLE_LATER, _SETTLE_EAGERLY_FOR = 1.0, 30.0, 60.0


class Ledger:
    """One logger's crash accounting: its mark, the checkpoints its batches write, its closing, and
    the settling of dead writers' marks (from its writer thread). The logger keeps the counters and
    writes the announced ones into :attr:`map` itself (the request path's cost)."""

    def __init__(
        self, store: Store, directory: Path, *, on_lost: Callable[[int], None] | None = None
    ) -> None:
        self.store = store
        self.directory = directory
        self.on_lost = on_lost
        self.writer = uuid.uuid4().hex
        self.host = socket.gethostname()
        self.mark: Mark | None = None
        self._started = time.monotonic()
        self._next_settle = 0.0

    @property
    def map(self) -> Any:
        return None if self.mark is None else self.mark.map

    def open(self) -> None:
        """Make the mark; without it (a folder that cannot be written) nothing a crash loses is counted."""
        if self.mark is not None:
            return
        try:
            self.mark = Mark(self.directory, self.writer, store_key(self.store.url))
        except OSError as exc:
            log.warning(
                "prediction log: no mark in %s (%s): what a crash loses will not be counted",
                self.directory,
                exc,
            )

    def checkpoint(self, announced: int, produced: int, dropped: int, sampled_out: int) -> Checkpoint | None:
        if self.mark is None:
            return None
        started = self.mark.started_at
        return Checkpoint(
            self.writer, self.host, os.getpid(), started, announced, produced, dropped, sampled_out
        )

    def close(self, checkpoint: Checkpoint | None, written: int) -> None:
        """Record in the store that this writer closed its log, and remove its mark; when the store
        cannot be written, leave the mark (it says closed) for the next logger to settle."""
        mark, self.mark = self.mark, None
        if mark is None or checkpoint is None:
            return
        try:
            close_writer(self.store, checkpoint, written)
        except Exception as exc:
            log.warning("prediction log: could not record that the log closed (%s); the next start will", exc)
            mark.release()
            return
        mark.remove()

    def settle_if_due(self) -> None:
        """Settle the marks of writers that are gone into lost counts; soon again while some are held."""
        now = time.monotonic()
        if now < self._next_settle:
            return
        held = 1
        try:
            _, held = settle_dead(self.store, self.directory, own=self.writer, on_lost=self.on_lost)
        except Exception as exc:  # the store is down: the marks wait
            log.debug("prediction log: settling dead writers failed: %s", exc)
        eager = held and now - self._started < _SETTLE_EAGERLY_FOR
        self._next_settle = time.monotonic() + (_SETTLE_SOON if eager else _SETTLE_LATER)
