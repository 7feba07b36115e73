"""``modelward serve`` (the inference server) and ``modelward predict`` (batch scoring)."""

from __future__ import annotations

import dataclasses
import json
import logging.config
import os
import socket
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from modelward.cli.app import emit_json, error_console, settings

if TYPE_CHECKING:
    from modelward.config import Settings

__all__ = ["log_config", "open_file_limit", "register"]

# Descriptors a worker needs besides its connections: the listening socket, the store and the
# MLflow database, the log writer's pipes, model files, the metrics folder (29 in a serving worker
# when measured).
_RESERVED_FDS = 256


def open_file_limit(max_connections: int) -> int:
    """Raise this process's soft limit on open files toward its hard limit so that
    ``max_connections`` connections fit beside what the server needs (workers inherit it), and
    return the cap that fits: ``max_connections``, or less when the hard limit is lower."""
    try:
        import resource
    except ImportError:  # no such limits here (Windows)
        return max_connections
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = max_connections + _RESERVED_FDS
    if soft != resource.RLIM_INFINITY and soft < wanted:
        target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
        except (ValueError, OSError):
            pass
    if soft == resource.RLIM_INFINITY:
        return max_connections
    return max(1, min(max_connections, soft - _RESERVED_FDS))


def log_config(level: str) -> dict[str, Any]:
    """One JSON line per request on stdout (``modelward.access``); everything else on stderr."""
    level = level.upper()
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {
            "plain": {"format": "%(message)s"},
            "default": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"},
        },
        "handlers": {
            "access": {"class": "logging.StreamHandler", "formatter": "plain", "stream": "ext://sys.stdout"},
            "default": {
                "class": "logging.StreamHandler",
                "formatter": "default",
                "stream": "ext://sys.stderr",
            },
        },
        "loggers": {
            "modelward.access": {"handlers": ["access"], "level": "INFO", "propagate": False},
            "modelward": {"handlers": ["default"], "level": level, "propagate": False},
            "uvicorn": {"handlers": ["default"], "level": level, "propagate": False},
            "uvicorn.access": {"handlers": [], "level": "WARNING", "propagate": False},
            "mlflow": {"handlers": ["default"], "level": "WARNING", "propagate": False},
        },
    }


def serve(
    models: list[str] = typer.Argument(
        None, help="Models to serve (NAME or NAME@ALIAS); default: all registered."
    ),
    host: str = typer.Option(
        "127.0.0.1", "--host", help="Address to bind; non-loopback needs MODELWARD_ADMIN_TOKEN."
    ),
    port: int = typer.Option(8000, "--port", "-p", min=0, max=65535),
    workers: int = typer.Option(1, "--workers", "-w", min=1, help="Worker processes sharing the port."),
    reload_interval: float | None = typer.Option(
        None, "--reload-interval", min=0, help="Seconds between alias checks (default 5; 0 turns it off)."
    ),
    log_level: str = typer.Option("info", "--log-level", help="debug, info, warning or error."),
    access_log: bool = typer.Option(True, "--access-log/--no-access-log", help="One JSON line per request."),
) -> None:
    """Serve registered models over HTTP: REST, Open Inference Protocol v2, /metrics, /docs."""
    import uvicorn

    from modelward.errors import ConfigError
    from modelward.serving.connections import ConnectionLimits
    from modelward.serving.listen import WorkerSocket, bind_listeners, is_loopback, reuse_port_supported
    from modelward.serving.protocol import protocol_factory

    cfg = settings()
    if reload_interval is not None:
        cfg = cfg.model_copy(update={"reload_interval": reload_interval})
    if not is_loopback(host) and cfg.admin_token is None:
        raise ConfigError(
            f"refusing to bind {host} without an admin token: set MODELWARD_ADMIN_TOKEN (and consider "
            "MODELWARD_PREDICT_TOKEN), or bind 127.0.0.1"
        )
    if log_level.lower() not in {"debug", "info", "warning", "error"}:
        raise ConfigError(f"--log-level must be debug, info, warning or error, not {log_level!r}")
    logging_config = log_config(log_level)
    if not access_log:
        logging_config["loggers"]["modelward.access"]["level"] = "WARNING"
    names = list(models or [])
    limits = ConnectionLimits.from_settings(cfg)
    cap = open_file_limit(limits.max_connections)
    if cap < limits.max_connections:
        error_console().print(
            f"the open-file limit fits {cap} connections per worker, not MODELWARD_MAX_CONNECTIONS="
            f"{limits.max_connections}: raise the hard limit (ulimit -Hn) to allow more"
        )
        limits = dataclasses.replace(limits, max_connections=cap)
    # uvicorn's own knobs that overlap the protocol's limits are left at their defaults: the
    # protocol enforces keep-alive, header and body time limits and the connection cap itself
    # (uvicorn's limit_concurrency would send every request through the ASGI path).
    server_options: dict[str, Any] = {
        "log_config": logging_config,
        "access_log": False,
        "lifespan": "on",
        "server_header": False,  # one header less per response; "server: uvicorn" says nothing useful
        "http": protocol_factory(limits),
        "ws": "none",  # no websocket routes; an upgrade request is answered as plain HTTP
    }
    # The address first: a port in use or a host not of this machine is one line, before any model
    # loads or the controller starts. One worker keeps the sockets and serves on them.
    listeners = bind_listeners(host, port)
    if workers == 1:
        port = listeners[0].getsockname()[1]
        try:
            _serve_one(cfg, names, host, port, listeners, logging_config, server_options)
        finally:
            for sock in listeners:
                sock.close()
        return
    for sock in listeners:  # the workers bind their own; these were the check
        sock.close()
    # Workers are fresh processes: they read settings from the environment, and Prometheus values
    # go to a shared folder that /metrics aggregates.
    from modelward.monitoring.metrics import prepare_multiprocess_dir

    metrics_dir = os.environ.get("PROMETHEUS_MULTIPROC_DIR") or tempfile.mkdtemp(prefix="modelward-metrics-")
    prepare_multiprocess_dir(metrics_dir)
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = metrics_dir
    os.environ["MODELWARD_SERVE_MODELS"] = json.dumps(names)
    os.environ["MODELWARD_RELOAD_INTERVAL"] = str(cfg.reload_interval)
    os.environ.setdefault("MODELWARD_LOAD_BEFORE_ACCEPT", "1")
    options: dict[str, Any] = {
        "factory": True,
        "host": host,
        "port": port,
        "workers": workers,
        # uvicorn's supervisor kills a worker that does not answer its ping within this time; its
        # default (5 s) killed workers still loading on a busy machine, over and over.
        "timeout_worker_healthcheck": cfg.worker_healthcheck_timeout,
        **server_options,
    }
    factory = "modelward.serving.app:create_app_from_env"
    if not reuse_port_supported():  # one socket shared by the workers, as uvicorn does it
        error_console().print(
            f"modelward serving with {workers} workers on http://{host}:{port} (docs: /docs, dashboard: /ui)"
        )
        uvicorn.run(factory, **options)
        return
    # Each worker listens on a socket of its own (SO_REUSEPORT): the kernel spreads the connections.
    try:
        sock = WorkerSocket.bind_to(host, port)
    except OSError as exc:
        raise ConfigError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from exc
    bound = sock.getsockname()[1]
    error_console().print(
        f"modelward serving with {workers} workers on http://{host}:{bound} (docs: /docs, dashboard: /ui)"
    )
    from uvicorn.supervisors import Multiprocess

    try:
        Multiprocess(uvicorn.Config(factory, **options), sockets=[sock]).run()
    except KeyboardInterrupt:
        pass
    finally:
        sock.close()


