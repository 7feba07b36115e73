"""`modelward validate --model-uri`: the gates on an MLflow model before it is registered.

Real MLflow runs, real models, the champion's gates; nothing may be registered by the check.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from tests.governance.candidates import shuffled_label_model

import modelward
from modelward.cli import main
from modelward.config import Settings
from modelward.governance import VersionReports
from modelward.registry import Registry


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def log(registry: Registry, model: object, *, skops: bool = True) -> str:
    """Log ``model`` to MLflow as a training run would (never registered) and return its URI."""
    import mlflow
    import mlflow.sklearn

    fmt = {"serialization_format": "skops", "skops_trusted_types": ["sklearn.tree._tree.Tree"]}
    with registry.mlflow_context(), mlflow.start_run() as run:
        mlflow.sklearn.log_model(
            model, name="model", **(fmt if skops else {"serialization_format": "cloudpickle"})
        )
    return f"runs:/{run.info.run_id}/model"


def events(registry: Registry) -> list:
    return list(registry.audit.events(subject="churn", action="validate_model"))


def test_a_candidate_as_good_as_the_champion_passes_and_a_worse_one_fails_and_neither_is_registered(
    champion: Registry,
    churn_models: dict,
    churn_frame: pd.DataFrame,
    holdout: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    same = log(champion, churn_models["forest"])
    code, out, err = run(
        capsys, "validate", "--model-uri", same, "--name", "churn", "--data", str(holdout), "--json"
    )
    assert code == 0, err
    result = json.loads(out)
    assert (result["version"], result["model_uri"], result["against"]) == (None, same, "1")
    found = {g["name"]: g for g in result["gates"]}
    assert found["regression"]["verdict"] == "pass"
    assert found["schema"]["verdict"] == "pass"
    assert found["integrity"]["verdict"] == "skipped"  # no pins before registration

    worse = log(champion, shuffled_label_model(churn_frame))
    code, out, _ = run(capsys, "validate", "--model-uri", worse, "--name", "churn", "--data", str(holdout))
    assert code == 1
    assert "regression fail" in out
    assert f"churn candidate {worse} against champion churn:1" in " ".join(out.split())

    assert [v.version for v in champion.versions("churn")] == ["1"]
    assert VersionReports(champion.store).history("churn", kind="validation") == []
    audited = events(champion)
    assert [(e.payload["model_uri"], e.payload["verdict"]) for e in audited] == [
        (same, "pass"),
        (worse, "fail"),
    ]
    assert all(e.actor == "tester" for e in audited)


def test_the_python_api_judges_a_model_before_its_first_version(
    registry: Registry, churn_models: dict, churn_frame: pd.DataFrame, settings: Settings
) -> None:
    uri = log(registry, churn_models["logreg"])
    result = modelward.validate_model(uri, "churn", data=churn_frame, label="churn", settings=settings)
    assert result.passed
    assert result.against is None
    regression = next(g for g in result.gates if g.name == "regression")
    assert (regression.verdict, regression.reason) == (
        "skipped",
        "nothing to compare with: churn has no registered version yet",
    )
    assert result.holdout_rows == len(churn_frame)
    assert registry.client.search_registered_models() == []


def test_a_bad_uri_a_pickle_or_a_missing_label_is_a_clear_error_with_exit_code_2(
    champion: Registry,
    churn_models: dict,
    holdout: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, out, err = run(
        capsys,
        "validate",
        "--model-uri",
        "runs:/0123456789abcdef/model",
        "--name",
        "churn",
        "--data",
        str(holdout),
    )
    assert code == 2
    assert "error: cannot read the MLflow model at runs:/0123456789abcdef/model" in " ".join(err.split())
    assert "Traceback" not in err + out

    code, _, err = run(
        capsys,
        "validate",
        "--model-uri",
        str(tmp_path / "nowhere"),
        "--name",
        "churn",
        "--data",
        str(holdout),
    )
    assert code == 2
    assert "cannot read the MLflow model" in err

    pickled = log(champion, churn_models["logreg"], skops=False)
    code, _, err = run(capsys, "validate", "--model-uri", pickled, "--name", "churn", "--data", str(holdout))
    assert code == 2
    assert "pickle" in err
    assert "Traceback" not in err

    code, _, err = run(capsys, "validate", "--model-uri", pickled, "--name", "churn")
    assert (code, "judged on a labelled holdout" in err) == (2, True)
    code, _, err = run(capsys, "validate", "--model-uri", pickled, "--data", str(holdout))
    assert (code, "--model-uri needs --name" in err) == (2, True)
    code, _, err = run(capsys, "validate", "churn:1", "--model-uri", pickled, "--name", "churn")
    assert (code, "not both" in err) == (2, True)
    assert [v.version for v in champion.versions("churn")] == ["1"]
