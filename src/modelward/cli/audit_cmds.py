"""``modelward audit``: read and verify the tamper-evident audit trail."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import typer

from modelward.cli.app import emit_json, open_store, require_model

if TYPE_CHECKING:
    from modelward.governance.audit import AuditLog

__all__ = ["audit_app"]

audit_app = typer.Typer(help="Read and verify the tamper-evident audit trail.", no_args_is_help=True)

JSON_OPTION = typer.Option(False, "--json", help="Print JSON for scripts instead of a table.")


@contextmanager
def _audit() -> Iterator[AuditLog]:
    from modelward.governance.audit import AuditLog

    with open_store() as store:
        yield AuditLog(store)


@audit_app.command("log")
def log_cmd(
    model: str | None = typer.Option(None, "--model", "-m", help="Only events about this model."),
    action: str | None = typer.Option(None, "--action", help="Only this action (register, promote, ...)."),
    limit: int = typer.Option(50, "--limit", "-n", min=1, help="Newest N events."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Show the newest audit events."""
    with _audit() as audit:
        events = list(reversed(audit.events(subject=model, action=action, limit=limit, newest_first=True)))
        if not events and model is not None and not audit.events(subject=model, limit=1):
            require_model(model)
    if as_json:
        emit_json([e.to_dict() for e in events])
        return
    from modelward.cli._tables import Column, print_table

    columns = [
        Column("seq"),
        Column("time (UTC)"),
        Column("actor", drop=2),
        Column("action"),
        Column("subject"),
        Column("details", wrap=True, floor=16),
        Column("hash", drop=1),
    ]
    rows = [
        [
            str(e.seq),
            e.ts[:19].replace("T", " "),
            e.actor,
            e.action,
            e.subject,
            _details(e.payload),
            e.hash[:12],
        ]
        for e in events
    ]
    print_table(columns, rows)


_LONG_HEX = re.compile(r"\b([0-9a-f]{12})[0-9a-f]{28,}\b")


def _details(payload: dict[str, Any]) -> str:
    """The payload for reading: ``key: value`` pairs, digests cut to 12 characters (--json has them whole)."""
    parts = []
    for key, value in sorted(payload.items()):
        if value is None:
            continue
        text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
        parts.append(f"{key}: " + _LONG_HEX.sub(r"\1…", text))
    return ", ".join(parts)


@audit_app.command("verify")
def verify_cmd(
    anchor: str | None = typer.Option(
        None, "--anchor", help="SEQ:HASH recorded earlier with `audit head`: also detects cut-off events."
    ),
    as_json: bool = JSON_OPTION,
) -> None:
    """Check the whole chain, and every version's sha256 pins against its register event; exit 1
    naming the first event that was edited, removed or reordered, or each version whose pins the
    chain does not vouch for."""
    from modelward.errors import ConfigError
    from modelward.governance.pins import verify_pins

    parsed: tuple[int, str] | None = None
    if anchor is not None:
        seq, sep, digest = anchor.partition(":")
        if not sep or not seq.isdigit() or len(digest) != 64:
            raise ConfigError("--anchor expects SEQ:HASH as printed by `modelward audit head`")
        parsed = (int(seq), digest.lower())
    with _audit() as audit:
        result = audit.verify(anchor=parsed)
        pins = verify_pins(audit.store)
    ok = result.ok and pins.ok
    if as_json:
        emit_json({**result.to_dict(), "ok": ok, "chain_ok": result.ok, "pins": pins.to_dict()})
    else:
        if result.ok:
            chain = f"audit chain OK: {result.events} events, head {result.head_seq}:{result.head_hash}"
            if pins.ok:
                typer.echo(f"{chain}; pins of {pins.versions} versions match it")
            else:
                typer.echo(chain, err=True)
        else:
            typer.echo(f"audit chain BROKEN at seq {result.bad_seq}: {result.reason}", err=True)
        for problem in pins.problems:
            typer.echo(f"pins of {problem.subject} not vouched for by the chain: {problem.reason}", err=True)
    if not ok:
        raise typer.Exit(1)


@audit_app.command("head")
def head_cmd(as_json: bool = JSON_OPTION) -> None:
    """Print the newest SEQ:HASH; keep it elsewhere and pass it to `audit verify --anchor` later."""
    with _audit() as audit:
        seq, digest = audit.head()
    if as_json:
        emit_json({"seq": seq, "hash": digest})
    else:
        typer.echo(f"{seq}:{digest}")
