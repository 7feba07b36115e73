"""The actions of a retraining run: run a command, or call a webhook (generic, Airflow, Prefect).

A command gets the run's facts in its environment (``MODELWARD_RETRAIN_*``, see :func:`facts_env`)
with the store and registry settings (``MODELWARD_HOME``, ``MODELWARD_DATABASE_URL``,
``MODELWARD_TRACKING_URI``) so that it can ``modelward register`` the version it trains. Its output
(standard output and error, merged) is read as it comes and only the tail is kept; after its
timeout the whole process group is killed. A webhook posts the same facts through the SSRF guard
that alert webhooks use (:mod:`modelward.monitoring.webhook_guard`), to the checked address.
"""

from __future__ import annotations

import json
import os
import shlex
import signal
import subprocess
import threading
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from modelward.control.retrain_runs import OUTPUT_TAIL
from modelward.governance.retrain_policy import RetrainPolicy, RetrainWebhook

__all__ = ["ActionOutcome", "RunFacts", "call_webhook", "facts_env", "run_command", "webhook_request"]


@dataclass(frozen=True, slots=True)
class RunFacts:
    """What a run's action is told."""

    model: str
    run_id: int
    trigger: str
    reason: str
    figures: Mapping[str, Any]
    export: str | None  # path of the fresh labelled export (None: no labelled row yet)
    export_rows: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "run_id": self.run_id,
            "trigger": self.trigger,
            "reason": self.reason,
            "figures": dict(self.figures),
            "export": self.export,
            "export_rows": self.export_rows,
        }


@dataclass(frozen=True, slots=True)
class ActionOutcome:
    status: str  # succeeded, failed, timed_out
    exit_code: int | None = None
    output: str | None = None
    detail: dict[str, Any] = field(default_factory=dict)


def facts_env(facts: RunFacts, settings_env: Mapping[str, str]) -> dict[str, str]:
    """The variables a command receives on top of the inherited environment."""
    return {
        **settings_env,
        "MODELWARD_RETRAIN_MODEL": facts.model,
        "MODELWARD_RETRAIN_REASON": facts.reason,
        "MODELWARD_RETRAIN_TRIGGER": facts.trigger,
        "MODELWARD_RETRAIN_FIGURES": json.dumps(dict(facts.figures), sort_keys=True, default=str),
        "MODELWARD_RETRAIN_EXPORT": facts.export or "",
        "MODELWARD_RETRAIN_EXPORT_ROWS": str(facts.export_rows),
        "MODELWARD_RETRAIN_RUN_ID": str(facts.run_id),
    }


def _argv(command: str | list[str], variables: Mapping[str, str]) -> list[str]:
    """The arguments, with ``$NAME`` / ``${NAME}`` of the run's variables replaced (no shell runs, so
    nothing else expands; other ``$`` references are left as written)."""
    from string import Template

    args = shlex.split(command) if isinstance(command, str) else list(command)
    return [Template(a).safe_substitute(variables) for a in args]


