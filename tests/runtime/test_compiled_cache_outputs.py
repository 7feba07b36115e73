"""The compiled-model cache is written through modelward.files: whole, private, never through a link."""

from __future__ import annotations

import json
import logging
import stat
from pathlib import Path

import pytest

from modelward.runtime._convert import InputSpec, cache_read, cache_write

SPEC = InputSpec(names=("a", "b"), kinds=("number", "number"), layout="matrix")


def test_a_written_entry_reads_back_and_is_private(tmp_path: Path) -> None:
    cache = tmp_path / "compiled"
    cache_write(cache, "k1", b"onnx bytes", SPEC, 0.0)
    assert cache_read(cache, "k1", SPEC) == b"onnx bytes"
    for name in ("k1.onnx", "k1.json"):
        assert stat.S_IMODE((cache / name).stat().st_mode) == 0o600
    assert sorted(p.name for p in cache.iterdir()) == ["k1.json", "k1.onnx"]


def test_a_symlink_planted_at_an_entry_is_not_written_through(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    cache = tmp_path / "compiled"
    cache.mkdir()
    precious = tmp_path / "precious.txt"
    precious.write_text("keep me")
    (cache / "k1.onnx").symlink_to(precious)
    with caplog.at_level(logging.WARNING, logger="modelward.runtime.compiled"):
        cache_write(cache, "k1", b"onnx bytes", SPEC, 0.0)
    assert precious.read_text() == "keep me"
    assert "symbolic link" in caplog.text
    assert not list(cache.glob(".*.partial"))


def test_an_entry_replaces_the_previous_one_whole(tmp_path: Path) -> None:
    cache = tmp_path / "compiled"
    cache_write(cache, "k1", b"old", SPEC, 0.0)
    cache_write(cache, "k1", b"new bytes", SPEC, 0.0)
    assert cache_read(cache, "k1", SPEC) == b"new bytes"
    assert json.loads((cache / "k1.json").read_text())["size"] == len(b"new bytes")
