"""``modelward ui``: the dashboard against the store and registry of the settings, serving no model."""

from __future__ import annotations

import typer

from modelward.cli.app import error_console, settings

__all__ = ["register", "ui"]


def ui(
    host: str = typer.Option(
        "127.0.0.1", "--host", help="Address to bind; non-loopback needs MODELWARD_ADMIN_TOKEN."
    ),
    port: int = typer.Option(8080, "--port", "-p", min=0, max=65535),
    browser: bool = typer.Option(True, "--browser/--no-browser", help="Open the dashboard in a browser."),
    refresh: int = typer.Option(
        0, "--refresh", min=0, help="Reload the overview and model pages every N seconds (0: never)."
    ),
) -> None:
    """Open the web dashboard (/ui) on a store, without serving models: overview, model pages, audit."""
    import threading
    import webbrowser

    import uvicorn

    from modelward.errors import ConfigError
    from modelward.serving.listen import is_loopback
    from modelward.ui import create_ui_app

    cfg = settings()
    if not is_loopback(host) and cfg.admin_token is None:
        raise ConfigError(
            f"refusing to bind {host} without an admin token: set MODELWARD_ADMIN_TOKEN, or bind 127.0.0.1"
        )
    app = create_ui_app(cfg, refresh=refresh)
    server = uvicorn.Server(uvicorn.Config(app, host=host, port=port, log_level="warning", access_log=False))
    shown = "127.0.0.1" if host in ("0.0.0.0", "::") else host  # noqa: S104 (a name to show, not a bind)
    url = f"http://{shown}:{port}/ui"
    error_console().print(f"modelward dashboard on {url} (Ctrl+C stops it)")
    if browser:

        def open_when_up() -> None:
            while not server.started and not server.should_exit:
                threading.Event().wait(0.05)
            if server.started:
                webbrowser.open(url)

        threading.Thread(target=open_when_up, daemon=True).start()
    server.run()


def register(app: typer.Typer) -> None:
    app.command("ui")(ui)
