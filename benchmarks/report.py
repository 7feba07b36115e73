"""Medians, ratios against the issue's targets, and the Markdown written into docs/benchmarks.md."""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from pathlib import Path
from typing import Any

START = "<!-- serving-results:start (written by benchmarks/run.py --write-docs) -->"
# What the overload scenario records besides goodput (rps) and the accepted requests' p50 and p99.
OVERLOAD_KEYS = ("shed_share", "shed_rps", "shed_p99_ms", "max_ms")
# Goodput at the most connections must stay near the goodput at the fewest (issue 14, item 6).
OVERLOAD_GOODPUT = 0.8
END = "<!-- serving-results:end -->"


def summarize(runs: list[dict[str, Any]]) -> dict[str, dict[str, dict[str, dict[str, Any]]]]:
    """``summary[scenario][system][connections]``: medians over the rounds, and every error counted."""
    groups: dict[tuple[str, str, int], list[dict[str, Any]]] = {}
    for run in runs:
        groups.setdefault((run["scenario"], run["system"], run["connections"]), []).append(run)
    out: dict[str, dict[str, dict[str, dict[str, Any]]]] = {}
    for (scenario, system, conns), group in groups.items():
        measured = [r for r in group if "rps" in r]
        entry: dict[str, Any] = {"runs": len(group), "measured_runs": len(measured)}
        if measured:
            for key in ("rps", "p50_ms", "p99_ms"):
                entry[key] = round(statistics.median(r[key] for r in measured), 3)
            entry["rps_runs"] = [r["rps"] for r in measured]
            stolen = [r["steal"] for r in measured if r.get("steal") is not None]
            if len(stolen) == len(measured):
                # A first-order correction for a shared host: requests per second of the CPU time the
                # machine was given (a run with 30% stolen had 70% of the machine).
                entry["steal"] = round(statistics.median(stolen), 4)
                entry["rps_adjusted"] = round(
                    statistics.median(r["rps"] / max(1e-9, 1.0 - r["steal"]) for r in measured), 3
                )
            for key in ("server_cpu_us", "client_cpu_us", "server_cores", *OVERLOAD_KEYS):
                values = [r[key] for r in measured if r.get(key) is not None]
                if len(values) == len(measured):
                    entry[key] = round(statistics.median(values), 4 if key == "shed_share" else 2)
            entry["errors"] = sum(r["errors"] for r in measured)
            entry["requests"] = sum(r["requests"] for r in measured)
        entry["failed_runs"] = [r["failure"] for r in group if "failure" in r]
        out.setdefault(scenario, {}).setdefault(system, {})[str(conns)] = entry
    return out


@dataclass(frozen=True)
class Target:
    """``value = numerator / denominator`` of one metric, compared with ``threshold``."""

    key: str
    text: str
    scenario: str
    metric: str
    numerator: str
    denominator: str
    connections: int
    op: str
    threshold: float


