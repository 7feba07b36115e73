from __future__ import annotations

import hashlib
import logging
import os
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from modelward.registry.lineage import (
    DvcPointer,
    dvc_pointer,
    fingerprint_file,
    fingerprint_frame,
    git_info,
)

SRC = Path(__file__).resolve().parents[2] / "src"


# ------------------------------------------------------------------------------------------- git


def _git(repo: Path, *args: str) -> str:
    identity = ["-c", "user.email=test@example.com", "-c", "user.name=Test", "-c", "commit.gpgsign=false"]
    proc = subprocess.run(
        ["git", *identity, *args], cwd=repo, capture_output=True, text=True, check=True, timeout=30
    )
    return proc.stdout.strip()


@pytest.fixture
def repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    # Keep git from discovering a repository above tmp_path, whatever the machine's layout.
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path))
    root = tmp_path / "repo"
    root.mkdir()
    _git(root, "init", "-q", "-b", "main")
    (root / "train.py").write_text("print('hi')\n")
    _git(root, "add", "train.py")
    _git(root, "commit", "-q", "-m", "first")
    return root


def test_git_info_reports_commit_branch_and_root_of_a_clean_repo(repo: Path) -> None:
    (repo / "sub").mkdir()

    info = git_info(repo / "sub")

    assert info is not None
    assert info.commit == _git(repo, "rev-parse", "HEAD")
    assert len(info.commit) == 40
    assert info.branch == "main"
    assert info.dirty is False
    assert Path(info.root).resolve() == repo.resolve()


def test_git_info_accepts_a_file_path(repo: Path) -> None:
    info = git_info(repo / "train.py")

    assert info is not None
    assert info.commit == _git(repo, "rev-parse", "HEAD")


def test_git_info_defaults_to_the_current_directory(repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(repo)

    info = git_info()

    assert info is not None
    assert Path(info.root).resolve() == repo.resolve()


def test_git_info_flags_modified_tracked_files_as_dirty(repo: Path) -> None:
    (repo / "train.py").write_text("print('changed')\n")

    info = git_info(repo)

    assert info is not None
    assert info.dirty is True


def test_git_info_ignores_untracked_files_for_dirtiness(repo: Path) -> None:
    (repo / "model.pkl").write_bytes(b"output")

    info = git_info(repo)

    assert info is not None
    assert info.dirty is False


def test_git_info_reports_no_branch_on_detached_head(repo: Path) -> None:
    _git(repo, "checkout", "-q", "--detach")

    info = git_info(repo)

    assert info is not None
    assert info.branch is None
    assert info.commit == _git(repo, "rev-parse", "HEAD")


def test_git_info_is_none_outside_a_repository(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path.parent))

    assert git_info(tmp_path) is None


def test_git_info_is_none_in_a_repository_without_commits(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path))
    root = tmp_path / "empty"
    root.mkdir()
    _git(root, "init", "-q")

    assert git_info(root) is None


