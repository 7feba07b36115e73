"""The alerts file: every rule kind and notifier type, durations, defaults, and errors that name the
bad entry."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from modelward.config import Settings
from modelward.errors import ConfigError
from modelward.monitoring.alert_config import default_alert_config, load_alert_config, parse_duration
from modelward.monitoring.alert_rules import (
    DatasetDriftRule,
    ErrorRateRule,
    EstimatedDropRule,
    FeatureDriftRule,
    LatencyRule,
    PerformanceRule,
)
from modelward.monitoring.notifiers import LogNotifier, WebhookNotifier

FULL = """
cooldown: 2h
resolve_after: 10m
notifiers:
  - type: log
  - type: webhook
    name: ops-slack
    url: https://hooks.slack.com/services/T000/B000/XXXX
    timeout: 3
  - type: webhook
    url_file: hook-url.txt
    allowed_hosts: [127.0.0.1]
rules:
  - kind: dataset_drift
    severity: critical
  - kind: feature_drift
    name: balance-drift
    feature: balance
    models: churn
  - kind: feature_drift
    name: any-feature
  - kind: performance
    name: auc-floor
    when: roc_auc < 0.80
    min_labels: 200
  - kind: estimated_drop
    metric: accuracy
    max_drop: 0.05
  - kind: error_rate
    max_rate: 0.02
    min_requests: 50
  - kind: latency
    p95_ms: 250