TARGETS = (
    Target(
        "mlflow_rps_batching_off",
        "throughput at 32 clients vs mlflow, batching off",
        "serving",
        "rps",
        "modelward",
        "mlflow",
        32,
        ">=",
        10,
    ),
    Target(
        "mlflow_rps_batching_on",
        "throughput at 32 clients vs mlflow, batching on",
        "serving",
        "rps",
        "modelward+batching",
        "mlflow",
        32,
        ">=",
        30,
    ),
    Target(
        "mlflow_p99_batching_off",
        "p99 at 32 clients vs mlflow's, batching off",
        "serving",
        "p99_ms",
        "modelward",
        "mlflow",
        32,
        "<=",
        0.1,
    ),
    Target(
        "mlflow_p99_batching_on",
        "p99 at 32 clients vs mlflow's, batching on",
        "serving",
        "p99_ms",
        "modelward+batching",
        "mlflow",
        32,
        "<=",
        0.1,
    ),
    Target(
        "fastapi_rps_batching_off",
        "throughput at 32 clients vs plain FastAPI, batching off",
        "serving",
        "rps",
        "modelward",
        "fastapi",
        32,
        ">=",
        1.5,
    ),
    Target(
        "fastapi_rps_batching_on",
        "throughput at 32 clients vs plain FastAPI, batching on",
        "serving",
        "rps",
        "modelward+batching",
        "fastapi",
        32,
        ">=",
        1.5,
    ),
    Target(
        "fastapi_p50_1_client",
        "p50 at 1 client vs plain FastAPI's, batching off",
        "serving",
        "p50_ms",
        "modelward",
        "fastapi",
        1,
        "<=",
        1.0,
    ),
    Target(
        "fastapi_p50_1_client_batching",
        "p50 at 1 client vs plain FastAPI's, batching on",
        "serving",
        "p50_ms",
        "modelward+batching",
        "fastapi",
        1,
        "<=",
        1.0,
    ),
    Target(
        "bentoml_batching_rps",
        "throughput at 32 clients vs BentoML with adaptive batching, batching on",
        "serving",
        "rps",
        "modelward+batching",
        "bentoml-batching",
        32,
        ">=",
        10,
    ),
    Target(
        "bentoml_batching_p99",
        "p99 at 32 clients vs BentoML's with adaptive batching, batching on",
        "serving",
        "p99_ms",
        "modelward+batching",
        "bentoml-batching",
        32,
        "<=",
        1.0,
    ),
    Target(
        "mlserver_batching_rps",
        "throughput at 32 clients vs MLServer with adaptive batching, batching on",
        "serving",
        "rps",
        "modelward+batching",
        "mlserver-batching",
        32,
        ">=",
        10,
    ),
    Target(
        "mlserver_batching_p99",
        "p99 at 32 clients vs MLServer's with adaptive batching, batching on",
        "serving",
        "p99_ms",
        "modelward+batching",
        "mlserver-batching",
        32,
        "<=",
        1.0,
    ),
    Target(
        "noop_vs_bare_asgi",
        "no-op model throughput at 32 clients vs bare uvicorn + orjson",
        "noop",
        "rps",
        "modelward-noop",
        "bare-asgi",
        32,
        ">=",
        0.7,
    ),
    Target(
        "noop_log_off_vs_bare_asgi",
        "no-op model, prediction log off, throughput at 32 clients vs bare uvicorn + orjson",
        "noop",
        "rps",
        "modelward-noop-log-off",
        "bare-asgi",
        32,
        ">=",
        0.7,
    ),
    Target(
        "logging_cost",
        "throughput with prediction logging on / off, batching on (cost <= 10%)",
        "logging",
        "rps",
        "modelward-log-on",
        "modelward-log-off",
        32,
        ">=",
        0.9,
    ),
    Target(
        "two_workers",
        "throughput with 2 workers / 1 worker",
        "workers",
        "rps",
        "modelward-2-workers",
        "modelward-1-worker",
        32,
        ">=",
        1.6,
    ),
)


def evaluate(summary: dict[str, Any], latency: dict[str, Any], scenarios: list[str]) -> list[dict[str, Any]]:
    """One row per target of the scenarios run: the ratio, whether it is met, whether errors taint it."""
    rows: list[dict[str, Any]] = []
    for t in TARGETS:
        if t.scenario not in scenarios:
            continue
        row: dict[str, Any] = {"key": t.key, "target": t.text, "op": t.op, "threshold": t.threshold}
        top = summary.get(t.scenario, {})
        a = top.get(t.numerator, {}).get(str(t.connections), {})
        b = top.get(t.denominator, {}).get(str(t.connections), {})
        if t.metric in a and t.metric in b and b[t.metric] > 0:
            value = a[t.metric] / b[t.metric]
            row["value"] = float(f"{value:.4g}")  # 4 significant digits: small ratios keep theirs
            row["met"] = value >= t.threshold if t.op == ">=" else value <= t.threshold
            row["clean"] = a.get("errors", 0) == 0 and b.get("errors", 0) == 0
            if t.metric == "rps" and a.get("rps_adjusted") and b.get("rps_adjusted"):
                row["value_adjusted"] = float(f"{a['rps_adjusted'] / b['rps_adjusted']:.4g}")
        else:
            row["value"] = None
            row["met"] = None
            row["clean"] = None
        rows.append(row)
    if "overload" in scenarios:
        rows += _overload_targets(summary.get("overload", {}))
    if "latency" not in scenarios:
        return rows
    forest = latency.get("random_forest", {})
    row = {
        "key": "compiled_forest",
        "target": "compiled single-row speed-up, 100-tree random forest (arrays path)",
    }
    row.update({"op": ">=", "threshold": 100})
    value = forest.get("speedup_arrays")
    row.update(
        {"value": value, "met": None if value is None else value >= 100, "clean": True if value else None}
    )
    rows.append(row)
    return rows


