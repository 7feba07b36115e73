"""modelward.files: outputs are written whole or not at all, never through a symbolic link."""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path

import pytest

from modelward.files import atomic_output, output_path, write_bytes, write_text


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".partial"))


def test_a_new_file_is_written_whole_with_the_umask_mode(tmp_path: Path) -> None:
    target = tmp_path / "deep" / "er" / "report.html"
    assert write_text(target, "<p>é</p>") == target
    assert target.read_text("utf-8") == "<p>é</p>"
    umask = os.umask(0o022)
    os.umask(umask)
    assert stat.S_IMODE(target.stat().st_mode) == 0o666 & ~umask
    assert _leftovers(target.parent) == []


def test_an_existing_file_is_replaced_in_one_step(tmp_path: Path) -> None:
    target = tmp_path / "out.csv"
    target.write_text("old")
    with atomic_output(target) as out:
        out.stream.write(b"new ")
        # written beside the target, hidden; the target still holds the old text meanwhile
        assert out.temporary.parent == tmp_path and out.temporary.name.startswith(".out.csv.")
        assert target.read_text() == "old"
        out.stream.write(b"text")
    assert target.read_text() == "new text"
    assert _leftovers(tmp_path) == []


def test_a_symlink_at_the_target_is_refused_and_its_target_untouched(tmp_path: Path) -> None:
    precious = tmp_path / "precious.txt"
    precious.write_text("keep me")
    link = tmp_path / "report.html"
    link.symlink_to(precious)
    with pytest.raises(OSError, match="symbolic link") as err:
        write_text(link, "<html>")
    assert err.value.errno == errno.ELOOP
    assert precious.read_text() == "keep me"
    assert link.is_symlink()
    assert _leftovers(tmp_path) == []


def test_a_dangling_symlink_is_refused_and_nothing_is_created_where_it_points(tmp_path: Path) -> None:
    link = tmp_path / "out.parquet"
    link.symlink_to(tmp_path / "elsewhere.parquet")
    with pytest.raises(OSError, match="symbolic link"):
        write_bytes(link, b"x")
    assert not (tmp_path / "elsewhere.parquet").exists()


def test_a_symlink_planted_while_writing_is_refused(tmp_path: Path) -> None:
    precious = tmp_path / "precious.txt"
    precious.write_text("keep me")
    target = tmp_path / "out.txt"
    with pytest.raises(OSError, match="symbolic link"), atomic_output(target) as out:
        out.stream.write(b"data")
        target.symlink_to(precious)
    assert precious.read_text() == "keep me"
    assert _leftovers(tmp_path) == []


def test_a_failure_removes_the_temporary_file_and_keeps_the_old_target(tmp_path: Path) -> None:
    target = tmp_path / "out.csv"
    target.write_text("old")
    with pytest.raises(RuntimeError, match="boom"), atomic_output(target) as out:
        out.stream.write(b"half")
        raise RuntimeError("boom")
    assert target.read_text() == "old"
    assert _leftovers(tmp_path) == []


def test_a_discarded_output_leaves_no_file(tmp_path: Path) -> None:
    with atomic_output(tmp_path / "empty.parquet") as out:
        out.stream.write(b"nothing worth keeping")
        out.discard()
    assert list(tmp_path.iterdir()) == []


def test_tilde_is_expanded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.chdir(tmp_path)
    assert write_bytes("~/x.bin", b"1") == tmp_path / "x.bin"
    assert (tmp_path / "x.bin").read_bytes() == b"1"
    assert not (tmp_path / "~").exists()


def test_a_folder_is_refused(tmp_path: Path) -> None:
    with pytest.raises(IsADirectoryError):
        output_path(tmp_path)
