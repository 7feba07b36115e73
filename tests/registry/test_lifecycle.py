"""Resolution, promote, rollback and archive against the real MLflow registry and audit chain."""

from __future__ import annotations

import pandas as pd
import pytest

from modelward.errors import AliasNotFound, InvalidReference, LifecycleError, ModelNotFound, VersionNotFound
from modelward.registry import Registry, parse_ref, register_model


@pytest.fixture
def three_versions(registry: Registry, churn_models: dict, churn_frame: pd.DataFrame) -> Registry:
    for key in ("logreg", "forest", "logreg"):
        register_model(registry, churn_models[key], "churn", train_data=churn_frame, target="churn")
    return registry


def test_references_parse_into_name_version_or_alias() -> None:
    assert parse_ref("churn").name == "churn"
    assert parse_ref("churn:2").version == "2"
    assert parse_ref("churn@champion").alias == "champion"
    assert parse_ref("models:/churn/3").version == "3"
    assert parse_ref("models:/churn@challenger").alias == "challenger"
    for bad in ("", "churn:", "churn:x", "churn:0", "churn@", "churn@latest", "churn@v2", ":1", "@a"):
        with pytest.raises(InvalidReference):
            parse_ref(bad)


def test_name_resolves_to_latest_until_a_champion_exists(three_versions: Registry) -> None:
    reg = three_versions
    assert reg.resolve("churn").version == "3"
    reg.promote("churn", 1)
    assert reg.resolve("churn").version == "1"
    assert reg.resolve("churn@champion").version == "1"
    assert reg.resolve("churn:2").version == "2"


def test_unknown_names_versions_and_aliases_are_named_in_errors(three_versions: Registry) -> None:
    with pytest.raises(ModelNotFound, match="registered: churn"):
        three_versions.resolve("nope")
    with pytest.raises(VersionNotFound, match="versions: 1, 2, 3"):
        three_versions.resolve("churn:9")
    with pytest.raises(AliasNotFound, match="it has no aliases"):
        three_versions.resolve("churn@champion")


def test_promote_moves_alias_and_writes_audit_and_history(three_versions: Registry) -> None:
    reg = three_versions
    reg.promote("churn", 1, reason="first")
    info = reg.promote("churn", 2, reason="better")
    assert info.aliases == ("champion",)
    assert reg.version("churn", 1).aliases == ()
    events = reg.audit.events(action="promote")
    assert [(e.subject, e.payload["from"], e.payload["to"], e.payload["reason"]) for e in events] == [
        ("churn:1", None, "1", "first"),
        ("churn:2", "1", "2", "better"),
    ]
    assert reg.audit.verify().ok


def test_promoting_the_current_holder_changes_nothing(three_versions: Registry) -> None:
    three_versions.promote("churn", 1)
    before = len(three_versions.audit.events())
    three_versions.promote("churn", 1)
    assert len(three_versions.audit.events()) == before


def test_rollback_walks_back_through_previous_holders(three_versions: Registry) -> None:
    reg = three_versions
    for v in (1, 2, 3):
        reg.promote("churn", v)
    assert reg.rollback("churn", reason="bad canary").version == "2"
    assert reg.resolve("churn@champion").version == "2"
    assert reg.rollback("churn").version == "1"
    with pytest.raises(LifecycleError, match="first holder"):
        reg.rollback("churn")
    rollbacks = reg.audit.events(action="rollback")
    assert [(e.payload["from"], e.payload["to"]) for e in rollbacks] == [("3", "2"), ("2", "1")]


def test_rollback_refuses_when_the_alias_was_moved_outside_modelward(three_versions: Registry) -> None:
    reg = three_versions
    reg.promote("churn", 1)
    reg.promote("churn", 2)
    reg.client.set_registered_model_alias("churn", "champion", "3")
    with pytest.raises(LifecycleError, match="changed outside modelward"):
        reg.rollback("churn")


def test_rollback_of_a_never_promoted_alias_is_refused(three_versions: Registry) -> None:
    with pytest.raises(LifecycleError, match="never promoted"):
        three_versions.rollback("churn", "staging")


def test_aliases_are_independent(three_versions: Registry) -> None:
    reg = three_versions
    reg.promote("churn", 1)
    reg.promote("churn", 2, "challenger")
    reg.promote("churn", 3, "challenger")
    assert reg.rollback("churn", "challenger").version == "2"
    assert reg.resolve("churn@champion").version == "1"
    assert reg.model("churn").aliases == {"champion": "1", "challenger": "2"}


def test_archive_refuses_alias_holders_and_archived_versions_cannot_be_promoted(
    three_versions: Registry,
) -> None:
    reg = three_versions
    reg.promote("churn", 1)
    with pytest.raises(LifecycleError, match="holds champion"):
        reg.archive("churn", 1)
    assert reg.archive("churn", 3, reason="superseded").archived
    assert reg.resolve("churn:3").archived
    with pytest.raises(LifecycleError, match="archived"):
        reg.promote("churn", 3)
    reg.unarchive("churn", 3)
    assert reg.promote("churn", 3).aliases == ("champion",)
    assert [e.action for e in reg.audit.events(subject="churn:3")][-3:] == ["archive", "unarchive", "promote"]


def test_default_resolution_skips_archived_versions(three_versions: Registry) -> None:
    three_versions.archive("churn", 3)
    assert three_versions.resolve("churn").version == "2"


def test_rollback_refuses_an_archived_previous_holder(three_versions: Registry) -> None:
    reg = three_versions
    reg.promote("churn", 1)
    reg.promote("churn", 2)
    reg.archive("churn", 1)
    with pytest.raises(LifecycleError, match="archived"):
        reg.rollback("churn")
    assert reg.resolve("churn@champion").version == "2"


def test_invalid_alias_is_refused(three_versions: Registry) -> None:
    with pytest.raises(InvalidReference):
        three_versions.promote("churn", 1, "bad alias")


def test_registry_leaves_mlflow_configuration_as_it_found_it(
    registry: Registry, churn_models: dict, churn_frame: pd.DataFrame
) -> None:
    import os

    import mlflow

    before = (
        mlflow.get_tracking_uri(),
        os.environ.get("MLFLOW_TRACKING_URI"),
        os.environ.get("MLFLOW_REGISTRY_URI"),
    )
    register_model(registry, churn_models["logreg"], "clean", train_data=churn_frame, target="churn")
    after = (
        mlflow.get_tracking_uri(),
        os.environ.get("MLFLOW_TRACKING_URI"),
        os.environ.get("MLFLOW_REGISTRY_URI"),
    )
    assert after == before
