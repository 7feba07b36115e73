"""``modelward alerts``: what fires now, the history, the configured rules; test a webhook."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import typer

from modelward.cli.app import emit_json, open_store, require_model, settings

if TYPE_CHECKING:
    from modelward.monitoring.alert_config import AlertConfig

__all__ = ["alerts_app"]

alerts_app = typer.Typer(
    help="Alerts firing now (--all: the history); `rules` shows the rules, `test URL` tries a webhook.",
    invoke_without_command=True,
)


def _when(ts: float | None) -> str:
    return "" if ts is None else datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M:%S")


_WIDE = ("message", "condition", "detail", "models")
_DROP = {"notifier": 1, "kind": 1, "window": 2, "severity": 2}  # left out first on a narrow terminal


def _table(headers: list[str], rows: list[list[str]]) -> None:
    from modelward.cli._tables import Column, print_table

    columns = [Column(h, wrap=h in _WIDE, drop=_DROP.get(h, 0)) for h in headers]
    print_table(columns, rows)


@alerts_app.callback()
def alerts_cmd(
    ctx: typer.Context,
    show_all: bool = typer.Option(False, "--all", help="Show the history (fires, repeats, resolves, sends)."),
    model: str | None = typer.Option(None, "--model", "-m", help="Only this model's alerts."),
    limit: int = typer.Option(50, "--limit", "-n", min=1, max=10_000, help="History rows with --all."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Show the alerts firing now, or the alert history with --all."""
    if ctx.invoked_subcommand is not None:
        return
    from modelward.monitoring.alerts import AlertCenter

    with open_store() as store:
        center = AlertCenter(store, ())
        if show_all:
            events = center.history(limit, model)
            if not events and model is not None:
                require_model(model)
            if as_json:
                emit_json({"history": [e.to_dict() for e in events]})
                return
            if not events:
                typer.echo("no alert history yet", err=True)
                return
            _table(
                ["time (UTC)", "event", "rule", "model", "notifier", "message"],
                [
                    [
                        _when(e.ts),
                        e.kind
                        if e.delivered is None
                        else f"{e.kind} ({'sent' if e.delivered else 'FAILED'})",
                        e.rule or "",
                        e.model or "",
                        e.notifier or "",
                        e.message if not e.detail or e.delivered else f"{e.message}: {e.detail}",
                    ]
                    for e in events
                ],
            )
            return
        active = center.active(model)
        if not active and model is not None and not center.history(1, model):
            require_model(model)
        if as_json:
            emit_json({"alerts": [a.to_dict() for a in active]})
            return
        if not active:
            typer.echo("no alerts firing" + (f" for '{model}'" if model else ""), err=True)
            return
        _table(
            ["since (UTC)", "severity", "rule", "model", "subject", "message"],
            [
                [
                    _when(a.first_fired_at),
                    a.severity,
                    a.rule,
                    a.model or "",
                    a.subject + (" (clearing)" if a.clear_since is not None else ""),
                    a.message,
                ]
                for a in active
            ],
        )


def _config() -> AlertConfig:
    from modelward.monitoring.alert_config import load_alert_config

    cfg = settings()
    return load_alert_config(cfg.alerts_file, allow_private=cfg.alerts_allow_private)


@alerts_app.command("rules")
def rules_cmd(as_json: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
    """Show the configured alert rules and notifiers (MODELWARD_ALERTS_FILE, else the defaults)."""
    from modelward.durations import format_duration

    summary = _config().describe()
    if as_json:
        emit_json(summary)
        return
    source = summary["source"] or "built-in defaults (set MODELWARD_ALERTS_FILE to change them)"
    typer.echo(f"rules from {source}")
    _table(
        ["rule", "kind", "models", "severity", "window", "condition"],
        [
            [
                r["name"],
                r["kind"],
                ", ".join(r["models"]) or "all",
                r["severity"],
                format_duration(r["window"]),
                r["condition"],
            ]
            for r in summary["rules"]
        ],
    )
    notifiers = ", ".join(summary["notifiers"]) or "none"
    typer.echo(
        f"notifiers: {notifiers}; re-notify after {summary['cooldown']:g} s; "
        f"resolve after {summary['resolve_after']:g} s clear"
    )


@alerts_app.command("test")
def send_test_cmd(
    url: str = typer.Argument(..., help="The webhook URL to send a test notification to."),
    allow_private: bool = typer.Option(
        False, "--allow-private", help="Allow loopback and private addresses (never link-local)."
    ),
    allow_host: list[str] = typer.Option(
        [], "--allow-host", help="Allow this host name, address or CIDR network (repeatable)."
    ),
    timeout: float = typer.Option(
        5.0, "--timeout", min=0.1, max=60, help="Seconds to wait for the receiver."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Send a test notification through the same SSRF guard the alerts use."""
    from modelward.monitoring.notifiers import DeliveryFailed, Notification, WebhookNotifier

    notifier = WebhookNotifier(
        url,
        allow_private=allow_private or settings().alerts_allow_private,
        allowed_hosts=tuple(allow_host),
        timeout=timeout,
    )
    notifier.check()
    now = time.time()
    delivery = notifier.send(
        Notification(
            "test",
            "test",
            None,
            "webhook",
            "info",
            "a test notification from `modelward alerts test`: this receiver works",
            now,
        )
    )
    result: dict[str, Any] = {
        "notifier": delivery.notifier,
        "delivered": delivery.delivered,
        "detail": delivery.detail,
    }
    if as_json:
        emit_json(result)
        if not delivery.delivered:
            raise typer.Exit(1)
        return
    if not delivery.delivered:
        raise DeliveryFailed(delivery.notifier, delivery.detail)
    typer.echo(f"delivered to {delivery.notifier} ({delivery.detail})")
