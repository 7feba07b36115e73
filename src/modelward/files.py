"""Every file modelward writes for its user goes through here: whole or not at all, never through a link.

Reports, exports, batch predictions and the compiled-model cache are written by :func:`atomic_output`
(or :func:`write_bytes` / :func:`write_text`), which

- expands ``~`` (a quoted ``'~/x.parquet'`` reaches the program unexpanded) and creates the folder;
- refuses a symbolic link at the target with :class:`OSError` (``ELOOP``): writing through it would
  overwrite whatever it points at, such as a file planted in a shared folder pointing at the user's
  own files. The link is left alone; remove it or choose another path. Links in the folders above
  the target are followed as usual. A folder at the target is refused too (``IsADirectoryError``);
- writes to a hidden temporary file in the target's folder, created exclusively and without
  following links (``O_CREAT | O_EXCL | O_NOFOLLOW``, mode 0666 less the umask), synced to disk;
- renames it over the target in one step (``os.replace``, which replaces a link planted meanwhile
  rather than following it): a reader sees the old file or the new one, never a part;
- removes the temporary file when anything fails (or the writer discards it), leaving an existing
  target as it was.
"""

from __future__ import annotations

import errno
import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import BinaryIO

__all__ = ["AtomicFile", "atomic_output", "output_path", "write_bytes", "write_text"]

_SUFFIX = ".partial"


def output_path(path: str | os.PathLike[str]) -> Path:
    """``path`` with ``~`` expanded, refused when it is a symbolic link or a folder."""
    target = Path(path).expanduser()
    if target.is_symlink():
        raise OSError(
            errno.ELOOP,
            "refusing to write through a symbolic link (it would overwrite what the link points at); "
            "remove the link or choose another path",
            str(target),
        )
    if target.is_dir():
        raise IsADirectoryError(errno.EISDIR, "the output is a folder; give a file name", str(target))
    return target


class AtomicFile:
    """The file being written: write to :attr:`stream`; :meth:`discard` to leave the target alone."""

    def __init__(self, path: Path, stream: BinaryIO, temporary: Path) -> None:
        self.path = path
        self.stream = stream
        self.temporary = temporary
        self.discarded = False

    def discard(self) -> None:
        self.discarded = True


def _create_temporary(target: Path, mode: int) -> tuple[Path, int]:
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
    while True:
        # Hidden, beside the target (so the rename stays on one file system), and never a name taken.
        temporary = target.with_name(f".{target.name[:180]}.{secrets.token_hex(6)}{_SUFFIX}")
        try:
            return temporary, os.open(temporary, flags, mode)
        except FileExistsError:
            continue


def _sync_folder(folder: Path) -> None:
    """Make the rename itself durable; not every platform lets a folder be opened or synced."""
    with suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


@contextmanager
def atomic_output(path: str | os.PathLike[str], *, mode: int = 0o666) -> Iterator[AtomicFile]:
    """Write ``path`` whole or not at all; see the module docstring. Yields an :class:`AtomicFile`.

    ``mode`` is the new file's permissions before the umask (0o600: for its owner only).
    """
    target = output_path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    temporary, fd = _create_temporary(target, mode)
    renamed = False
    try:
        with os.fdopen(fd, "wb") as stream:
            out = AtomicFile(target, stream, temporary)
            yield out
            if not out.discarded:
                stream.flush()
                os.fsync(stream.fileno())
        if not out.discarded:
            output_path(target)  # a link or folder put there while writing is refused, not replaced
            os.replace(temporary, target)
            renamed = True
            _sync_folder(target.parent)
    finally:
        if not renamed:
            with suppress(FileNotFoundError):
                temporary.unlink()


def write_bytes(path: str | os.PathLike[str], data: bytes, *, mode: int = 0o666) -> Path:
    """Write ``data`` to ``path`` through :func:`atomic_output`; returns the path written."""
    with atomic_output(path, mode=mode) as out:
        out.stream.write(data)
    return out.path


def write_text(
    path: str | os.PathLike[str], text: str, *, encoding: str = "utf-8", mode: int = 0o666
) -> Path:
    """Write ``text`` to ``path`` through :func:`atomic_output`; returns the path written."""
    return write_bytes(path, text.encode(encoding), mode=mode)
