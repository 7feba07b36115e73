"""A binary classifier registered with ``response={"probability_name": ...}`` answers its positive-class
probability under that name, on every path, beside ``probabilities``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from modelward.config import Settings
from modelward.errors import RegistrationError
from tests.serving.conftest import server_env, start_server
from tests.serving.test_predict_api import ROW, ROW2


@pytest.fixture(scope="module")
def named_home(tmp_path_factory: pytest.TempPathFactory, churn_home: Path) -> Path:
    import shutil

    home = tmp_path_factory.mktemp("named-home") / "home"
    shutil.copytree(churn_home, home, ignore=shutil.ignore_patterns("server-*.log"))
    return home


@pytest.fixture(scope="module")
def registered(named_home: Path, churn_models: dict, churn_frame: pd.DataFrame) -> Path:
    import modelward

    settings = Settings(home=named_home, actor="tester", tracking_uri=f"sqlite:///{named_home / 'mlflow.db'}")
    modelward.register(
        churn_models["logreg"],
        "churn_named",
        train_data=churn_frame,
        target="churn",
        response={"probability_name": "churn_probability"},
        settings=settings,
    )
    return named_home


@pytest.mark.parametrize("fast_path", ["true", "false"], ids=["fast-path", "fastapi-route"])
def test_the_positive_class_probability_has_its_registered_name(registered: Path, fast_path: str) -> None:
    env = server_env(registered, MODELWARD_FAST_PATH=fast_path)
    server = start_server(registered, "churn_named", "--reload-interval", "0", env=env)
    try:
        with server.client() as c:
            bodies: list[dict[str, Any]] = [{"features": ROW}, {"instances": [ROW, ROW2]}]
            for body in bodies:
                r = c.post("/models/churn_named/predict", json=body)
                assert r.status_code == 200, r.text
                for row in r.json()["predictions"]:
                    assert row["churn_probability"] == row["probabilities"]["1"]
            burst = [c.post("/models/churn_named/predict", json={"features": ROW2}) for _ in range(3)]
            assert {r.json()["predictions"][0]["churn_probability"] for r in burst} == {
                r.json()["predictions"][0]["probabilities"]["1"] for r in burst
            }
    finally:
        server.stop()


def test_a_response_name_is_refused_for_a_regressor_or_a_taken_member() -> None:
    from modelward.registry.response import response_tags, with_response

    with pytest.raises(RegistrationError, match="identifier"):
        response_tags({"probability_name": "probabilities"})
    with pytest.raises(RegistrationError, match="unknown response option"):
        response_tags({"probability_name": "p", "colour": "red"})
    tags = response_tags({"probability_name": "p"})
    with pytest.raises(RegistrationError, match="needs a binary classifier; this model has 0 classes"):
        with_response({"classes": []}, tags)
    with pytest.raises(RegistrationError, match="positive_class 'maybe'"):
        with_response(
            {"classes": ["no", "yes"]},
            {**tags, **response_tags({"probability_name": "p", "positive_class": "maybe"})},
        )
    assert with_response({"classes": ["no", "yes"]}, tags)["response"] == {
        "probability_name": "p",
        "positive_class": "yes",
    }