"""


def _write(tmp_path: Path, text: str, name: str = "alerts.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_a_complete_file_loads_every_rule_and_notifier(tmp_path: Path) -> None:
    (tmp_path / "hook-url.txt").write_text("http://127.0.0.1:9999/hook\n")
    config = load_alert_config(_write(tmp_path, FULL))
    assert config.cooldown == 7200 and config.resolve_after == 600
    rules = {r.name: r for r in config.rules.rules}
    assert rules["dataset_drift"] == DatasetDriftRule(severity="critical")
    assert rules["balance-drift"] == FeatureDriftRule(
        name="balance-drift", feature="balance", models=("churn",)
    )
    assert isinstance(rules["any-feature"], FeatureDriftRule) and rules["any-feature"].feature is None
    assert rules["auc-floor"] == PerformanceRule(
        name="auc-floor", metric="roc_auc", op="<", threshold=0.8, min_labels=200
    )
    assert rules["estimated_drop"] == EstimatedDropRule(metric="accuracy", max_drop=0.05)
    assert rules["error_rate"] == ErrorRateRule(max_rate=0.02, min_requests=50)
    assert rules["latency"] == LatencyRule(p95_ms=250)
    log, slack, local = config.notifiers
    assert isinstance(log, LogNotifier)
    assert isinstance(slack, WebhookNotifier) and slack.name == "ops-slack" and slack.timeout == 3
    assert isinstance(local, WebhookNotifier) and local.name == "webhook:127.0.0.1:9999"
    summary = config.describe()
    assert summary["notifiers"] == ["log", "ops-slack", "webhook:127.0.0.1:9999"]
    assert "XXXX" not in json.dumps(summary)  # no secret in what `alerts rules` shows
    assert summary["rules"][3]["condition"] == "roc_auc < 0.8 (at least 200 labels)"


def test_json_works_too(tmp_path: Path) -> None:
    data = {"rules": [{"kind": "latency", "p95_ms": 100}], "notifiers": [], "cooldown": 60}
    config = load_alert_config(_write(tmp_path, json.dumps(data), "alerts.json"))
    assert config.rules.rules == (LatencyRule(p95_ms=100),)
    assert config.notifiers == () and config.cooldown == 60


def test_no_file_and_missing_keys_mean_the_defaults(tmp_path: Path) -> None:
    default = default_alert_config()
    kinds = [(r.kind, getattr(r, "max_rate", None), getattr(r, "p95_ms", None)) for r in default.rules.rules]
    assert kinds == [("dataset_drift", None, None), ("error_rate", 0.05, None), ("latency", None, 500.0)]
    assert [n.name for n in default.notifiers] == ["log"]
    assert load_alert_config(None).rules == default.rules
    only_cooldown = load_alert_config(_write(tmp_path, "cooldown: 30m\n"))
    assert only_cooldown.rules == default.rules and only_cooldown.cooldown == 1800
    assert load_alert_config(_write(tmp_path, "rules: []\n", "none.yaml")).rules.rules == ()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("rules:\n  - kind: latency\n    p95: 300\n", r"rules\[0\]: unknown key\(s\) p95 for a latency rule"),
        ("rules:\n  - kind: lat\n", r"rules\[0\]: 'kind' must be one of"),
        ("rules:\n  - {kind: error_rate, name: e, max_rate: lots}\n", r"rules\[0\] \('e'\): max_rate: Input"),
        (
            "rules:\n  - {kind: error_rate, max_rate: 2}\n",
            r"rules\[0\]: max_rate 2(\.0)? must be in \[0, 1\)",
        ),
        ("rules:\n  - {kind: performance, when: auc is bad}\n", r"rules\[0\]: cannot read condition"),
        ("rules:\n  - {kind: performance, when: auc < 1, metric: auc}\n", r"either 'when' or metric"),
        ("rules:\n  - {kind: latency}\n  - {kind: latency}\n", "two alert rules are named 'latency'"),
        ("rules:\n  - {kind: dataset_drift, severity: loud}\n", r"rules\[0\]: severity: Input should be"),
        ("notifiers:\n  - {type: email}\n", r"notifiers\[0\]: 'type' must be one of log, webhook"),
        ("notifiers:\n  - {type: webhook}\n", "exactly one of 'url' and 'url_file'"),
        ("notifiers:\n  - {type: webhook, url: 'http://x.example', timeot: 3}\n", r"unknown key\(s\) timeot"),
        (
            "notifiers:\n  - {type: webhook, name: meta, url: 'http://169.254.169.254/latest'}\n",
            r"notifiers\[0\] \('meta'\): refusing webhook target http://169.254.169.254: .*link-local",
        ),
        ("notifiers:\n  - {type: log}\n  - {type: log}\n", "two notifiers are named log"),
        ("cooldown: soon\n", "cooldown: cannot read 'soon' as a duration"),
        ("alerts: []\n", r"unknown key\(s\) alerts"),
        ("- just a list\n", "expected a mapping"),
        ("rules: {kind: latency}\n", "'rules' must be a list"),
        ("rules: [: bad\n", "is not valid yaml"),
    ],
)
def test_errors_name_the_bad_entry(tmp_path: Path, text: str, message: str) -> None:
    path = _write(tmp_path, text)
    with pytest.raises(ConfigError, match=message) as caught:
        load_alert_config(path)
    assert str(path) in str(caught.value)


def test_each_rule_may_judge_a_window_of_its_own(tmp_path: Path) -> None:
    text = (
        "rules:\n"
        "  - {kind: performance, name: auc-daily, when: roc_auc < 0.8, window: 1d}\n"
        "  - {kind: error_rate, window: 900}\n"
        "  - {kind: latency}\n"
    )
    config = load_alert_config(_write(tmp_path, text))
    assert config.window == 3600  # the monitor's window, for the rules without one
    daily, errors, latency = config.rules.rules
    assert (daily.window, errors.window, latency.window) == (86_400, 900, None)
    summary = config.describe()
    assert summary["window"] == 3600
    assert [r["window"] for r in summary["rules"]] == [86_400, 900, 3600]
    assert load_alert_config(_write(tmp_path, "window: 30m\n", "top.yaml")).window == 1800


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "rules:\n  - {kind: performance, name: auc-daily, window: 1 day}\n",
            r"rules\[0\] \('auc-daily'\): window: cannot read '1 day' as a duration \(use seconds or 30s, 15m, 1h, 1d\)",
        ),
        ("rules:\n  - {kind: latency, window: 0}\n", r"rules\[0\]: window: 0 must be a duration > 0"),
        ("rules:\n  - {kind: latency, window: -1h}\n", r"rules\[0\]: window: cannot read '-1h'"),
        ("rules:\n  - {kind: latency, window: [1h]}\n", r"rules\[0\]: window: cannot read \['1h'\]"),
        ("window: 0s\n", r"window: '0s' must be a duration > 0"),
    ],
)
def test_a_bad_window_is_a_clear_error(tmp_path: Path, text: str, message: str) -> None:
    path = _write(tmp_path, text)
    with pytest.raises(ConfigError, match=message) as caught:
        load_alert_config(path)
    assert str(path) in str(caught.value)


def test_a_missing_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read the alerts file"):
        load_alert_config(tmp_path / "nope.yaml")


def test_the_allow_private_setting_is_the_webhooks_default(tmp_path: Path) -> None:
    text = "notifiers:\n  - {type: webhook, url: 'http://10.0.0.8/hook'}\n"
    path = _write(tmp_path, text)
    with pytest.raises(ConfigError, match="private address"):
        load_alert_config(path)
    (hook,) = load_alert_config(path, allow_private=True).notifiers
    assert isinstance(hook, WebhookNotifier) and hook.allow_private
    strict = _write(tmp_path, text.replace("}", ", allow_private: false}"), "strict.yaml")
    with pytest.raises(ConfigError, match="private address"):
        load_alert_config(strict, allow_private=True)


def test_durations() -> None:
    assert parse_duration(90, "x") == 90
    assert [parse_duration(t, "x") for t in ("45s", "15m", "1h", "2d", "1w", "12")] == [
        45, 900, 3600, 172800, 604800, 12,
    ]  # fmt: skip
    for bad in (True, -1, "1y", float("inf")):
        with pytest.raises(ConfigError):
            parse_duration(bad, "x")


def test_settings_point_at_the_file(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("MODELWARD_ALERTS_FILE", raising=False)
    monkeypatch.delenv("MODELWARD_ALERTS_ALLOW_PRIVATE", raising=False)
    unset = Settings(home=tmp_path)
    assert unset.alerts_file is None and unset.alerts_allow_private is False
    monkeypatch.setenv("MODELWARD_ALERTS_FILE", str(tmp_path / "alerts.yaml"))
    monkeypatch.setenv("MODELWARD_ALERTS_ALLOW_PRIVATE", "true")
    changed = Settings(home=tmp_path)
    assert changed.alerts_file == tmp_path / "alerts.yaml" and changed.alerts_allow_private
