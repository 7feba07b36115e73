"""Each alert rule judges the window its configuration gives it (``window: 1d`` for a daily AUC),
the others the monitor's hour: a real registry, logged and labelled rows, a webhook receiver."""

from __future__ import annotations

from modelward.monitoring.alert_rules import AlertRule, ErrorRateRule, PerformanceRule
from modelward.registry import Registry
from tests.control.monitor_fixtures import hook, monitor_for, posts, serve_rows, two_versions, versions
from tests.control.webhook_receiver import Receiver

__all__ = ["hook", "two_versions", "versions"]  # fixtures: imported so that pytest finds them

T0 = 1_900_000_000.0
HOUR, DAY = 3600.0, 86_400.0


def test_a_rule_with_a_daily_window_judges_the_day(versions: Registry, hook: Receiver) -> None:
    rules: list[AlertRule] = [
        PerformanceRule(name="auc-daily", threshold=0.8, min_labels=200, window=DAY),
        PerformanceRule(name="auc-hourly", threshold=0.8, min_labels=200),
        ErrorRateRule(name="errors-daily", max_rate=0.05, min_requests=100, window=DAY),
        ErrorRateRule(name="errors-hourly", max_rate=0.05, min_requests=100),
    ]
    task, center = monitor_for(versions, hook, rules)
    now = T0 + 10 * HOUR
    serve_rows(versions, "1", now - 6 * HOUR, 300, errors=60)  # six hours ago: in the day only
    serve_rows(versions, "1", now - HOUR / 2, 150, seed=1, labelled=False)  # the last hour: no errors
    result = task.run(now)
    assert result is not None
    (check,) = result.checks
    assert check.problems == {}
    assert sorted(r for k, r, _ in posts(hook) if k == "fire") == ["auc-daily", "errors-daily"]
    assert any("error rate 13.3% (60 of 450 requests" in m for _, _, m in posts(hook))
    # the hour's figures are what the monitor window shows; the day's are reported beside them
    assert check.inputs.traffic is not None and check.inputs.traffic.requests == 150
    day = check.windows[DAY]
    assert day.traffic is not None and day.traffic.requests == 450
    assert day.performance is not None and day.performance.labels == 240
    assert check.to_dict()["windows"]["86400"]["traffic"]["requests"] == 450
    assert sorted(a.rule for a in center.active("churn")) == ["auc-daily", "errors-daily"]

    task.run(now + DAY)  # the bad rows have left the day: the daily rules cannot tell, nothing changes
    assert sorted(a.rule for a in center.active("churn")) == ["auc-daily", "errors-daily"]
