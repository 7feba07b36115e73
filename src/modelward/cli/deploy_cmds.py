"""``modelward deploy``: set a model's traffic (single, A/B, canary, shadow), see its status and
history; ``modelward controller``: the standalone canary and monitoring controller.

``modelward deploy NAME ...`` edits the model's stored spec: a strategy option (``--single``, ``--ab``,
``--canary``) replaces the arms; options not given (key, salt, shadow) keep their current values.
Every target is checked against the registry before anything is stored.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

import typer
from typer.core import TyperGroup

from modelward.cli.app import emit_json, settings

if TYPE_CHECKING:
    from modelward.routing import CanaryRules, DeploymentSpec

__all__ = ["deploy_app", "register"]

JSON_OPTION = typer.Option(False, "--json", help="Print JSON for scripts.")


class _DeployGroup(TyperGroup):
    """``deploy NAME ...`` is ``deploy apply NAME ...``: anything that is not a subcommand is a model."""

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        if args and not args[0].startswith("-") and args[0] not in self.commands:
            args = ["apply", *args]
        return super().parse_args(ctx, args)


deploy_app = typer.Typer(
    cls=_DeployGroup,
    no_args_is_help=True,
    help=(
        "Route a model's traffic: `modelward deploy NAME --ab champion=50 challenger=50`, "
        "`--canary 3 --steps 5,25,50,100 --step-duration 10m`, `--shadow 3`, `--single [TARGET]`; "
        "`modelward deploy status NAME`, `modelward deploy history NAME`."
    ),
)


def _console() -> Any:
    from rich.console import Console

    return Console()


def _registry() -> Any:
    from modelward.api import open_registry

    return open_registry(settings())


def _weights(items: list[str]) -> list[tuple[str, float]]:
    from modelward.errors import ConfigError

    pairs = [p for item in items for p in item.split(",") if p.strip()]
    if len(pairs) < 2:
        raise ConfigError("--ab needs at least two TARGET=WEIGHT pairs, e.g. --ab champion=50 challenger=50")
    out = []
    for pair in pairs:
        target, sep, weight = pair.partition("=")
        try:
            value = float(weight)
        except ValueError:
            value = -1.0
        if not sep or not target.strip() or value < 0:
            raise ConfigError(f"invalid --ab arm {pair!r}: use TARGET=WEIGHT, e.g. champion=50 or 3=10")
        out.append((target.strip(), value))
    return out


def _rules(options: dict[str, Any]) -> CanaryRules:
    from modelward.routing import CanaryRules

    return CanaryRules(**{k: v for k, v in options.items() if v is not None})


def _build(
    name: str,
    current: DeploymentSpec | None,
    *,
    ab: bool,
    canary: str | None,
    single: bool,
    targets: list[str],
    steps: str,
    step_duration: str,
    baseline: str,
    rules: dict[str, Any],
    key: str | None,
    salt: str | None,
    shadow: str | None,
    shadow_rate: float | None,
    no_shadow: bool,
) -> DeploymentSpec:
    """The spec these options describe, starting from ``current``."""
    from dataclasses import replace

    from modelward.errors import ConfigError
    from modelward.routing import DeploymentSpec

    chosen = [
        flag for flag, on in (("--ab", ab), ("--canary", canary is not None), ("--single", single)) if on
    ]
    if len(chosen) > 1:
        raise ConfigError(f"choose one of {' and '.join(chosen)}: a deployment has one strategy")
    if targets and not (ab or single):
        raise ConfigError(f"unexpected argument(s) {' '.join(targets)}: targets go with --ab or --single")
    if shadow is not None and no_shadow:
        raise ConfigError("--shadow and --no-shadow contradict each other")
    changes = (
        shadow is not None or no_shadow or shadow_rate is not None or key is not None or salt is not None
    )
    if not chosen and not changes:
        raise ConfigError("nothing to deploy: give --single, --ab, --canary or --shadow (see --help)")
    base = current or DeploymentSpec.single(name)
    keep: dict[str, Any] = {
        "key": base.key if key is None else (key or None),
        "salt": base.salt if salt is None else salt,
        "shadow": None if no_shadow else shadow if shadow is not None else base.shadow,
        "shadow_rate": base.shadow_rate if shadow_rate is None else shadow_rate,
    }
    if single:
        if len(targets) > 1:
            raise ConfigError("--single takes one target (a version or @alias)")
        return DeploymentSpec.single(name, targets[0] if targets else "@champion", **keep)
    if ab:
        return DeploymentSpec.ab(name, _weights(targets), **keep)
    if canary is not None:
        try:
            parsed = [float(s) for s in steps.split(",") if s.strip()]
        except ValueError:
            raise ConfigError(
                f"invalid --steps {steps!r}: use increasing percentages, e.g. 5,25,50,100"
            ) from None
        return DeploymentSpec.start_canary(
            name,
            canary,
            steps=parsed,
            step_seconds=step_duration,
            baseline=baseline,
            rules=_rules(rules),
            **keep,
        )
    return replace(base, **keep)


def apply(
    name: str = typer.Argument(..., help="The model."),
    targets: list[str] | None = typer.Argument(
        None, help="With --ab: TARGET=WEIGHT pairs (champion=50 challenger=50); with --single: one target."
    ),
    ab: bool = typer.Option(False, "--ab", help="Split sticky traffic between the TARGET=WEIGHT arms."),
    canary: str | None = typer.Option(None, "--canary", metavar="VERSION", help="Start a canary of VERSION."),
    single: bool = typer.Option(False, "--single", help="Serve one target (default @champion)."),
    shadow: str | None = typer.Option(
        None, "--shadow", metavar="TARGET", help="Mirror requests to TARGET off the hot path."
    ),
    shadow_rate: float | None = typer.Option(None, "--shadow-rate", min=0.0, max=1.0, help="Share mirrored."),
    no_shadow: bool = typer.Option(False, "--no-shadow", help="Stop mirroring."),
    key: str | None = typer.Option(
        None, "--key", help="Request field holding the routing key ('' for none)."
    ),
    salt: str | None = typer.Option(None, "--salt", help="Hash salt: give each experiment its own."),
    steps: str = typer.Option("5,25,50,100", "--steps", help="Canary traffic percentages per step."),
    step_duration: str = typer.Option("10m", "--step-duration", help="How long each canary step lasts."),
    baseline: str = typer.Option("@champion", "--baseline", help="What the canary is compared with."),
    max_error_rate: float | None = typer.Option(None, "--max-error-rate", help="Canary rule (default 0.05)."),
    max_error_rate_increase: float | None = typer.Option(
        None, "--max-error-rate-increase", help="Canary rule: over the baseline's (default 0.02)."
    ),
    max_latency_p95_ratio: float | None = typer.Option(None, "--max-latency-p95-ratio", help="Default 1.5."),
    max_latency_p99_ratio: float | None = typer.Option(None, "--max-latency-p99-ratio", help="Default 2.0."),
    latency_slack_ms: float | None = typer.Option(None, "--latency-slack-ms", help="Default 5 ms."),
    max_divergence: float | None = typer.Option(None, "--max-divergence", help="Default 0.2 (JS distance)."),
    max_performance_drop: float | None = typer.Option(None, "--max-performance-drop", help="Default 0.05."),
    metric: str | None = typer.Option(None, "--metric", help="Live metric from feedback (default accuracy)."),
    min_requests: int | None = typer.Option(None, "--min-requests", help="Per arm and step (default 50)."),
    min_labels: int | None = typer.Option(None, "--min-labels", help="Per arm, for --metric (default 50)."),
    reason: str | None = typer.Option(None, "--reason", help="Why: kept in the history and audit log."),
    allow_same_version: bool = typer.Option(
        False,
        "--allow-same-version",
        help="Deploy even when two arms, or the shadow and an arm, resolve to one version (an A/A test).",
    ),
    as_json: bool = JSON_OPTION,
) -> None:
    """Set NAME's traffic (`modelward deploy NAME ...` is short for `modelward deploy apply NAME ...`).

    Refused when it would serve a version against itself (two arms on one version, a shadow of a
    version already serving, a canary of its baseline's version) unless --allow-same-version.
    """
    from modelward.control.targets import check_targets, same_version_problems
    from modelward.errors import ConfigError, SameVersionTargets

    rules = {
        "max_error_rate": max_error_rate,
        "max_error_rate_increase": max_error_rate_increase,
        "max_latency_p95_ratio": max_latency_p95_ratio,
        "max_latency_p99_ratio": max_latency_p99_ratio,
        "latency_slack_ms": latency_slack_ms,
        "max_divergence": max_divergence,
        "max_performance_drop": max_performance_drop,
        "metric": metric,
        "min_requests": min_requests,
        "min_labels": min_labels,
    }
    if canary is None and any(v is not None for v in rules.values()):
        raise ConfigError("canary rules (--max-error-rate, --metric, ...) go with --canary")
    with _registry() as registry:
        registry.model(name)
        current = registry.deployments.get(name)
        spec = _build(
            name,
            current.spec if current else None,
            ab=ab,
            canary=canary,
            single=single,
            targets=list(targets or []),
            steps=steps,
            step_duration=step_duration,
            baseline=baseline,
            rules=rules,
            key=key,
            salt=salt,
            shadow=shadow,
            shadow_rate=shadow_rate,
            no_shadow=no_shadow,
        )
        try:
            resolved = check_targets(registry, spec, allow_same_version=allow_same_version)
        except SameVersionTargets as exc:
            drop = ", or --no-shadow to stop mirroring" if exc.shadow else ""
            raise SameVersionTargets(
                [f"{exc} (pass --allow-same-version to deploy it anyway{drop})"], shadow=exc.shadow
            ) from None
        warnings = same_version_problems(spec, resolved)
        unchanged = current is not None and current.spec.to_dict() == spec.to_dict()
        if current is not None and unchanged:
            stored = current  # scripts may repeat themselves: no new revision for the same spec
        else:
            stored = registry.deployments.put(
                spec, reason=reason, expected_revision=current.revision if current else 0, action="deploy"
            )
    from modelward.cli.app import error_console

    for warning in warnings:
        error_console().print(f"[yellow]warning:[/] {warning}", highlight=False, markup=True, soft_wrap=True)
    if as_json:
        emit_json({**stored.to_dict(), "resolved": resolved, "unchanged": unchanged, "warnings": warnings})
        return
    note = " (unchanged)" if unchanged else ""
    _console().print(
        f"[bold]{name}[/] revision {stored.revision}{note}: {stored.spec.describe()}", highlight=False
    )
    for arm in stored.spec.arms:
        version = resolved.get(arm.target)
        _console().print(f"  {arm.name:<12} {arm.target:<14} weight {arm.weight:g} -> version {version}")
    if stored.spec.shadow:
        _console().print(
            f"  shadow       {stored.spec.shadow:<14} -> version {resolved.get(stored.spec.shadow)}"
        )


def status(
    name: str = typer.Argument(..., help="The model."),
    window: str = typer.Option("1h", "--window", help="Statistics over this much of the log (15m, 1h, 1d)."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Show NAME's deployment: arms and versions, canary progress and decisions, per-arm stats, shadow."""
    from modelward.control.status import deployment_status
    from modelward.routing import parse_duration

    seconds = parse_duration(window)
    with _registry() as registry:
        report = deployment_status(registry, name, window=seconds)
    if as_json:
        emit_json(report)
        return
    from modelward.cli._deploy_view import print_status

    print_status(_console(), report, window)


def history(
    name: str = typer.Argument(..., help="The model."),
    limit: int = typer.Option(20, "--limit", "-n", min=1, help="Show the newest N revisions."),
    as_json: bool = JSON_OPTION,
) -> None:
    """List NAME's deployment revisions, newest first: who changed what, when and why."""
    with _registry() as registry:
        registry.model(name)
        revisions = registry.deployments.history(name)[::-1][:limit]
    if as_json:
        emit_json([r.to_dict() for r in revisions])
        return
    if not revisions:
        _console().print(f"{name} has no deployment yet: it serves @champion (see `modelward deploy --help`)")
        return
    from rich.table import Table

    table = Table()
    for header in ("rev", "time (UTC)", "actor", "deployment", "reason"):
        table.add_column(header, overflow="fold", no_wrap=header in ("rev", "time (UTC)"))
    for r in revisions:
        when = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(r.updated_at))
        table.add_row(str(r.revision), when, r.actor, r.spec.describe(), r.reason or "")
    _console().print(table)


