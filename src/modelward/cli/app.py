"""The Typer application, its shared options and its error handling.

A user mistake (unknown model, bad reference, refused promotion, ...) prints one line to stderr and
exits 1; only a bug shows a traceback.
"""

from __future__ import annotations

import logging
import os
import sys
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import typer

if TYPE_CHECKING:
    from modelward.config import Settings
    from modelward.store import Store

__all__ = [
    "app",
    "emit_json",
    "error_console",
    "main",
    "open_store",
    "print_error",
    "require_model",
    "settings",
]

app = typer.Typer(
    name="modelward",
    help="Take a trained model to production and keep it healthy.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode="markdown",  # docstring paragraphs re-flow; "rich" keeps their line breaks
)


def settings() -> Settings:
    from pydantic import ValidationError
    from pydantic_settings import SettingsError

    from modelward.config import Settings
    from modelward.errors import ConfigError

    try:
        return Settings()
    except SettingsError as exc:
        raise ConfigError(f"invalid MODELWARD_* setting: {exc}") from exc
    except ValidationError as exc:
        first = exc.errors()[0]
        names = ", ".join("MODELWARD_" + str(part).upper() for part in first.get("loc", ()))
        message = str(first["msg"])
        if first["type"] == "value_error" and "error" in first.get("ctx", {}):
            message = str(first["ctx"]["error"])  # a validator of ours, without pydantic's prefix
            if names and names in message:
                raise ConfigError(message) from exc
        raise ConfigError(f"invalid setting {names or 'MODELWARD_*'}: {message}") from exc


@contextmanager
def open_store() -> Iterator[Store]:
    """modelward's own store as the settings describe it, migrated, closed on exit."""
    from modelward.store import Store

    cfg = settings()
    if not cfg.database_url:
        cfg.ensure_home()
    store = Store(cfg.resolved_database_url, busy_timeout_ms=cfg.sqlite_busy_timeout_ms).open()
    try:
        store.migrate()
        yield store
    finally:
        store.close()


def require_model(name: str) -> None:
    """The CLI's check of a model name: :class:`~modelward.errors.ModelNotFound` ("model 'churnn' is
    not registered (did you mean 'churn'?)") unless the registry holds ``name``.

    Commands that read the registry meet the same error there. Commands that read only modelward's
    store (the prediction log, alerts, the audit trail) call this when they find nothing under the
    name, so that a typo is an error and not an empty answer, and a name with data costs no MLflow.
    """
    from modelward.api import open_registry

    with open_registry(settings()) as registry:
        registry.model(name)


def emit_json(value: Any) -> None:
    """Machine-readable output on stdout, and nothing else there."""
    import orjson

    sys.stdout.write(
        orjson.dumps(value, option=orjson.OPT_INDENT_2 | orjson.OPT_NON_STR_KEYS).decode() + "\n"
    )


def error_console() -> Any:
    from rich.console import Console

    return Console(stderr=True)


def print_error(message: str) -> None:
    """``error: message`` on stderr, on one line; the message as written, never read as Rich markup
    (an install hint such as ``pip install 'modelward[onnx]'`` keeps its brackets)."""
    from rich.text import Text

    error_console().print(
        Text.assemble(("error:", "bold red"), " ", message), highlight=False, soft_wrap=True
    )


def _quiet_third_parties(verbose: bool) -> None:
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s"
    )
    for noisy in ("mlflow", "alembic", "git", "urllib3"):
        logging.getLogger(noisy).setLevel(logging.INFO if verbose else logging.ERROR)
    # `modelward controller` notifies through this logger: an alert that resolves is INFO, and shown.
    logging.getLogger("modelward.alerts").setLevel(logging.INFO)
    if not verbose:
        # MLflow's "Downloading artifacts" bars would print on every command that reads a model;
        # read when MLflow downloads, so setting it here is in time. A value the user set stays.
        os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
        # MLflow sets its loggers' level from this when it is imported (after this point: lazily),
        # which would undo the level above ("Creating initial MLflow database tables..." on a new home).
        os.environ.setdefault("MLFLOW_LOGGING_LEVEL", "ERROR")
        # MLflow's advice (integer columns, dataset sources) is for MLflow users, not ours.
        warnings.filterwarnings("ignore", module=r"mlflow(\.|$)")
        warnings.filterwarnings("ignore", category=FutureWarning)
        warnings.filterwarnings("ignore", category=DeprecationWarning)


