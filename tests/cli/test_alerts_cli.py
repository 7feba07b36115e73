"""`modelward alerts` as a user meets it: active alerts, the history, the rules, a webhook test."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.control.webhook_receiver import running_receiver

from modelward.cli import main
from modelward.config import Settings
from modelward.monitoring.alert_rules import Signal
from modelward.monitoring.alerts import AlertCenter
from modelward.monitoring.notifiers import LogNotifier
from modelward.store import Store


@pytest.fixture
def center(settings: Settings) -> Iterator[AlertCenter]:
    settings.ensure_home()
    store = Store(settings.resolved_database_url).open()
    store.migrate()
    yield AlertCenter(store, [LogNotifier()], resolve_after=0)
    store.close()


def _fire(center: AlertCenter, model: str, rule: str, firing: bool, now: float) -> None:
    message = f"{model}:1: {'slow' if firing else 'fast again'}"
    center.apply([Signal(rule, model, "latency_p95", "warning", firing, 900.0, message)], now=now)


def test_alerts_json_lists_the_active_alerts(center: AlertCenter, capsys: pytest.CaptureFixture[str]) -> None:
    _fire(center, "churn", "latency", True, 1000)
    _fire(center, "fraud", "latency", True, 1001)
    _fire(center, "fraud", "latency", False, 1002)
    assert main(["alerts", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    (alert,) = out["alerts"]
    assert alert["model"] == "churn" and alert["rule"] == "latency" and alert["state"] == "firing"
    assert alert["message"] == "churn:1: slow" and alert["first_fired_at"] == 1000 and alert["value"] == 900.0
    assert main(["alerts", "--json", "--model", "fraud"]) == 0
    assert json.loads(capsys.readouterr().out) == {"alerts": []}


def test_alerts_all_shows_the_history(center: AlertCenter, capsys: pytest.CaptureFixture[str]) -> None:
    _fire(center, "fraud", "latency", True, 1000)
    _fire(center, "fraud", "latency", False, 1100)
    assert main(["alerts", "--all", "--json"]) == 0
    history = json.loads(capsys.readouterr().out)["history"]
    assert [(e["kind"], e["notifier"], e["delivered"]) for e in history] == [
        ("notify", "log", True), ("resolve", None, None), ("notify", "log", True), ("fire", None, None),
    ]  # fmt: skip
    assert main(["alerts", "--all", "--limit", "1"]) == 0
    table = capsys.readouterr().out
    assert "notify (sent)" in table and "fraud" in table and "fire" not in table.replace("FIRING", "")
    assert main(["alerts"]) == 0
    captured = capsys.readouterr()
    assert captured.out == "" and "no alerts firing" in captured.err


def test_alerts_rules_shows_the_configured_file(
    settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["alerts", "rules", "--json"]) == 0
    default = json.loads(capsys.readouterr().out)
    assert default["source"] is None and [r["kind"] for r in default["rules"]] == [
        "dataset_drift", "error_rate", "latency",
    ]  # fmt: skip
    path = tmp_path / "alerts.yaml"
    path.write_text(
        "notifiers:\n  - {type: webhook, name: ops, url: 'https://hooks.slack.com/services/T/B/SECRET'}\n"
        "rules:\n  - {kind: performance, name: auc, when: roc_auc < 0.8, models: [churn], window: 1d}\n"
        "  - {kind: latency}\n"
    )
    monkeypatch.setenv("MODELWARD_ALERTS_FILE", str(path))
    assert main(["alerts", "rules"]) == 0
    out = capsys.readouterr().out
    assert "roc_auc < 0.8" in out and "churn" in out and "ops" in out and "SECRET" not in out
    auc, latency = (line for line in out.splitlines() if " auc " in line or " latency " in line)
    assert " 1d " in auc and " 1h " in latency  # each rule's window, the monitor's by default
    assert main(["alerts", "rules", "--json"]) == 0
    assert [r["window"] for r in json.loads(capsys.readouterr().out)["rules"]] == [86_400, 3600]
    path.write_text("rules:\n  - {kind: latency, p95: 1}\n")
    assert main(["alerts", "rules"]) == 1
    err = capsys.readouterr().err
    assert "rules[0]" in err and "p95" in err and len(err.strip().splitlines()) <= 3


def test_alerts_test_sends_through_the_guard(settings: Settings, capsys: pytest.CaptureFixture[str]) -> None:
    with running_receiver() as receiver:
        assert main(["alerts", "test", receiver.url, "--allow-host", "127.0.0.1", "--json"]) == 0
        result = json.loads(capsys.readouterr().out)
        assert result["delivered"] is True and result["notifier"] == f"webhook:127.0.0.1:{receiver.port}"
        (text,) = receiver.texts()
        assert text.startswith("[TEST] info: test")
        assert main(["alerts", "test", receiver.url]) == 1  # loopback without the allowance
        assert "loopback" in capsys.readouterr().err
        assert main(["alerts", "test", f"http://localhost:{receiver.port}/hook"]) == 1
        assert "localhost resolves to" in capsys.readouterr().err
        assert main(["alerts", "test", f"http://127.0.0.1:{receiver.port}/fail", "--allow-private"]) == 1
        assert "HTTP 500" in capsys.readouterr().err
        assert len(receiver.posts) == 2
    assert main(["alerts", "test", "http://169.254.169.254/latest/meta-data/", "--allow-private"]) == 1
    assert "link-local" in capsys.readouterr().err
