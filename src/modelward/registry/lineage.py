"""Where a model came from: the code commit, the DVC-tracked data and content fingerprints.

These helpers only look at the local filesystem and the ``git`` executable; they never import MLflow
or DVC, so that recording lineage cannot fail because an optional tool is missing. Each of them
answers ``None`` rather than raising when the information simply is not there (no repository, an
untracked file), because a missing lineage record must never block a registration.
"""

from __future__ import annotations

import hashlib
import logging
import os
import struct
import subprocess
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any, Literal

import numpy as np
import pandas as pd
import yaml  # type: ignore[import-untyped,unused-ignore]

__all__ = [
    "DvcPointer",
    "GitInfo",
    "dvc_pointer",
    "fingerprint_file",
    "fingerprint_frame",
    "git_info",
]

logger = logging.getLogger(__name__)

_GIT_TIMEOUT_S = 5.0
_CHUNK_BYTES = 1 << 20


# --------------------------------------------------------------------------------------------- git


@dataclass(frozen=True, slots=True)
class GitInfo:
    """The state of the git working tree a model was trained from.

    ``branch`` is ``None`` on a detached HEAD. ``dirty`` is true when tracked files differ from
    ``commit`` (untracked files are ignored: they are usually outputs, not code).
    """

    commit: str
    branch: str | None
    dirty: bool
    root: str


def _git(args: list[str], cwd: Path) -> str | None:
    try:
        proc = subprocess.run(
            ["git", *args],
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=_GIT_TIMEOUT_S,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired, UnicodeDecodeError):
        # OSError covers "git is not installed" and a cwd that vanished under us.
        return None
    if proc.returncode != 0:
        return None
    return proc.stdout.strip()


def git_info(path: str | os.PathLike[str] | None = None) -> GitInfo | None:
    """Describe the git repository containing ``path`` (default: the current directory).

    ``path`` may be a file or a directory. Returns ``None`` when ``path`` is not inside a git
    repository, when ``git`` is not installed, when the repository has no commit yet, or when a
    ``git`` call fails or takes longer than 5 seconds. If only the ``status`` call fails, the tree is
    reported as dirty: claiming a clean tree we could not check would be a false lineage record.
    """
    where = Path(path) if path is not None else Path.cwd()
    if not where.is_dir():
        where = where.parent
    if not where.is_dir():
        return None

    root = _git(["rev-parse", "--show-toplevel"], where)
    if not root:
        return None
    # --verify makes an unborn HEAD (no commit yet) a failure instead of echoing "HEAD" back.
    commit = _git(["rev-parse", "--verify", "--quiet", "HEAD"], where)
    if not commit:
        return None
    branch = _git(["rev-parse", "--abbrev-ref", "HEAD"], where)
    if branch == "HEAD" or not branch:
        branch = None
    # --no-optional-locks: a read-only probe must not take index.lock and break a concurrent git command.
    status = _git(["--no-optional-locks", "status", "--porcelain", "--untracked-files=no"], where)
    dirty = True if status is None else bool(status)
    return GitInfo(commit=commit, branch=branch, dirty=dirty, root=str(Path(root)))


# --------------------------------------------------------------------------------------------- dvc


@dataclass(frozen=True, slots=True)
class DvcPointer:
    """The DVC record that tracks a data file.

    ``dvc_file`` is the absolute path of the ``.dvc`` or ``dvc.lock`` file holding the record;
    ``path`` is the tracked output exactly as written there (relative to ``dvc_file``'s folder). When a
    whole directory is tracked, ``path`` names that directory and ``md5`` ends with ``".dir"``.
    """

    dvc_file: str
    path: str
    md5: str | None
    size: int | None
    remote: str | None
    kind: Literal["dvc-file", "dvc-lock"]


class _MalformedDvcFile(ValueError):
    pass


def _norm(path: str | os.PathLike[str]) -> str:
    # No resolve(): DVC often links workspace files into its cache, and following the link would
    # make the file look like it lives under .dvc/cache.
    return os.path.normcase(os.path.normpath(os.path.abspath(path)))


def _covers(output: str, target: str) -> bool:
    return target == output or target.startswith(output.rstrip(os.sep) + os.sep)