def run_command(
    policy: RetrainPolicy, facts: RunFacts, settings_env: Mapping[str, str], *, timeout: float | None = None
) -> ActionOutcome:
    """Run ``policy.command`` to its end (or its timeout); the outcome with the output's tail."""
    if policy.command is None:
        raise ValueError("the policy's action is not a command")
    variables = facts_env(facts, settings_env)
    argv = _argv(policy.command, variables)
    # The child inherits this process's environment (PATH, credentials of its own) plus the facts.
    env = {**os.environ, **variables}
    limit = policy.timeout if timeout is None else timeout
    try:
        proc = subprocess.Popen(  # the command is the model owner's configuration
            argv,
            cwd=policy.cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: a timeout kills its children too
        )
    except OSError as exc:
        return ActionOutcome("failed", None, None, {"error": f"cannot start {argv[0]!r}: {exc}"})
    tail: deque[str] = deque()
    size = [0]
    stream = proc.stdout
    if stream is None:  # pragma: no cover - stdout=PIPE always gives one
        raise RuntimeError("the command's output pipe is missing")

    def read() -> None:
        # read1: what the pipe holds now (up to 4 KiB), so the tail follows a chatty job as it goes.
        for raw in iter(lambda: stream.read1(4096), b""):  # type: ignore[attr-defined]
            text = raw.decode("utf-8", "replace")
            tail.append(text)
            size[0] += len(text)
            while size[0] - len(tail[0]) > OUTPUT_TAIL and len(tail) > 1:
                size[0] -= len(tail.popleft())

    reader = threading.Thread(target=read, name="modelward-retrain-output", daemon=True)
    reader.start()
    try:
        code: int | None = proc.wait(timeout=limit)
    except subprocess.TimeoutExpired:
        _kill_group(proc)
        code = None
    reader.join(5)
    stream.close()
    output = "".join(tail)[-OUTPUT_TAIL:]
    detail: dict[str, Any] = {"argv": argv}
    if code is None:
        detail["error"] = f"stopped after its timeout of {limit:g} s"
        return ActionOutcome("timed_out", None, output, detail)
    if code != 0:
        detail["error"] = f"exited with status {code}"
    return ActionOutcome("succeeded" if code == 0 else "failed", code, output, detail)


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        proc.kill()
    proc.wait()


def webhook_request(webhook: RetrainWebhook, facts: RunFacts) -> tuple[str, dict[str, Any]]:
    """The URL and JSON body a webhook action posts: the facts as they are (generic), a DAG run of
    Airflow's stable REST API with the facts as its ``conf``, or a flow run of a Prefect deployment
    with the facts as its ``parameters``."""
    body = facts.to_dict()
    root = webhook.url.rstrip("/")
    if webhook.kind == "airflow":
        run_id = f"modelward-{facts.model}-{facts.run_id}"
        return f"{root}/dags/{webhook.dag_id}/dagRuns", {"dag_run_id": run_id, "conf": body}
    if webhook.kind == "prefect":
        payload = {
            "name": f"modelward-{facts.model}-{facts.run_id}",
            "parameters": body,
            "tags": ["modelward", f"trigger:{facts.trigger}"],
        }
        return f"{root}/deployments/{webhook.deployment_id}/create_flow_run", payload
    return webhook.url, body


def call_webhook(webhook: RetrainWebhook, facts: RunFacts) -> ActionOutcome:
    """Post the action's request through the SSRF guard; redirects are not followed (an API that
    answers one is misconfigured). A 2xx answer is success; its body's start is kept."""
    import httpx

    from modelward.monitoring.webhook_guard import UnsafeWebhookTarget, WebhookGuard, safe_location

    url, payload = webhook_request(webhook, facts)
    guard = WebhookGuard(allow_private=webhook.allow_private, allowed_hosts=webhook.allowed_hosts)
    try:
        target = guard.resolve(url)
    except UnsafeWebhookTarget as exc:
        return ActionOutcome("failed", None, None, {"error": f"refused: {exc}", "kind": webhook.kind})
    where = safe_location(target.url)
    headers = {**webhook.headers, "Host": target.host_header, "User-Agent": "modelward-retrain"}
    try:
        with httpx.Client(timeout=webhook.timeout, follow_redirects=False, trust_env=False) as client:
            response = client.post(
                target.request_url(), json=payload, headers=headers, extensions=target.extensions()
            )
    except httpx.HTTPError as exc:
        error = f"{type(exc).__name__}: {exc or 'no detail'}"
        return ActionOutcome("failed", None, None, {"error": error, "target": where, "kind": webhook.kind})
    detail: dict[str, Any] = {"target": where, "kind": webhook.kind, "http_status": response.status_code}
    text = response.text[:2000]
    if not 200 <= response.status_code < 300:
        detail["error"] = f"HTTP {response.status_code} from {where}"
        return ActionOutcome("failed", None, text, detail)
    return ActionOutcome("succeeded", None, text, detail)
