"""The PromQL expressions of deploy/: every rule's and every dashboard panel's, and the metric names
they read."""

from __future__ import annotations

import json
import re
from pathlib import Path

import yaml

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
PROMETHEUS = DEPLOY / "prometheus"
RULE_FILES = sorted((PROMETHEUS / "rules").glob("*.yml"))
DASHBOARDS = sorted((DEPLOY / "grafana" / "dashboards").glob("*.json"))

# Grafana's variables, replaced as Grafana would with "All" selected and a 1 s scrape interval.
GRAFANA_VARIABLES = {"$model": ".+", "$__rate_interval": "1m"}

_NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
_STRINGS = re.compile(r'"(?:[^"\\]|\\.)*"')
_RANGES = re.compile(r"\[[^\]]*\]")


def rules() -> list[dict[str, str]]:
    """Every rule of the rule files (``record`` or ``alert``, and ``expr``)."""
    out = []
    for path in RULE_FILES:
        for group in yaml.safe_load(path.read_text())["groups"]:
            out.extend(group["rules"])
    return out


def recorded_names() -> set[str]:
    return {r["record"] for r in rules() if "record" in r}


def dashboard_exprs() -> dict[str, str]:
    """``"dashboard / panel / refId"`` -> the panel query, Grafana variables substituted."""
    out = {}
    for path in DASHBOARDS:
        board = json.loads(path.read_text())
        for panel in board["panels"]:
            for target in panel["targets"]:
                expr = target["expr"]
                for variable, value in GRAFANA_VARIABLES.items():
                    expr = expr.replace(variable, value)
                out[f"{board['uid']} / {panel['title']} / {target['refId']}"] = expr
    return out


def all_exprs() -> dict[str, str]:
    named = {f"rule {r.get('record') or r['alert']}": r["expr"] for r in rules()}
    return named | dashboard_exprs()


def metric_names(expr: str) -> set[str]:
    """The modelward metric names an expression reads: identifiers outside strings, label matchers
    and range selectors that start with ``modelward_`` (recording rules' names have a colon)."""
    bare = _RANGES.sub("", _STRINGS.sub('""', expr))
    bare = re.sub(r"\{[^}]*\}", "", bare)  # label matchers: {model=~".+"}
    bare = re.sub(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", "", bare)
    return {n for n in _NAME.findall(bare) if n.startswith("modelward_") and ":" not in n}


def recording_names_used(expr: str) -> set[str]:
    bare = re.sub(r"\{[^}]*\}", "", _STRINGS.sub('""', expr))
    return {n for n in _NAME.findall(bare) if ":" in n}