def _serve_one(
    cfg: Settings,
    names: list[str],
    host: str,
    port: int,
    listeners: list[socket.socket],
    logging_config: dict[str, Any],
    server_options: dict[str, Any],
) -> None:
    """One process: the port answers at once (:class:`~modelward.serving.starting.StartingApp`),
    the app (FastAPI, the registry) is built behind it, and the models load after, as before."""
    import uvicorn

    from modelward.serving.starting import StartingApp

    failures: list[BaseException] = []

    def build() -> Any:
        from modelward.serving import create_app

        app = create_app(cfg, names)
        served = ", ".join(app.state.manager.names)
        error_console().print(f"modelward loading {served}; /ready answers 200 once loaded")
        return app

    def failed(error: BaseException) -> None:  # reported below, once the server has stopped
        failures.append(error)
        server.should_exit = True

    logging.config.dictConfig(logging_config)
    app = StartingApp(build, on_failure=failed)
    server = uvicorn.Server(uvicorn.Config(app, host=host, port=port, **server_options))
    error_console().print(f"modelward serving on http://{host}:{port} (docs: /docs, dashboard: /ui)")
    server.run(sockets=listeners)
    if failures:
        raise failures[0]


def predict(
    ref: str = typer.Argument(..., help="NAME, NAME@ALIAS or NAME:VERSION."),
    input_path: Path = typer.Option(..., "--input", "-i", help="Rows to score, .csv or .parquet."),
    output_path: Path = typer.Option(
        ..., "--output", "-o", help="Where to write predictions, .csv or .parquet."
    ),
    chunk_size: int = typer.Option(10_000, "--chunk-size", min=1, help="Rows per chunk."),
    keep: list[str] = typer.Option(
        [], "--keep", "-k", help="Input column to copy to the output (an id); repeatable."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print a JSON summary."),
) -> None:
    """Score a file with a registered model, in chunks, with the server's validation."""
    import time

    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from modelward.api import open_registry
    from modelward.runtime import load_version
    from modelward.runtime.batch import count_rows, score_file

    with open_registry(settings()) as registry:
        model = load_version(registry, registry.resolve(ref))
    total = count_rows(input_path) if input_path.is_file() else None
    started = time.perf_counter()
    columns = [TextColumn("scoring"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn()]
    with Progress(*columns, console=error_console(), transient=as_json) as bar:
        task = bar.add_task("score", total=total)
        rows = score_file(
            model,
            input_path,
            output_path,
            chunk_size=chunk_size,
            keep=keep,
            progress=lambda n: bar.advance(task, n),
        )
    seconds = time.perf_counter() - started
    summary = {
        "model": model.name,
        "version": model.version,
        "rows": rows,
        "output": str(output_path),
        "seconds": round(seconds, 3),
    }
    if as_json:
        emit_json(summary)
    else:
        error_console().print(
            f"scored {rows} rows with {model.info.ref} into {output_path} in {seconds:.1f} s"
        )


def register(app: typer.Typer) -> None:
    app.command("serve")(serve)
    app.command("predict")(predict)
