"""``modelward forget``: erase a person's logged predictions and labels (the right to erasure)."""

from __future__ import annotations

import typer

from modelward.cli.app import emit_json, open_store, settings

__all__ = ["register"]


def forget(
    request_ids: list[str] = typer.Option(
        [], "--request-id", help="A request whose rows to erase (repeat for several)."
    ),
    key: str | None = typer.Option(
        None, "--key", help="Erase every request whose logged input FIELD has VALUE: FIELD=VALUE."
    ),
    model: str | None = typer.Option(None, "--model", "-m", help="Only this model's predictions."),
    reason: str | None = typer.Option(None, "--reason", help="Why, recorded in the audit trail."),
    yes: bool = typer.Option(False, "--yes", help="Do not ask for confirmation."),
    as_json: bool = typer.Option(False, "--json", help="Print a JSON summary for scripts."),
) -> None:
    """Erase logged predictions (inputs and outputs) and labels, by request id or by the value of a
    logged input; audited with counts only (never the erased values). Forgetting twice erases
    nothing the second time."""
    from modelward.errors import ConfigError
    from modelward.governance.erasure import Eraser, parse_key

    if not request_ids and key is None:
        raise ConfigError("name what to erase: --request-id ID (repeatable) or --key FIELD=VALUE")
    pair = parse_key(key) if key is not None else None
    with open_store() as store:
        eraser = Eraser(store, actor=settings().resolved_actor)
        if not yes:
            found = eraser.preview(request_ids=request_ids, key=pair, model=model)
            if found.predictions or found.feedback:
                typer.confirm(
                    f"erase {found.predictions} logged predictions and {found.feedback} labels "
                    f"of {found.requests} requests?",
                    abort=True,
                    err=True,
                )
        done = eraser.forget(request_ids=request_ids, key=pair, model=model, reason=reason)
    if as_json:
        emit_json(done.to_dict())
        return
    typer.echo(
        f"erased {done.predictions} logged predictions and {done.feedback} labels of "
        f"{done.requests} requests (audit event {done.audit_seq})"
    )


def register(app: typer.Typer) -> None:
    app.command("forget")(forget)