def controller(
    interval: float | None = typer.Option(
        None, "--interval", min=0.1, help="Seconds between ticks (default: MODELWARD_CONTROLLER_INTERVAL, 5)."
    ),
    lease_ttl: float | None = typer.Option(
        None,
        "--lease-ttl",
        help="Seconds the lease stays valid unrenewed (default: MODELWARD_CONTROLLER_LEASE_TTL, else "
        "3 intervals, at least 15).",
    ),
    once: bool = typer.Option(False, "--once", help="Run one tick, print what it did, and exit."),
    monitor: bool = typer.Option(True, "--monitor/--no-monitor", help="Also run drift/performance alerts."),
    as_json: bool = typer.Option(False, "--json", help="Print each tick as a JSON line."),
) -> None:
    """Run the canary and monitoring controller (for set-ups with several replicas; `modelward serve`
    runs one too). Only the holder of the store lease acts, so run as many as you like."""
    from modelward.api import open_registry
    from modelward.control.controller import controller_from_settings

    cfg = settings()
    with open_registry(cfg) as registry:
        every = interval if interval is not None else cfg.controller_interval
        ttl = lease_ttl if lease_ttl is not None else cfg.controller_lease_ttl
        ttl = ttl if ttl is not None else max(15.0, 3 * every)
        ctl = controller_from_settings(registry, cfg, interval=every, lease_ttl=ttl, monitor=monitor)
        if once:
            report = ctl.tick()
            ctl.release()
            _report(report, as_json)
            return
        from modelward.cli.app import error_console

        error_console().print(f"controller {ctl.holder}: ticking every {every:g} s (Ctrl-C to stop)")
        try:
            ctl.run_forever(on_tick=lambda r: _report(r, as_json, quiet=True))
        except KeyboardInterrupt:
            return