def _load_yaml_mapping(file: Path) -> Mapping[str, Any]:
    try:
        data = yaml.safe_load(file.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise _MalformedDvcFile(str(exc)) from exc
    if not isinstance(data, Mapping):
        raise _MalformedDvcFile("top level is not a mapping")
    return data


def _outs(container: Mapping[str, Any]) -> Iterator[Mapping[str, Any]]:
    outs = container.get("outs", [])
    if outs is None:
        return
    if not isinstance(outs, list):
        raise _MalformedDvcFile("'outs' is not a list")
    for out in outs:
        if not isinstance(out, Mapping) or not isinstance(out.get("path"), str):
            raise _MalformedDvcFile("an entry of 'outs' has no string 'path'")
        yield out


def _lock_stages(data: Mapping[str, Any]) -> Iterator[Mapping[str, Any]]:
    if "stages" in data:
        stages = data["stages"]
    elif "schema" in data:
        stages = {}
    else:
        # DVC 1.x lock files had no schema key and listed the stages at the top level.
        stages = data
    if not isinstance(stages, Mapping):
        raise _MalformedDvcFile("'stages' is not a mapping")
    for stage in stages.values():
        if not isinstance(stage, Mapping):
            raise _MalformedDvcFile("a stage is not a mapping")
        yield stage


def _match(
    file: Path, outs: Iterator[Mapping[str, Any]], target: str, kind: Literal["dvc-file", "dvc-lock"]
) -> DvcPointer | None:
    for out in outs:
        rel: str = out["path"]
        # DVC writes POSIX separators on every platform.
        output = _norm(file.parent.joinpath(*PurePosixPath(rel).parts))
        if not _covers(output, target):
            continue
        md5 = out.get("md5")
        size = out.get("size")
        remote = out.get("remote")
        return DvcPointer(
            dvc_file=str(file),
            path=rel,
            md5=md5 if isinstance(md5, str) else None,
            size=size if isinstance(size, int) and not isinstance(size, bool) else None,
            remote=remote if isinstance(remote, str) else None,
            kind=kind,
        )
    return None


def _check(file: Path, target: str, kind: Literal["dvc-file", "dvc-lock"]) -> DvcPointer | None:
    if not file.is_file():
        return None
    try:
        data = _load_yaml_mapping(file)
        outs: Iterator[Mapping[str, Any]]
        if kind == "dvc-file":
            outs = _outs(data)
        else:
            outs = (out for stage in _lock_stages(data) for out in _outs(stage))
        return _match(file, outs, target, kind)
    except _MalformedDvcFile as exc:
        # Keep looking: a broken file elsewhere in the tree says nothing about whether ours is tracked.
        logger.warning("ignoring malformed DVC file %s: %s", file, exc)
        return None


def dvc_pointer(data_path: str | os.PathLike[str]) -> DvcPointer | None:
    """Find the DVC record tracking ``data_path``, or ``None`` when it is not DVC-tracked.

    The search walks from the file's folder up to the DVC repository root (the folder holding
    ``.dvc/``), or to the filesystem root when there is none. In each folder it checks, nearest first:

    * ``<entry>.dvc`` where ``<entry>`` is ``data_path`` itself or the ancestor folder of it that lives
      in this folder (``data.dvc`` tracks everything under ``data/``);
    * ``dvc.lock``, for a stage output that is ``data_path`` or one of its ancestor folders.

    ``data_path`` need not exist (the data may not have been pulled). A malformed ``.dvc`` or
    ``dvc.lock`` file is logged as a warning and skipped.
    """
    target = _norm(data_path)
    entry = Path(target)
    folder = entry.parent
    while True:
        found = _check(folder / f"{entry.name}.dvc", target, "dvc-file") or _check(
            folder / "dvc.lock", target, "dvc-lock"
        )
        if found is not None:
            return found
        if (folder / ".dvc").is_dir() or folder.parent == folder:
            return None
        entry, folder = folder, folder.parent


# ------------------------------------------------------------------------------------- fingerprints


def fingerprint_file(path: str | os.PathLike[str]) -> str:
    """Return the SHA-256 hex digest of the file's bytes, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(_CHUNK_BYTES):
            digest.update(chunk)
    return digest.hexdigest()


_FRAME_MAGIC = b"MWFRAME1"
_U64 = struct.Struct("<Q")
_CANONICAL_NAN = np.float64(np.nan)
_FLOAT_EXACT_INT = 2**53


def _prefixed(text: str) -> bytes:
    raw = text.encode("utf-8", errors="surrogatepass")
    return _U64.pack(len(raw)) + raw


def _is_missing(value: Any) -> bool:
    if value is None:
        return True
    try:
        missing = pd.isna(value)
    except (TypeError, ValueError):
        return False
    # pd.isna answers element-wise for list-like cells; such a cell is a value, not a missing one.
    return isinstance(missing, bool | np.bool_) and bool(missing)


def _encode_strings(series: pd.Series[Any]) -> bytes:
    out = bytearray()
    for value in series.to_numpy(dtype=object):
        if _is_missing(value):
            out += b"N"
        else:
            out += b"S" + _prefixed(str(value))
    return bytes(out)


def _encode_floats(series: pd.Series[Any]) -> bytes:
    values = series.to_numpy(dtype=np.float64, na_value=np.nan, copy=True)
    # Adding 0.0 turns -0.0 into 0.0: the two compare equal, so they should hash equal too.
    values = values + 0.0
    values[np.isnan(values)] = _CANONICAL_NAN
    return values.astype("<f8", copy=False).tobytes()


def _encode_column(series: pd.Series[Any]) -> tuple[bytes, bytes]:
    kind: str = series.dtype.kind
    if kind in "iu":
        has_missing = bool(series.isna().any())
        present = series.dropna()
        if kind == "i":
            ints = present.to_numpy(dtype=np.int64)
            fits = ints.size == 0 or (
                int(ints.min()) >= -_FLOAT_EXACT_INT and int(ints.max()) <= _FLOAT_EXACT_INT
            )
        else:
            ints = present.to_numpy(dtype=np.uint64)
            fits = ints.size == 0 or int(ints.max()) <= _FLOAT_EXACT_INT
        if fits:
            return (kind + "d").encode(), _encode_floats(series)
        if has_missing:
            return (kind + "s").encode(), _encode_strings(series)
        if kind == "i":
            return b"iq", ints.astype("<i8", copy=False).tobytes()
        return b"uQ", ints.astype("<u8", copy=False).tobytes()
    if kind in "bf":
        return (kind + "d").encode(), _encode_floats(series)
    return (kind + "s").encode(), _encode_strings(series)


def fingerprint_frame(frame: pd.DataFrame) -> str:
    """Return a SHA-256 hex digest of a data frame's content.

    The digest ignores the index and depends on the column names, their order, each column's dtype
    *kind* and every value. It is the same across runs, processes, platforms and pandas versions
    because it hashes the following canonical byte encoding (``u64`` is an unsigned 64-bit
    little-endian integer, ``str(x)`` is UTF-8 encoded):

    1. ``b"MWFRAME1"``, ``u64(n_rows)``, ``u64(n_columns)``.
    2. For each column, left to right:

       a. ``u64(len(name)) + name`` where ``name`` is ``str(column_label)`` in UTF-8;
       b. a two-byte ASCII tag: the dtype's ``kind`` character (``b`` bool, ``i`` signed int,
          ``u`` unsigned int, ``f`` float, ``O`` object/string/category, ``M`` datetime, ...)
          followed by the value encoding character below;
       c. the values, in row order:

          * ``d``: the column cast to float64, ``-0.0`` replaced by ``0.0`` and every NaN
            (including missing values of nullable dtypes) replaced by the bit pattern
            ``0x7FF8000000000000``, as little-endian IEEE-754 doubles. Used for bool, float and
            integer columns whose values all lie in ``[-2**53, 2**53]``.
          * ``q`` / ``Q``: little-endian int64 / uint64, for signed / unsigned integer columns with a
            value outside that range and no missing value.
          * ``s``: per value, ``b"N"`` when missing (``None``, NaN, ``pd.NA``, ``NaT``), otherwise
            ``b"S" + u64(len(text)) + text`` with ``text = str(value)``. Used for every other kind,
            and for wide integer columns that also have missing values.

    Because only the dtype *kind* is recorded, ``int32`` and ``Int64`` columns holding the same
    values hash alike, as do ``object`` and ``str`` columns holding the same strings.
    """
    digest = hashlib.sha256()
    digest.update(_FRAME_MAGIC + _U64.pack(len(frame)) + _U64.pack(frame.shape[1]))
    for position, label in enumerate(frame.columns):
        # Positional access: duplicate column labels must not collapse into a sub-frame.
        tag, payload = _encode_column(frame.iloc[:, position])
        digest.update(_prefixed(str(label)))
        digest.update(tag)
        digest.update(payload)
    return digest.hexdigest()
