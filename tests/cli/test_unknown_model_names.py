"""Every command that takes a model name refuses a name the registry does not hold, the same way:
one line, ``model 'churnn' is not registered (did you mean 'churn'?)``, exit 1.

The commands are found by walking the command line itself, so a new command that takes a model
name must be listed in CALLS (how to get it as far as looking the name up) or NOT_LOOKUPS (why it
looks none up) before this test passes.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import typer

from modelward.cli import app, main
from modelward.registry import Registry, register_model

TYPO = "churnn"
EXPECTED = "error: model 'churnn' is not registered (did you mean 'churn'?)"

# Besides the name, what each command needs to get as far as looking the name up.
CALLS: dict[str, list[str]] = {
    "versions": ["versions", TYPO],
    "show": ["show", TYPO],
    "promote": ["promote", TYPO, "1"],
    "rollback": ["rollback", TYPO],
    "archive": ["archive", TYPO, "1"],
    "serve": ["serve", TYPO, "--port", "0"],
    "predict": ["predict", TYPO, "--input", "{rows}", "--output", "{out}"],
    "predictions tail": ["predictions", "tail", TYPO],
    "predictions export": ["predictions", "export", TYPO, "--output", "{out}"],
    "export": ["export", TYPO, "--labeled", "--output", "{out}"],
    "abtest report": ["abtest", "report", TYPO],
    "alerts": ["alerts", "--model", TYPO],
    "audit log": ["audit", "log", "--model", TYPO],
    "performance": ["performance", TYPO],
    "calibrate": ["calibrate", TYPO, "--data", "{rows}", "--target", "churn"],
    "drift": ["drift", TYPO],
    "fairness": ["fairness", TYPO, "--data", "{rows}", "--sensitive", "gender"],
    "card": ["card", TYPO],
    "explain": ["explain", TYPO, "--input", "{row}"],
    "deploy apply": ["deploy", TYPO, "--ab", "champion=50", "challenger=50"],  # `deploy NAME ...`
    "deploy status": ["deploy", "status", TYPO],
    "deploy history": ["deploy", "history", TYPO],
    "feedback import": [
        "feedback",
        "import",
        "{rows}",
        "--join-on",
        "age",
        "--label-column",
        "churn",
        "--model",
        TYPO,
    ],
    "validate": ["validate", TYPO],
    "policy set": ["policy", "set", TYPO, "{policy}"],
    "policy show": ["policy", "show", TYPO],
    "policy delete": ["policy", "delete", TYPO],
    "retrain": ["retrain", TYPO, "--reason", "x"],
    "rollout status": ["rollout", "status", TYPO],
}
# `validate` is for CI/CD: a model it cannot find is "could not evaluate", exit 2, with the same line.
EXIT_CODES = {"validate": 2}
# Variants of the same commands, checked too.
MORE_CALLS = [
    ["alerts", "--all", "--model", TYPO],
    ["predictions", "tail", TYPO, "--json"],
    ["fairness", TYPO, "--window", "1h", "--sensitive", "gender"],
    ["card", "edit", TYPO, "--intended-use", "x"],
    ["retrain", "status", TYPO],
]
NOT_LOOKUPS = {
    "register": "--name names the model it creates",
    "quickstart": "--name names the model it creates (a name already registered is refused)",
    "forget": "erasure must reach the logged rows of a model no longer registered",
}

MODEL_ARGUMENTS = {"name", "ref", "models"}
MODEL_OPTIONS = {"--model", "--name"}


def commands_taking_a_model() -> set[str]:
    found: set[str] = set()

    def walk(command: Any, path: list[str]) -> None:
        for param in command.params:
            argument = getattr(param, "param_type_name", "") == "argument"
            if (argument and param.name in MODEL_ARGUMENTS) or set(param.opts) & MODEL_OPTIONS:
                found.add(" ".join(path))
        for name, sub in getattr(command, "commands", {}).items():
            walk(sub, [*path, name])

    walk(typer.main.get_command(app), [])
    return found


@pytest.fixture
def churn(registry: Registry, churn_models: dict, churn_frame: pd.DataFrame) -> Registry:
    register_model(registry, churn_models["logreg"], "churn", train_data=churn_frame, target="churn")
    registry.promote("churn", 1)
    return registry


def test_every_command_taking_a_model_name_is_checked() -> None:
    assert commands_taking_a_model() == set(CALLS) | set(NOT_LOOKUPS)


def test_an_unregistered_name_is_refused_alike_everywhere(
    churn: Registry, churn_frame: pd.DataFrame, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rows = tmp_path / "rows.csv"
    churn_frame.head(20).to_csv(rows, index=False)
    policy = tmp_path / "policy.yaml"
    policy.write_text("metrics: {auc: {min: 0.5}}\n")
    row = tmp_path / "row.json"
    row.write_text(churn_frame.drop(columns=["churn"]).head(1).to_json(orient="records", lines=True))
    fill = {
        "{rows}": str(rows),
        "{out}": str(tmp_path / "out.csv"),
        "{policy}": str(policy),
        "{row}": str(row),
    }
    answers = {}
    for command, argv in [*CALLS.items(), *((" ".join(a[:2]), a) for a in MORE_CALLS)]:
        argv = [fill.get(a, a) for a in argv]
        if command == "serve":  # a server that wrongly started would not return: a process of its own
            proc = subprocess.run(
                [sys.executable, "-m", "modelward", *argv],
                capture_output=True,
                text=True,
                env=dict(os.environ),
                timeout=300,
            )
            code, out, err = proc.returncode, proc.stdout, proc.stderr
        else:
            code = main(argv)
            out, err = capsys.readouterr()
        answers[" ".join(argv)] = (command, code, err.strip().splitlines()[-1:], out)
    wrong = {k: v[1:] for k, v in answers.items() if v[1:] != (EXIT_CODES.get(v[0], 1), [EXPECTED], "")}
    assert wrong == {}
