"""`modelward drift` as a user meets it: live windows of a registered model, two files, HTML, exit codes."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from modelward.cli import main
from modelward.monitoring.live_drift import load_reference
from modelward.monitoring.live_profiles import LiveProfiler
from modelward.registry import Registry, register_model
from modelward.runtime import load_version

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "churn" / "generate.py"


def generate(n: int, seed: int, drift: float) -> pd.DataFrame:
    spec = importlib.util.spec_from_file_location("churn_generate_cli", EXAMPLES)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["churn_generate_cli"] = module
    spec.loader.exec_module(module)
    return module.generate(n, seed=seed, drift=drift).drop(columns=["customer_id", "churn"])  # type: ignore[no-any-return]


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def serve_rows(registry: Registry, model: Any, version: str, frame: pd.DataFrame, *, writer: str) -> None:
    """What the server does for each batch: predict, then count the batch in the live profiles."""
    reference = load_reference(registry, "churn", version)
    profiler = LiveProfiler(registry.store, writer=writer)
    probabilities = model.predict_proba(frame)
    labels = np.asarray(model.classes_, dtype=object)[probabilities.argmax(axis=1)]
    for start in range(0, len(frame), 100):
        batch = frame.iloc[start : start + 100]
        columns = {
            name: batch[name].to_numpy(dtype=object if name in ("geography", "gender") else np.float64)
            for name in batch.columns
        }
        profiler.observe(
            "churn", version, None, reference, columns,
            labels=labels[start : start + 100], probabilities=probabilities[start : start + 100],
        )  # fmt: skip
    assert profiler.stats.observe_failures == 0
    assert profiler.close() >= 1


@pytest.fixture
def churn(registry: Registry, churn_models: dict[str, Any], churn_frame: pd.DataFrame) -> Registry:
    register_model(registry, churn_models["logreg"], "churn", train_data=churn_frame, target="churn")
    return registry


def test_live_drift_of_a_registered_model_from_rows_the_profiler_wrote(
    churn: Registry, churn_models: dict[str, Any], capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    model = churn_models["logreg"]
    # The reference the CLI reads (profile artifact only, checked) is the one the loader serves.
    assert load_reference(churn, "churn", "1") == load_version(churn, churn.version("churn", "1")).profile
    capsys.readouterr()  # MLflow's download progress of the loads above, not the command's output

    code, _, err = run(capsys, "drift", "churn", "--window", "1h")
    assert code == 1 and "no live data" in err and len(err.strip().splitlines()) == 1

    serve_rows(churn, model, "1", generate(3_000, seed=11, drift=0.0), writer="replica-a:1")
    serve_rows(churn, model, "1", generate(3_000, seed=12, drift=0.0), writer="replica-b:2")
    code, out, _ = run(capsys, "drift", "churn", "--window", "1h", "--json")
    assert code == 0
    doc = json.loads(out)
    assert (doc["model"], doc["version"], doc["status"], doc["rows"]) == ("churn", "1", "ok", 6_000)
    assert doc["parts"] >= 2  # one bucket row per writer at least
    stable = doc["drift"]
    assert not stable["dataset_drift"]
    assert {f["feature"] for f in stable["features"]} == set(
        churn.signature(churn.version("churn", "1")).names
    )
    assert {p["feature"] for p in stable["prediction"]} == {"prediction", "score"}

    churn.promote("churn", 1)
    serve_rows(churn, model, "1", generate(6_000, seed=13, drift=1.0), writer="replica-a:1")
    html = tmp_path / "drift.html"
    code, out, err = run(capsys, "drift", "churn", "--window", "1h", "--html", str(html))
    assert code == 0, err
    assert "age" in out and "geography" in out
    assert html.is_file() and "Drift of churn" in html.read_text()
    doc = json.loads(run(capsys, "drift", "churn", "--json")[1])  # the champion's version by default
    assert doc["version"] == "1" and doc["rows"] == 12_000
    assert {"age", "geography", "is_active_member"} <= set(doc["drift"]["drifted_features"])
    share = doc["drift"]["share_drifted"]
    assert run(capsys, "drift", "churn", "--threshold-share", str(share), "--fail-on-drift")[0] == 3
    assert run(capsys, "drift", "churn", "--threshold-share", "1", "--fail-on-drift")[0] == 0

    code, _, err = run(capsys, "drift", "churn", "--window", "1h", "--version", "1", "--arm", "canary")
    assert code == 1 and "no live data" in err and "arm 'canary'" in err
    code, _, err = run(capsys, "drift", "churn", "--window", "soon")
    assert code == 1 and "cannot read 'soon' as a window" in err
    code, _, err = run(capsys, "drift", "nosuch")
    assert code == 1 and "not registered" in err


def test_drift_between_two_files_with_json_html_and_exit_codes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], settings: object
) -> None:
    rng = np.random.default_rng(4)
    reference, current, same = tmp_path / "ref.parquet", tmp_path / "cur.csv", tmp_path / "same.csv"
    pd.DataFrame({"a": rng.normal(0, 1, 20_000), "b": rng.normal(5, 2, 20_000)}).to_parquet(reference)
    pd.DataFrame({"a": rng.normal(0.5, 1, 8_000), "b": rng.normal(5, 2, 8_000)}).to_csv(current, index=False)
    pd.DataFrame({"a": rng.normal(0, 1, 8_000), "b": rng.normal(5, 2, 8_000)}).to_csv(same, index=False)

    code, out, _ = run(capsys, "drift", "--reference", str(reference), "--current", str(current), "--json")
    assert code == 0
    doc = json.loads(out)
    assert doc["reference"]["rows"] == 20_000 and doc["current"]["rows"] == 8_000
    assert doc["drift"]["drifted_features"] == ["a"]
    assert doc["drift"]["dataset_drift"]  # one of two: at the default share of 50 %

    argv = ("drift", "--reference", str(reference), "--current", str(current))
    assert run(capsys, *argv, "--threshold-share", "0.75", "--fail-on-drift")[0] == 0
    assert run(capsys, *argv, "--fail-on-drift")[0] == 3
    html = tmp_path / "files.html"
    code, out, _ = run(capsys, *argv, "--html", str(html))
    assert code == 0 and "dataset drift" in out
    page = html.read_text()
    assert "Drift between two files" in page and page.count("<svg") == 2

    code, out, _ = run(capsys, "drift", "--reference", str(reference), "--current", str(same))
    assert code == 0 and "no dataset drift" in out

    code, _, err = run(capsys, "drift", "churn", "--reference", str(reference), "--current", str(same))
    assert code == 1 and "not both" in err
    code, _, err = run(capsys, "drift", "--reference", str(reference))
    assert code == 1 and "both --reference and --current" in err
    code, _, err = run(capsys, "drift", "--reference", str(tmp_path / "missing.csv"), "--current", str(same))
    assert code == 1 and "does not exist" in err
    assert run(capsys, "drift", "--help")[0] == 0
