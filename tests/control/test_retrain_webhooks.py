"""A retraining webhook carries the run's facts to a local receiver in the shapes of Airflow's stable
REST API (a DAG run with the facts as its conf) and Prefect's (a flow run of a deployment with the
facts as its parameters); a loopback URL that the policy does not allow is refused by the guard."""

from __future__ import annotations

import json

from modelward.config import Settings
from modelward.control.retrain_runs import RetrainRun
from modelward.registry import Registry
from tests.control.retrain_fixtures import hook, light, retrainer_for, set_policy
from tests.control.webhook_receiver import Receiver

__all__ = ["hook", "light"]  # fixtures: imported so that pytest finds them

T0 = 1_900_000_000.0


def _retrain(light: tuple[Registry, Settings], webhook: dict[str, object]) -> RetrainRun:
    registry, settings = light
    set_policy(registry, json.dumps({"retrain": {"webhook": webhook}}))
    retrainer = retrainer_for(registry, settings)
    return retrainer.execute(retrainer.request("churn", "drift in Germany", now=T0))


def test_an_airflow_webhook_triggers_a_dag_run_with_the_facts_as_its_conf(
    light: tuple[Registry, Settings], hook: Receiver
) -> None:
    root = f"http://127.0.0.1:{hook.port}/api/v1"
    webhook = {
        "url": root,
        "kind": "airflow",
        "dag_id": "retrain_churn",
        "headers": {"Authorization": "Basic YWlyZmxvdzphaXJmbG93"},
        "allowed_hosts": ["127.0.0.1"],
    }
    run = _retrain(light, webhook)
    assert run.status == "succeeded" and run.detail["http_status"] == 200
    assert hook.paths == ["/api/v1/dags/retrain_churn/dagRuns"]
    (body,) = hook.posts
    assert body["dag_run_id"] == f"modelward-churn-{run.id}"
    conf = body["conf"]
    assert conf["model"] == "churn" and conf["trigger"] == "manual" and conf["reason"] == "drift in Germany"
    assert conf["run_id"] == run.id and conf["export"] is None and conf["export_rows"] == 0
    assert hook.headers[0]["authorization"] == "Basic YWlyZmxvdzphaXJmbG93"


def test_a_prefect_webhook_runs_a_deployment_with_the_facts_as_its_parameters(
    light: tuple[Registry, Settings], hook: Receiver
) -> None:
    webhook = {
        "url": f"http://127.0.0.1:{hook.port}/api",
        "kind": "prefect",
        "deployment_id": "0b5c6f6e-1d1e-4d8a-9a55-2f0c3a1b7e21",
        "allowed_hosts": ["127.0.0.1"],
    }
    run = _retrain(light, webhook)
    assert run.status == "succeeded"
    assert hook.paths == ["/api/deployments/0b5c6f6e-1d1e-4d8a-9a55-2f0c3a1b7e21/create_flow_run"]
    (body,) = hook.posts
    assert body["parameters"]["model"] == "churn" and body["parameters"]["reason"] == "drift in Germany"
    assert "trigger:manual" in body["tags"]


def test_a_generic_webhook_answering_an_error_fails_the_run(
    light: tuple[Registry, Settings], hook: Receiver
) -> None:
    run = _retrain(light, {"url": f"http://127.0.0.1:{hook.port}/fail", "allow_private": True})
    assert run.status == "failed" and run.detail["error"].startswith("HTTP 500")
    assert hook.paths == ["/fail"]


def test_a_loopback_url_the_policy_does_not_allow_is_refused(
    light: tuple[Registry, Settings], hook: Receiver
) -> None:
    run = _retrain(light, {"url": hook.url})
    assert run.status == "failed"
    assert run.detail["error"].startswith("refused:") and "loopback" in run.detail["error"]
    assert hook.paths == []
    registry = light[0]
    finish = registry.audit.events(subject="churn", action="retrain_finish")[-1]
    assert finish.payload["status"] == "failed" and "refused" in finish.payload["detail"]["error"]
