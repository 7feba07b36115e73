"""What `modelward register --from-mlflow` says when it cannot register, as a user sees it."""

from __future__ import annotations

from pathlib import Path

from tests.compat.conftest import numeric_frame, run_cli


def test_a_run_the_tracking_store_lacks_names_the_store_and_mlflows_own_default(
    compat_home: Path, tmp_path: Path
) -> None:
    project = tmp_path / "project"
    project.mkdir()
    (project / "mlflow.db").write_bytes(b"")  # where `mlflow.start_run()` logs without a tracking URI
    reference = project / "reference.csv"
    numeric_frame(20).to_csv(reference, index=False)
    done = run_cli(
        compat_home,
        "register",
        "--from-mlflow",
        "runs:/0123456789abcdef0123456789abcdef/model",
        "--name",
        "absent",
        "--reference",
        str(reference),
        cwd=project,
    )
    assert done.returncode == 1
    [line] = done.stderr.strip().splitlines()
    assert f"from the tracking store sqlite:///{compat_home / 'mlflow.db'}" in line
    assert f"set MODELWARD_TRACKING_URI=sqlite:///{project / 'mlflow.db'}" in line
