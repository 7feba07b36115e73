"""``modelward card REF``: a version's model card (Markdown, HTML or JSON); ``modelward card edit REF``:
set its intended use and limitations."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from modelward.cli.app import emit_json, error_console, settings

__all__ = ["refresh_after_move", "register", "warn_card"]

EDIT = "edit"


def refresh_after_move(registry: Any, info: Any) -> None:
    """Regenerate the card of a version an alias now points at. The alias has moved already, so a card
    that cannot be built is a warning on stderr, not a failed promotion."""
    from modelward.governance.promotion import refresh_card_after

    warn_card(info.ref, refresh_card_after(registry, info))


def warn_card(ref: str, error: str | None) -> None:
    if error is not None:
        from rich.text import Text

        error_console().print(Text(f"warning: the model card of {ref} was not refreshed: {error}"))


def _edit(ref: str | None, intended_use: str | None, limitations: str | None, as_json: bool) -> None:
    from modelward.api import open_registry
    from modelward.errors import ConfigError
    from modelward.governance.card import edit_notes

    if not ref:
        raise ConfigError("`modelward card edit` needs the version: modelward card edit NAME:VERSION ...")
    cfg = settings()
    with open_registry(cfg) as registry:
        notes = edit_notes(
            registry, ref, actor=cfg.resolved_actor, intended_use=intended_use, limitations=limitations
        )
    if as_json:
        emit_json(notes)
    else:
        typer.echo(f"notes of {notes['model']}:{notes['version']} updated (kept in the audit trail)")


def card(
    ref: str = typer.Argument(
        ...,
        help="NAME, NAME@ALIAS or NAME:VERSION; or `edit` to set the notes of the REF after it.",
    ),
    edit_ref: str | None = typer.Argument(None, help="With `edit`: the version to edit."),
    fmt: str = typer.Option("md", "--format", "-f", help="md, html or json."),
    output: Path | None = typer.Option(None, "--output", "-o", help="Write the card to this file."),
    data: Path | None = typer.Option(
        None, "--data", help="Labelled holdout (.csv/.parquet) for permutation importance."
    ),
    label: str | None = typer.Option(None, "--label", help="Label column of --data."),
    window: str = typer.Option("7d", "--window", "-w", help="Live status over this window: 1h, 1d, 7d."),
    intended_use: str | None = typer.Option(
        None, "--intended-use", help="With `edit`: what the version is for."
    ),
    limitations: str | None = typer.Option(
        None, "--limitations", help="With `edit`: where it must not be used."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print JSON (the same as --format json)."),
) -> None:
    """The model card of a version: intended use, lineage, reference profile, metrics, gates, fairness,
    calibration, feature importance, live status and history.

    `modelward card edit NAME:VERSION --intended-use TEXT --limitations TEXT` sets its notes."""
    from modelward.errors import ConfigError

    if ref == EDIT:
        _edit(edit_ref, intended_use, limitations, as_json)
        return
    if edit_ref is not None or intended_use is not None or limitations is not None:
        raise ConfigError(
            "notes are set with `modelward card edit NAME:VERSION --intended-use ... --limitations ...`"
        )
    from modelward.governance.card import CARD_FORMATS

    fmt = "json" if as_json else fmt.lower()
    if fmt not in CARD_FORMATS:
        raise ConfigError(f"unknown --format '{fmt}' (known: {', '.join(CARD_FORMATS)})")
    if (data is None) != (label is None):
        raise ConfigError("permutation importance needs both --data FILE and --label COLUMN")
    text = _build(ref, fmt, data, label, window)
    if output is None:
        typer.echo(text, nl=False)
        return
    from modelward.files import write_text

    written = write_text(output, text)
    error_console().print(f"wrote the {fmt} card of {ref} to {written}", highlight=False)


def _build(ref: str, fmt: str, data: Path | None, label: str | None, window: str) -> str:
    from modelward.api import open_registry
    from modelward.governance.card import build_card, render_card
    from modelward.monitoring.live_drift import parse_window

    seconds = parse_window(window)
    frame = None
    if data is not None:
        from modelward.registry.register import read_table

        frame = read_table(data)
    cfg = settings()
    with open_registry(cfg) as registry:
        built = build_card(
            registry, ref, actor=cfg.resolved_actor, data=frame, label=label, live_window=seconds
        )
    return render_card(built, fmt)


def register(app: typer.Typer) -> None:
    app.command("card")(card)
