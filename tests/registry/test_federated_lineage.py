"""A model trained by federated learning is registered with the federation as its lineage: rounds,
nodes and strategy, and no fingerprint of data (the data given is the coordinator's reference sample)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from typer.testing import CliRunner

import modelward
from modelward.cli import app
from modelward.config import Settings
from modelward.errors import RegistrationError
from modelward.governance.card import build_card, render_card
from modelward.registry import Registry, register_model
from modelward.registry.federation import Federation
from modelward.runtime import load_version

FEDERATION = {"rounds": 5, "nodes": 3, "strategy": "FedAvg", "framework": "flwr 1.42.0", "examples": 2400}


@pytest.fixture
def reference(churn_frame: pd.DataFrame) -> pd.DataFrame:
    return churn_frame.head(300)


def test_a_federated_version_names_its_federation_and_fingerprints_no_data(
    registry: Registry, churn_models: dict[str, Any], reference: pd.DataFrame
) -> None:
    info = register_model(
        registry, churn_models["logreg"], "fl", train_data=reference, target="churn", federation=FEDERATION
    )

    tags = info.tags
    assert tags["modelward.federation.rounds"] == "5"
    assert tags["modelward.federation.nodes"] == "3"
    assert tags["modelward.federation.strategy"] == "FedAvg"
    assert tags["modelward.federation.framework"] == "flwr 1.42.0"
    assert tags["modelward.federation.examples"] == "2400"
    assert not [k for k in tags if k.startswith(("modelward.dataset.", "modelward.dvc."))]
    assert registry.client.get_run(info.run_id).inputs.dataset_inputs == []

    record_file = registry.client.download_artifacts(info.run_id, "modelward/fl/v1/registration.json")
    record = json.loads(Path(record_file).read_text())
    assert record["federation"] == FEDERATION
    assert "modelward.dataset.sha256" not in record["lineage"]
    (event,) = registry.audit.events(subject="fl:1", action="register")
    assert event.payload["dataset_sha256"] is None
    assert event.payload["federation"] == FEDERATION

    loaded = load_version(registry, info)  # pinned and served like any version
    assert loaded.profile.features.keys() == set(reference.columns) - {"churn"}


def test_a_version_registered_from_its_training_data_has_no_federation(
    registry: Registry, churn_models: dict[str, Any], reference: pd.DataFrame
) -> None:
    info = register_model(registry, churn_models["logreg"], "central", train_data=reference, target="churn")

    assert len(info.tags["modelward.dataset.sha256"]) == 64
    assert Federation.from_tags(info.tags) is None


@pytest.mark.parametrize(
    ("federation", "message"),
    [
        ({"nodes": 3}, "needs rounds"),
        ({"rounds": 0, "nodes": 3}, "federation['rounds'] must be a positive integer, not 0"),
        ({"rounds": 2, "nodes": True}, "federation['nodes'] must be a positive integer, not True"),
        ({"rounds": 2, "nodes": "3"}, "federation['nodes'] must be a positive integer, not '3'"),
        ({"rounds": 2, "nodes": 3, "strategy": ""}, "federation['strategy'] must be a non-empty string"),
        ({"rounds": 2, "nodes": 3, "clients": 3}, "unknown federation key(s): clients"),
    ],
)
def test_a_malformed_federation_is_refused_with_what_is_wrong(
    federation: dict[str, Any], message: str
) -> None:
    with pytest.raises(RegistrationError) as refused:
        Federation.from_mapping(federation)
    assert message in str(refused.value)


def test_a_malformed_federation_registers_nothing(
    registry: Registry, churn_models: dict[str, Any], reference: pd.DataFrame
) -> None:
    with pytest.raises(RegistrationError, match="needs nodes"):
        register_model(
            registry,
            churn_models["logreg"],
            "bad",
            train_data=reference,
            target="churn",
            federation={"rounds": 2},
        )
    assert registry.client.search_model_versions("name='bad'") == []


def test_federation_tags_read_back_as_they_were_given() -> None:
    given = Federation.from_mapping(FEDERATION)
    assert Federation.from_tags(given.tags()) == given
    assert Federation.from_tags({"modelward.federation.rounds": "2"}) is None


def test_show_and_the_model_card_say_how_the_federation_trained_the_model(
    settings: Settings, churn_models: dict[str, Any], reference: pd.DataFrame
) -> None:
    info = modelward.register(
        churn_models["logreg"],
        "fl",
        train_data=reference,
        target="churn",
        federation=FEDERATION,
        settings=settings,
    )

    shown = CliRunner().invoke(app, ["show", info.ref])
    assert shown.exit_code == 0, shown.output
    line = "FedAvg, 5 rounds over 3 nodes (flwr 1.42.0, 2400 examples); the training data stayed on the nodes"
    assert line in " ".join(shown.output.split())
    assert "sha256 -" not in shown.output
    assert "none found in the reference sample (300 rows scanned)" in shown.output

    with modelward.open_registry(settings) as registry:
        card = build_card(registry, info.ref, actor="tester", load_model=False)
    lineage = card.section("lineage").data
    assert lineage is not None
    assert lineage["federation"] == FEDERATION
    assert lineage["dataset_sha256"] is None
    assert line in render_card(card, "md")
    html = render_card(card, "html")
    assert 'data-key="lineage.federation"' in html and line in html
