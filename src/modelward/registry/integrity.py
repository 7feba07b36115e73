"""Artifact pins: the sha256 of every file of a model version, recorded at registration and
checked before loading, so one changed byte refuses the load and names the file."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from modelward.governance.pins import LoadPolicy

__all__ = ["FilePin", "PinnedManifest", "diff_manifest", "hash_bytes", "hash_tree"]

_CHUNK = 1 << 20

# MLflow rewrites this bookkeeping file in a model's folder whenever the model is registered under
# a name, including by a later registration of the same source; it is never loaded.
UNPINNED = frozenset({"registered_model_meta"})


@dataclass(frozen=True, slots=True)
class FilePin:
    path: str  # relative, "/"-separated
    sha256: str
    size: int


@dataclass(frozen=True, slots=True)
class PinnedManifest:
    """A version's pins, keyed by path, and its load policy, both vouched for by the audit chain."""

    pins: Mapping[str, FilePin]
    policy: LoadPolicy


def hash_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _hash_file(path: Path) -> tuple[str, int]:
    digest = hashlib.sha256()
    size = 0
    with path.open("rb") as fh:
        while chunk := fh.read(_CHUNK):
            digest.update(chunk)
            size += len(chunk)
    return digest.hexdigest(), size


def hash_tree(root: str | os.PathLike[str], prefix: str = "") -> dict[str, FilePin]:
    """Pins of every regular file below ``root``, keyed by ``prefix + relative path``."""
    base = Path(root)
    pins: dict[str, FilePin] = {}
    for path in sorted(base.rglob("*")):
        if path.is_file() and path.name not in UNPINNED:
            rel = prefix + path.relative_to(base).as_posix()
            sha, size = _hash_file(path)
            pins[rel] = FilePin(rel, sha, size)
    return pins


def diff_manifest(expected: Mapping[str, FilePin], found: Mapping[str, FilePin]) -> list[str]:
    """Human-readable differences; empty when ``found`` matches ``expected`` exactly."""
    problems: list[str] = []
    for path, pin in sorted(expected.items()):
        got = found.get(path)
        if got is None:
            problems.append(f"{path} is missing")
        elif got.sha256 != pin.sha256:
            problems.append(
                f"{path} sha256 is {got.sha256[:12]}..., expected {pin.sha256[:12]}... "
                "(the file was modified)"
            )
    problems.extend(f"{path} was added" for path in sorted(set(found) - set(expected)))
    return problems
