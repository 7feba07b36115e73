"""``modelward rollout status NAME``: how new versions of NAME were rolled out (gates, canary, outcome)
and what its live floor says, as the controller records them (docs/loop.md)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import typer

from modelward.cli.app import emit_json, settings

__all__ = ["register", "rollout_app"]

rollout_app = typer.Typer(
    no_args_is_help=True,
    help="New versions rolled out automatically, rollbacks on live performance: `rollout status NAME`.",
)


def _when(ts: float | None) -> str:
    return "" if ts is None else datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M:%S")


def _policy_lines(report: dict[str, Any]) -> list[str]:
    rollout, live = report["rollout"], report["live"]
    lines = []
    if rollout is None:
        lines.append("rollout: none (new versions wait for `modelward deploy NAME --canary N`)")
    else:
        steps = ",".join(f"{s:g}" for s in rollout["steps"])
        lines.append(f"rollout: canary, steps {steps}%, {rollout['step_duration']} each, after the gates")
    if live is None:
        lines.append("live floor: none (only the alerts file's rules watch live performance)")
    else:
        bound = f">= {live['min']:g}" if live["min"] is not None else f"<= {live['max']:g}"
        lines.append(
            f"live floor: {live['metric']} {bound} over {live['window']} (at least {live['min_labels']} "
            f"labels), sustained {live['sustain']}: on breach {live['on_breach']}"
        )
    return lines


def status(
    name: str = typer.Argument(..., help="The model."),
    limit: int = typer.Option(20, "--limit", "-n", min=1, help="Show the newest N rollouts and rollbacks."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON for scripts."),
) -> None:
    """Show NAME's rollouts (version, status, why), its live floor and its rollbacks on live performance."""
    from rich.console import Console

    from modelward.api import open_registry
    from modelward.cli._tables import Column, print_table
    from modelward.control.rollout_status import rollout_status

    with open_registry(settings()) as registry:
        report = rollout_status(registry, name, limit=limit)
    if as_json:
        emit_json(report)
        return
    console = Console()
    console.print(f"[bold]{name}[/]: champion {report['champion'] or '(none)'}", highlight=False)
    for line in _policy_lines(report):
        console.print(f"  {line}", highlight=False, markup=False)
    if report["rollouts"]:
        columns = [
            Column("version"),
            Column("status"),
            Column("updated (UTC)", drop=1),
            Column("reason", wrap=True),
        ]
        rows = [
            [r["version"], r["status"], _when(r["updated_at"]), r["reason"] or ""] for r in report["rollouts"]
        ]
        print_table(columns, rows, title="rollouts")
    else:
        console.print("  no rollout yet", highlight=False)
    for alert in report["live_alerts"]:
        console.print(f"  [red]below the floor[/] since {_when(alert['first_fired_at'])}: ", end="")
        console.print(alert["message"], highlight=False, markup=False)
    for event in report["live_rollbacks"]:
        payload = event["payload"]
        what = (
            f"rolled back {payload.get('from')} -> {payload.get('to')}"
            if event["action"] == "live_rollback"
            else f"not rolled back: {payload.get('reason')}"
        )
        console.print(f"  {event['ts'][:19]} {event['subject']}: {what}", highlight=False, markup=False)


def register(app: typer.Typer) -> None:
    rollout_app.command("status")(status)
    app.add_typer(rollout_app, name="rollout")
