"""`modelward predict --output`: a quoted ``~`` means the home folder, a failed run leaves no part
of a file anywhere, and an existing symbolic link is refused. The real CLI, in a real process."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from tests.serving.conftest import server_env


def _predict(home: Path, cwd: Path, user_home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = server_env(home, HOME=str(user_home))
    return subprocess.run(
        [sys.executable, "-m", "modelward", "predict", "churn", *args],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
    )


@pytest.fixture
def user_home(tmp_path: Path) -> Path:
    folder = tmp_path / "user"
    folder.mkdir()
    return folder


@pytest.fixture
def fifty_rows(churn_frame: pd.DataFrame, tmp_path: Path) -> Path:
    source = tmp_path / "in.parquet"
    churn_frame.drop(columns=["churn"]).head(50).to_parquet(source)
    return source


@pytest.mark.parametrize("suffix", ["parquet", "csv"])
def test_a_failure_after_the_first_chunk_leaves_nothing_under_a_quoted_tilde(
    churn_home: Path, churn_frame: pd.DataFrame, tmp_path: Path, user_home: Path, suffix: str
) -> None:
    data = churn_frame.drop(columns=["churn"]).astype({"age": object})
    data.loc[1500, "age"] = "zz"  # in the second chunk: the first one was already written
    source = tmp_path / "in.csv"
    data.to_csv(source, index=False)
    proc = _predict(
        churn_home,
        tmp_path,
        user_home,
        "--input",
        str(source),
        "--output",
        f"~/x.{suffix}",
        "--chunk-size",
        "1000",
    )
    assert proc.returncode == 1
    assert "'zz' is not a number" in proc.stderr
    assert list(user_home.iterdir()) == []
    assert not (tmp_path / "~").exists()


def test_a_quoted_tilde_writes_into_the_home_folder(
    churn_home: Path, fifty_rows: Path, tmp_path: Path, user_home: Path
) -> None:
    proc = _predict(churn_home, tmp_path, user_home, "--input", str(fifty_rows), "--output", "~/x.parquet")
    assert proc.returncode == 0, proc.stderr
    assert len(pd.read_parquet(user_home / "x.parquet")) == 50
    assert sorted(p.name for p in user_home.iterdir()) == ["x.parquet"]
    assert not (tmp_path / "~").exists()


def test_an_existing_symlink_as_output_is_refused(
    churn_home: Path, fifty_rows: Path, tmp_path: Path, user_home: Path
) -> None:
    precious = tmp_path / "precious.csv"
    precious.write_text("keep me")
    link = tmp_path / "out.csv"
    link.symlink_to(precious)
    proc = _predict(churn_home, tmp_path, user_home, "--input", str(fifty_rows), "--output", str(link))
    assert proc.returncode == 1
    assert "symbolic link" in proc.stderr
    assert precious.read_text() == "keep me"
