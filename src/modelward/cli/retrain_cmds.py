"""``modelward retrain NAME --reason TEXT`` (a manual retraining run) and ``modelward retrain status
NAME`` (the history of a model's runs). docs/loop.md, "Retraining: triggers and actions".

A manual run takes the same guard as the controller's (one run per model in progress, across
replicas), is audited and notified the same way, and runs the same action from the model's policy.
With ``--wait`` (the default) it runs here, to its end; ``--no-wait`` queues it for the controller
(``modelward serve`` or ``modelward controller``), which starts it at its next tick.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import typer

from modelward.cli.app import emit_json, error_console, settings

if TYPE_CHECKING:
    from modelward.control.retrain_runs import RetrainRun

__all__ = ["register", "retrain"]

_STATUS = "status"
_COLOURS = {
    "succeeded": "green",
    "failed": "bold red",
    "timed_out": "bold red",
    "running": "yellow",
    "queued": "yellow",
}


def _when(ts: float | None) -> str:
    return "" if ts is None else datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M:%S")


def _took(seconds: float | None) -> str:
    if seconds is None:
        return ""
    return f"{seconds:.1f} s" if seconds < 120 else f"{seconds / 60:.1f} min"


def retrain(
    name: str = typer.Argument(..., help="Model name (or `status`, then the model name)."),
    model: str | None = typer.Argument(None, help="With `status`: the model whose runs to show."),
    reason: str | None = typer.Option(
        None, "--reason", help="Why (recorded in the run and the audit trail)."
    ),
    wait: bool = typer.Option(
        True, "--wait/--no-wait", help="Run the action here to its end, or queue it for the controller."
    ),
    limit: int = typer.Option(20, "--limit", min=1, help="With `status`: how many runs to show."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON for scripts."),
) -> None:
    """Retrain a model now with the action of its policy (`retrain NAME --reason TEXT`), or show
    its runs (`retrain status NAME`)."""
    from modelward.errors import ConfigError

    if name == _STATUS and model is not None:
        _status(model, limit, as_json)
        return
    if model is not None:
        raise ConfigError(
            f"unexpected argument {model!r}: `retrain NAME --reason TEXT` or `retrain status NAME`"
        )
    if not reason or not reason.strip():
        raise ConfigError("say why with --reason TEXT (recorded in the run and the audit trail)")
    _run(name, reason.strip(), wait, as_json)


def _retrainer(registry: Any, cfg: Any) -> Any:
    from modelward.control.retrain import Retrainer
    from modelward.monitoring.alert_config import load_alert_config

    alerts = load_alert_config(cfg.alerts_file, allow_private=cfg.alerts_allow_private)
    center = alerts.center(registry.store)
    return Retrainer.from_settings(registry, cfg, alert=center.event, actor=cfg.resolved_actor)


def _run(name: str, reason: str, wait: bool, as_json: bool) -> None:
    from modelward.api import open_registry

    cfg = settings()
    with open_registry(cfg) as registry:
        registry.model(name)  # a typo is ModelNotFound, with a suggestion
        retrainer = _retrainer(registry, cfg)
        run = retrainer.request(name, reason, queued=not wait)
        if wait:
            with error_console().status(f"retraining {name} (run {run.id}): {retrainer.policy(name).action}"):
                run = retrainer.execute(run)
    if as_json:
        emit_json(run.to_dict())
    else:
        _print_run(run)
    if run.status in ("failed", "timed_out"):
        raise typer.Exit(1)


def _print_run(run: RetrainRun) -> None:
    from rich.console import Console
    from rich.text import Text

    console = Console()
    if run.status == "queued":
        console.print(
            Text(f"run {run.id} of {run.model} queued: the controller starts it at its next tick"),
            highlight=False,
        )
        return
    line = Text.assemble(
        f"run {run.id} of {run.model}: ",
        (run.status, _COLOURS.get(run.status, "")),
        f" after {_took(run.duration)}",
        f", exit code {run.exit_code}" if run.exit_code is not None else "",
    )
    console.print(line, highlight=False)
    error = run.detail.get("error")
    if error:
        console.print(Text(str(error)), highlight=False)
    export = run.detail.get("export")
    console.print(
        Text(
            f"labelled export: {export} ({run.detail.get('export_rows', 0)} rows)"
            if export
            else "labelled export: none (no labelled row yet)"
        ),
        highlight=False,
    )
    if run.output:
        tail = run.output.rstrip().splitlines()[-10:]
        console.print(Text("output (last lines):\n" + "\n".join(tail)), highlight=False)


def _status(name: str, limit: int, as_json: bool) -> None:
    from rich.console import Console
    from rich.text import Text

    from modelward.api import open_registry
    from modelward.cli._tables import Column, print_table
    from modelward.control.retrain_runs import RetrainRuns

    cfg = settings()
    with open_registry(cfg) as registry:
        runs = RetrainRuns(registry.store).history(name, limit=limit)
        if not runs:
            registry.model(name)  # a typo is an error, not an empty history
    if as_json:
        emit_json({"model": name, "runs": [r.to_dict(output=False) for r in runs]})
        return
    if not runs:
        Console().print(Text(f"{name} has not been retrained yet"), highlight=False)
        return
    rows: list[list[str | Text]] = [
        [
            str(r.id),
            r.trigger,
            r.reason,
            _when(r.started_at),
            _took(r.duration),
            Text(r.status, style=_COLOURS.get(r.status, "")),
            "" if r.exit_code is None else str(r.exit_code),
        ]
        for r in runs
    ]
    columns = [
        Column("run", justify="right"),
        Column("trigger"),
        Column("reason", wrap=True),
        Column("started (UTC)", drop=2),
        Column("duration", drop=1),
        Column("status"),
        Column("exit", justify="right", drop=3),
    ]
    print_table(columns, rows, title=f"retraining runs of {name}")


def register(app: typer.Typer) -> None:
    app.command("retrain")(retrain)