@app.callback()
def _root(
    verbose: bool = typer.Option(
        False, "--verbose", "-v", help="Show progress logs from modelward and MLflow."
    ),
) -> None:
    _quiet_third_parties(verbose)


def _register_commands() -> None:
    from modelward.cli import audit_cmds, predictions_cmds, registry_cmds, serve_cmds

    registry_cmds.register(app)
    serve_cmds.register(app)
    app.add_typer(audit_cmds.audit_app, name="audit")
    app.add_typer(predictions_cmds.predictions_app, name="predictions")
    # `modelward export NAME --labeled ...`: the prediction log's export, where retraining looks for it.
    app.command("export", help="Export logged predictions (--labeled: with their labels) to Parquet or CSV.")(
        predictions_cmds.export_cmd
    )
    from modelward.cli import abtest_cmds

    app.add_typer(abtest_cmds.abtest_app, name="abtest")
    from modelward.cli import alerts_cmds

    app.add_typer(alerts_cmds.alerts_app, name="alerts")
    from modelward.cli import feedback_cmds

    feedback_cmds.register(app)
    from modelward.cli import drift_cmds

    drift_cmds.register(app)
    from modelward.cli import deploy_cmds

    deploy_cmds.register(app)
    from modelward.cli import governance_cmds

    governance_cmds.register(app)
    from modelward.cli import fairness_cmds

    fairness_cmds.register(app)
    from modelward.cli import card_cmds

    card_cmds.register(app)
    from modelward.cli import forget_cmds

    forget_cmds.register(app)
    from modelward.cli import explain_cmds

    explain_cmds.register(app)
    from modelward.cli import pii_cmds

    app.add_typer(pii_cmds.pii_app, name="pii")
    from modelward.cli import rollout_cmds

    rollout_cmds.register(app)
    from modelward.cli import quickstart_cmds

    quickstart_cmds.register(app)
    from modelward.cli import retrain_cmds

    retrain_cmds.register(app)
    from modelward.cli import ui_cmds

    ui_cmds.register(app)


_register_commands()


def _flags_take_no_value(command: Any) -> None:
    """Typer's help shows a type beside every option, flags included ("--verbose <bool>", "--help
    <bool>"), as if they took a value; a flag takes none, so its help shows none."""
    options = list(command.params)
    if getattr(command, "add_help_option", False):
        options.append(command.get_help_option(command.context_class(command)))
    for option in options:
        if getattr(option, "is_flag", False) and option.metavar is None:
            option.metavar = ""
    for sub in getattr(command, "commands", {}).values():
        _flags_take_no_value(sub)


def main(argv: list[str] | None = None) -> int:
    import typer

    from modelward.errors import ModelwardError

    try:
        command = typer.main.get_command(app)
        _flags_take_no_value(command)
        # Outside standalone mode the parser returns typer.Exit's code instead of raising it.
        result = command(args=argv, standalone_mode=False)
    except ModelwardError as exc:
        print_error(str(exc))
        return 1
    except (KeyboardInterrupt, typer.Abort):
        return 130
    except OSError as exc:
        # A path that is missing, a folder, or not ours to write: the user's to fix, not a bug.
        where = f" ({exc.filename})" if getattr(exc, "filename", None) else ""
        print_error(f"{exc.strerror or exc}{where}")
        return 1
    except typer.Exit as exc:
        return int(exc.exit_code)
    except SystemExit as exc:
        return int(exc.code) if isinstance(exc.code, int) else 1
    except Exception as exc:
        # Usage errors (unknown option, missing argument) know how to show themselves.
        show = getattr(exc, "show", None)
        if callable(show) and hasattr(exc, "exit_code"):
            show()
            return int(exc.exit_code)
        if type(exc).__module__.startswith("mlflow"):
            message = getattr(exc, "message", None) or str(exc)
            print_error(f"MLflow: {message}")
            return 1
        raise
    return result if isinstance(result, int) else 0
