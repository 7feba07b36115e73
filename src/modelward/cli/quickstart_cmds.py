"""``modelward quickstart``: the whole loop on the embedded default, one line per step."""

from __future__ import annotations

from typing import Any

import typer

from modelward.cli.app import emit_json, error_console, settings

__all__ = ["quickstart", "register"]


class _LiveSteps:
    """One line per step: a spinner while it runs, then a tick and its figures."""

    def __init__(self, progress: Any) -> None:
        self.progress = progress
        self.tasks: dict[str, Any] = {}
        self.titles: dict[str, str] = {}

    def start(self, key: str, title: str) -> None:
        self.titles[key] = title
        self.tasks[key] = self.progress.add_task(f"[bold]{title}[/]", total=1)

    def update(self, key: str, text: str) -> None:
        from rich.markup import escape

        self.progress.update(self.tasks[key], description=f"[bold]{self.titles[key]}[/]: {escape(text)}")

    def done(self, key: str, text: str, figures: dict[str, Any]) -> None:
        from rich.markup import escape

        seconds = figures.get("seconds", 0.0)
        self.progress.update(
            self.tasks[key],
            completed=1,
            description=f"[green]✔[/] [bold]{self.titles[key]}[/]: {escape(text)} [dim]({seconds:.1f} s)[/]",
        )

    def fail(self, key: str, text: str) -> None:
        from rich.markup import escape

        self.progress.update(
            self.tasks[key], completed=1, description=f"[red]✘[/] [bold]{self.titles[key]}[/]: {escape(text)}"
        )


class _Silent:
    def start(self, key: str, title: str) -> None:
        pass

    def update(self, key: str, text: str) -> None:
        pass

    def done(self, key: str, text: str, figures: dict[str, Any]) -> None:
        pass

    def fail(self, key: str, text: str) -> None:
        pass


def quickstart(
    name: str = typer.Option("churn", "--name", help="The model to create (the home must not have it yet)."),
    port: int = typer.Option(
        8000, "--port", "-p", min=0, max=65535, help="The server's port (0: any free one)."
    ),
    host: str = typer.Option("127.0.0.1", "--host", help="The server's address."),
    keep_serving: bool = typer.Option(
        False, "--keep-serving", help="Leave the server running at the end, and print its URLs."
    ),
    size: str = typer.Option(
        "full",
        "--size",
        envvar="MODELWARD_QUICKSTART_SIZE",
        help="full, or smoke: a smaller run for CI.",
        hidden=True,
    ),
    as_json: bool = typer.Option(False, "--json", help="Print a JSON summary for scripts."),
) -> None:
    """Run the whole loop on a synthetic churn data set: train and serve v1, send traffic and labels,
    inject drift, watch the server detect it and the AUC drop, retrain v2, validate it against the
    gates, canary it and let the controller promote it. Writes the drift report and the model card
    under the home folder. Takes a few minutes."""
    from rich.console import Console
    from rich.progress import Progress, SpinnerColumn, TextColumn

    from modelward.quickstart import Options, run

    cfg = settings()
    cfg.ensure_home()
    options = Options(name=name, size=size, host=host, port=port, keep_serving=keep_serving)
    if as_json:
        summary = run(cfg, options, _Silent())
        emit_json(summary.to_dict())
        return
    console = Console()
    columns = (SpinnerColumn(finished_text=""), TextColumn("{task.description}"))
    with Progress(*columns, console=console, transient=False) as progress:
        summary = run(cfg, options, _LiveSteps(progress))
    console.print(f"\n[bold]done in {summary.seconds:.0f} s[/]")
    for label, key in (
        ("drift report", "drift_report"),
        ("model card", "model_card"),
        ("labelled export", "export"),
    ):
        if key in summary.paths:
            console.print(f"  {label:<16} {summary.paths[key]}", highlight=False)
    if keep_serving:
        console.print(f"  {'API docs':<16} {summary.urls['docs']}", highlight=False)
        if "ui" in summary.urls:
            console.print(f"  {'dashboard':<16} {summary.urls['ui']}", highlight=False)
        pid = summary.steps["serve"]["pid"]
        error_console().print(
            f"the server keeps serving (pid {pid}): stop it with `kill {pid}`", highlight=False
        )
    console.print(
        "next: `modelward audit log`, `modelward versions " + name + "`, `modelward alerts --all`, "
        "`modelward ui` (the dashboard)",
        highlight=False,
    )


def register(app: typer.Typer) -> None:
    app.command("quickstart")(quickstart)