def test_git_info_is_none_when_git_is_not_installed(repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    empty_bin = repo.parent / "no-bin"
    empty_bin.mkdir()
    monkeypatch.setenv("PATH", str(empty_bin))

    assert git_info(repo) is None


def test_git_info_is_none_for_a_missing_directory(tmp_path: Path) -> None:
    assert git_info(tmp_path / "does" / "not" / "exist") is None


# ------------------------------------------------------------------------------------------- dvc


def _dvc_repo(tmp_path: Path) -> Path:
    root = tmp_path / "project"
    (root / ".dvc").mkdir(parents=True)
    return root


def test_dvc_pointer_reads_a_sibling_dvc_file(tmp_path: Path) -> None:
    root = _dvc_repo(tmp_path)
    (root / "data").mkdir()
    data = root / "data" / "train.csv"
    data.write_text("a,b\n1,2\n")
    (root / "data" / "train.csv.dvc").write_text(
        "outs:\n- md5: 0123456789abcdef0123456789abcdef\n  size: 8\n  hash: md5\n"
        "  path: train.csv\n  remote: s3store\n"
    )

    pointer = dvc_pointer(data)

    assert pointer == DvcPointer(
        dvc_file=str(root / "data" / "train.csv.dvc"),
        path="train.csv",
        md5="0123456789abcdef0123456789abcdef",
        size=8,
        remote="s3store",
        kind="dvc-file",
    )


def test_dvc_pointer_does_not_need_the_data_to_be_pulled(tmp_path: Path) -> None:
    root = _dvc_repo(tmp_path)
    (root / "train.csv.dvc").write_text("outs:\n- md5: abc\n  path: train.csv\n")

    pointer = dvc_pointer(str(root / "train.csv"))

    assert pointer is not None
    assert pointer.md5 == "abc"
    assert pointer.size is None
    assert pointer.remote is None


def test_dvc_pointer_finds_a_stage_output_in_a_parent_dvc_lock(tmp_path: Path) -> None:
    root = _dvc_repo(tmp_path)
    features = root / "data" / "features"
    features.mkdir(parents=True)
    (features / "train.parquet").write_bytes(b"PAR1")
    (root / "dvc.lock").write_text(
        "schema: '2.0'\n"
        "stages:\n"
        "  prepare:\n"
        "    cmd: python prepare.py\n"
        "    outs:\n"
        "    - path: data/features/test.parquet\n"
        "      md5: 1111111111111111111111111111111a\n"
        "      size: 10\n"
        "    - path: data/features/train.parquet\n"
        "      hash: md5\n"
        "      md5: 2222222222222222222222222222222b\n"
        "      size: 4\n"
    )

    pointer = dvc_pointer(features / "train.parquet")

    assert pointer == DvcPointer(
        dvc_file=str(root / "dvc.lock"),
        path="data/features/train.parquet",
        md5="2222222222222222222222222222222b",
        size=4,
        remote=None,
        kind="dvc-lock",
    )


def test_dvc_pointer_reports_the_tracked_parent_folder(tmp_path: Path) -> None:
    root = _dvc_repo(tmp_path)
    nested = root / "data" / "raw"
    nested.mkdir(parents=True)
    (nested / "2024.csv").write_text("x\n1\n")
    (root / "data.dvc").write_text(
        "outs:\n- md5: 3333333333333333333333333333333c.dir\n  size: 4\n  nfiles: 1\n  path: data\n"
    )

    pointer = dvc_pointer(nested / "2024.csv")

    assert pointer is not None
    assert pointer.kind == "dvc-file"
    assert pointer.dvc_file == str(root / "data.dvc")
    assert pointer.path == "data"
    assert pointer.md5 is not None
    assert pointer.md5.endswith(".dir")


def test_dvc_pointer_reports_a_folder_output_of_a_dvc_lock(tmp_path: Path) -> None:
    root = _dvc_repo(tmp_path)
    (root / "out").mkdir()
    (root / "dvc.lock").write_text(
        "schema: '2.0'\nstages:\n  split:\n    outs:\n    - path: out\n      md5: 44.dir\n      size: 9\n"
    )

    pointer = dvc_pointer(root / "out" / "part-0.csv")

    assert pointer is not None
    assert pointer.path == "out"
    assert pointer.md5 == "44.dir"


def test_dvc_pointer_is_none_for_an_untracked_file(tmp_path: Path) -> None:
    root = _dvc_repo(tmp_path)
    (root / "data").mkdir()
    (root / "data" / "other.csv.dvc").write_text("outs:\n- md5: abc\n  path: other.csv\n")
    (root / "dvc.lock").write_text(
        "schema: '2.0'\nstages:\n  s:\n    outs:\n    - path: model.pkl\n      md5: d\n"
    )
    (root / "data" / "other.csv-extra").write_text("x")

    assert dvc_pointer(root / "data" / "train.csv") is None
    # A name that merely starts like a tracked output must not match it.
    assert dvc_pointer(root / "data" / "other.csv-extra") is None


def test_dvc_pointer_stops_at_the_dvc_repository_root(tmp_path: Path) -> None:
    (tmp_path / "dvc.lock").write_text(
        "schema: '2.0'\nstages:\n  s:\n    outs:\n    - path: project/data.csv\n      md5: d\n"
    )
    root = _dvc_repo(tmp_path)

    assert dvc_pointer(root / "data.csv") is None


def test_dvc_pointer_searches_up_to_the_filesystem_root_without_a_dvc_folder(tmp_path: Path) -> None:
    deep = tmp_path / "a" / "b"
    deep.mkdir(parents=True)
    (tmp_path / "dvc.lock").write_text(
        "schema: '2.0'\nstages:\n  s:\n    outs:\n    - path: a/b/c.csv\n      md5: e\n      size: 1\n"
    )

    pointer = dvc_pointer(deep / "c.csv")

    assert pointer is not None
    assert pointer.md5 == "e"


@pytest.mark.parametrize(
    "content",
    [
        "outs: [md5: abc\n  path: train.csv\n",  # not YAML
        "- just\n- a list\n",  # not a mapping
        "outs: {path: train.csv}\n",  # outs is not a list
        "outs:\n- md5: abc\n",  # no path
    ],
)
def test_dvc_pointer_is_none_and_warns_for_a_malformed_dvc_file(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, content: str
) -> None:
    root = _dvc_repo(tmp_path)
    (root / "train.csv.dvc").write_text(content)

    with caplog.at_level(logging.WARNING):
        pointer = dvc_pointer(root / "train.csv")

    assert pointer is None
    assert any(
        record.levelno == logging.WARNING and "train.csv.dvc" in record.getMessage()
        for record in caplog.records
    )


def test_dvc_pointer_is_none_and_warns_for_a_malformed_dvc_lock(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    root = _dvc_repo(tmp_path)
    (root / "dvc.lock").write_text("stages:\n  prepare: [unclosed\n")

    with caplog.at_level(logging.WARNING):
        pointer = dvc_pointer(root / "train.csv")

    assert pointer is None
    assert any("dvc.lock" in record.getMessage() for record in caplog.records)


# ------------------------------------------------------------------------------------ fingerprints


def test_fingerprint_file_matches_hashlib_on_a_multi_mib_file(tmp_path: Path) -> None:
    payload = np.random.default_rng(0).bytes(3 * (1 << 20) + 12345)
    target = tmp_path / "blob.bin"
    target.write_bytes(payload)

    assert fingerprint_file(target) == hashlib.sha256(payload).hexdigest()
    assert fingerprint_file(str(target)) == hashlib.sha256(payload).hexdigest()


def _frame() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "age": [31, 45, 52],
            "balance": [0.0, 1250.5, np.nan],
            "geo": ["France", "Germany", None],
            "active": [True, False, True],
        }
    )