def _report(report: Any, as_json: bool, *, quiet: bool = False) -> None:
    import sys

    import orjson

    if as_json:
        sys.stdout.write(orjson.dumps(report.to_dict(), option=orjson.OPT_NON_STR_KEYS).decode() + "\n")
        sys.stdout.flush()
        return
    if not report.acting:
        if not quiet:
            typer.echo(f"standby: another controller holds the lease ({report.holder} is waiting)")
        return
    canary = report.results.get("canary") or []
    for outcome in canary:
        if "error" in outcome:
            typer.echo(f"{outcome['model']}: canary not evaluated: {outcome['error']}", err=True)
        elif not (quiet and outcome["action"] == "hold"):
            typer.echo(f"{outcome['model']}: {outcome['action']}: {'; '.join(outcome['reasons'])}")
    if not quiet and not canary:
        typer.echo("acting: no running canary")
    for outcome in report.results.get("rollout") or []:  # automatic rollouts (docs/loop.md)
        where = f"{outcome['model']}:{outcome['version']}" if "version" in outcome else outcome["model"]
        why = outcome.get("reason") or outcome.get("error", "")
        typer.echo(f"{where}: rollout {outcome.get('status', 'error')}: {why}")
    for outcome in report.results.get("live_breach") or []:
        if outcome.get("action") in ("rollback", "impossible") or "error" in outcome:
            why = outcome.get("message") or outcome.get("error", "")
            typer.echo(f"{outcome['model']}: live floor: {outcome.get('action', 'error')}: {why}")
    for name, error in report.errors.items():
        typer.echo(f"task {name} failed: {error}", err=True)


def register(app: typer.Typer) -> None:
    deploy_app.command("apply")(apply)
    deploy_app.command("status")(status)
    deploy_app.command("history")(history)
    app.add_typer(deploy_app, name="deploy")
    app.command("controller")(controller)