def _overload_targets(overload: dict[str, Any]) -> list[dict[str, Any]]:
    """Per system: goodput at the most connections / goodput at the fewest (the unloaded figure)."""
    rows: list[dict[str, Any]] = []
    for system, by_conns in overload.items():
        counts = sorted(int(c) for c in by_conns)
        if len(counts) < 2:
            continue
        low, high = by_conns[str(counts[0])], by_conns[str(counts[-1])]
        row: dict[str, Any] = {
            "key": f"overload_goodput_{system}",
            "target": f"goodput at {counts[-1]:,} vs {counts[0]} clients, {system}",
            "op": ">=",
            "threshold": OVERLOAD_GOODPUT,
            "value": None,
            "met": None,
            "clean": None,
        }
        if low.get("rps") and "rps" in high:
            value = high["rps"] / low["rps"]
            row.update({"value": float(f"{value:.4g}"), "met": value >= OVERLOAD_GOODPUT})
            row["clean"] = low.get("errors", 0) == 0 and high.get("errors", 0) == 0
        rows.append(row)
    return rows


def _overload_table(overload: dict[str, Any]) -> list[str]:
    if not overload:
        return []
    lines = ["", "### Overload", ""]
    lines.append(
        "| system | clients | goodput (2xx/s) | vs fewest clients | shed share | 503/s | accepted p50 ms "
        "| accepted p99 ms | accepted max ms | 503 p99 ms | errors | runs | steal |"
    )
    lines.append("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for system, by_conns in overload.items():
        ordered = sorted(by_conns.items(), key=lambda kv: int(kv[0]))
        base = ordered[0][1].get("rps")
        for conns, e in ordered:
            ratio = f"{e['rps'] / base:.2f}x" if base and e.get("rps") is not None else "-"
            share = "-" if e.get("shed_share") is None else f"{e['shed_share']:.1%}"
            steal = "-" if e.get("steal") is None else f"{e['steal']:.0%}"
            lines.append(
                f"| {system} | {conns} | {_num(e.get('rps'), 0)} | {ratio} | {share} "
                f"| {_num(e.get('shed_rps'), 0)} | {_num(e.get('p50_ms'))} | {_num(e.get('p99_ms'))} "
                f"| {_num(e.get('max_ms'))} | {_num(e.get('shed_p99_ms'))} | {e.get('errors', '-')} "
                f"| {e['measured_runs']} | {steal} |"
            )
    return lines


def verdict(row: dict[str, Any]) -> str:
    if row["met"] is None:
        return "n/a (not measured)"
    text = "met" if row["met"] else "NOT met"
    return text if row["clean"] else f"{text} (runs had errors)"


def _num(value: Any, digits: int = 1) -> str:
    if value is None:
        return "-"
    if isinstance(value, float) and abs(value) < 10 and digits == 1:
        return f"{value:.2f}"
    return f"{value:,.{digits}f}"


def markdown(results: dict[str, Any]) -> str:
    m = results["machine"]
    s = results["settings"]
    lines = ["### Machine and command", ""]
    lines.append(f"- measured {results['started']} with `{results['command']}`")
    lines.append(
        f"- {m['cpu']}, {m['cores']} cores ({m['usable_cores']} usable), {m['memory_gib']} GiB; "
        f"{m['os']}; Python {m['python']}"
    )
    lines.append(f"- load average before {m['load_before']}, after {m.get('load_after')}")
    if m.get("steal") is not None:
        lines.append(
            f"- CPU time the hypervisor gave other machines (steal) during the run: {m['steal']:.1%} "
            "(per run in the results file)"
        )
    lines.append(
        f"- load generator: {results['client']} ({m.get('wrk') or 'Python asyncio client'}), one thread"
    )
    lines.append(
        f"- {s['rounds']} round(s) of {s['duration']} s per system and client count, systems alternating; "
        f"{s['warmup']} s warm-up per server; medians shown"
    )
    pkgs = ", ".join(f"{k} {v}" for k, v in m["packages"].items())
    lines.append(
        f"- {pkgs}; commit {m['git'].get('commit', '?')[:12]}"
        + (" (with uncommitted changes in src/)" if m["git"].get("dirty") else "")
    )
    if results.get("notes"):
        lines += [f"- note: {n}" for n in results["notes"]]
    generic = {k: v for k, v in results["summary"].items() if k != "overload"}
    if generic:
        lines += ["", "### Throughput and latency", ""]
        lines.append(
            "| scenario | system | clients | requests/s | p50 ms | p99 ms | server CPU us/req "
            "| server cores | client CPU us/req | errors | runs | steal |"
        )
        lines.append("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for scenario, systems in generic.items():
        for system, by_conns in systems.items():
            for conns, e in sorted(by_conns.items(), key=lambda kv: int(kv[0])):
                errors = e.get("errors", "-")
                if e["failed_runs"]:
                    errors = f"{errors}, {len(e['failed_runs'])} failed"
                steal = "-" if e.get("steal") is None else f"{e['steal']:.0%}"
                lines.append(
                    f"| {scenario} | {system} | {conns} | {_num(e.get('rps'), 0)} | {_num(e.get('p50_ms'))} "
                    f"| {_num(e.get('p99_ms'))} | {_num(e.get('server_cpu_us'), 0)} "
                    f"| {_num(e.get('server_cores'))} | {_num(e.get('client_cpu_us'), 0)} "
                    f"| {errors} | {e['measured_runs']} | {steal} |"
                )
    lines += _peer_ratios(results["summary"].get("serving", {}))
    lines += _overload_table(results["summary"].get("overload", {}))
    if results["targets"]:
        lines += ["", "### Ratios against the targets", ""]
        lines.append("| target | measured | steal-adjusted | goal | result |")
        lines.append("|---|---|---|---|---|")
    for row in results["targets"]:
        value = "-" if row["value"] is None else f"{row['value']:.3g}x"
        adjusted = "-" if row.get("value_adjusted") is None else f"{row['value_adjusted']:.3g}x"
        lines.append(
            f"| {row['target']} | {value} | {adjusted} | {row['op']} {row['threshold']}x | {verdict(row)} |"
        )
    latency = results.get("latency") or {}
    if latency:
        lines += ["", "### Single-row latency, in process (median us)", ""]
        lines.append(
            "| model | compiled runtime | native | compiled, DataFrame | compiled, arrays "
            "| speed-up DataFrame / arrays |"
        )
        lines.append("|---|---|---|---|---|---|")
        for name, e in latency.items():
            if "error" in e:
                lines.append(f"| {name} | error: {e['error']} | | | | |")
                continue
            runtime = e["runtime"] if e["compiled"] else f"native ({e['reason']})"
            frame = e.get("compiled_frame", {}).get("median_us")
            arrays = e.get("compiled_arrays", {}).get("median_us")
            speed = f"{e['speedup_frame']}x / {e['speedup_arrays']}x" if e["compiled"] else "-"
            lines.append(
                f"| {name} | {runtime} | {_num(e['native']['median_us'])} | {_num(frame)} "
                f"| {_num(arrays)} | {speed} |"
            )
    drift = results.get("drift")
    if drift:
        lines += [
            "",
            f"Drift benchmark: `{drift['command']}` exited {drift['returncode']} (see the Drift section).",
        ]
    return "\n".join(lines) + "\n"


def _peer_ratios(serving: dict[str, Any]) -> list[str]:
    """modelward / each other serving system, per client count: requests/s, p50, p99."""
    ours = [s for s in ("modelward", "modelward+batching") if s in serving]
    peers = [s for s in serving if not s.startswith("modelward")]
    if not ours or not peers:
        return []
    lines = ["", "### modelward / peer (serving)", ""]
    lines.append("| modelward | peer | clients | requests/s ratio | p50 ratio | p99 ratio |")
    lines.append("|---|---|---|---|---|---|")
    for mine in ours:
        for peer in peers:
            for conns, a in sorted(serving[mine].items(), key=lambda kv: int(kv[0])):
                b = serving[peer].get(conns, {})
                cells = []
                for key in ("rps", "p50_ms", "p99_ms"):
                    ok = key in a and key in b and b[key] > 0
                    cells.append(f"{a[key] / b[key]:.3g}x" if ok else "-")
                lines.append(f"| {mine} | {peer} | {conns} | {' | '.join(cells)} |")
    return lines


def write_docs(path: Path, block: str) -> None:
    """Replace the generated block in the Serving section, keeping every other word of the page."""
    text = path.read_text() if path.exists() else "# Benchmarks\n\n## Serving\n"
    generated = f"{START}\n\n{block}\n{END}"
    if START in text and END in text:
        head, rest = text.split(START, 1)
        text = head + generated + rest.split(END, 1)[1]
    elif "\n## Serving" in text:
        head, rest = text.split("\n## Serving", 1)
        nl = rest.find("\n## ")
        section, tail = (rest, "") if nl < 0 else (rest[:nl], rest[nl:])
        text = f"{head}\n## Serving{section.rstrip()}\n\n{generated}\n{tail}"
    else:
        text = f"{text.rstrip()}\n\n## Serving\n\n{generated}\n"
    path.write_text(text)
