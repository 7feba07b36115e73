"""A retraining command reaches the same registry through its environment and registers the version it
trains; a worse version (trained on shuffled labels) is then stopped by the promotion gates and the
champion alias, which serving follows, never moves to it."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from modelward.config import Settings
from modelward.governance.promotion import promote_gated
from modelward.registry import Registry
from tests.control.retrain_fixtures import churn, churn_home, retrainer_for, script, set_policy

__all__ = ["churn", "churn_home"]  # fixtures: imported so that pytest finds them

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "churn"

TRAIN_WORSE = f"""
import importlib.util, os
import numpy as np
from sklearn.compose import ColumnTransformer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler
import modelward

spec = importlib.util.spec_from_file_location("gen", {str(EXAMPLES / "generate.py")!r})
gen = importlib.util.module_from_spec(spec); spec.loader.exec_module(gen)
frame = gen.generate(600, seed=7).drop(columns=["customer_id"])
frame["churn"] = np.random.default_rng(0).permutation(frame["churn"].to_numpy())  # labels shuffled
numeric = [c for c in frame.columns if c not in ("churn", "geography", "gender")]
pre = ColumnTransformer([("num", StandardScaler(), numeric),
                         ("cat", OneHotEncoder(handle_unknown="ignore"), ["geography", "gender"])])
model = Pipeline([("pre", pre), ("model", LogisticRegression(max_iter=200))])
model.fit(frame.drop(columns=["churn"]), frame["churn"])
info = modelward.register(model, os.environ["MODELWARD_RETRAIN_MODEL"], train_data=frame, target="churn",
                          description="retrained: " + os.environ["MODELWARD_RETRAIN_REASON"])
print("registered version", info.version)
"""


def test_a_retrained_worse_version_is_registered_then_stopped_by_the_gates(
    churn: Registry, churn_home: tuple[Registry, Settings], churn_frame: pd.DataFrame, tmp_path: Path
) -> None:
    settings = churn_home[1]
    holdout = tmp_path / "holdout.parquet"
    churn_frame.sample(400, random_state=3).to_parquet(holdout)
    command = script(tmp_path / "train.py", TRAIN_WORSE)
    set_policy(
        churn, json.dumps({"holdout": str(holdout), "label": "churn", "retrain": {"command": command}})
    )
    retrainer = retrainer_for(churn, settings)
    run = retrainer.execute(retrainer.request("churn", "drift in Germany"))
    assert run.status == "succeeded", run.output
    assert run.output is not None and "registered version 2" in run.output
    assert churn.version("churn", "2").description == "retrained: drift in Germany"
    done = promote_gated(churn, "churn", "2", reason="retrained")
    assert done.refused and "regression" in done.refusal()
    assert churn.resolve("churn@champion").version == "1"