def test_fingerprint_frame_ignores_the_index() -> None:
    reindexed = _frame().set_axis([10, 20, 30])

    assert fingerprint_frame(reindexed) == fingerprint_frame(_frame())
    assert fingerprint_frame(_frame().set_axis(["a", "b", "c"])) == fingerprint_frame(_frame())


def test_fingerprint_frame_changes_when_one_value_changes() -> None:
    changed = _frame()
    changed.loc[1, "balance"] = 1250.25

    assert fingerprint_frame(changed) != fingerprint_frame(_frame())


def test_fingerprint_frame_changes_when_a_column_is_renamed() -> None:
    renamed = _frame().rename(columns={"geo": "geography"})

    assert fingerprint_frame(renamed) != fingerprint_frame(_frame())


def test_fingerprint_frame_changes_when_columns_are_reordered() -> None:
    reordered = _frame()[["balance", "age", "geo", "active"]]

    assert fingerprint_frame(reordered) != fingerprint_frame(_frame())


def test_fingerprint_frame_changes_when_an_int_column_becomes_str() -> None:
    as_str = _frame().astype({"age": str})

    assert fingerprint_frame(as_str) != fingerprint_frame(_frame())


def test_fingerprint_frame_changes_when_an_int_column_becomes_float() -> None:
    as_float = _frame().astype({"age": "float64"})

    assert fingerprint_frame(as_float) != fingerprint_frame(_frame())


