"""``modelward abtest report``: how the arms of an A/B test or canary do, from served traffic and feedback."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import typer

from modelward.cli.app import emit_json, open_store, require_model

if TYPE_CHECKING:
    from modelward.feedback.abreport import TrafficReport

__all__ = ["abtest_app"]

abtest_app = typer.Typer(help="A/B test reports from served traffic and feedback.", no_args_is_help=True)

_METRIC_HELP = (
    "correct: the prediction equals the label (binary); label: the label itself is a 0/1 outcome "
    "(a conversion); value: the feedback's numeric value (continuous, e.g. revenue)."
)
_COLUMN = {"correct": "accuracy", "label": "rate", "value": "mean value"}


def _time(text: str | None, option: str) -> float | None:
    from modelward.errors import ConfigError
    from modelward.monitoring.prediction_query import parse_since

    if text is None:
        return None
    try:
        return parse_since(text)
    except ConfigError as exc:
        raise ConfigError(f"{option}: {exc}") from None


@abtest_app.command("report")
def report_cmd(
    name: str = typer.Argument(..., help="The model whose A/B test (or canary) to report on."),
    metric: str = typer.Option("correct", "--metric", "-m", help=_METRIC_HELP),
    since: str | None = typer.Option(
        None, "--since", help="Only requests served from then on: 15m, 2h, 7d ago or an ISO-8601 date/time."
    ),
    until: str | None = typer.Option(None, "--until", help="Only requests served before then (same forms)."),
    control: str | None = typer.Option(
        None, "--control", help="The arm the others are compared with (default: the deployment's first arm)."
    ),
    alpha: float = typer.Option(0.05, "--alpha", help="Significance level; intervals are at 1 - alpha."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON for scripts instead of tables."),
) -> None:
    """Per arm: requests, outcome with its interval; per challenger: difference, p-values, MDE;
    the sample ratio check; a plain-language verdict."""
    from modelward.feedback.abreport import METRICS, NoExperiment, deployment_ab_report
    from modelward.feedback.abtest import ABTestError

    if metric not in METRICS:
        raise ABTestError(f"--metric must be one of {', '.join(METRICS)}, not {metric!r}")
    start, end = _time(since, "--since"), _time(until, "--until")
    with open_store() as store:
        try:
            result = deployment_ab_report(
                store,
                name,
                metric=metric,  # checked against METRICS above
                since=start,
                until=end,
                control=control,
                alpha=alpha,
            )
        except NoExperiment:
            from modelward.monitoring.prediction_query import count_predictions

            if count_predictions(store, name) == 0:
                require_model(name)  # a typo is not a model without an experiment
            raise
    if as_json:
        emit_json(result.to_dict())
    else:
        _print(result)


def _decimals(scale: float | None) -> int:
    """Enough decimals to show two significant digits of ``scale`` (an interval's half-width)."""
    if scale is None or not scale > 0 or not math.isfinite(scale):
        return 2
    return min(6, max(0, 1 - math.floor(math.log10(scale))))


class _Fmt:
    def __init__(self, binary: bool, scale: float | None) -> None:
        self.binary = binary
        self.dec = _decimals(100 * scale if binary and scale is not None else scale)

    def mean(self, x: float | None) -> str:
        if x is None:
            return "-"
        return f"{100 * x:.{self.dec}f}%" if self.binary else f"{x:,.{self.dec}f}"

    def diff(self, x: float | None, unit: bool = True) -> str:
        if x is None:
            return "-"
        if self.binary:
            return f"{100 * x:+.{self.dec}f}" + (" pts" if unit else "")
        return f"{x:+,.{self.dec}f}"

    def size(self, x: float | None) -> str:
        if x is None:
            return "-"
        return f"{100 * x:.{self.dec}f} pts" if self.binary else f"{x:,.{self.dec}f}"

    def interval(self, lo: float | None, hi: float | None, diff: bool = False) -> str:
        if lo is None or hi is None:
            return "-"
        if diff:
            return f"{self.diff(lo, unit=False)} to {self.diff(hi, unit=False)}"
        return f"{self.mean(lo)} to {self.mean(hi)}"


def _p(x: float | None) -> str:
    if x is None:
        return "-"
    return f"{x:.1e}" if x < 1e-4 else f"{x:.4f}"


def _when(iso: str | None) -> str:
    return iso[:19].replace("T", " ") if iso else ""


def _print(result: TrafficReport) -> None:
    from rich import box
    from rich.console import Console
    from rich.table import Table

    out = result.to_dict()
    console = Console()
    binary = out["kind"] == "binary"
    level = f"{100 * (1 - out['alpha']):g}% CI"
    window = out["window"]
    span = f"from {_when(window['since']) or 'the first request'} to {_when(window['until']) or 'now'} (UTC)"
    source = "arms found in the prediction log (no A/B deployment)"
    if out["deployment"] is not None:
        d = out["deployment"]
        shares = "/".join(f"{100 * w:g}" for w in d["weights"].values())
        source = f"{d['strategy']} deployment, revision {d['revision']}, configured {shares}"
    console.print(f"[bold]{result.model}[/]: metric {out['metric']}, {span}; {source}", highlight=False)

    widths = [a["ci_high"] - a["ci_low"] for a in out["arms"] if a["ci_low"] is not None]
    fmt = _Fmt(binary, min(widths) / 2 if widths else None)
    arms = Table(box=box.SIMPLE_HEAD)
    for column in ("arm", "requests", "errors", "with outcome", _COLUMN[out["metric"]], level):
        arms.add_column(column, justify="left" if column == "arm" else "right")
    for a in out["arms"]:
        arms.add_row(
            a["name"],
            f"{a['requests']:,}",
            f"{a['errors']:,}",
            f"{a['n']:,}",
            fmt.mean(a["mean"]),
            fmt.interval(a["ci_low"], a["ci_high"]),
        )
    console.print(arms)

    table = Table(box=box.SIMPLE_HEAD, title=f"compared with {out['control']}", title_justify="left")
    for column in ("arm", "difference", level, "p (fixed)", "p (sequential)", "MDE"):
        table.add_column(column, justify="left" if column == "arm" else "right")
    for c in out["comparisons"]:
        cf = _Fmt(binary, (c["ci_high"] - c["ci_low"]) / 2 if c["ci_low"] is not None else None)
        table.add_row(
            c["treatment"],
            cf.diff(c["difference"]),
            cf.interval(c["ci_low"], c["ci_high"], diff=True),
            _p(c["p_value"]),
            _p(c["sequential_p_value"]),
            cf.size(c["mde"]),
        )
    console.print(table)
    for line in _notes(out):
        console.print(line, highlight=False, soft_wrap=True)
    console.print(f"[bold]Verdict:[/] {out['verdict']}", highlight=False, soft_wrap=True)


def _notes(out: dict[str, Any]) -> list[str]:
    lines = []
    srm = out["srm"]
    if srm is None:
        lines.append("Sample ratio: not checked (no configured weights for two or more arms).")
    else:
        observed = " / ".join(f"{k} {v:,}" for k, v in srm["observed"].items())
        expected = "/".join(
            f"{100 * (a['expected_share'] or 0):g}" for a in out["arms"] if a["name"] in srm["observed"]
        )
        state = "[bold red]MISMATCH[/]" if srm["mismatch"] else "ok"
        since = _when(out["srm_window"]["since"]) or "the first request"
        lines.append(
            f"Sample ratio (requests served since {since}, when the weights took effect): {observed} "
            f"against {expected}: chi2 {srm['chi2']:.2f}, p {_p(srm['p_value'])}, {state}"
        )
    others = out["other_arms"]
    if others:
        listed = ", ".join(f"{k} ({v:,})" for k, v in others.items())
        lines.append(f"Not counted: requests served by arms outside the deployment: {listed}.")
    excluded = sum(a["excluded"] for a in out["arms"])
    if excluded:
        lines.append(f"Not counted: {excluded:,} labels that do not fit metric '{out['metric']}'.")
    return lines
