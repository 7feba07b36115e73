"""How ``modelward deploy status`` prints its report (the data comes from
:func:`modelward.control.status.deployment_status`)."""

from __future__ import annotations

import time
from typing import Any

__all__ = ["print_status"]


def _when(ts: float | None) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(ts)) if ts else "-"


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.1f}%"


def _ms(x: float | None) -> str:
    return "-" if x is None else f"{x:.1f}"


def _left(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    s = int(seconds)
    return f"{s // 60}m {s % 60:02d}s" if s >= 60 else f"{s}s"


def _predictions(w: dict[str, Any]) -> str:
    classes = w.get("classes") or {}
    if classes:
        total = sum(classes.values()) or 1
        top = sorted(classes.items(), key=lambda kv: -kv[1])[:3]
        return ", ".join(f"{k}: {100 * v / total:.0f}%" for k, v in top)
    counts, edges = w.get("value_counts"), w.get("value_edges")
    if counts and edges:
        return f"values {edges[0]:.4g} .. {edges[-1]:.4g}"
    return "-"


def print_status(console: Any, report: dict[str, Any], window: str) -> None:
    from rich.table import Table

    model = report["model"]
    if report["deployed"]:
        who = f"by {report['actor']}" + (f" ({report['reason']})" if report["reason"] else "")
        console.print(
            f"[bold]{model}[/] revision {report['revision']}, {report['spec']['strategy']}, "
            f"updated {_when(report['updated_at'])} {who}",
            highlight=False,
        )
    else:
        console.print(f"[bold]{model}[/] has no deployment spec: it serves @champion", highlight=False)
    if report["spec"].get("key"):
        console.print(f"  routing key: request field '{report['spec']['key']}' (or X-Routing-Key)")
    arms = Table(title="arms", title_justify="left")
    for header in ("arm", "target", "traffic", "version now"):
        arms.add_column(header)
    for arm in report["arms"]:
        arms.add_row(
            arm["name"],
            arm["target"],
            f"{arm['percent']:.4g}%",
            arm["version"] or f"[red]{arm['problem']}[/]",
        )
    if report["shadow"]:
        s = report["shadow"]
        arms.add_row(
            "shadow",
            s["target"],
            f"copy of {100 * s['rate']:.4g}%",
            s["version"] or f"[red]{s['problem']}[/]",
        )
    console.print(arms)
    canary = report["canary"]
    if canary:
        line = (
            f"canary v{canary['version']} vs {canary['baseline']}: step {canary['step_number']}/"
            f"{len(canary['steps'])} ({canary['percent']:g}%), {canary['state'].replace('_', ' ')}"
        )
        if canary["state"] == "running":
            line += f", {_left(canary['seconds_left'])} left in the step"
        console.print(line, highlight=False)
        if canary.get("reason"):
            console.print(f"  reason: {canary['reason']}", highlight=False)
    if report["decisions"]:
        console.print("last decisions (newest first):")
        for d in report["decisions"]:
            when = d["ts"][:19].replace("T", " ")
            console.print(
                f"  {when}  {d['action'] or d['event']:<8}  {'; '.join(d['reasons'])}", highlight=False
            )
    stats = Table(title=f"last {window}", title_justify="left")
    for header in ("arm", "version", "requests", "errors", "p50 ms", "p95 ms", "p99 ms", "predictions"):
        stats.add_column(header)
    for w in report["stats"]:
        lat = w["latency_ms"]
        stats.add_row(
            w["arm"] or "-",
            w["version"],
            str(w["requests"]),
            f"{w['errors']} ({_pct(w['error_rate'])})",
            _ms(lat["p50"]),
            _ms(lat["p95"]),
            _ms(lat["p99"]),
            _predictions(w),
        )
    if report["stats"]:
        console.print(stats)
    else:
        console.print(f"no predictions logged in the last {window}")
    agreement = report["shadow_agreement"]
    if agreement["shadow_rows"]:
        parts = [f"{agreement['compared']} requests compared"]
        if agreement["agreement"] is not None:
            parts.append(f"agreement {_pct(agreement['agreement'])}")
        if agreement["mean_abs_diff"] is not None:
            parts.append(f"mean |difference| {agreement['mean_abs_diff']:.4g}")
        parts.append(f"shadow errors {agreement['shadow_errors']} ({_pct(agreement['shadow_error_rate'])})")
        parts.append(f"shadow p95 {_ms(agreement['shadow_latency_ms']['p95'])} ms")
        console.print("shadow vs primary: " + ", ".join(parts), highlight=False)
    ctl = report["controller"]
    if ctl and ctl["active"]:
        console.print(
            f"controller: {ctl['holder']} (lease until {_when(ctl['expires_at'])})", highlight=False
        )
    elif canary and canary["state"] == "running":
        console.print(
            "[yellow]no controller holds the lease: start `modelward serve` or `modelward controller` "
            "so the canary moves[/]"
        )