def test_fingerprint_frame_tells_missing_values_from_their_spelling() -> None:
    def digest(*values: object) -> str:
        return fingerprint_frame(pd.DataFrame({"c": pd.Series(values, dtype=object)}))

    assert digest("a", np.nan) != digest("a", "nan")
    assert digest("a", None) != digest("a", "nan")
    assert digest("a", None) != digest("a", "None")
    assert digest("a", pd.NA) != digest("a", "<NA>")
    # Missing is missing, however it is spelled: pandas itself converts between these.
    assert digest("a", None) == digest("a", np.nan) == digest("a", pd.NA)


def test_fingerprint_frame_normalises_nan_bit_patterns() -> None:
    odd_nan = np.frombuffer(struct.pack("<Q", 0x7FF8000000000ABC), dtype="<f8")[0]
    assert np.isnan(odd_nan)

    plain = pd.DataFrame({"x": [1.0, np.nan]})
    odd = pd.DataFrame({"x": [1.0, odd_nan]})

    assert fingerprint_frame(odd) == fingerprint_frame(plain)


def test_fingerprint_frame_keeps_wide_integers_exact() -> None:
    big = 2**60
    a = pd.DataFrame({"x": np.array([big], dtype=np.int64)})
    b = pd.DataFrame({"x": np.array([big + 1], dtype=np.int64)})

    # big and big + 1 are the same float64, so only an integer encoding tells them apart.
    assert fingerprint_frame(a) != fingerprint_frame(b)


def test_fingerprint_frame_is_the_same_for_object_and_str_dtypes() -> None:
    as_object = pd.DataFrame({"s": pd.Series(["x", None], dtype=object)})
    as_str = pd.DataFrame({"s": pd.Series(["x", None], dtype="str")})

    assert fingerprint_frame(as_object) == fingerprint_frame(as_str)


def test_fingerprint_frame_follows_its_documented_encoding() -> None:
    frame = pd.DataFrame({"n": [1, 2], "s": ["é", None]})

    u64 = struct.Struct("<Q").pack
    expected = b"MWFRAME1" + u64(2) + u64(2)
    expected += u64(1) + b"n" + b"id" + struct.pack("<2d", 1.0, 2.0)
    expected += u64(1) + b"s" + b"Os" + b"S" + u64(2) + "é".encode() + b"N"

    assert fingerprint_frame(frame) == hashlib.sha256(expected).hexdigest()


_SUBPROCESS_SNIPPET = """
import sys
sys.path.insert(0, sys.argv[1])
import numpy as np
import pandas as pd
from modelward.registry.lineage import fingerprint_frame
frame = pd.DataFrame({
    "age": [31, 45, 52],
    "balance": [0.0, 1250.5, np.nan],
    "geo": ["France", "Germany", None],
    "active": [True, False, True],
})
print(fingerprint_frame(frame))
"""


def test_fingerprint_frame_is_reproducible_across_processes() -> None:
    digests = []
    for hash_seed in ("1", "2"):
        env = {**os.environ, "PYTHONHASHSEED": hash_seed}
        proc = subprocess.run(
            [sys.executable, "-c", _SUBPROCESS_SNIPPET, str(SRC)],
            capture_output=True,
            text=True,
            check=True,
            env=env,
            timeout=120,
        )
        digests.append(proc.stdout.strip())

    assert digests[0] == digests[1] == fingerprint_frame(_frame())
