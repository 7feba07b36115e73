"""examples/cicd: the GitHub Actions workflow checked against GitHub's schema, then its ``run:`` steps
run in order, twice, in a temporary git repository whose data set DVC tracks (a local DVC remote):
the first run releases a champion, the second validates a new model against it before registering it
and starts a canary; a third, trained on shuffled labels, fails the gates and stops before the register
step. Registration records the DVC pointer and the git commit."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from tests.serving.conftest import server_env

# The set-up trains, registers and starts a server: minutes on a loaded machine.
pytestmark = pytest.mark.timeout(1800)

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "cicd"
WORKFLOW = EXAMPLE / ".github" / "workflows" / "model.yml"
GENERATE = EXAMPLE.parent / "churn" / "generate.py"
NOT_RUN_HERE = {"install"}  # this environment already has what the install step brings

pytest.importorskip("dvc")


def _sh(cwd: Path, env: dict[str, str], *args: str) -> str:
    proc = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=600, check=False)
    assert proc.returncode == 0, f"{args}: {proc.stdout}\n{proc.stderr}"
    return proc.stdout


def _data(repo: Path, env: dict[str, str], rows: int, seed: int) -> None:
    data = repo / "data"
    data.mkdir(exist_ok=True)
    _sh(
        repo,
        env,
        sys.executable,
        str(GENERATE),
        "--rows",
        str(rows),
        "--seed",
        str(seed),
        "--out",
        str(data / "train.parquet"),
    )
    _sh(
        repo,
        env,
        sys.executable,
        str(GENERATE),
        "--rows",
        "600",
        "--seed",
        "99",
        "--out",
        str(data / "holdout.parquet"),
    )


def _commit(repo: Path, env: dict[str, str], message: str) -> str:
    _sh(repo, env, sys.executable, "-m", "dvc", "add", "-q", "data")
    _sh(repo, env, sys.executable, "-m", "dvc", "push", "-q")
    _sh(repo, env, "git", "add", "-A")
    _sh(repo, env, "git", "commit", "-q", "-m", message)
    return _sh(repo, env, "git", "rev-parse", "HEAD").strip()


def run_workflow(
    repo: Path, env: dict[str, str], commit: str, *, failing: str | None = None
) -> tuple[list[str], str]:
    """Every ``run:`` step of the job, in order, as GitHub's runner runs it (bash -e, pipefail), until
    one fails: only the step named ``failing`` may. The steps that ran, and the failed step's output."""
    shutil.rmtree(repo / "data")  # what CI starts from: the pointer in git, the data in the remote
    shutil.rmtree(repo / ".dvc" / "cache", ignore_errors=True)
    (job,) = yaml.safe_load(WORKFLOW.read_text())["jobs"].values()
    ran = []
    plain = {
        k: str(v) for k, v in job.get("env", {}).items() if "${{" not in str(v)
    }  # secrets: the test's own
    step_env = {**env, **plain, "GITHUB_SHA": commit, "GITHUB_OUTPUT": str(repo.parent / "github-output")}
    for step in job["steps"]:
        if "run" not in step or step.get("id") in NOT_RUN_HERE:
            continue
        proc = subprocess.run(
            ["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", step["run"]],
            cwd=repo,
            env=step_env,
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
        if proc.returncode != 0 and step.get("id") == failing:
            return ran, proc.stdout + proc.stderr
        assert proc.returncode == 0, f"step {step['name']!r} failed:\n{proc.stdout}\n{proc.stderr}"
        ran.append(step["id"])
    return ran, ""


@pytest.fixture(scope="module")
def released(tmp_path_factory: pytest.TempPathFactory, mlflow_db_template: Path) -> dict[str, Any]:
    base = tmp_path_factory.mktemp("cicd")
    home, repo = base / "home", base / "repo"
    home.mkdir()
    shutil.copyfile(mlflow_db_template, home / "mlflow.db")
    shutil.copytree(EXAMPLE, repo, ignore=shutil.ignore_patterns("data", "*.txt", "*.json", "__pycache__"))
    env = server_env(
        home,
        GIT_AUTHOR_NAME="ci",
        GIT_AUTHOR_EMAIL="ci@example.org",
        GIT_COMMITTER_NAME="ci",
        GIT_COMMITTER_EMAIL="ci@example.org",
    )
    _sh(repo, env, "git", "init", "-q", "-b", "main")
    _sh(repo, env, sys.executable, "-m", "dvc", "init", "-q")
    _sh(repo, env, sys.executable, "-m", "dvc", "remote", "add", "-d", "storage", str(base / "dvc-remote"))
    _data(repo, env, 1500, seed=0)
    first = _commit(repo, env, "data: first 1,500 customers")
    first_steps, _ = run_workflow(repo, env, first)
    _data(repo, env, 2500, seed=1)
    second = _commit(repo, env, "data: 2,500 customers")
    second_steps, _ = run_workflow(repo, env, second)
    versions = json.loads(_sh(repo, env, "modelward", "versions", "churn", "--json"))
    status = json.loads(_sh(repo, env, "modelward", "deploy", "status", "churn", "--json"))
    return {
        "repo": repo,
        "env": env,
        "commits": (first, second),
        "steps": (first_steps, second_steps),
        "versions": {v["version"]: v for v in versions},
        "status": status,
        # read now: a later test pushes again
        "pointer": yaml.safe_load((repo / "data.dvc").read_text())["outs"][0],
        "report": (repo / "validation.xml").read_text(),
        "uri": (repo / "model_uri.txt").read_text().strip(),
    }


def test_the_workflow_file_is_valid_against_the_github_actions_schema(tmp_path: Path) -> None:
    check = [sys.executable, "-m", "check_jsonschema", "--builtin-schema", "vendor.github-workflows"]
    ok = subprocess.run([*check, str(WORKFLOW)], capture_output=True, text=True, timeout=120, check=False)
    assert ok.returncode == 0, ok.stdout + ok.stderr

    broken = yaml.safe_load(WORKFLOW.read_text())
    del broken["jobs"]["release"]["runs-on"]
    (tmp_path / "broken.yml").write_text(yaml.safe_dump(broken))
    bad = subprocess.run(
        [*check, str(tmp_path / "broken.yml")], capture_output=True, text=True, timeout=120, check=False
    )
    assert bad.returncode == 1


@pytest.mark.slow
def test_every_run_step_runs_in_order_and_the_second_push_starts_a_canary(released: dict[str, Any]) -> None:
    every = ["data", "train", "pii", "validate", "register", "release"]
    assert released["steps"] == (every, every)
    versions = released["versions"]
    assert versions["1"]["aliases"] == ["champion"]
    status = released["status"]
    assert status["spec"]["strategy"] == "canary"
    assert (str(status["canary"]["version"]), status["canary"]["percent"]) == ("2", 10)
    assert {a["name"]: a["version"] for a in status["arms"]} == {"baseline": "1", "canary": "2"}
    report, uri = released["report"], released["uri"]
    assert 'failures="0"' in report and f"churn candidate {uri}" in report
    # each run validated its model before registering it: one pass per push, the first without a champion
    audited = json.loads(
        _sh(released["repo"], released["env"], "modelward", "audit", "log", "--model", "churn", "--json")
    )
    order = [e["action"] for e in audited if e["action"] in {"validate_model", "register"}][:4]
    assert order == ["validate_model", "register", "validate_model", "register"]
    checks = [e["payload"] for e in audited if e["action"] == "validate_model"][:2]
    assert [(c["verdict"], c["against"]) for c in checks] == [("pass", None), ("pass", "1")]
    assert checks[1]["model_uri"] == uri


@pytest.mark.slow
def test_a_model_that_fails_the_gates_stops_the_workflow_before_it_is_registered(
    released: dict[str, Any],
) -> None:
    import pandas as pd

    repo, env = released["repo"], released["env"]
    _data(repo, env, 1500, seed=2)
    train = pd.read_parquet(repo / "data" / "train.parquet")
    train["churn"] = train["churn"].sample(frac=1.0, random_state=0).to_numpy()  # nothing left to learn
    train.to_parquet(repo / "data" / "train.parquet", index=False)
    commit = _commit(repo, env, "data: labels shuffled by mistake")
    ran, output = run_workflow(repo, env, commit, failing="validate")
    assert ran == ["data", "train", "pii"]
    assert "regression fail" in output
    versions = json.loads(_sh(repo, env, "modelward", "versions", "churn", "--json"))
    assert sorted(v["version"] for v in versions) == ["1", "2"]
    audited = json.loads(
        _sh(
            repo, env, "modelward", "audit", "log", "--model", "churn", "--action", "validate_model", "--json"
        )
    )
    assert audited[-1]["payload"]["verdict"] == "fail"
    assert audited[-1]["payload"]["model_uri"] == (repo / "model_uri.txt").read_text().strip()


@pytest.mark.slow
def test_registration_records_the_dvc_pointer_and_the_git_commit(released: dict[str, Any]) -> None:
    repo = released["repo"]
    pointer = released["pointer"]
    for version, commit in zip(("1", "2"), released["commits"], strict=True):
        tags = released["versions"][version]["tags"]
        assert tags["modelward.git.commit"] == commit
        assert tags["modelward.git.dirty"] == "false"
    tags = released["versions"]["2"]["tags"]
    assert tags["modelward.dvc.file"] == os.path.join(str(repo), "data.dvc")
    assert tags["modelward.dvc.md5"] == pointer["md5"]
    assert pointer["md5"].endswith(".dir")  # the whole data folder is tracked
    assert released["versions"]["1"]["tags"]["modelward.dvc.md5"] != pointer["md5"]  # new data, new pointer
