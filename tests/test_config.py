"""Settings: embedded defaults under home, environment overrides, MLflow's own variable respected."""

from __future__ import annotations

from pathlib import Path

import pytest

from modelward.config import Settings


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    import os

    for key in list(os.environ):
        if key.startswith(("MODELWARD_", "MLFLOW_")):
            monkeypatch.delenv(key)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_defaults_put_everything_under_dot_modelward(clean_env: Path) -> None:
    s = Settings()
    home = clean_env / ".modelward"
    assert s.home == home
    assert s.resolved_tracking_uri == f"sqlite:///{home / 'mlflow.db'}"
    assert s.resolved_database_url == f"sqlite:///{home / 'modelward.db'}"
    assert s.resolved_artifact_location == (home / "artifacts").as_uri()
    assert not home.exists()  # reading settings creates nothing


def test_environment_overrides_with_the_modelward_prefix(
    clean_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MODELWARD_HOME", str(clean_env / "elsewhere"))
    monkeypatch.setenv("MODELWARD_DATABASE_URL", "postgresql://db.example/modelward")
    monkeypatch.setenv("MODELWARD_TRUSTED_TYPES", '["_operator.neg"]')
    s = Settings()
    assert s.home == clean_env / "elsewhere"
    assert s.resolved_database_url == "postgresql://db.example/modelward"
    assert s.trusted_types == ("_operator.neg",)


def test_mlflow_tracking_uri_wins_over_the_default_and_an_explicit_setting_wins_over_it(
    clean_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://mlflow.example:5000")
    assert Settings().resolved_tracking_uri == "http://mlflow.example:5000"
    monkeypatch.setenv("MODELWARD_TRACKING_URI", "sqlite:///explicit.db")
    assert Settings().resolved_tracking_uri == "sqlite:///explicit.db"


def test_actor_defaults_to_user_at_host(clean_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert "@" in Settings().resolved_actor
    monkeypatch.setenv("MODELWARD_ACTOR", "ci-bot")
    assert Settings().resolved_actor == "ci-bot"


def test_a_malformed_setting_is_a_one_line_cli_error(
    clean_env: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from modelward.cli import main

    monkeypatch.setenv("MODELWARD_SQLITE_BUSY_TIMEOUT_MS", "soon")
    assert main(["models"]) == 1
    assert "invalid setting MODELWARD_SQLITE_BUSY_TIMEOUT_MS" in capsys.readouterr().err


def test_a_tracking_server_keeps_artifacts_in_its_own_store_unless_told_otherwise(
    clean_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://mlflow:5000")
    assert Settings().resolved_artifact_location is None  # the server decides: shared by every replica
    explicit = Settings(artifact_location="s3://bucket/mlflow")
    assert explicit.resolved_artifact_location == "s3://bucket/mlflow"
    assert Settings(tracking_uri="https://mlflow.example").resolved_artifact_location is None


def test_the_controller_lease_defaults_to_three_ticks_and_at_least_fifteen_seconds(clean_env: Path) -> None:
    assert Settings().resolved_controller_lease_ttl == 15.0
    assert Settings(controller_interval=10).resolved_controller_lease_ttl == 30.0
    assert Settings(controller_interval=0.5, controller_lease_ttl=2).resolved_controller_lease_ttl == 2.0
    with pytest.raises(ValueError, match="greater than 0"):
        Settings(controller_lease_ttl=0)
    with pytest.raises(ValueError, match="must be longer than MODELWARD_CONTROLLER_INTERVAL"):
        Settings(controller_interval=5, controller_lease_ttl=5)
